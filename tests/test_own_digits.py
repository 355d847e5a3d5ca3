"""Your own digits: a folder of labelled images as a dataset (`--dataset folder:PATH`), scored
by `evaluate` as `predict` reads it, and taught to a model by `train --init`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import error_lines, last_json, run_cli
from paper import in_a_hand, photograph, write_folder
from PIL import Image

DIGITS = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, mnist) -> tuple[Path, set[str]]:
    """300 MNIST test digits photographed on paper, in PATH/0 ... PATH/9, and three files
    that cannot be used: a truncated PNG, a blank page and a text file."""
    folder = tmp_path_factory.mktemp("photos")
    _, (x_test, y_test) = mnist
    picks = np.random.default_rng(7).choice(len(x_test), 300, replace=False)
    write_folder(folder, x_test[picks], y_test[picks], photograph, seed=7)
    buffer = folder / "3" / "truncated.png"
    Image.fromarray(255 - x_test[0]).save(buffer)
    buffer.write_bytes(buffer.read_bytes()[:60])
    Image.new("L", (64, 64), 255).save(folder / "7" / "blank.png")
    (folder / "5" / "notes.txt").write_text("the fives I wrote on Monday")
    unusable = {str(folder / name) for name in ("3/truncated.png", "7/blank.png", "5/notes.txt")}
    return folder, unusable


def test_evaluate_scores_a_folder_as_predict_reads_it(fast_run, photo_folder):
    folder, unusable = photo_folder
    result = run_cli(
        "evaluate", fast_run, "--dataset", f"folder:{folder}", "--split", "all", "--json"
    )
    assert result.returncode == 0, result.stderr
    scored = last_json(result.stdout)
    assert scored["test_samples"] == 300
    assert {row["file"] for row in scored["skipped"]} == unusable

    read = run_cli("predict", fast_run, *[str(folder / d) for d in DIGITS], "--json")
    answers = [json.loads(line) for line in read.stdout.splitlines()]
    good = [a for a in answers if "digit" in a]
    assert len(good) == 300  # the truncated file and the blank page are errors there too
    wrong = {a["file"] for a in good if a["digit"] != int(Path(a["file"]).parent.name)}
    assert scored["test_accuracy"] == pytest.approx(1 - len(wrong) / 300, abs=1e-9)
    assert {row["file"] for row in scored["wrong"]} == wrong
    assert scored["test_accuracy"] >= 0.97

    text = run_cli("evaluate", fast_run, "--dataset", f"folder:{folder}", "--split", "all")
    assert text.returncode == 0, text.stderr
    for file in unusable:
        assert f"skipped {file}:" in text.stderr
    assert "skipped: 3 file(s)" in text.stdout
    for file in wrong:
        assert f"  {file}: a" in text.stdout


def test_a_folder_is_split_the_same_way_every_time(photo_folder):
    folder, _ = photo_folder
    first = last_json(run_cli("data", "info", "--dataset", f"folder:{folder}", "--json").stdout)
    again = last_json(run_cli("data", "info", "--dataset", f"folder:{folder}", "--json").stdout)
    assert first == again
    assert first["train"]["count"] + first["test"]["count"] == 300
    assert 50 <= first["test"]["count"] <= 70  # a fifth of each digit
    assert "held out as test (seed 0)" in first["split"]
    assert len(first["skipped"]) == 3


def test_a_folder_that_is_not_laid_out_is_one_line(tmp_path, fast_run):
    (tmp_path / "cats").mkdir()
    result = run_cli("evaluate", fast_run, "--dataset", f"folder:{tmp_path}")
    assert result.returncode == 2 and len(error_lines(result.stderr)) == 1
    assert "0/ ... 9/" in result.stderr or "/0/*.png" in result.stderr
    missing = run_cli("evaluate", fast_run, "--dataset", f"folder:{tmp_path / 'nothing'}")
    assert missing.returncode == 2 and "no such folder" in missing.stderr


@pytest.fixture(scope="module")
def hand_folder(tmp_path_factory, mnist) -> Path:
    """1,000 MNIST test digits as one person writes them: slanted, narrow, a heavy pen."""
    folder = tmp_path_factory.mktemp("hand")
    _, (x_test, y_test) = mnist

    def small(digit, rng):  # 4x MNIST's size: quick to write and to read
        return in_a_hand(digit, rng, scale=4)

    write_folder(folder, x_test[2000:3000], y_test[2000:3000], small, seed=3)
    return folder


def test_fine_tuning_on_a_folder_improves_its_held_out_part(fast_run, hand_folder, tmp_path):
    dataset = f"folder:{hand_folder}"
    before = last_json(run_cli("evaluate", fast_run, "--dataset", dataset, "--json").stdout)
    tuned = run_cli("train", "--init", fast_run, "--dataset", dataset, "--out", str(tmp_path))
    assert tuned.returncode == 0, tuned.stderr
    run = next(tmp_path.glob("finetune-*"))
    config = json.loads((run / "config.json").read_text())
    data = config["data"]
    assert data["train"] + data["test"] == 1000 and 190 <= data["test"] <= 210
    assert f"{data['train']} training and {data['test']} test images" in tuned.stdout
    after = json.loads((run / "metrics.json").read_text())  # on the folder's test part
    assert before["test_samples"] == after["test_samples"] == data["test"]  # the same part
    print(f"\nheld-out part: {before['test_accuracy']:.2%} -> {after['test_accuracy']:.2%}")
    assert after["test_accuracy"] >= before["test_accuracy"] + 0.03
    assert config["entry"]["origin"]["kind"] == "init"
    assert config["settings"]["dataset"] == dataset


def test_mixing_mnist_in_is_recorded_and_still_learns_the_hand(fast_run, hand_folder, tmp_path):
    dataset = f"folder:{hand_folder}"
    result = run_cli(
        "train", "--init", fast_run, "--dataset", dataset, "--mix-mnist", "1000",
        "--out", str(tmp_path), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["data"]["train"] + summary["data"]["test"] == 1000
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    assert config["settings"]["mix_mnist"] == 1000
    assert summary["test_accuracy"] >= 0.9
    no_folder = run_cli("train", "fast", "--mix-mnist", "10")
    assert no_folder.returncode == 2 and "--mix-mnist" in no_folder.stderr
