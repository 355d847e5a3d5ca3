"""Fitting one network: build it under the recipe's precision with its augmentation in front,
compile it with the recipe's schedule, `model.fit` with our callbacks, and calibrate it on
the validation split. The data for a config, and its validation split, come from here too.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mnist_cnn import evaluation
from mnist_cnn.backend import import_keras
from mnist_cnn.data import NUM_CLASSES, datasets, sources
from mnist_cnn.models import catalogue
from mnist_cnn.models import settings as recipe_settings
from mnist_cnn.models.augmentation import RandomAffine, RandomStrokes
from mnist_cnn.training import batch_norm, tensorboard
from mnist_cnn.training.callbacks import BestWeights, EpochCheckpoint, HistoryWriter, StopOnRequest
from mnist_cnn.training.config import (
    TrainConfig,
    TrainingError,
)

keras = import_keras()  # quietly: TensorFlow's start-up notices muted, as for the command

ONE_CYCLE_START_DIVISOR = 25  # one-cycle starts at peak/25 (as in Smith's and PyTorch's)


def load_data(config: TrainConfig):
    """The data to train on, and for a folder dataset what was read (else None)."""
    parts, folder = sources.load_parts(config.dataset, config.data_dir)
    if folder is not None and not (len(folder.train.labels) and len(folder.test.labels)):
        raise TrainingError(
            f"{config.dataset}: {len(folder.train.labels)} training and "
            f"{len(folder.test.labels)} test images; training needs some of both"
        )
    (x_train, y_train), test = ((p.images, p.labels) for p in (parts["train"], parts["test"]))
    about = None if folder is None else folder.describe()
    if config.limit is not None:
        x_train, y_train = x_train[: config.limit], y_train[: config.limit]
    if config.mix_mnist:
        (x_mnist, y_mnist), _ = sources.load_dataset("mnist", config.data_dir)
        rng = np.random.default_rng(config.seed)
        picks = rng.permutation(len(x_mnist))[: config.mix_mnist]
        x_train = np.concatenate([x_train, x_mnist[picks]])
        y_train = np.concatenate([y_train, y_mnist[picks]])
        order = rng.permutation(len(x_train))  # mixed, so the validation split holds both
        x_train, y_train = x_train[order], y_train[order]
    return ((x_train, y_train), test), about


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float):
    """Hold out the last `fraction` of the training set, as Keras's validation_split does."""
    n_val = int(round(len(x) * fraction))
    if n_val == 0:
        return (x, y), None
    return (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:])


def fit_split(settings: dict, x_train, y_train):
    """The digits to fit on, and the validation split held out of them (or None)."""
    (x_fit, y_fit), validation = split_validation(x_train, y_train, settings["validation_split"])
    labels = lambda y: _labels_for(settings["loss"], y, NUM_CLASSES)  # noqa: E731
    fit_data = (datasets.normalise(x_fit), labels(y_fit))
    validation_data = (
        None if validation is None else (datasets.normalise(validation[0]), labels(validation[1]))
    )
    return fit_data, validation_data, validation


def _labels_for(loss: str, y: np.ndarray, classes: int) -> np.ndarray:
    return keras.utils.to_categorical(y, classes) if loss == "categorical" else y


def build(entry: catalogue.Entry, settings: dict) -> keras.Model:
    """Build an entry under the recipe's dtype policy (e.g. mixed bf16), with the recipe's
    augmentation in front; the global policy is restored."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(settings["precision"])
    try:
        strengths = dict(settings["augmentation"] or {})
        # Made before the network's own layers, as when it was `best`'s first: same seeds.
        pens = {key: strengths.pop(key, 0.0) for key in RandomStrokes.STRENGTHS}
        front = [RandomAffine(**strengths)] if any(strengths.values()) else []
        if any(pens.values()):
            front.append(RandomStrokes(**pens))
        return entry.build(*front)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def learning_rate(settings: dict, steps_per_epoch: int):
    """A constant rate, or Keras's CosineDecay with a linear warm-up (a one-cycle schedule)."""
    if settings["schedule"] == "constant":
        return settings["learning_rate"]
    total = settings["epochs"] * steps_per_epoch
    warmup = int(total * settings["warmup"])
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=settings["learning_rate"] / ONE_CYCLE_START_DIVISOR,
        decay_steps=max(1, total - warmup),
        warmup_target=settings["learning_rate"],
        warmup_steps=warmup,
    )


def compile_model(model, settings: dict, steps_per_epoch: int, jit_compile="auto") -> None:
    """Compile with the recipe's optimizer, schedule and loss. Keras's "auto" leaves XLA off
    on a CPU under TensorFlow (benchmarks/epoch_profile.py measures it) and on under JAX."""
    optimizer = getattr(keras.optimizers, recipe_settings.OPTIMIZERS[settings["optimizer"]])
    losses = {
        "sparse": keras.losses.SparseCategoricalCrossentropy(),
        "categorical": keras.losses.CategoricalCrossentropy(
            label_smoothing=settings["label_smoothing"]
        ),
    }
    model.compile(
        optimizer=optimizer(learning_rate(settings, steps_per_epoch)),
        loss=losses[settings["loss"]],
        metrics=["accuracy"],
        steps_per_execution=settings["steps_per_execution"],
        jit_compile=jit_compile,
    )


def fit_one(entry, settings, fit_data, validation_data, callbacks, verbose, state: Path, stop):
    """Build, compile and fit one model, checkpointed in `state`; return it and the fit seconds.

    If `state` holds a checkpoint (a resumed run), training continues after its last epoch.
    """
    model = build(entry, settings)
    steps_per_epoch = -(-len(fit_data[0]) // settings["batch_size"])
    compile_model(model, settings, steps_per_epoch)
    history = next(c for c in callbacks if isinstance(c, HistoryWriter))
    done = history.member_rows(history.member)
    best = None
    ours = [StopOnRequest(stop)]
    if settings["select_best"] and validation_data is not None:
        best = BestWeights(state / "best.weights.h5", stop, done)
        ours.append(best)
    # The history is written before the checkpoint: killed in between, the epoch runs again
    # after the resume and its row is replaced, never doubled.
    ordered = [history, *ours, EpochCheckpoint(state, stop)]
    # After the checkpoint: killed in between, that epoch's curves are missing, never doubled.
    ordered.append(tensorboard.board(state.parent.parent, history, stop))  # RUN_DIR
    ordered += [c for c in callbacks if c is not history]
    started = time.perf_counter()
    model.fit(
        *fit_data,
        batch_size=settings["batch_size"],
        epochs=settings["epochs"],
        validation_data=validation_data,
        callbacks=ordered,
        verbose=verbose,
    )
    if best is not None and not stop.requested:
        best.restore()
    if not stop.requested:  # part of the fit: what the recipe costs
        batch_norm.refresh(model, fit_data[0], settings["batch_norm_refresh"])
    return model, time.perf_counter() - started


def calibrate(model: keras.Model, validation) -> dict:
    """Fit temperature scaling on the validation split (never the test set)."""
    if validation is None:
        return {"temperature": 1.0, "fitted_on": "nothing (no validation split)"}
    x_val, y_val = validation
    probabilities = evaluation.predict_probabilities(model, x_val)
    temperature = evaluation.fit_temperature(probabilities, y_val)
    return {
        "temperature": temperature,
        "fitted_on": f"validation split ({len(y_val)} digits)",
        "validation_ece_before": evaluation.expected_calibration_error(probabilities, y_val),
        "validation_ece_after": evaluation.expected_calibration_error(
            evaluation.apply_temperature(probabilities, temperature), y_val
        ),
    }
