"""Which preprocessing reads scans from other collections best: chosen on validation digits.

A box-filled digit (stretched to fill its box) can be read as it comes, or brought back to a
width of its height (`imaging.BOX_FILLED_WIDTH`); a coarse black-and-white bitmap as it
comes, or blurred by a share of its cells first (`imaging.BINARY_SMOOTHING`). Each choice is
measured on the robustness suite's pages of those changes, drawn from the validation digits
(the last 5% of train, never the test set), read through `to_mnist` under that choice, and
on the unchanged and `large` pages, which must not change. Prints one Markdown table: a row
per choice, a column per model and change (mean over its three strengths).

    python benchmarks/preprocessing.py RUN_OR_MODEL [...] [--per-change 300] [--seed 0]
                                       [--only box-filled|bitmap]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mnist_cnn.backend import import_keras

import_keras()

from mnist_cnn.data import imaging, sources  # noqa: E402
from mnist_cnn.data.imaging import ImageError, to_mnist  # noqa: E402
from mnist_cnn.inference.classifier import Classifier  # noqa: E402
from mnist_cnn.reporting import robustness  # noqa: E402
from mnist_cnn.training import split_validation  # noqa: E402

VALIDATION = 0.05
CHOICES = {  # name -> (imaging constant, value)
    "as they come": {},
    "box-filled to 0.9 wide": {"BOX_FILLED_WIDTH": 0.9},
    "box-filled to 0.8 wide": {"BOX_FILLED_WIDTH": 0.8},
    "box-filled to 0.7 wide": {"BOX_FILLED_WIDTH": 0.7},
    "bitmap blurred 0.25 cell": {"BINARY_SMOOTHING": 0.25},
    "bitmap blurred 0.5 cell": {"BINARY_SMOOTHING": 0.5},
    "bitmap blurred 1 cell": {"BINARY_SMOOTHING": 1.0},
}
CHANGES = ("box-filled", "coarse-binary", "none", "large")


def read(change: str, images, labels, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every strength's pages of one change, read under the current choice: digits, labels
    (a page with no digit found gets label -1: wrong whatever the model says)."""
    strengths = robustness.CHANGES[change][1] if change != "none" else (0,)
    digits, truth = [], []
    for strength in strengths:
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            rng = np.random.default_rng([seed, round(float(strength) * 100), index])
            try:
                digits.append(to_mnist(robustness.page(change, strength, image, rng)).image)
                truth.append(label)
            except ImageError:
                digits.append(np.zeros((28, 28), np.uint8))
                truth.append(-1)
    return np.stack(digits), np.array(truth)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="run directories or model files")
    parser.add_argument("--per-change", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="the choices whose names start so")
    args = parser.parse_args()
    (x_train, y_train), _ = sources.load_dataset("mnist")
    _, (x_val, y_val) = split_validation(x_train, y_train, VALIDATION)
    pick = np.sort(np.random.default_rng(args.seed).choice(len(x_val), args.per_change, False))
    images, labels = x_val[pick], y_val[pick]
    models = {Path(m).name: Classifier(m) for m in args.models}
    defaults = {key: getattr(imaging, key) for key in ("BOX_FILLED_WIDTH", "BINARY_SMOOTHING")}
    print(
        f"{args.per_change} validation digits (seed {args.seed}) per change and strength; "
        "accuracy, mean over the change's strengths\n"
    )
    heads = [f"`{m}` {c}" for m in models for c in CHANGES]
    print("| choice | " + " | ".join(heads) + " |")
    print("| --- |" + " ---: |" * len(heads))
    for choice, values in CHOICES.items():
        if not choice.startswith(args.only) and choice != "as they come":
            continue
        for key, value in {**defaults, **values}.items():
            setattr(imaging, key, value)
        pages = {change: read(change, images, labels, args.seed) for change in CHANGES}
        cells = []
        for classifier in models.values():
            for digits, truth in pages.values():
                predicted = classifier.probabilities(digits).argmax(axis=1)
                cells.append(f"{np.mean(predicted == truth):.2%}")
        print(f"| {choice} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
