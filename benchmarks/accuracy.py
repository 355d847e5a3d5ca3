"""Accuracy of `best`: three seeds, and the ensemble that averages them.

Each seed trains through the same `train()` as `mnist-cnn train best`; its best epoch is
chosen on the validation split (the last 5% of train), never on the test set, which is
read once per model at the end. The ensemble averages the seeds' probabilities, exactly
as `mnist-cnn train best --ensemble 3` does. Test-time augmentation (the mean over the image
and its four 1-pixel shifts, fixed in advance) is measured on its own, in separate rows.
Prints a Markdown table.

    python benchmarks/accuracy.py [--seeds 1 2 3] [--epochs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np

from mnist_cnn.backend import import_keras, versions

import_keras()

from mnist_cnn import datasets, evaluation, rundir  # noqa: E402
from mnist_cnn.training import TrainConfig, train  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--model", default="best")
    parser.add_argument("--epochs", type=int, help="default: the entry's recipe")
    args = parser.parse_args()
    _, (x_test, y_test) = datasets.load_dataset("mnist")
    started = time.time()

    rows, probabilities, tta = [], [], []
    with tempfile.TemporaryDirectory() as runs:
        for seed in args.seeds:
            config = TrainConfig(
                model=args.model, seed=seed, epochs=args.epochs, out=runs, verbose=0
            )
            result = train(config)
            model = rundir.load_model(result.run_dir)
            probabilities.append(evaluation.predict_probabilities(model, x_test))
            tta.append(evaluation.predict_with_tta(model, x_test))
            accuracy = result.metrics["test_accuracy"]
            selected = max(float(row["val_accuracy"]) for row in result.history)
            rows.append((seed, accuracy, result.train_seconds, result.epochs, selected))
            print(
                f"{args.model} seed {seed}: {accuracy:.2%} (validation {selected:.2%}) "
                f"in {result.train_seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    def accuracy_of(p: np.ndarray) -> float:
        return float((p.argmax(1) == y_test).mean())

    ensemble = accuracy_of(np.mean(probabilities, axis=0))
    accuracies = [r[1] for r in rows]
    tta_accuracies = [accuracy_of(p) for p in tta]
    info = versions()
    print(
        f"{info['machine']}, {info['cpu_count']} CPU cores; Keras {info['keras']} on "
        f"{info['backend']} {info['backend_version']}; "
        f"{(time.time() - started) / 60:.0f} min in all.\n"
    )
    print("| model | seed | epochs | validation (selected epoch) | test accuracy | fit s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for seed, accuracy, seconds, epochs, selected in rows:
        print(
            f"| `{args.model}` | {seed} | {epochs} | {selected:.2%} | {accuracy:.2%} "
            f"| {seconds:.0f} |"
        )
    print(
        f"| **mean ± sd** | {len(rows)} seeds | | "
        f"{statistics.mean(r[4] for r in rows):.2%} | **{_mean_sd(accuracies)}** "
        f"| {sum(r[2] for r in rows):.0f} in all |"
    )
    print(
        f"| **ensemble** (mean of the {len(rows)} seeds' probabilities) | | | | "
        f"**{ensemble:.2%}** | |"
    )
    print(f"| with TTA, each seed | | | | {_mean_sd(tta_accuracies)} | |")
    print(f"| with TTA, ensemble | | | | {accuracy_of(np.mean(tta, axis=0)):.2%} | |")
    return 0


def _mean_sd(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2%} ± {spread:.2%}"


if __name__ == "__main__":
    sys.exit(main())
