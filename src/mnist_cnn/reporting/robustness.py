"""Digits as people write them: MNIST test digits changed in named, controlled ways, each
at several strengths, put on a page and read back through `imaging.to_mnist`.

MNIST's test set is clean, centred and written with one kind of pen; people's digits are
slanted, squashed, thick or thin, small on the page, faint, broken or compressed, and other
collections' scanners stretch them to fill a box, keep them as coarse black-and-white
bitmaps, cut them off at a box's edge or get them from heavy, blunt pens. Each
change is drawn at 4x resolution (so stroke width changes by fractions of an MNIST pixel),
rendered as dark ink on light paper, and goes through the same preprocessing `predict`
uses, so that the preprocessing is part of what is measured. Every random choice comes
from the digit's own generator, seeded by (seed, change, strength, digit): the suite is the
same on every run, and a digit's page does not depend on which others are in the sample.
The suite depends on the digits, the sample and this code, never on the model, so it is
built once per machine and kept (`cached_suite`). No Keras here: `score` takes any
function from digits to probabilities.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from mnist_cnn.atomic import atomic_write
from mnist_cnn.data import imaging, photos
from mnist_cnn.data.datasets import DEFAULT_CACHE
from mnist_cnn.data.imaging import ImageError, to_mnist
from mnist_cnn.reporting import other_sources

UP = 4  # the digit is changed at 4x its 28x28 pixels
PAGE = 160  # pixels of paper around it
BASELINE = ("none", 0)
REPORT_PER_CHANGE = 100  # the report's sample: 100 pages per entry, built once per machine
CACHE = DEFAULT_CACHE / "robustness"

# change -> (what it does, its strengths from mild to strong)
CHANGES: dict[str, tuple[str, tuple]] = {
    "rotation": ("turned by this many degrees, either way", (15, 30, 45)),
    "slant": ("sheared: x moves by this much per unit of height", (0.25, 0.5, 0.75)),
    "small": ("drawn at this share of its size on the same page", (0.5, 0.3, 0.2)),
    "large": ("drawn larger, until its box spans this share of the page", (0.8, 0.95, 1.0)),
    "squashed": ("its width kept at this share, its height whole", (0.7, 0.5, 0.35)),
    "stretched": ("stretched this far toward filling a square box", (0.33, 0.67, 1.0)),
    "thick": ("strokes widened by this many MNIST pixels on each side", (0.5, 1.0, 1.5)),
    "thin": ("strokes narrowed by this many MNIST pixels on each side", (0.25, 0.5, 0.75)),
    "blur": ("Gaussian blur of this sigma, in MNIST pixels", (0.75, 1.25, 2.0)),
    "noise": ("Gaussian noise of this deviation (of 255) on the page, clipped", (25, 50, 80)),
    "broken": ("this many gaps cut across the strokes", (2, 4, 6)),
    "faint": ("ink at this share of full contrast against the paper", (0.5, 0.3, 0.2)),
    "jpeg": ("saved as JPEG at this quality", (30, 15, 8)),
    # As collections other than MNIST hand digits over (other_sources.py):
    "box-filled": (
        "stretched this far toward filling its square box, the box edge to edge",
        (0.5, 0.75, 1.0),
    ),
    "coarse-binary": ("scanned black and white at this many pixels square, enlarged", (32, 24, 16)),
    "clipped": ("this share of the digit cut off at one side", (0.1, 0.2, 0.3)),
    "blunt": ("redrawn with a round pen this share of its height wide", (0.15, 0.2, 0.25)),
}
NAMES = tuple(CHANGES)
SCANNED = {"box-filled": other_sources.box_filled, "coarse-binary": other_sources.coarse_binary}


def _high(digit: np.ndarray) -> np.ndarray:
    """The 28x28 MNIST digit (white on black) at 4x, as float ink 0..255."""
    image = Image.fromarray(np.asarray(digit, dtype=np.uint8), "L")
    return np.asarray(image.resize((28 * UP, 28 * UP), Image.BICUBIC), dtype=np.float64)


def _affine(ink: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Ink moved by a 2x2 matrix about its centre (row, column order)."""
    centre = (np.array(ink.shape) - 1) / 2
    inverse = np.linalg.inv(matrix)
    offset = centre - inverse @ centre
    return ndimage.affine_transform(ink, inverse, offset=offset, order=1, cval=0.0)


