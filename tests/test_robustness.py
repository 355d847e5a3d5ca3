"""The robustness suite: each change does what its name says, and the suite is the same
on every run. No model is trained here: the pages are measured directly."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_cnn.data import sources
from mnist_cnn.data.imaging import to_mnist
from mnist_cnn.reporting import other_sources, robustness
from mnist_cnn.reporting.robustness import CHANGES, Entry, Suite, build_suite, page, score, table


@pytest.fixture(scope="module")
def test_digits():
    _, (x_test, y_test) = sources.load_dataset("mnist")
    return x_test, y_test


def _pages(change, strength, digits, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([page(change, strength, d, rng).astype(float) for d in digits])


def _ink(pages):
    return 255.0 - pages  # ink is dark on the paper


def _box(sheet, level=128):
    rows, cols = np.nonzero(255 - sheet > level)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def _angle(sheet):
    """The orientation of the ink's principal axis, in degrees."""
    ink = 255.0 - sheet
    y, x = np.mgrid[: ink.shape[0], : ink.shape[1]]
    total = ink.sum()
    my, mx = (ink * y).sum() / total, (ink * x).sum() / total
    mu20 = (ink * (x - mx) ** 2).sum()
    mu02 = (ink * (y - my) ** 2).sum()
    mu11 = (ink * (x - mx) * (y - my)).sum()
    return np.degrees(0.5 * np.arctan2(2 * mu11, mu20 - mu02))


def test_stroke_width_changes_the_ink(test_digits):
    x, _ = test_digits
    digits = x[:20]
    plain = _ink(_pages("none", 0, digits)).sum()
    for strength in CHANGES["thick"][1]:
        assert _ink(_pages("thick", strength, digits)).sum() > plain * 1.15
    for strength in CHANGES["thin"][1]:
        assert _ink(_pages("thin", strength, digits)).sum() < plain * 0.9
    thicker = [_ink(_pages("thick", s, digits)).sum() for s in CHANGES["thick"][1]]
    assert thicker == sorted(thicker)  # mild to strong


def test_blur_faint_noise_and_jpeg(test_digits):
    x, _ = test_digits
    digits = x[:10]
    plain = _pages("none", 0, digits)
    blurred = _pages("blur", 2.0, digits)
    assert np.abs(np.diff(blurred, axis=2)).mean() < 0.6 * np.abs(np.diff(plain, axis=2)).mean()
    faint = _pages("faint", 0.3, digits)
    assert _ink(faint).max(axis=(1, 2)) == pytest.approx(0.3 * _ink(plain).max(axis=(1, 2)), abs=2)
    noisy = _pages("noise", 50, digits)
    # on white paper half the noise is clipped away: a half-normal's spread, sigma x 0.584
    assert noisy[:, :10, :10].std() == pytest.approx(50 * np.sqrt((1 - 1 / np.pi) / 2), rel=0.1)
    assert plain[:, :10, :10].std() == 0
    jpeg = _pages("jpeg", 8, digits)
    assert not np.array_equal(jpeg, plain)
    assert np.corrcoef(jpeg.ravel(), plain.ravel())[0, 1] > 0.9


def test_geometry_changes(test_digits):
    x, y = test_digits
    ones = x[np.flatnonzero(y == 1)[:8]]
    for one in ones:
        plain = page("none", 0, one, np.random.default_rng(0))
        height, width = _box(plain)
        small = page("small", 0.3, one, np.random.default_rng(0))
        assert _box(small)[0] == pytest.approx(0.3 * height, rel=0.2)
        squashed = page("squashed", 0.5, one, np.random.default_rng(0))
        assert _box(squashed)[0] == pytest.approx(height, rel=0.1)
        assert _box(squashed)[1] < width
        wider = [_box(page("stretched", s, one, np.random.default_rng(0)))[1] for s in (0.33, 1.0)]
        assert width < wider[0] < wider[1] and wider[1] > 2 * width  # a 1 grows wide
        turned = page("rotation", 30, one, np.random.default_rng(0))
        change = (_angle(turned) - _angle(plain) + 90) % 180 - 90
        assert abs(change) == pytest.approx(30, abs=6)
        slanted = page("slant", 0.5, one, np.random.default_rng(0))
        assert _angle(slanted) != pytest.approx(_angle(plain), abs=5)


def test_broken_strokes_lose_ink_in_gaps(test_digits):
    x, _ = test_digits
    digits = x[:10]
    plain = _ink(_pages("none", 0, digits)) > 128
    broken = _ink(_pages("broken", 4, digits)) > 128
    assert (broken & ~plain).sum() == 0  # only erased, nothing added
    assert broken.sum() < 0.9 * plain.sum()


