"""TensorBoard: real runs write event files that TensorBoard's own reader finds, under the
names `tensorboard --logdir runs` shows: a run's curves (train, validation, per step, the
learning rate), its test figures, an ensemble's members, a sweep trial's settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import last_json, run_cli_side_by_side

SINGLE = ["fast", "--limit", "2000", "--epochs", "2"]
ENSEMBLE = ["fast", "--ensemble", "2", "--limit", "1000", "--epochs", "1"]
STEPS = 15  # per epoch: 2000 digits less 5% for validation, batches of 128


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in a TensorBoard run's folder, as TensorBoard reads it: tag -> points."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    events = EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(e.step, float(make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]
        for tag in events.Tags()["tensors"]
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A two-epoch run and an ensemble of two, trained side by side into one runs/ folder."""
    out = tmp_path_factory.mktemp("runs")
    made = run_cli_side_by_side(
        [["train", *args, "--out", str(out), "--json"] for args in (SINGLE, ENSEMBLE)], 2
    )
    for result in made:
        assert result.returncode == 0, result.stderr[-3000:]
    single, ensemble = (Path(last_json(result.stdout)["run_dir"]) for result in made)
    return {"out": out, "single": single, "ensemble": ensemble}


def _history(run: Path) -> list[dict]:
    import csv

    with (run / "history.csv").open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_a_run_has_its_epochs_steps_learning_rate_and_test_figures(runs):
    run = runs["single"]
    board = run / "tensorboard"
    train, validation, test = (scalars(board / part) for part in ("train", "validation", "test"))
    history = _history(run)
    for tag, key in [("epoch_loss", "loss"), ("epoch_accuracy", "accuracy")]:
        assert [step for step, _ in train[tag]] == [0, 1]  # Keras's epochs, from 0
        assert [v for _, v in train[tag]] == pytest.approx([row[key] for row in history])
        assert [v for _, v in validation[tag]] == pytest.approx(
            [row[f"val_{key}"] for row in history]
        )
    assert len(train["epoch_learning_rate"]) == 2
    # Every few steps (8: the recipe's steps_per_execution), numbered across epochs.
    for tag in ("batch_loss", "batch_accuracy", "batch_learning_rate"):
        assert [step for step, _ in train[tag]] == [8, 15, 23, 30], tag
    rates = [v for _, v in train["batch_learning_rate"]]
    assert max(rates) == pytest.approx(0.01, rel=0.02) and rates[-1] < rates[0]  # one-cycle
    assert all(0 <= v <= 1 for _, v in train["batch_accuracy"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert test == {
        "epoch_accuracy": [(1, pytest.approx(metrics["test_accuracy"]))],
        "epoch_loss": [(1, pytest.approx(metrics["test_loss"]))],
    }


def test_an_ensemble_shows_each_member_and_its_test_figures(runs):
    run = runs["ensemble"]
    board = run / "tensorboard"
    history = _history(run)
    for member in (1, 2):
        rows = [row for row in history if row["member"] == member]
        train = scalars(board / f"member-{member}" / "train")
        validation = scalars(board / f"member-{member}" / "validation")
        assert [v for _, v in train["epoch_loss"]] == pytest.approx([r["loss"] for r in rows])
        assert [v for _, v in validation["epoch_accuracy"]] == pytest.approx(
            [r["val_accuracy"] for r in rows]
        )
        assert train["batch_loss"][-1][0] == 8  # 950 digits: 8 batches, one execution
    assert [step for step, _ in scalars(board / "test")["epoch_accuracy"]] == [0]


def test_tensorboard_logdir_runs_names_each_run_by_its_run_directory(runs):
    """What `tensorboard --logdir runs` lists: a folder of event files is a run, named by
    its path under runs/, so the run directory's name leads."""
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    found = EventMultiplexer().AddRunsFromDirectory(str(runs["out"])).Runs()
    single, ensemble = runs["single"].name, runs["ensemble"].name
    assert set(found) == {
        *(f"{single}/tensorboard/{part}" for part in ("train", "validation", "test")),
        *(
            f"{ensemble}/tensorboard/member-{m}/{part}"
            for m in (1, 2)
            for part in ("train", "validation")
        ),
        f"{ensemble}/tensorboard/test",
    }


def test_a_sweep_trial_is_named_after_its_settings(tmp_path):
    """The name `sweep` gives each trial (tests/test_cluster.py runs a real sweep)."""
    from mnist_cnn.scale.sweep import _tensorboard_name
    from mnist_cnn.training import tensorboard

    name = _tensorboard_name({"learning_rate": 0.001, "batch_size": 32, "augmentation": None})
    assert name == "learning-rate=0.001,batch-size=32,augment=off"
    assert tensorboard.log_dir(tmp_path, 2) == tmp_path / "tensorboard" / "member-2"
    tensorboard.name_run(tmp_path, name)
    assert tensorboard.log_dir(tmp_path) == tmp_path / "tensorboard" / name


@pytest.mark.parametrize("warmup_target", [None, 0.01])
def test_the_learning_rate_curve_is_keras_schedule_itself(warmup_target):
    """The per-step rates are computed at once, by CosineDecay's formula: the same values
    as calling Keras's schedule at each step, with a warm-up and without."""
    import numpy as np

    from mnist_cnn.backend import import_keras
    from mnist_cnn.training.tensorboard import cosine_decay

    keras = import_keras()
    schedule = keras.optimizers.schedules.CosineDecay(
        0.001, decay_steps=90, warmup_target=warmup_target, warmup_steps=10, alpha=0.1
    )
    steps = np.arange(0, 120, 3)
    expected = [float(keras.ops.convert_to_numpy(schedule(int(step)))) for step in steps]
    assert cosine_decay(schedule, steps) == pytest.approx(expected, rel=1e-5)