def _changed_ink(change: str, strength, ink: np.ndarray, rng) -> np.ndarray:
    """The geometric and stroke changes, on the 4x ink (white on black)."""
    if change == "rotation":
        angle = np.radians(strength) * rng.choice((-1, 1))
        cos, sin = np.cos(angle), np.sin(angle)
        return _affine(ink, np.array([[cos, -sin], [sin, cos]]))
    if change == "slant":
        return _affine(ink, np.array([[1.0, 0.0], [-strength, 1.0]]))  # columns move with rows
    if change == "squashed":
        return _affine(ink, np.array([[1.0, 0.0], [0.0, strength]]))
    if change == "stretched":
        box = other_sources.ink_box(ink)
        if box is None:
            return ink  # nothing to stretch
        rows, cols = box
        height, width = rows.stop - rows.start, cols.stop - cols.start
        target = max(height, width)
        scale = [1 + strength * (target / height - 1), 1 + strength * (target / width - 1)]
        crop = ink[rows, cols]
        grown = ndimage.zoom(crop, scale, order=1)
        out = np.zeros((max(ink.shape[0], grown.shape[0]),) * 2)
        top, left = (out.shape[0] - grown.shape[0]) // 2, (out.shape[1] - grown.shape[1]) // 2
        out[top : top + grown.shape[0], left : left + grown.shape[1]] = grown
        return out
    if change == "thick":
        return ndimage.grey_dilation(ink, footprint=other_sources.disk(strength * UP))
    if change == "thin":
        return ndimage.grey_erosion(ink, footprint=other_sources.disk(strength * UP))
    if change == "blur":
        return ndimage.gaussian_filter(ink, strength * UP)
    if change == "clipped":
        return other_sources.clipped(ink, strength, rng)
    if change == "blunt":
        return other_sources.blunt(ink, strength)
    if change == "broken":
        cut = ink.copy()
        rows, cols = np.nonzero(ink > 128)
        for pick in rng.choice(len(rows), size=min(strength, len(rows)), replace=False):
            y, x = np.mgrid[: ink.shape[0], : ink.shape[1]]
            cut[(y - rows[pick]) ** 2 + (x - cols[pick]) ** 2 <= (1.5 * UP) ** 2] = 0
        return cut
    return ink


