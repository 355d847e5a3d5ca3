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


# The fused batch norm the catalogue's networks train with (models/batch_norm.py).


def _fused_and_keras(shape, momentum=0.9):
    """Keras's batch norm and ours, built alike, with the same random scale and shift."""
    from mnist_cnn.models.batch_norm import BatchNormalization

    pair = keras.layers.BatchNormalization(momentum=momentum), BatchNormalization(momentum=momentum)
    scale = np.random.default_rng(1).normal(1.0, 0.2, shape[-1]).astype("float32")
    for layer in pair:
        layer.build(shape)
        layer.gamma.assign(scale)
        layer.beta.assign(scale - 1)
    return pair


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("shape", [(64, 12, 12, 16), (64, 32)])
def test_fused_batch_norm_trains_as_keras_own_does(policy, shape):
    """The same outputs, gradients and moving averages as Keras's in a training step (to
    rounding), and the same inference after it."""
    import tensorflow as tf

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        rng = np.random.default_rng(0)
        x = tf.constant(rng.normal(2.0, 3.0, shape).astype("float32"))
        weights = tf.constant(rng.normal(0.0, 1.0, shape).astype("float32"))
        seen = []
        for layer in _fused_and_keras(shape):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(tf.cast(y, "float32") * weights)
            grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
            stats = [layer.moving_mean, layer.moving_variance]
            inference = layer(x, training=False)
            seen.append([np.asarray(t, "float32") for t in (y, *grads, *stats, inference)])
        given = np.asarray(tf.cast(tf.cast(x, layer.compute_dtype), "float32"))  # as it saw x
    finally:
        keras.mixed_precision.set_global_policy(previous)
    tolerance = 1e-5 if policy == "float32" else 1e-4  # bfloat16 maps round differently
    for ours, theirs in zip(*seen, strict=True):
        assert np.linalg.norm(ours - theirs) <= tolerance * np.linalg.norm(theirs)
    mean, variance = seen[0][4], seen[0][5]  # the batch's moments, biased, moved by 0.1
    axes = tuple(range(len(shape) - 1))
    np.testing.assert_allclose(mean, 0.1 * given.mean(axis=axes), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(variance, 0.9 + 0.1 * given.var(axis=axes), rtol=1e-5)


def test_it_fuses_maps_and_leaves_the_rest_to_keras():
    """Where the fused kernel runs (the equivalence above would hold if it never did)."""
    from mnist_cnn.models.batch_norm import BatchNormalization

    layer = BatchNormalization()
    fused = {
        shape: layer._fusable(keras.KerasTensor(shape), mask=None)
        for shape in ((64, 12, 12, 16), (None, 26, 26, 32), (64, 1, 1, 128), (64, 32))
    }
    expected = keras.backend.backend() == "tensorflow"
    assert list(fused.values()) == [expected, expected, False, False]


def test_the_catalogue_networks_train_with_it_and_their_models_load(tmp_path):
    from mnist_cnn.models import catalogue, loading
    from mnist_cnn.models.batch_norm import BatchNormalization

    model = catalogue.get_entry("best").build()
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is BatchNormalization for layer in norms)
    path = tmp_path / "best.keras"
    model.save(path)
    loaded = loading.load_model(path)  # Keras's safe mode: the layer is registered
    digits = np.random.default_rng(0).random((4, 28, 28, 1), dtype="float32")
    np.testing.assert_allclose(loaded.predict(digits, verbose=0), model.predict(digits, verbose=0))
    assert sum(type(layer) is BatchNormalization for layer in loaded.layers) == len(norms)
