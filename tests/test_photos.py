"""Photos as people take them: a sheet lying at an angle on a darker desk, the hard edge of a
shadow across the digit, lined and squared paper. Made in code (tests/paper.py) over real
MNIST test digits, and read as `mnist-cnn predict` reads them."""

from __future__ import annotations

import numpy as np
import pytest
from paper import in_a_shadow, on_a_desk, on_lined_paper, on_squared_paper
from PIL import Image

from mnist_cnn.data.imaging import ImageError, to_mnist

DIGITS = 20


def _correlation(a, b) -> float:
    return float(np.corrcoef(np.ravel(a).astype(float), np.ravel(b).astype(float))[0, 1])


def _photos(render, mnist, seed: int = 11) -> tuple[list, np.ndarray, np.ndarray]:
    """The first DIGITS MNIST test digits rendered as photos, their labels and the digits."""
    _, (x_test, y_test) = mnist
    rng = np.random.default_rng(seed)
    return [render(x_test[i], rng) for i in range(DIGITS)], y_test[:DIGITS], x_test[:DIGITS]


def _likeness(render, mnist) -> list[float]:
    """How like the clean digit's own MNIST-style image each photo's 28x28 result is (-1 for
    a photo in which no digit was found)."""
    photos, _, digits = _photos(render, mnist)
    scores = []
    for photo, digit in zip(photos, digits, strict=True):
        try:
            scores.append(_correlation(to_mnist(photo).image, to_mnist(digit).image))
        except ImageError:
            scores.append(-1.0)
    return scores


@pytest.mark.parametrize("render", [on_a_desk, in_a_shadow], ids=["desk", "shadow"])
def test_a_trained_model_reads_desk_and_shadow_photos(fast_run, mnist, render):
    from mnist_cnn.inference.classifier import Classifier

    photos, labels, _ = _photos(render, mnist)
    answers = Classifier(fast_run).predict_images(photos)
    read = [
        (int(label), p.digit, round(p.confidence, 3))
        for label, (_, p) in zip(labels, answers, strict=True)
    ]
    right = sum(label == digit for label, digit, _ in read)
    print(f"\n{render.__name__}: {right}/{DIGITS} read right (label, answer, p): {read}")
    assert right / DIGITS >= 0.95
    # and none is taken for a row of digits (a 6 broken at a shadow's edge once was)
    assert [p.digits_seen for _, p in answers] == [1] * DIGITS


@pytest.mark.parametrize(
    "render", [on_a_desk, in_a_shadow, on_lined_paper, on_squared_paper],
    ids=["desk", "shadow", "lined", "squared"],
)  # fmt: skip
def test_the_result_is_the_digit_not_the_desk_shadow_or_lines(mnist, render):
    """Model-free: each photo's 28x28 result looks like the clean digit's own."""
    scores = _likeness(render, mnist)
    print(f"\n{render.__name__}: likeness median {np.median(scores):.3f}, min {min(scores):.3f}")
    assert np.median(scores) > 0.9
    assert np.mean(np.array(scores) > 0.75) >= 0.9, sorted(scores)[:4]


def test_the_sheet_is_found_and_squared_up(mnist):
    """On a desk, only the sheet is read (the steps show which part), turned square to it."""
    photos, _, _ = _photos(on_a_desk, mnist)
    for photo in photos[:5]:
        steps = to_mnist(photo).steps
        sheet = steps["paper"]
        assert sheet.shape == steps["grey"].shape
        assert 0.15 < sheet.mean() < 0.6  # the sheet, not the whole photo
        rim = np.concatenate([sheet[0], sheet[-1], sheet[:, 0], sheet[:, -1]])
        assert not rim.any()  # the desk all round it is not read
        assert steps["grey"][sheet].mean() > steps["grey"][~sheet].mean() + 50


@pytest.mark.quick
def test_the_ruled_line_search_counts_each_tilted_line_exactly():
    """The all-tilts count (running sums, one weighted bincount) is each tilt's own count of
    the pixels on each line, for a sheet that is the whole photo and for one that is not."""
    from mnist_cnn.data import photos

    rng = np.random.default_rng(0)
    for height, width, cut in ((50, 70, 0), (123, 97, 9), (30, 200, 4)):
        ink = rng.random((height, width)) < 0.3
        ink[:cut] = False  # rows with no ink at all
        inside = np.ones((height, width), bool)
        inside[:, :cut] = False
        for mask, counted in zip((inside, ink), photos._along_tilts(inside, ink)[:2], strict=True):
            rows, cols = np.nonzero(mask)
            for index, tilt in enumerate(photos.TILTS):
                offset = np.rint(np.arange(width) * tilt).astype(np.intp)
                line = rows + (offset - offset.min())[cols]
                assert (np.bincount(line, minlength=height + width + 1) == counted[index]).all()
        whole = photos._along_tilts(np.ones((height, width), bool), ink)[0]
        assert (whole.sum(axis=1) == height * width).all()


@pytest.mark.quick
def test_stroke_distances_from_the_ink_box_are_the_whole_images():
    from scipy import ndimage

    from mnist_cnn.data import photos

    rng = np.random.default_rng(1)
    for _ in range(100):
        height, width = rng.integers(5, 60, 2)
        mask = np.zeros((height, width), bool)
        top, left = rng.integers(0, height), rng.integers(0, width)
        bottom, right = rng.integers(top, height) + 1, rng.integers(left, width) + 1
        mask[top:bottom, left:right] = rng.random((bottom - top, right - left)) < 0.6
        if mask.any():
            whole = ndimage.distance_transform_edt(mask)[mask]
            assert np.array_equal(photos._distances_inside(mask), whole)


def test_a_digit_that_runs_to_the_sheets_edge_is_read(mnist):
    """A digit written down to the edge of a sheet lying on a desk joins the desk: it cut a
    notch into the sheet instead of leaving a hole in it, was left outside the sheet and
    refused as blank. A sheet is convex, so a dark notch cut into it is ink on it."""
    _, (x_test, y_test) = mnist
    digit = x_test[0]  # a 7: its stem reaches the sheet's lower edge
    rows, cols = np.nonzero(digit)
    inked = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    high = 160
    wide = round(high * inked.shape[1] / inked.shape[0])
    ink = np.asarray(Image.fromarray(inked).resize((wide, high), Image.BICUBIC)) / 255.0
    rng = np.random.default_rng(0)
    photo = 130 + rng.normal(0, 3, (400, 500))  # the desk
    photo[80:320, 120:400] = 225 + rng.normal(0, 3, (240, 280))  # the sheet
    photo[320 - high : 320, 200 : 200 + wide] *= 1 - 0.85 * ink  # down to the sheet's edge
    read = to_mnist(Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)))
    assert y_test[0] == 7
    assert _correlation(read.image, to_mnist(digit).image) > 0.75
    assert read.steps["paper"].mean() < 0.5  # the sheet, not the whole photo
