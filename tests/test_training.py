"""A short real training run on MNIST writes a complete, truthful run directory."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mnist_cnn.backend import import_keras

import_keras()

from mnist_cnn import rundir  # noqa: E402
from mnist_cnn.models import loading  # noqa: E402
from mnist_cnn.training import TrainConfig, TrainingError, resolve_settings, train  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_train_json_summary(trained_run):
    assert set(trained_run) >= {
        "run_dir",
        "model",
        "epochs",
        "test_accuracy",
        "test_loss",
        "train_seconds",
    }
    assert trained_run["model"] == "conv32-conv64-dense128"
    assert trained_run["epochs"] == 2
    assert trained_run["test_accuracy"] > 0.93  # chance is 0.10
    assert 0 < trained_run["train_seconds"] < 300


def test_run_directory_is_complete(trained_run):
    run = Path(trained_run["run_dir"])
    assert run.name.startswith("conv32-conv64-dense128-")
    for name in (rundir.CONFIG, rundir.HISTORY, rundir.MODEL, rundir.METRICS):
        assert (run / name).stat().st_size > 0, name
    for plot in ("samples", "training_curves", "predictions", "confusion_matrix"):
        assert (run / rundir.PLOTS / f"{plot}.png").read_bytes()[:8] == PNG_MAGIC
    assert not list(run.rglob(".*")), "temporary files left behind"

    config = json.loads((run / rundir.CONFIG).read_text())
    assert config["settings"]["seed"] == 42
    assert config["settings"]["epochs"] == 2 and config["settings"]["limit"] == 6000
    assert config["versions"]["keras"].startswith("3.")
    assert config["versions"]["backend"] == "tensorflow"

    with (run / rundir.HISTORY).open() as f:
        history = list(csv.DictReader(f))
    assert [row["epoch"] for row in history] == ["1", "2"]
    assert {"accuracy", "loss", "val_accuracy", "val_loss", "seconds"} <= set(history[0])

    metrics = json.loads((run / rundir.METRICS).read_text())
    assert metrics["test_accuracy"] == trained_run["test_accuracy"]
    assert sum(map(sum, metrics["confusion_matrix"])) == 10_000
    assert sum(row["support"] for row in metrics["per_class"]) == 10_000


def test_steps_csv_records_training_every_few_steps(trained_run):
    """Loss and accuracy every few steps; each row the mean over the steps since the last,
    so the rows of an epoch, weighted by their steps, give back the epoch's own figures."""
    run = Path(trained_run["run_dir"])
    steps = rundir.read_history(run / rundir.STEPS)
    history = rundir.read_history(run / rundir.HISTORY)
    config = json.loads((run / rundir.CONFIG).read_text())["settings"]
    per_epoch = -(-int(6000 * (1 - config["validation_split"])) // config["batch_size"])
    assert list(steps[0]) == ["step", "epoch", "loss", "accuracy"]
    assert len(steps) >= 20
    assert [row["step"] for row in steps] == sorted({row["step"] for row in steps})
    assert {row["epoch"] for row in steps} == {1, 2}
    for epoch in history:
        rows = [row for row in steps if row["epoch"] == epoch["epoch"]]
        assert rows[-1]["step"] == epoch["epoch"] * per_epoch
        before = [(epoch["epoch"] - 1) * per_epoch] + [row["step"] for row in rows[:-1]]
        spans = [row["step"] - start for row, start in zip(rows, before, strict=True)]
        for metric in ("loss", "accuracy"):
            mean = sum(r[metric] * n for r, n in zip(rows, spans, strict=True)) / per_epoch
            assert mean == pytest.approx(epoch[metric], rel=0.02), metric
    assert steps[-1]["loss"] < steps[0]["loss"] / 3  # it learned


def test_fast_records_a_curve_for_its_one_epoch(fast_run):
    steps = rundir.read_history(Path(fast_run) / rundir.STEPS)
    assert len(steps) >= 20 and {row["epoch"] for row in steps} == {1}
    timings = json.loads((Path(fast_run) / rundir.TIMINGS).read_text())
    assert set(timings["phases"]) >= {"data", "fit", "evaluation", "pictures", "report"}
    assert timings["finished_at"] - timings["started_at"] >= sum(timings["phases"].values())


def test_saved_model_reproduces_the_metrics(trained_run, mnist):
    from mnist_cnn import evaluation

    model = loading.load_model(trained_run["run_dir"])
    _, (x_test, y_test) = mnist
    metrics = evaluation.evaluate(evaluation.predict_probabilities(model, x_test), y_test)
    assert metrics["test_accuracy"] == pytest.approx(trained_run["test_accuracy"], abs=1e-9)


def test_same_seed_same_model(tmp_path):
    """Reproducible by default: the same seed gives the same numbers."""
    config = dict(model="conv6-dense128", epochs=1, limit=2000, out=str(tmp_path), verbose=0)
    first, second = train(TrainConfig(**config)), train(TrainConfig(**config))
    assert first.metrics["test_loss"] == pytest.approx(second.metrics["test_loss"], rel=1e-5)
    other = train(TrainConfig(**config, seed=7))
    assert other.metrics["test_loss"] != pytest.approx(first.metrics["test_loss"], rel=1e-5)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"epochs": 0}, "--epochs"),
        ({"batch_size": 0}, "--batch-size"),
        ({"validation_split": 1.0}, "--validation-split"),
        ({"limit": 3}, "--limit"),
    ],
)
def test_bad_settings_name_the_option(override, message):
    with pytest.raises(TrainingError, match=message):
        resolve_settings(TrainConfig(model="keras-example", **override))


def test_run_files_are_readable_by_others(trained_run):
    """Atomic writes go through private temp files; the results must still follow the umask."""
    from mnist_cnn.atomic import FILE_MODE

    for path in Path(trained_run["run_dir"]).rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == FILE_MODE, path
