"""Elastic distortion: exact resampling, small smooth bends, identity at inference, safe to load."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from mnist_cnn.backend import import_keras

keras = import_keras()

from mnist_cnn import augmentation  # noqa: E402
from mnist_cnn.augmentation import RandomElasticDistortion  # noqa: E402


@pytest.fixture(scope="module")
def digits(mnist):
    (x_train, _), _ = mnist
    return x_train[:64].astype("float32")[..., None] / 255.0


def _centre_of_mass(images: np.ndarray) -> np.ndarray:
    ink = images[..., 0]
    grid = np.arange(28, dtype="float32")
    total = ink.sum(axis=(1, 2))
    return np.stack(
        [(ink.sum(2) * grid).sum(1) / total, (ink.sum(1) * grid).sum(1) / total], axis=1
    )


def test_bilinear_resampling_is_exact_on_whole_pixel_shifts(digits):
    pixels = digits[:4, ..., 0]
    rows = np.broadcast_to(np.arange(28, dtype="float32")[None, :, None], pixels.shape)
    cols = np.broadcast_to(np.arange(28, dtype="float32")[None, None, :], pixels.shape)
    same = np.asarray(augmentation._bilinear(pixels, rows, cols))
    np.testing.assert_allclose(same, pixels, atol=1e-6)
    # Reading each pixel from 2 columns to its left moves the ink 2 columns right, zero-filled.
    moved = np.asarray(augmentation._bilinear(pixels, rows, cols - 2))
    expected = np.zeros_like(pixels)
    expected[:, :, 2:] = pixels[:, :, :-2]
    np.testing.assert_allclose(moved, expected, atol=1e-6)
    half = np.asarray(augmentation._bilinear(pixels, rows, cols + 0.5))
    np.testing.assert_allclose(
        half[:, :, :-1], (pixels[:, :, :-1] + pixels[:, :, 1:]) / 2, atol=1e-6
    )


def test_identity_outside_training(digits):
    layer = RandomElasticDistortion(magnitude=1.0, seed=1)
    np.testing.assert_array_equal(np.asarray(layer(digits, training=False)), digits)
    np.testing.assert_array_equal(np.asarray(layer(digits)), digits)


def test_each_digit_is_bent_a_little_and_differently(digits):
    layer = RandomElasticDistortion(magnitude=1.0, seed=1)
    first = np.asarray(layer(digits, training=True))
    second = np.asarray(layer(digits, training=True))
    assert first.shape == digits.shape and np.isfinite(first).all()
    assert first.min() >= 0 and first.max() <= 1 + 1e-6
    changed = np.abs(first - digits).max(axis=(1, 2, 3))
    assert (changed > 0.1).all()  # every digit moved
    assert not np.allclose(first, second)  # a new field on every call
    # A different field per digit: the same digit repeated comes out bent differently.
    repeated = np.asarray(layer(np.repeat(digits[:1], 4, axis=0), training=True))
    assert not np.allclose(repeated[0], repeated[1])
    # Small and smooth: the ink is kept and the digit stays where it was, to a pixel or so.
    ink_ratio = first.sum(axis=(1, 2, 3)) / digits.sum(axis=(1, 2, 3))
    assert 0.85 < np.median(ink_ratio) < 1.15
    moved = np.linalg.norm(_centre_of_mass(first) - _centre_of_mass(digits), axis=1)
    assert np.median(moved) < 1.0 and moved.max() < 3.0
    # ... but far more than a rounding error: the median digit changes by a clear amount.
    assert np.median(np.abs(first - digits).mean(axis=(1, 2, 3))) > 0.02


def test_a_model_with_it_saves_and_loads_in_safe_mode(tmp_path, digits):
    from mnist_cnn import rundir

    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            RandomElasticDistortion(magnitude=1.5, grid=5),
            keras.layers.Flatten(),
        ]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = rundir.load_model(path)
    layer = loaded.layers[0]
    assert isinstance(layer, RandomElasticDistortion)
    assert (layer.magnitude, layer.grid) == (1.5, 5)
    np.testing.assert_array_equal(np.asarray(loaded(digits)), digits.reshape(len(digits), -1))


def test_it_runs_under_jax(digits, tmp_path):
    np.save(tmp_path / "digits.npy", digits)
    script = (
        "import sys, numpy as np\n"
        "from mnist_cnn.augmentation import RandomElasticDistortion\n"
        "x = np.load(sys.argv[1])\n"
        "out = np.asarray(RandomElasticDistortion(seed=1)(x, training=True))\n"
        "assert out.shape == x.shape and np.isfinite(out).all()\n"
        "assert np.abs(out - x).max() > 0.1\n"
        "import keras; print(keras.backend.backend())\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "digits.npy")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "jax"