def page(change: str, strength, digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One MNIST digit as a person would hand it over, changed: dark ink on light paper
    (uint8, PAGE x PAGE), before any preprocessing."""
    if change not in CHANGES and change != BASELINE[0]:
        raise ValueError(f"unknown change {change!r}; the changes are {', '.join(NAMES)}")
    if change in SCANNED:  # the scanner's own sheet: the box or the bitmap, no page around
        return SCANNED[change](_high(digit), strength)
    ink = np.clip(_changed_ink(change, strength, _high(digit), rng), 0, 255)
    if change == "small":
        ink = ndimage.zoom(ink, strength, order=1)
    if change == "large" and (found := other_sources.ink_box(ink)) is not None:
        box = ink[found]
        ink = ndimage.zoom(box, strength * PAGE / max(box.shape), order=1)
    paper = np.zeros((PAGE, PAGE))
    height, width = min(PAGE, ink.shape[0]), min(PAGE, ink.shape[1])
    top, left = (ink.shape[0] - height) // 2, (ink.shape[1] - width) // 2
    ink = ink[top : top + height, left : left + width]
    top, left = (PAGE - height) // 2, (PAGE - width) // 2
    paper[top : top + height, left : left + width] = ink
    contrast = strength if change == "faint" else 1.0
    sheet = 255.0 - contrast * paper
    if change == "noise":
        sheet = sheet + rng.normal(0, strength, sheet.shape)
    sheet = np.clip(np.rint(sheet), 0, 255).astype(np.uint8)
    if change == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(sheet, "L").save(buffer, format="JPEG", quality=int(strength))
        sheet = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"))
    return sheet


@dataclass
class Entry:
    """One change at one strength: the digits as the model sees them (N, 28, 28), their
    labels, which test digits they came from, and which pages `to_mnist` refused."""

    digits: np.ndarray
    labels: np.ndarray
    sources: np.ndarray
    rejected: np.ndarray


@dataclass
class Suite:
    entries: dict[tuple[str, float], Entry]
    seed: int


def _plan() -> list[tuple[tuple[str, float], int]]:
    """Every (change, strength) in order, the unchanged page first, with the change's index."""
    return [(BASELINE, 0)] + [
        ((name, strength), index)
        for index, name in enumerate(NAMES, start=1)
        for strength in CHANGES[name][1]
    ]


def _sample(count: int, per_change: int | None, seed: int) -> np.ndarray:
    size = count if per_change is None else min(per_change, count)
    return np.sort(np.random.default_rng(seed).choice(count, size, replace=False))


def build_suite(
    images: np.ndarray, labels: np.ndarray, per_change: int | None = None, seed: int = 0
) -> Suite:
    """Every change at every strength (and the unchanged page, "none"), on the same
    `per_change` digits (a seeded sample; all given digits if None)."""
    sources = _sample(len(images), per_change, seed)
    entries = {}
    for (name, strength), index in _plan():
        digits = np.zeros((len(sources), 28, 28), dtype=np.uint8)
        rejected = np.zeros(len(sources), dtype=bool)
        for row, source in enumerate(sources):
            rng = np.random.default_rng([seed, index, round(float(strength) * 100), int(source)])
            sheet = page(name, strength, images[source], rng)
            try:
                digits[row] = to_mnist(sheet, name=f"{name} {strength}").image
            except ImageError:
                rejected[row] = True  # counted as wrong: the reader could not find a digit
        entries[(name, strength)] = Entry(digits, labels[sources], sources, rejected)
    return Suite(entries, seed)


def _key(images: np.ndarray, labels: np.ndarray, per_change: int | None, seed: int) -> str:
    """What the suite depends on: the digits, the sample, the seed, and the code that draws
    and reads the pages (this module, imaging.py and the photos.py it reads paper with)."""
    digest = hashlib.sha256(f"{per_change}:{seed}:".encode())
    for part in (images, labels):
        digest.update(np.ascontiguousarray(part).tobytes())
    for module in (__file__, other_sources.__file__, imaging.__file__, photos.__file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:24]


def cached_suite(
    images: np.ndarray,
    labels: np.ndarray,
    per_change: int | None = REPORT_PER_CHANGE,
    seed: int = 0,
    folder: str | Path = CACHE,
) -> Suite:
    """`build_suite`, kept in `folder`: 4,000 pages take seconds to draw and read, and every
    report measures the same ones. A folder that cannot be written only costs the rebuild."""
    path = Path(folder) / f"suite-{_key(images, labels, per_change, seed)}.npz"
    try:
        with np.load(path) as stored:
            digits, rejected, sources = stored["digits"], stored["rejected"], stored["sources"]
        return Suite(
            {
                key: Entry(digits[i], labels[sources], sources, rejected[i])
                for i, (key, _) in enumerate(_plan())
            },
            seed,
        )
    except (OSError, KeyError, ValueError, IndexError):
        pass
    logging.getLogger(__name__).info(
        f"building the robustness suite (once per machine, kept in {folder}) ..."
    )
    suite = build_suite(images, labels, per_change, seed)
    entries = list(suite.entries.values())
    arrays = {
        "digits": np.stack([entry.digits for entry in entries]),
        "rejected": np.stack([entry.rejected for entry in entries]),
        "sources": entries[0].sources,
    }
    try:
        atomic_write(path, lambda tmp: np.savez(tmp, **arrays))
    except OSError:
        pass
    return suite


def score(suite: Suite, probabilities: Callable[[np.ndarray], np.ndarray], examples=4) -> dict:
    """Accuracy per change and strength (refused pages are wrong), the mean over every
    changed entry, the worst, and a few examples of each change's mistakes (indices into
    the entry): digits the unchanged page got right, so the change caused them."""
    rows = []
    entries = suite.entries.items()
    answers = np.asarray(probabilities(np.concatenate([e.digits for _, e in entries])))
    ends = np.cumsum([len(entry.digits) for _, entry in entries])
    plain_right = set()
    for ((name, strength), entry), end in zip(entries, ends, strict=True):
        predicted = answers[end - len(entry.digits) : end].argmax(axis=1)  # one call for all
        right = (predicted == entry.labels) & ~entry.rejected
        if (name, strength) == BASELINE:
            plain_right = set(entry.sources[right].tolist())
        wrong = np.flatnonzero(~right)
        if (name, strength) != BASELINE:
            wrong = wrong[[s in plain_right for s in entry.sources[wrong].tolist()]]
        rows.append(
            {
                "change": name,
                "strength": strength,
                "accuracy": float(right.mean()),
                "digits": int(len(right)),
                "refused": int(entry.rejected.sum()),
                "wrong_examples": wrong[:examples].tolist(),
                "predicted_examples": predicted[wrong[:examples]].tolist(),
            }
        )
    changed = [row for row in rows if row["change"] != BASELINE[0]]
    worst = min(changed, key=lambda row: row["accuracy"])
    return {
        "seed": suite.seed,
        "per_change": rows[0]["digits"],
        "rows": rows,
        "baseline": next(row["accuracy"] for row in rows if row["change"] == BASELINE[0]),
        "mean": float(np.mean([row["accuracy"] for row in changed])),
        "worst": {key: worst[key] for key in ("change", "strength", "accuracy")},
    }


def table(results: dict) -> str:
    """The results as a Markdown table: one row per change, its strengths mild to strong."""
    columns = max(len(CHANGES[name][1]) for name in NAMES)
    blanks = " |" * (columns - 1)
    heads = ["mild", "middle", "strong"] if columns == 3 else range(1, columns + 1)
    lines = [
        "| change |" + "".join(f" {head} |" for head in heads),
        "| --- |" + " ---: |" * columns,
        f"| none (the page as it is) | {results['baseline']:.1%} |{blanks}",
    ]
    for name in NAMES:
        cells = [
            f"{row['accuracy']:.1%} ({row['strength']:g})"
            for row in results["rows"]
            if row["change"] == name
        ]
        cells += [""] * (columns - len(cells))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    worst = results["worst"]
    lines.append(f"| **mean of the changes** | **{results['mean']:.1%}** |{blanks}")
    lines.append(
        f"| worst | {worst['accuracy']:.1%} ({worst['change']} {worst['strength']:g}) |{blanks}"
    )
    return "\n".join(lines)
