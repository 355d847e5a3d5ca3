"""RandomAffine: the right geometry, one sharp resampling, identity at inference, safe to load.
RandomStrokes: thicker, thinner and broken strokes, as named."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from mnist_cnn.backend import import_keras

keras = import_keras()

from mnist_cnn.models import loading  # noqa: E402
from mnist_cnn.models.augmentation import RandomAffine, RandomStrokes, affine_transforms  # noqa: E402


@pytest.fixture(scope="module")
def digits(mnist):
    (x_train, _), _ = mnist
    return x_train[:2000].astype("float32")[..., None] / 255.0


def _warp(images, angle=0.0, scale=1.0, dx=0.0, dy=0.0, shear=None, widen=None):
    n = len(images)
    given = lambda v: None if v is None else np.full(n, v, "float32")  # noqa: E731
    rows = affine_transforms(
        np.full(n, angle, "float32"),
        np.full(n, scale, "float32"),
        np.full(n, dx, "float32"),
        np.full(n, dy, "float32"),
        28,
        28,
        given(shear),
        given(widen),
    )
    return np.asarray(keras.ops.image.affine_transform(images, rows, fill_mode="constant"))


def _centre_of_mass(images: np.ndarray) -> np.ndarray:
    ink = images[..., 0]
    grid = np.arange(28, dtype="float32")
    total = ink.sum(axis=(1, 2))
    return np.stack(
        [(ink.sum(2) * grid).sum(1) / total, (ink.sum(1) * grid).sum(1) / total], axis=1
    )


def test_the_geometry_of_one_transform(digits):
    some = digits[:8]
    np.testing.assert_allclose(_warp(some), some, atol=1e-6)
    # Output pixel x reads input x + 2: the ink moves two columns left, background comes in.
    expected = np.zeros_like(some)
    expected[:, :, :-2] = some[:, :, 2:]
    np.testing.assert_allclose(_warp(some, dx=2.0), expected, atol=1e-5)
    expected = np.zeros_like(some)
    expected[:, :-3] = some[:, 3:]
    np.testing.assert_allclose(_warp(some, dy=3.0), expected, atol=1e-5)
    # A quarter turn about the centre is numpy's rot90, one way or the other.
    turned = _warp(some, angle=math.pi / 2)
    assert min(np.abs(turned - np.rot90(some, k, axes=(1, 2))).max() for k in (1, -1)) < 1e-4
    # Reading a window twice as large halves the digit about the centre.
    small = _warp(some, scale=2.0)
    spread = lambda im: np.sqrt((im[..., 0] * ((np.arange(28) - 13.5) ** 2)).sum() / im.sum())  # noqa: E731
    assert 0.4 < spread(small) / spread(some) < 0.6


def _width_height(images):
    """The spread of the ink along x and along y (standard deviations, in pixels)."""
    ink = images[..., 0]
    grid = np.arange(28) - 13.5
    total = ink.sum(axis=(1, 2))
    x = np.sqrt((ink.sum(1) * grid**2).sum(1) / total - ((ink.sum(1) * grid).sum(1) / total) ** 2)
    y = np.sqrt((ink.sum(2) * grid**2).sum(1) / total - ((ink.sum(2) * grid).sum(1) / total) ** 2)
    return x, y


def test_slant_and_aspect(digits):
    ones = digits[:200]
    width, height = _width_height(ones)
    wide_w, wide_h = _width_height(_warp(ones, widen=1.5))
    assert np.median(wide_w / width) == pytest.approx(1.5, rel=0.1)  # wider by e^aspect
    assert np.median(wide_h / height) == pytest.approx(1.0, abs=0.03)  # as tall as before
    # a shear moves each row sideways in proportion to its height: top and bottom part ways
    line = np.zeros((1, 28, 28, 1), "float32")
    line[0, 4:24, 14] = 1.0  # a vertical stroke
    slanted = _warp(line, shear=0.5)[0, ..., 0]
    top, bottom = np.argmax(slanted[6]), np.argmax(slanted[21])
    assert abs(int(top) - int(bottom)) == pytest.approx(0.5 * 15, abs=1.5)
    # without them, the rows are what they were (a recipe without them trains as before)
    np.testing.assert_allclose(_warp(ones, shear=0.0, widen=1.0), ones, atol=1e-6)


def test_strokes_thicker_thinner_and_broken(digits):
    some = digits[:256]
    thick = np.asarray(RandomStrokes(stroke=0.9, seed=1)(some, training=True))
    change = thick.sum(axis=(1, 2, 3)) / some.sum(axis=(1, 2, 3))
    assert (change > 1.02).any() and (change < 0.98).any()  # both ways, per digit
    assert 0.1 < change.min() and change.max() < 2.5  # a 3x3 erosion can take most of a stroke
    broken = np.asarray(RandomStrokes(erase=0.99, seed=2)(some, training=True))
    assert (broken <= some + 1e-6).all()  # gaps only take ink away
    lost = 1 - broken.sum(axis=(1, 2, 3)) / some.sum(axis=(1, 2, 3))
    assert np.median(lost) > 0.03 and lost.max() < 0.7  # up to 4 gaps of 9 pixels
    # gaps fall on the ink: most of the pixels they clear were inked
    cleared = (some - broken)[..., 0] > 0
    assert cleared.any(axis=(1, 2)).mean() > 0.9
    spared = np.asarray(RandomStrokes(erase=0.0, stroke=0.0)(some, training=True))
    np.testing.assert_array_equal(spared, some)
    np.testing.assert_array_equal(
        np.asarray(RandomStrokes(stroke=0.9, erase=0.9)(some, training=False)), some
    )


def test_identity_outside_training_and_at_zero_strength(digits):
    layer = RandomAffine(seed=1)
    np.testing.assert_array_equal(np.asarray(layer(digits[:16], training=False)), digits[:16])
    np.testing.assert_array_equal(np.asarray(layer(digits[:16])), digits[:16])
    still = RandomAffine(rotation=0, zoom=0, shift=0)
    np.testing.assert_allclose(
        np.asarray(still(digits[:16], training=True)), digits[:16], atol=1e-6
    )


def test_each_digit_moves_within_its_bounds(digits):
    layer = RandomAffine(rotation=10, zoom=0.1, shift=0.1, seed=1)
    first = np.asarray(layer(digits, training=True))
    assert first.shape == digits.shape and np.isfinite(first).all()
    assert not np.allclose(first, np.asarray(layer(digits, training=True)))  # new draws per call
    repeated = np.asarray(layer(np.repeat(digits[:1], 4, axis=0), training=True))
    assert not np.allclose(repeated[0], repeated[1])  # and per digit
    moved = _centre_of_mass(first) - _centre_of_mass(digits)
    # A shift of up to 2.8 pixels, plus what rotation and zoom do to an off-centre digit.
    assert np.abs(moved).max() < 2.8 + 1.5
    assert np.abs(moved).mean() > 0.5


def test_one_resampling_keeps_digits_sharper_than_keras_three_layers(digits):
    """The reason the layer exists: Keras's rotation, zoom and translation in a row blur."""
    stacked = keras.Sequential(
        [
            keras.layers.RandomRotation(10 / 360, fill_mode="constant", seed=1),
            keras.layers.RandomZoom(0.1, fill_mode="constant", seed=2),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=3),
        ]
    )
    ours = np.asarray(RandomAffine(seed=1)(digits, training=True))
    theirs = np.asarray(stacked(digits, training=True))

    def saturated(images):
        return float(np.mean(images > 0.9))

    assert saturated(ours) > 1.5 * saturated(theirs)
    assert saturated(ours) > 0.6 * saturated(digits)
    assert np.mean(ours > 0.1) < np.mean(theirs > 0.1)  # less smeared ink


