"""The real `mnist-cnn` command: exit codes, one-line errors, and the tutorial steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error, last_json, run_cli

from mnist_cnn.data import datasets

OFFLINE = {datasets.OFFLINE_ENV: "1"}


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["data"],
        ["data", "info"],
        ["data", "show"],
        ["data", "download"],
        ["models"],
        ["train"],
        ["evaluate"],
        ["predict"],
    ],
)
def test_every_command_has_help_with_an_example(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "usage: mnist-cnn" in result.stdout
    if command != ["data"]:
        assert "example:" in result.stdout


def test_unknown_model_name():
    result = run_cli("train", "resnet-9000")
    assert_one_line_error(result, "unknown model 'resnet-9000'", "mnist-cnn models")


def test_missing_dataset(tmp_path):
    result = run_cli("data", "info", "--data-dir", str(tmp_path), env=OFFLINE)
    assert_one_line_error(result, "train-images-idx3-ubyte.gz", "is missing", str(tmp_path))


def test_missing_dataset_when_no_mirror_answers(tmp_path):
    result = run_cli(
        "train", "keras-example", "--data-dir", str(tmp_path), env={datasets.OFFLINE_ENV: "1"}
    )
    assert_one_line_error(result, "is missing")


def test_corrupt_file(tmp_path):
    folder = tmp_path / "mnist"
    shutil.copytree(datasets.dataset_dir("mnist"), folder)
    corrupt = folder / "t10k-images-idx3-ubyte.gz"
    corrupt.chmod(0o644)
    corrupt.write_bytes(corrupt.read_bytes()[:1000])
    result = run_cli("data", "info", "--data-dir", str(tmp_path), env=OFFLINE)
    assert_one_line_error(result, str(corrupt), "sha256")


def test_bad_usage_is_one_line_with_exit_2():
    assert_one_line_error(run_cli("train"), "give a model name", "--resume")
    assert_one_line_error(run_cli("train", "keras-example", "--epochs", "zero"), "--epochs")
    assert_one_line_error(run_cli("train", "keras-example", "--epochs", "0"), "--epochs")


def test_not_a_model(tmp_path):
    assert_one_line_error(run_cli("evaluate", str(tmp_path / "nothing")), "does not exist")
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    assert_one_line_error(run_cli("evaluate", str(tmp_path / "bad.keras")), "unreadable model")


def test_data_info_counts_and_balance():
    result = run_cli("data", "info", "--json")
    assert result.returncode == 0, result.stderr
    info = last_json(result.stdout)
    assert info["train"]["count"] == 60000 and info["test"]["count"] == 10000
    assert info["train"]["per_class"][1] == 6742
    text = run_cli("data", "info").stdout
    assert "train 60000, test 10000" in text and "11.2%" in text


def test_data_show_saves_a_grid(tmp_path):
    out = tmp_path / "grid.png"
    result = run_cli("data", "show", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert len(last_json(result.stdout)["indices"]) == 16


def test_models_lists_every_entry_with_parameters():
    rows = last_json(run_cli("models", "--json").stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["keras-example"]["parameters"] == 34_826
    assert "99.22%" in by_name["keras-example"]["published"]
    text = run_cli("models").stdout
    assert "published: the test set" in text and "34,826" in text


def test_no_backend_noise_on_stderr(trained_run):
    assert "oneDNN" not in trained_run["stderr"] and "cuda" not in trained_run["stderr"].lower()


def test_evaluate_prints_metrics(trained_run):
    result = run_cli("evaluate", trained_run["run_dir"], "--json")
    assert result.returncode == 0, result.stderr
    metrics = last_json(result.stdout)
    assert metrics["test_accuracy"] == pytest.approx(trained_run["test_accuracy"])
    assert len(metrics["per_class"]) == 10
    assert sum(map(sum, metrics["confusion_matrix"])) == 10000
    text = run_cli("evaluate", str(Path(trained_run["run_dir"]) / "model.keras")).stdout
    assert f"test accuracy: {trained_run['test_accuracy']:.2%}" in text
    assert "confusion matrix" in text


def test_predict_test_digits(trained_run, tmp_path, mnist):
    result = run_cli(
        "predict",
        trained_run["run_dir"],
        "--index",
        "0",
        "--index",
        "7",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [a["index"] for a in answers] == [0, 7]
    assert [a["label"] for a in answers] == [int(mnist[1][1][0]), int(mnist[1][1][7])]
    for answer in answers:
        assert answer["digit"] == answer["label"]
        assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-4)
        assert Path(answer["image"]).read_bytes()[:4] == b"\x89PNG"
    text = run_cli("predict", trained_run["run_dir"], "--index", "0", "--out", str(tmp_path))
    assert "test[0]: true 7, predicted 7 (p=" in text.stdout


def test_predict_index_out_of_range(trained_run):
    assert_one_line_error(
        run_cli("predict", trained_run["run_dir"], "--index", "10000"), "outside the test set"
    )
