"""How models hold up on digits as people write them: the robustness suite, side by side.

Every model reads the same suite (`mnist_cnn.robustness`: MNIST test digits changed in
named ways at three strengths, put on a page and read back through `imaging.to_mnist`, the
path `predict` takes). Prints one Markdown table: a column per model, a row per change and
strength, then the unchanged page, the mean over every change and the worst.

    python benchmarks/robustness.py RUN_OR_MODEL [...] [--per-change 500] [--seed 0]
                                    [--split test|validation]

`--split validation` builds the suite from the validation digits (the last 5% of train,
every catalogue recipe's split that selects) instead of the test digits: what a model made
for handwriting is chosen on, so that the test digits are read once per finished model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mnist_cnn.backend import import_keras, versions

import_keras()

from mnist_cnn import datasets, robustness  # noqa: E402
from mnist_cnn.inference import Classifier  # noqa: E402
from mnist_cnn.training import split_validation  # noqa: E402

VALIDATION = 0.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="run directories or model files")
    parser.add_argument("--per-change", type=int, default=500, help="test digits per entry")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("test", "validation"), default="test")
    args = parser.parse_args()
    (x_train, y_train), (x_test, y_test) = datasets.load_dataset("mnist")
    if args.split == "validation":
        _, (x_test, y_test) = split_validation(x_train, y_train, VALIDATION)
    started = time.perf_counter()
    suite = robustness.build_suite(x_test, y_test, args.per_change, args.seed)
    built = time.perf_counter() - started
    results = {}
    for model in args.models:
        classifier = Classifier(model)
        results[Path(model).name] = robustness.score(suite, classifier.probabilities)
    info = versions()
    print(
        f"{info['machine']}, {info['cpu_count']} CPU cores; Keras {info['keras']} on "
        f"{info['backend']}; {args.per_change} {args.split} digits per change and strength (seed "
        f"{args.seed}); the suite took {built:.0f} s to build.\n"
    )
    names = list(results)
    print("| change (strength) | " + " | ".join(f"`{n}`" for n in names) + " |")
    print("| --- |" + " ---: |" * len(names))
    first = results[names[0]]["rows"]
    for index, row in enumerate(first):
        label = (
            "none (the page as it is)"
            if row["change"] == "none"
            else (f"{row['change']} ({row['strength']:g})")
        )
        cells = [f"{results[n]['rows'][index]['accuracy']:.1%}" for n in names]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(
        "| **mean of the changes** | "
        + " | ".join(f"**{results[n]['mean']:.1%}**" for n in names)
        + " |"
    )
    print(
        "| worst | "
        + " | ".join(
            f"{results[n]['worst']['accuracy']:.1%} ({results[n]['worst']['change']} "
            f"{results[n]['worst']['strength']:g})"
            for n in names
        )
        + " |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