def _ink_extent(image):
    rows, cols = np.nonzero(image > 0.25 * image.max())
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def _centre(image):
    y, x = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(image * y).sum(), (image * x).sum()]) / image.sum()


def test_clip_cuts_a_side_off_and_enlarges_the_rest_back_to_its_box(digits):
    """`clip`: the digits it picks lose a band at one side of their ink's extent and are
    enlarged back to their longer side, about their centre of mass (as `to_mnist` reads a
    cut digit); the others are untouched."""
    some = digits[:256]
    clipped = np.asarray(RandomStrokes(clip=0.5, seed=3)(some, training=True))
    changed = np.abs(clipped - some).max(axis=(1, 2, 3)) > 1e-6
    assert 0.3 < changed.mean() < 0.7  # about half the digits, as asked
    np.testing.assert_array_equal(clipped[~changed], some[~changed])
    sizes, shapes = [], []
    for before, after in zip(some[changed][..., 0], clipped[changed][..., 0], strict=True):
        (h0, w0), (h1, w1) = _ink_extent(before), _ink_extent(after)
        sizes.append(abs(max(h1, w1) - max(h0, w0)) <= 1.5)  # its size kept
        shapes.append((h1, w1) != (h0, w0))  # its proportions not: a side is gone
        assert np.abs(_centre(after) - _centre(before)).max() < 1.0
    # (a lone pixel at the far end of the ink, moved by a fraction of a pixel, can fade)
    assert np.mean(sizes) > 0.95 and np.mean(shapes) > 0.95
    np.testing.assert_array_equal(np.asarray(RandomStrokes(clip=0.9)(some, training=False)), some)


