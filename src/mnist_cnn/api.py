"""The Python API: each function is what the command of the same name does.

    import mnist_cnn
    run = mnist_cnn.train("fast", epochs=2)   # mnist-cnn train fast --epochs 2
    run.metrics["test_accuracy"], run.history, run.report_path
    mnist_cnn.evaluate(run.path)              # mnist-cnn evaluate RUN --json
    mnist_cnn.Classifier(run.path).predict_images(["my-digit.jpg"])

Keras loads on the first call that needs it, not on `import mnist_cnn`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mnist_cnn.reporting.run import Run


def train(model: str | None = None, **settings: Any) -> Run:
    """Train a network and write its run directory: `mnist-cnn train`.

    Args:
        model: a catalogue name (`"fast"`, `"best"`, see `mnist-cnn models`); or None with
            `arch=` (a layer list or tutorial code, read and never run) or `init=` (a saved
            model to fine-tune).
        **settings: `mnist-cnn train`'s flags as keywords (`epochs=2`, `limit=2000`,
            `learning_rate=1e-3`, `seed=1`, `out="runs"`, `ensemble=3` ...): the fields of
            [`TrainConfig`][mnist_cnn.training.config.TrainConfig]. Unknown keywords are
            refused with the known ones.

    Returns:
        The finished run (tested once on the test set), with its metrics, history and report.
    """
    from dataclasses import fields

    from mnist_cnn.backend import import_keras

    import_keras()
    from mnist_cnn import training

    known = {f.name for f in fields(training.TrainConfig)} - {"model"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"train() got {', '.join(unknown)}; it takes {', '.join(sorted(known))}")
    result = training.train(training.TrainConfig(model=model, **settings))
    return Run(result.run_dir, result)


def evaluate(
    model: str | os.PathLike | Run,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """Score a model on a dataset: `mnist-cnn evaluate --json`.

    Args:
        model: a `Run`, a run directory, or a model file (`.keras`, `.h5`, `.onnx`).
        dataset: `"mnist"`, another catalogue dataset, or `"folder:PATH"`; None: the one
            the run trained on.
        split: `"test"`, `"train"` or `"all"`.
        data_dir: where datasets are kept (default: `$MNIST_CNN_DATA` or the cache).

    Returns:
        The scores as a dict: `test_accuracy`, `test_loss`, per-class precision and recall,
        the confusion matrix, and what was scored.
    """
    from mnist_cnn.backend import import_keras

    import_keras()
    from mnist_cnn.inference.scoring import score

    path = model.path if isinstance(model, Run) else model
    return score(path, dataset, split, data_dir).summary


def sweep(
    model: str | None = None,
    values: dict | None = None,
    samples: int | None = None,
    scheduler: str | None = None,
    cpus_per_trial: int = 1,
    out: str | os.PathLike = "runs",
    address: str | None = None,
    **settings: Any,
) -> dict:
    """Try settings on Ray, rank the trials on validation and test the best once:
    `mnist-cnn sweep`.

    Args:
        model: the catalogue network to sweep (or None, with `arch=` in `settings`).
        values: setting -> list of values (a grid), or (LOW, HIGH) sampled `samples` times.
        samples: how many trials to draw when `values` holds ranges.
        scheduler: None (every trial runs to the end) or `"asha"` (stop the weak early).
        cpus_per_trial: cores each trial takes.
        out: where the sweep folder and its trials' runs go.
        address: a Ray cluster's address; None: an embedded Ray on this machine.
        **settings: fixed train settings for every trial, as for `train`.

    Returns:
        What sweep.json holds; the chosen run is `Run(record["selected"]["run_dir"])`.
    """
    from mnist_cnn.scale import cluster
    from mnist_cnn.scale import sweep as sweeping

    cluster.check_ready(address)
    from mnist_cnn.backend import import_keras

    import_keras()
    swept = {
        key: sweeping.Range(*value) if isinstance(value, tuple) else list(value)
        for key, value in (values or {}).items()
    }
    base = sweeping.absolute_paths({"model": model, "out": str(out), **settings})
    plan = sweeping.Plan(base, swept, samples, scheduler, cpus_per_trial)
    name = model or settings.get("name") or "custom"
    return sweeping.run_sweep(plan, Path(out), address, name)