def test_the_suite_is_the_same_every_time(test_digits):
    x, y = test_digits
    one = build_suite(x, y, per_change=8, seed=3)
    again = build_suite(x, y, per_change=8, seed=3)
    other = build_suite(x, y, per_change=8, seed=4)
    assert one.entries.keys() == again.entries.keys()
    assert len(one.entries) == 1 + sum(len(s) for _, s in CHANGES.values())
    for key, entry in one.entries.items():
        assert np.array_equal(entry.digits, again.entries[key].digits), key
        assert np.array_equal(entry.sources, again.entries[key].sources)
    assert not np.array_equal(
        one.entries[("noise", 50)].digits, other.entries[("noise", 50)].digits
    )


def test_score_counts_refused_pages_as_wrong(test_digits):
    x, y = test_digits
    suite = build_suite(x, y, per_change=6, seed=0)
    truth = {e.digits[i].tobytes(): e.labels[i] for e in suite.entries.values() for i in range(6)}

    def oracle(digits):
        return np.eye(10)[[truth[d.tobytes()] for d in digits]]

    results = score(suite, oracle)
    assert all(row["accuracy"] == 1.0 for row in results["rows"] if not row["refused"])
    assert results["mean"] <= 1.0 and results["baseline"] == 1.0
    text = table(results)
    assert all(name in text for name in CHANGES)

    digits = np.zeros((2, 28, 28), dtype=np.uint8)
    refused = Suite(
        {
            robustness.BASELINE: Entry(
                digits, np.array([0, 0]), np.array([0, 1]), np.zeros(2, bool)
            ),
            ("blur", 1.0): Entry(
                digits, np.array([0, 0]), np.array([0, 1]), np.array([True, False])
            ),
        },
        seed=0,
    )
    always_zero = lambda d: np.eye(10)[np.zeros(len(d), int)]  # noqa: E731
    results = score(refused, always_zero)
    assert results["worst"] == {"change": "blur", "strength": 1.0, "accuracy": 0.5}
    assert results["rows"][1]["wrong_examples"] == [0]


def test_a_digit_page_does_not_depend_on_the_sample(test_digits):
    x, y = test_digits
    many = build_suite(x[:12], y[:12])  # every digit given, in order
    few = build_suite(x[:5], y[:5])
    for key in (("noise", 50), ("broken", 4), ("rotation", 30)):
        assert np.array_equal(many.entries[key].digits[:5], few.entries[key].digits), key


def test_a_blank_digit_is_changed_without_error():
    blank = np.zeros((28, 28), np.uint8)
    for change, (_, strengths) in CHANGES.items():
        sheet = page(change, strengths[-1], blank, np.random.default_rng(0))
        side = {"box-filled": other_sources.BOX_SIDE, "coarse-binary": 128}
        assert sheet.shape == (side.get(change, robustness.PAGE),) * 2, change
        assert change in ("noise", "jpeg") or (sheet == 255).all(), change  # blank paper


def _aspect(sheet):
    height, width = _box(sheet)
    return width / height


def test_box_filled_stretches_the_digit_to_fill_its_box_edge_to_edge(test_digits):
    x, y = test_digits
    for digit in x[np.flatnonzero(y == 1)[:6]].tolist() + x[:6].tolist():
        digit = np.asarray(digit, np.uint8)
        plain = _aspect(page("none", 0, digit, np.random.default_rng(0)))
        shown = {
            s: page("box-filled", s, digit, np.random.default_rng(0))
            for s in CHANGES["box-filled"][1]
        }
        gaps = [abs(_aspect(sheet) - 1) for sheet in shown.values()]
        assert gaps == sorted(gaps, reverse=True)  # mild to strong: toward the square
        assert gaps[0] < abs(plain - 1) * 0.7 + 0.05 and gaps[-1] < 0.15
        for sheet in shown.values():  # the box is the image: the ink reaches its edges
            assert sheet.shape == (other_sources.BOX_SIDE,) * 2
            assert max(_box(sheet)) >= other_sources.BOX_SIDE - 2
    ones = x[np.flatnonzero(y == 1)[:6]]
    stretched = [_aspect(page("box-filled", 1.0, one, np.random.default_rng(0))) for one in ones]
    plain = [_aspect(page("none", 0, one, np.random.default_rng(0))) for one in ones]
    assert np.mean(plain) < 0.6 and np.mean(stretched) > 0.9  # a 1 as wide as a 0


