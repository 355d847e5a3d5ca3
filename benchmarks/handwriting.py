"""The handwriting the tests read, read by whole models: photographed digits, photos on a desk,
in a shadow, on lined and squared paper, one person's felt-pen hand, and numbers.

The same pictures as the tests make (tests/paper.py and tests/test_predict.py, over MNIST
test digits, fixed seeds), but more of them, read through `Classifier` as `predict` reads
files. One Markdown table: a row per kind of picture, a column per model. Run it before and
after a change to the preprocessing (PYTHONPATH=OLD_TREE/src for the code before) to see
that nothing the tests measure got worse.

    python benchmarks/handwriting.py RUN_OR_MODEL [...] [--digits 200] [--split validation]
                                     [--for handwriting]

`--split validation` draws the same kinds of pictures from the validation digits (the last
5% of train, as `benchmarks/robustness.py --split validation`), each kind from its own
`--digits` of them: what a recipe is chosen on, so that the test digits are read once per
finished model.

`RUN+RUN` is an ensemble of those runs (the mean of their probabilities). `--for handwriting`
reads every model a second time as `predict --for handwriting` does (each digit also turned
by `handwriting.TURNS`, the probabilities averaged): a column more each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from paper import (  # noqa: E402
    in_a_hand,
    in_a_shadow,
    on_a_desk,
    on_lined_paper,
    on_squared_paper,
    photograph,
)

from mnist_cnn.backend import import_keras, versions  # noqa: E402

import_keras()

from robustness import TURNED, averaged, classifiers, shown_names  # noqa: E402 (beside)

from mnist_cnn.data import sources  # noqa: E402
from mnist_cnn.inference import handwriting  # noqa: E402
from mnist_cnn.inference.classifier import Classifier  # noqa: E402
from mnist_cnn.training import split_validation  # noqa: E402

NUMBERS = 60  # rows of 2-6 digits
VALIDATION = 0.05  # every catalogue recipe's split that selects


def felt_pen(digit, rng):
    return in_a_hand(digit, rng, scale=4)  # as tests/test_own_digits.py writes it


KINDS = {  # name: (how it is drawn, seed, first test digit)
    "photographed (test_own_digits)": (photograph, 7, 0),
    "on a desk (test_photos)": (on_a_desk, 11, 2000),
    "in a shadow (test_photos)": (in_a_shadow, 11, 4000),
    "lined paper (test_photos)": (on_lined_paper, 11, 6000),
    "squared paper (test_photos)": (on_squared_paper, 11, 8000),
    "felt-pen hand (test_own_digits)": (felt_pen, 3, 1000),
}


def digits(split: str):
    """MNIST as the tests hold it, with the validation digits in the test digits' place."""
    (x_train, y_train), test = sources.load_dataset("mnist")
    if split == "test":
        return (x_train, y_train), test
    return split_validation(x_train, y_train, VALIDATION)


def pictures(mnist, count: int, split: str) -> dict[str, tuple[list, np.ndarray]]:
    """Each kind's pictures and labels: `count` digits from its own first index (the
    kinds one after another, for the 3,000 validation digits)."""
    _, (x_test, y_test) = mnist
    made = {}
    for kind, (name, (render, seed, first)) in enumerate(KINDS.items()):
        rng = np.random.default_rng(seed)
        first = first if split == "test" else kind * count
        picks = range(first, first + count)
        made[name] = ([render(x_test[i], rng) for i in picks], y_test[first : first + count])
    return made


def numbers(folder: Path, mnist) -> dict[str, str]:
    from test_predict import write_numbers  # the test's own numbers, seed 7

    return write_numbers(folder, mnist, NUMBERS)


def reader(model: str) -> Classifier:
    """A Classifier for a run, for `A+B` (the first member's, answering with the members'
    mean probabilities) and for `A --for handwriting` (reading with the turns)."""
    members = classifiers(model, threads=1)
    members[0].probabilities = averaged(members)
    return members[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="run directories or model files")
    parser.add_argument("--digits", type=int, default=200, help="pictures per kind")
    parser.add_argument("--split", choices=("test", "validation"), default="test")
    parser.add_argument(
        "--for",
        dest="purpose",
        choices=handwriting.PURPOSES,
        help="also read each model as predict --for reads it",
    )
    args = parser.parse_args()
    if args.purpose:
        args.models = [m + suffix for m in args.models for suffix in ("", TURNED)]
    import tempfile

    mnist = digits(args.split)
    made = pictures(mnist, args.digits, args.split)
    with tempfile.TemporaryDirectory() as folder:
        truth = numbers(Path(folder), mnist)
        table = {}
        for model in args.models:
            classifier = reader(model)
            for name, (images, labels) in made.items():
                read = classifier.predict_images(images)
                right = sum(
                    p is not None and p.digit == y for (_, p), y in zip(read, labels, strict=True)
                )
                table.setdefault(name, []).append(f"{right / len(labels):.1%}")
            right = sum(
                classifier.predict_number(path, path)["number"] == number
                for path, number in truth.items()
            )
            table.setdefault(f"numbers, whole (test_predict, {NUMBERS})", []).append(
                f"{right / NUMBERS:.1%}"
            )
    info = versions()
    print(
        f"{args.digits} pictures per kind (MNIST {args.split} digits, the tests' seeds); "
        f"{time.strftime('%Y-%m-%d')}; {info['machine']}, {info['cpu_count']} CPU cores; "
        f"Keras {info['keras']} on {info['backend']} {info['backend_version']}\n"
    )
    shown = shown_names(args.models)  # runs trained in the same second share a folder name
    print("| pictures | " + " | ".join(shown[m] for m in args.models) + " |")
    print("| --- |" + " ---: |" * len(args.models))
    for name, cells in table.items():
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
