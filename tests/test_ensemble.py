"""`train best --ensemble K`: K members averaged into one model that saves and reloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import last_json, run_cli

from mnist_cnn.backend import import_keras

import_keras()

from mnist_cnn import evaluation, rundir  # noqa: E402
from mnist_cnn.models import loading  # noqa: E402
from mnist_cnn.models.ensemble import members_of  # noqa: E402

ENSEMBLE_ARGS = ("--epochs", "1", "--limit", "1500")


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ensemble")
    result = run_cli(
        "train",
        "best",
        "--ensemble",
        "3",
        *ENSEMBLE_ARGS,
        "--out",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    return last_json(result.stdout)


def test_ensemble_trains_three_members(ensemble_run):
    assert ensemble_run["ensemble"] == 3
    run = Path(ensemble_run["run_dir"])
    history = (run / rundir.HISTORY).read_text().splitlines()
    assert history[0].startswith("member,epoch")
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2", "3"]
    config = json.loads((run / rundir.CONFIG).read_text())
    assert config["settings"]["ensemble"] == 3


def test_each_member_is_the_single_run_of_its_seed(ensemble_run, mnist, tmp_path):
    """What benchmarks/accuracy.py relies on: member i (from 0) is the single run of seed + i."""
    model = loading.load_model(ensemble_run["run_dir"])
    members = members_of(model)
    single = run_cli(
        "train", "best", "--seed", "43", *ENSEMBLE_ARGS, "--out", str(tmp_path), "--json"
    )
    assert single.returncode == 0, single.stderr
    digits = mnist[1][0][:300]
    alone = evaluation.predict_probabilities(
        loading.load_model(last_json(single.stdout)["run_dir"]), digits
    )
    np.testing.assert_allclose(
        evaluation.predict_probabilities(members[1], digits), alone, atol=1e-4
    )
    # and not the same as the member of another seed
    assert not np.allclose(evaluation.predict_probabilities(members[0], digits), alone, atol=1e-2)


def test_ensemble_saves_reloads_and_predicts_identically(ensemble_run, mnist):
    model = loading.load_model(ensemble_run["run_dir"])
    members = members_of(model)
    assert len(members) == 3
    digits = mnist[1][0][:500]
    together = evaluation.predict_probabilities(model, digits)
    each = [evaluation.predict_probabilities(member, digits) for member in members]
    np.testing.assert_allclose(together, np.mean(each, axis=0), atol=1e-6)
    again = evaluation.predict_probabilities(loading.load_model(ensemble_run["run_dir"]), digits)
    np.testing.assert_array_equal(together, again)
    accuracy = json.loads((Path(ensemble_run["run_dir"]) / rundir.METRICS).read_text())
    full = evaluation.evaluate(evaluation.predict_probabilities(model, mnist[1][0]), mnist[1][1])
    assert full["test_accuracy"] == pytest.approx(accuracy["test_accuracy"], abs=1e-9)


def test_shifted_moves_ink_and_fills_with_background():
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, 0, 5] = 200
    image[0, 10, 27] = 100
    down = evaluation.shifted(image, 1, 0)
    assert down[0, 1, 5] == 200 and down[0, 0].sum() == 0
    right = evaluation.shifted(image, 0, 1)
    assert right[0, 0, 6] == 200 and right[0, :, 0].sum() == 0
    assert right.sum() == 200  # the pixel pushed off the edge is gone, nothing wraps round
    np.testing.assert_array_equal(evaluation.shifted(image, 0, 0), image)


def test_test_time_augmentation_averages_the_shifted_views(ensemble_run, mnist):
    model = loading.load_model(ensemble_run["run_dir"])
    digits = mnist[1][0][:200]
    plain = evaluation.predict_probabilities(model, digits)
    np.testing.assert_allclose(
        evaluation.predict_with_tta(model, digits, shifts=((0, 0),)), plain, atol=1e-6
    )
    views = [
        evaluation.predict_probabilities(model, evaluation.shifted(digits, *s))
        for s in evaluation.TTA_SHIFTS
    ]
    tta = evaluation.predict_with_tta(model, digits)
    np.testing.assert_allclose(tta, np.mean(views, axis=0), atol=1e-6)
    np.testing.assert_allclose(tta.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(tta, plain)


@pytest.mark.parametrize("fmt", ["onnx", "saved_model"])
def test_an_augmented_ensemble_exports_without_its_random_layers(ensemble_run, fmt):
    """best's RandomAffine (once Keras's three random layers) is identity at inference; left in,
    its random ops broke the ONNX export and made the SavedModel disagree on 834 of 1000 digits."""
    result = run_cli("export", ensemble_run["run_dir"], "--format", fmt, "--json")
    assert result.returncode == 0, result.stderr
    parity = last_json(result.stdout)["parity"]
    assert parity["ok"] and parity["disagreements"] == 0


def test_the_onnx_ensemble_answers_like_keras(ensemble_run, mnist):
    from mnist_cnn.inference.classifier import Classifier
    from mnist_cnn.inference.export import inference_copy

    onnx = Path(ensemble_run["run_dir"]) / "model.onnx"
    if not onnx.exists():
        assert run_cli("export", ensemble_run["run_dir"], "--format", "onnx").returncode == 0
    digits = mnist[1][0][:300]
    plain = inference_copy(loading.load_model(ensemble_run["run_dir"]))
    members = members_of(plain)
    assert len(members) == 3
    assert not any(type(x).__name__.startswith("Random") for m in members for x in m.layers)
    expected = evaluation.predict_probabilities(plain, digits)
    got = Classifier(onnx).probabilities(digits)
    temperature = rundir.temperature_of(onnx)
    np.testing.assert_allclose(got, evaluation.apply_temperature(expected, temperature), atol=1e-4)