def test_coarse_binary_is_a_black_and_white_bitmap_of_that_many_pixels(test_digits):
    x, _ = test_digits
    for cells in CHANGES["coarse-binary"][1]:
        for digit in x[:6]:
            sheet = page("coarse-binary", cells, digit, np.random.default_rng(0))
            assert set(np.unique(sheet)) <= {0, 255}  # thresholded: no grey at all
            factor = sheet.shape[0] // cells
            assert sheet.shape == (cells * factor,) * 2
            bitmap = sheet[::factor, ::factor]
            assert np.array_equal(np.kron(bitmap, np.ones((factor, factor))), sheet)
            height, width = _box(sheet)
            assert (cells - 4) * factor <= max(height, width) <= (cells - 2) * factor  # fitted
    # coarser loses more of the thin strokes: at 16 pixels much of a 28-pixel digit's detail
    plain = [to_mnist(page("none", 0, d, np.random.default_rng(0))).image for d in x[:20]]
    error = {}
    for cells in (32, 16):
        read = [
            to_mnist(page("coarse-binary", cells, d, np.random.default_rng(0))).image
            for d in x[:20]
        ]
        error[cells] = np.mean(
            [np.abs(a.astype(float) - b).mean() for a, b in zip(plain, read, strict=True)]
        )
    assert error[16] > error[32] * 1.2


def test_clipped_cuts_that_share_off_one_side(test_digits):
    """The ink within that share of the digit's box from one side is gone; the rest is as
    it was."""
    x, _ = test_digits
    for index, digit in enumerate(x[:12]):
        plain = 255 - page("none", 0, digit, np.random.default_rng(index)).astype(float)
        rows, cols = np.nonzero(plain > 64)
        for share in CHANGES["clipped"][1]:
            cut = 255 - page("clipped", share, digit, np.random.default_rng(index)).astype(float)
            y, x_ = np.mgrid[: plain.shape[0], : plain.shape[1]]
            height, width = rows.max() + 1 - rows.min(), cols.max() + 1 - cols.min()
            bands = {
                "top": y < rows.min() + round(share * height),
                "bottom": y > rows.max() - round(share * height),
                "left": x_ < cols.min() + round(share * width),
                "right": x_ > cols.max() - round(share * width),
            }
            sides = [
                side
                for side, band in bands.items()
                if (cut[band] == 0).all() and np.array_equal(cut[~band], plain[~band])
            ]
            assert sides, (index, share)
            assert plain[bands[sides[0]]].sum() > 0  # it cut ink, not blank paper


def test_blunt_redraws_the_digit_with_a_pen_that_wide(test_digits):
    x, _ = test_digits
    for digit in x[:10]:
        plain = 255.0 - page("none", 0, digit, np.random.default_rng(0))
        height = _box(255 - plain)[0]
        widths = []
        for share in CHANGES["blunt"][1]:
            heavy = 255.0 - page("blunt", share, digit, np.random.default_rng(0))
            widths.append(other_sources.stroke_width(heavy))
            assert widths[-1] == pytest.approx(share * height, rel=0.3)
        assert widths == sorted(widths) and widths[-1] > other_sources.stroke_width(plain) * 1.3


def test_the_suite_is_kept_on_disk_and_read_back(test_digits, tmp_path):
    x, y = test_digits
    x, y = x[:40], y[:40]
    built = robustness.cached_suite(x, y, per_change=6, seed=1, folder=tmp_path)
    (kept,) = tmp_path.glob("suite-*.npz")
    read = robustness.cached_suite(x, y, per_change=6, seed=1, folder=tmp_path)
    assert read.entries.keys() == built.entries.keys()
    for key, entry in built.entries.items():
        assert np.array_equal(read.entries[key].digits, entry.digits), key
        assert np.array_equal(read.entries[key].rejected, entry.rejected), key
        assert np.array_equal(read.entries[key].labels, entry.labels), key
    # a different sample is a different file; a damaged file is drawn again, not trusted
    robustness.cached_suite(x, y, per_change=5, seed=1, folder=tmp_path)
    assert len(list(tmp_path.glob("suite-*.npz"))) == 2
    kept.write_bytes(b"not an npz")
    again = robustness.cached_suite(x, y, per_change=6, seed=1, folder=tmp_path)
    assert np.array_equal(again.entries[("noise", 80)].digits, built.entries[("noise", 80)].digits)
    # a folder that cannot be written costs the rebuild, nothing else
    blocked = tmp_path / "file"
    blocked.write_text("")
    unkept = robustness.cached_suite(x, y, per_change=6, seed=1, folder=blocked / "sub")
    assert np.array_equal(unkept.entries[("thin", 0.5)].digits, built.entries[("thin", 0.5)].digits)


def test_the_table_takes_any_number_of_strengths():
    rows = [
        {"change": "none", "strength": 0, "accuracy": 1.0},
        *({"change": name, "strength": s, "accuracy": 0.5} for name in CHANGES for s in (1, 2)),
    ]
    results = {
        "rows": rows,
        "baseline": 1.0,
        "mean": 0.5,
        "worst": {"change": "blur", "strength": 2, "accuracy": 0.5},
    }
    lines = table(results).splitlines()
    assert all(line.count("|") == lines[0].count("|") for line in lines)
