"""Reproduce every catalogue entry with its published settings on real MNIST.

Trains each entry through the same `train()` as `mnist-cnn train`, once per seed, and
prints a Markdown table: parameters, epochs, test accuracy (mean and range over the
seeds) and the median seconds per epoch. A published result is one run; ours is judged
by the mean over the seeds. Never part of the test run.

    python benchmarks/reproduce.py [--seeds 1 2 3 4 5] [--models NAME ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from mnist_cnn.backend import import_keras, versions

import_keras()

from mnist_cnn.models import catalogue  # noqa: E402
from mnist_cnn.training import TrainConfig, train  # noqa: E402

# The bar each tutorial entry must meet: its published result (issue 2).
PUBLISHED_BAR = {
    "conv32-conv64-dropout": 0.989,
    "conv28-dense128": 0.975,
    "conv64-conv32": 0.9815,
    "conv32-conv64-dense128": 0.989,
    "keras-example": 0.991,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--models", nargs="+", default=list(catalogue.ENTRIES))
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args()

    rows = []
    started = time.time()
    with tempfile.TemporaryDirectory() as runs:
        for name in args.models:
            accuracies, epoch_seconds = [], []
            for seed in args.seeds:
                result = train(TrainConfig(model=name, seed=seed, out=runs, verbose=0))
                accuracies.append(result.metrics["test_accuracy"])
                epoch_seconds += [row["seconds"] for row in result.history]
                print(
                    f"{name} seed {seed}: {accuracies[-1]:.2%}, {result.train_seconds:.1f} s fit",
                    file=sys.stderr,
                    flush=True,
                )
            bar = PUBLISHED_BAR.get(name)
            mean = statistics.mean(accuracies)
            verdict = "—" if bar is None else ("yes" if mean >= bar else f"NO ({mean:.3%})")
            rows.append(
                f"| `{name}` | {result.metrics['parameters']:,} | {result.epochs} "
                f"| {mean:.2%} "
                f"| {min(accuracies):.2%}–{max(accuracies):.2%} "
                f"| {catalogue.get_entry(name).published} "
                f"| {'—' if bar is None else f'{bar:.2%}'} | {verdict} "
                f"| {statistics.median(epoch_seconds):.1f} |"
            )

    info = versions()
    lines = [
        f"Seeds {', '.join(map(str, args.seeds))}; {info['machine']} with {info['cpu_count']} "
        f"CPU cores; Keras {info['keras']} on {info['backend']} {info['backend_version']}; "
        f"{(time.time() - started) / 60:.0f} min in all.",
        "",
        "| model | parameters | epochs | test accuracy (mean) | range | published "
        "| bar | mean ≥ bar | s/epoch (median) |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | :---: | ---: |",
        *rows,
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
