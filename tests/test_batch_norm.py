"""Batch norm's statistics measured again after fit (`--batch-norm-refresh N`): each layer
ends up normalising those digits exactly as training mode would, and nothing else changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mnist_cnn.backend import import_keras

keras = import_keras()

from mnist_cnn.data.datasets import normalise  # noqa: E402
from mnist_cnn.training import batch_norm  # noqa: E402
from mnist_cnn.training.config import config_from_run  # noqa: E402

DIGITS = 512


def _branching_network() -> keras.Model:
    """Two batch norms in a row and one on a side branch: not a Sequential stack."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    side = keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3, padding="same")(x))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3, padding="same")(x) + side)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


@pytest.fixture
def digits(mnist) -> np.ndarray:
    (x_train, _), _ = mnist
    return normalise(x_train[:DIGITS])


def test_inference_then_normalises_those_digits_as_training_mode_does(digits):
    keras.utils.set_random_seed(0)
    model = _branching_network()
    before = np.asarray(model(digits, training=False))
    batch = np.asarray(model(digits, training=True))  # each batch norm on this batch's moments
    assert not np.allclose(before, batch, atol=1e-3)  # fresh running averages: 0 and 1
    assert batch_norm.refresh(model, digits, count=DIGITS) == 3
    after = np.asarray(model(digits, training=False))
    np.testing.assert_allclose(after, batch, atol=2e-4)


def test_count_picks_that_many_digits_and_zero_changes_nothing(digits):
    keras.utils.set_random_seed(0)
    model = _branching_network()
    weights = [w.copy() for w in model.get_weights()]
    assert batch_norm.refresh(model, digits, count=0) == 0
    for now, then in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(now, then)
    batch_norm.refresh(model, digits, count=64, seed=1)
    few = [w.copy() for w in model.get_weights()]
    batch_norm.refresh(model, digits, count=64, seed=1)  # the same 64: the same statistics
    for now, then in zip(model.get_weights(), few, strict=True):
        np.testing.assert_allclose(now, then, rtol=1e-6)
    first = next(layer for layer in model.layers if "batch_normalization" in layer.name)
    mean_of_64 = np.asarray(first.moving_mean).copy()
    batch_norm.refresh(model, digits, count=DIGITS)
    assert not np.allclose(np.asarray(first.moving_mean), mean_of_64)  # other digits


def test_a_network_without_batch_norm_is_left_alone(digits):
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    weights = [w.copy() for w in model.get_weights()]
    assert batch_norm.refresh(model, digits, count=DIGITS) == 0
    for now, then in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(now, then)


def test_a_run_recorded_before_the_setting_resumes_without_it(fast_run, tmp_path):
    run = tmp_path / Path(fast_run).name
    shutil.copytree(fast_run, run)
    config = json.loads((run / "config.json").read_text())
    del config["settings"]["batch_norm_refresh"]
    (run / "config.json").write_text(json.dumps(config))
    train_config, settings = config_from_run(run)
    assert train_config.batch_norm_refresh == 0 and settings["batch_norm_refresh"] == 0