def test_blur_is_a_gaussian_read_back_as_the_reader_reads_a_blurred_page(digits):
    """`blur`: the digits it picks are each a Gaussian blur of themselves at a sigma in
    BLUR_SIGMAS, their faint edge cut and their ink stretched back to full strength; the
    others are untouched."""
    from scipy import ndimage

    some = digits[:64]
    blurred = np.asarray(RandomStrokes(blur=0.5, seed=4)(some, training=True))
    changed = np.abs(blurred - some).max(axis=(1, 2, 3)) > 1e-6
    assert 0.3 < changed.mean() < 0.7  # about half the digits, as asked
    np.testing.assert_array_equal(blurred[~changed], some[~changed])
    low, high = RandomStrokes.BLUR_SIGMAS
    floor = RandomStrokes.BLUR_FLOOR
    for before, after in zip(some[changed][..., 0], blurred[changed][..., 0], strict=True):
        misses = []
        for sigma in np.linspace(low, high, 81):
            soft = ndimage.gaussian_filter(before, sigma, mode="constant", truncate=8)
            read = np.clip((soft - floor * soft.max()) / ((1 - floor) * soft.max()), 0, 1)
            misses.append(np.abs(read * before.max() - after).max())
        assert min(misses) < 0.03  # some sigma in range makes exactly this digit
        assert after.max() == pytest.approx(before.max(), abs=1e-5)  # full strength
        assert ((after > 0.1) & (after < 0.9)).sum() > ((before > 0.1) & (before < 0.9)).sum()
    np.testing.assert_array_equal(np.asarray(RandomStrokes(blur=0.9)(some, training=False)), some)


def test_a_model_with_it_saves_and_loads_in_safe_mode(tmp_path, digits):

    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            RandomAffine(rotation=5, zoom=0.2, shift=0.05, shear=0.3, aspect=0.4),
            RandomStrokes(stroke=0.5, erase=0.5, clip=0.3, blur=0.2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = loading.load_model(path)
    layer, pens = loaded.layers[0], loaded.layers[1]
    assert isinstance(layer, RandomAffine) and isinstance(pens, RandomStrokes)
    assert (layer.rotation, layer.zoom, layer.shift, layer.shear, layer.aspect) == (
        5,
        0.2,
        0.05,
        0.3,
        0.4,
    )
    assert (pens.stroke, pens.erase, pens.clip, pens.blur) == (0.5, 0.5, 0.3, 0.2)
    np.testing.assert_allclose(
        loaded.predict(digits[:8], verbose=0), model.predict(digits[:8], verbose=0)
    )


def test_it_runs_under_jax(digits, tmp_path):
    np.save(tmp_path / "digits.npy", digits[:64])
    script = (
        "import sys, numpy as np\n"
        "from mnist_cnn.models.augmentation import RandomAffine, RandomStrokes\n"
        "x = np.load(sys.argv[1])\n"
        "out = np.asarray(RandomAffine(seed=1, shear=0.3, aspect=0.4)(x, training=True))\n"
        "pens = RandomStrokes(stroke=0.5, erase=0.5, clip=0.5, blur=0.5, seed=2)\n"
        "out = np.asarray(pens(out, training=True))\n"
        "assert out.shape == x.shape and np.isfinite(out).all()\n"
        "assert np.abs(out - x).max() > 0.1\n"
        "import keras; print(keras.backend.backend())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "digits.npy")],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "jax"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "jax"
