"""Accuracy of `best`: three seeds, and the ensemble that averages them.

Each seed trains through the same `train()` as `mnist-cnn train best`; its best epoch is
chosen on the validation split (the last 5% of train), never on the test set, which is
read once per model at the end. The ensemble averages the seeds' probabilities, exactly
as `mnist-cnn train best --ensemble 3` does. Prints a Markdown table.

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

    rows, probabilities = [], []
    with tempfile.TemporaryDirectory() as runs:
        for seed in args.seeds:
            config = TrainConfig(
                model=args.model, seed=seed, epochs=args.epochs, out=runs, verbose=0
            )
            result = train(config)
            model = rundir.load_model(result.run_dir)
            probabilities.append(evaluation.predict_probabilities(model, x_test))
            accuracy = result.metrics["test_accuracy"]
            rows.append((seed, accuracy, result.train_seconds, result.epochs))
            print(
                f"{args.model} seed {seed}: {accuracy:.2%} in {result.train_seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    ensemble = float((np.mean(probabilities, axis=0).argmax(1) == y_test).mean())
    accuracies = [r[1] for r in rows]
    info = versions()
    print(
        f"{info['machine']}, {info['cpu_count']} CPU cores; Keras {info['keras']} on "
        f"{info['backend']} {info['backend_version']}; "
        f"{(time.time() - started) / 60:.0f} min in all.\n"
    )
    print("| model | seed | epochs | test accuracy | fit s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for seed, accuracy, seconds, epochs in rows:
        print(f"| `{args.model}` | {seed} | {epochs} | {accuracy:.2%} | {seconds:.0f} |")
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print(
        f"| **mean ± sd** | {len(rows)} seeds | | **{statistics.mean(accuracies):.2%} "
        f"± {spread:.2%}** | {sum(r[2] for r in rows):.0f} in all |"
    )
    print(
        f"| **ensemble** (mean of the {len(rows)} seeds' probabilities) | | | "
        f"**{ensemble:.2%}** | |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
