"""The end of a run: the test set, read once for the finished model, then metrics.json, the
pictures and report.html. `finish` does it later for a run fitted without its test
(a sweep's chosen trial).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from mnist_cnn import evaluation, rundir
from mnist_cnn.atomic import atomic_write_json
from mnist_cnn.data import datasets
from mnist_cnn.models import loading
from mnist_cnn.reporting import pictures, plots, report
from mnist_cnn.stopwatch import Stopwatch
from mnist_cnn.training import tensorboard
from mnist_cnn.training.callbacks import history_of
from mnist_cnn.training.config import (
    RunResult,
    config_from_run,
)
from mnist_cnn.training.fit import load_data

PREVIEW_SAMPLES = 16


log = logging.getLogger(__name__)  # the command shows its lines before waits


def finish(run_dir: str | os.PathLike) -> RunResult:
    """Score a run fitted with `test=False` (a sweep's chosen trial): the test set, read
    once, then metrics, pictures and report, as `train` writes them."""
    run_dir = Path(run_dir)
    if (run_dir / rundir.METRICS).exists():
        raise rundir.RunError(f"{run_dir} has been tested already (it has its {rundir.METRICS})")
    config, settings = config_from_run(run_dir)
    model = loading.load_model(rundir.model_path(run_dir))
    (train_set, test_set), about_data = load_data(config)
    history = history_of(run_dir)
    seconds = sum(row.get("seconds", 0.0) for row in history)
    name = rundir.read_json(run_dir / rundir.CONFIG)["model"]
    result = RunResult(run_dir, name, settings["epochs"], {}, seconds, history, about_data)
    temperature = float(rundir.read_json(run_dir / rundir.CALIBRATION)["temperature"])
    watch = Stopwatch()
    test_run(result, model, config, settings, train_set, test_set, temperature, watch)
    atomic_write_json(run_dir / rundir.TIMINGS, watch.record())
    return result


def test_run(result, model, config, settings, train_set, test_set, temperature, watch) -> None:
    """The test set, read once for this finished model: metrics.json, pictures, report."""
    log.info("testing the model, drawing its pictures and writing its report ...")
    x_test, y_test = test_set
    evaluating = time.perf_counter()
    raw = evaluation.predict_probabilities(model, x_test)
    probabilities = evaluation.apply_temperature(raw, temperature)
    metrics = evaluation.evaluate(probabilities, y_test)
    metrics["calibration"] = {
        "temperature": temperature,
        "test_ece_before": evaluation.expected_calibration_error(raw, y_test),
        "test_ece_after": evaluation.expected_calibration_error(probabilities, y_test),
    }
    metrics.update(
        train_seconds=result.train_seconds,
        epochs=settings["epochs"],
        ensemble=config.ensemble,
        parameters=int(model.count_params()),
    )
    atomic_write_json(result.run_dir / rundir.METRICS, metrics)
    tensorboard.write_test(result.run_dir, metrics, settings, result.history)
    watch.add("evaluation", time.perf_counter() - evaluating)
    with watch.phase("pictures"):
        write_plots(
            result.run_dir,
            train_set,
            test_set,
            probabilities,
            metrics,
            result.history,
            datasets.class_names(config.dataset),
        )
    with watch.phase("report"):
        report.write_report_of(result.run_dir, model, test_set, probabilities)
    result.metrics = metrics


def write_plots(run_dir: Path, train_set, test_set, probabilities, metrics, history, classes):
    """The run's pictures: samples, curves, a grid of test predictions, the confusion matrix."""
    (x_train, y_train), (x_test, y_test) = train_set, test_set
    folder = run_dir / rundir.PLOTS
    pictures.sample_grid(x_train, y_train, folder / "samples.png", classes)
    steps = history_of(run_dir, rundir.STEPS)
    plots.training_curves(history, folder / "training_curves.png", steps)
    shown = min(PREVIEW_SAMPLES, len(x_test))
    picks = np.random.default_rng(0).choice(len(x_test), shown, replace=False)
    pictures.prediction_grid(
        x_test[picks], y_test[picks], probabilities[picks], folder / "predictions.png"
    )
    pictures.confusion_matrix(metrics["confusion_matrix"], folder / "confusion_matrix.png")
