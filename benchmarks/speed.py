"""Time to 99% on the CPU: `fast` against the keras.io example, in one run on one machine.

Trains `fast` (5 seeds) and `keras-example` (3 seeds) through the same `train()` as
`mnist-cnn train`. For keras-example, a callback reads the test accuracy after every
epoch (outside the timed epoch, and only to measure: nothing is selected with it) to find
the first epoch at 99.0% and the fit seconds up to then. Prints a Markdown table.

    python benchmarks/speed.py [--fast-seeds 1 2 3 4 5] [--example-seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from mnist_cnn.backend import import_keras, versions

keras = import_keras()

from mnist_cnn import datasets, evaluation  # noqa: E402
from mnist_cnn.training import TrainConfig, train  # noqa: E402

TARGET = 0.99


class TestAccuracyWatch(keras.callbacks.Callback):
    """Records test accuracy after each epoch; runs after the history callback has timed it."""

    def __init__(self, x_test, y_test):
        super().__init__()
        self.x_test, self.y_test = x_test, y_test
        self.accuracy: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        probabilities = evaluation.predict_probabilities(self.model, self.x_test)
        self.accuracy.append(float((probabilities.argmax(1) == self.y_test).mean()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast-seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--example-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--fast-model", default="fast")
    args = parser.parse_args()
    _, (x_test, y_test) = datasets.load_dataset("mnist")
    started = time.time()

    with tempfile.TemporaryDirectory() as runs:
        fast = []
        for seed in args.fast_seeds:
            result = train(TrainConfig(model=args.fast_model, seed=seed, out=runs, verbose=0))
            fast.append((result.metrics["test_accuracy"], result.train_seconds))
            print(
                f"{args.fast_model} seed {seed}: {fast[-1][0]:.2%} in {fast[-1][1]:.2f} s",
                file=sys.stderr,
                flush=True,
            )

        example = []
        for seed in args.example_seeds:
            watch = TestAccuracyWatch(x_test, y_test)
            result = train(
                TrainConfig(model="keras-example", seed=seed, out=runs, verbose=0),
                callbacks=[watch],
            )
            epoch_seconds = [row["seconds"] for row in result.history]
            reached = next((i for i, a in enumerate(watch.accuracy) if a >= TARGET), None)
            to_target = None if reached is None else sum(epoch_seconds[: reached + 1])
            example.append(
                (
                    result.metrics["test_accuracy"],
                    sum(epoch_seconds),
                    None if reached is None else reached + 1,
                    to_target,
                )
            )
            print(
                f"keras-example seed {seed}: {example[-1][0]:.2%}, per epoch "
                f"{[f'{a:.4f}' for a in watch.accuracy]}",
                file=sys.stderr,
                flush=True,
            )

    fast_acc = [a for a, _ in fast]
    fast_median = statistics.median(s for _, s in fast)
    ex_acc = [e[0] for e in example]
    reached = [e for e in example if e[2] is not None]
    ex_to_target = statistics.median(e[3] for e in reached) if reached else None
    ex_epoch = statistics.median(e[2] for e in reached) if reached else None
    info = versions()
    print(
        f"{info['machine']}, {info['cpu_count']} CPU cores; Keras {info['keras']} on "
        f"{info['backend']} {info['backend_version']}; {args.fast_model} seeds "
        f"{args.fast_seeds}, keras-example seeds {args.example_seeds}; "
        f"{(time.time() - started) / 60:.0f} min in all.\n"
    )
    print(
        "| model | runs | mean test acc | min test acc | median fit s (to finish) "
        "| first epoch ≥ 99.0% | fit s to 99.0% (median) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| `{args.fast_model}` | {len(fast)} | {statistics.mean(fast_acc):.2%} "
        f"| {min(fast_acc):.2%} | {fast_median:.2f} | — | — |"
    )
    print(
        f"| `keras-example` | {len(example)} | {statistics.mean(ex_acc):.2%} | {min(ex_acc):.2%} "
        f"| {statistics.median(e[1] for e in example):.2f} "
        f"| {'never' if ex_epoch is None else f'{ex_epoch:g}'} "
        f"| {'—' if ex_to_target is None else f'{ex_to_target:.2f}'} |"
    )
    if ex_to_target:
        print(
            f"\nRatio of `{args.fast_model}`'s median fit time to keras-example's time to 99.0%: "
            f"**{fast_median / ex_to_target:.3f}** ({len(reached)} of {len(example)} "
            f"keras-example runs reached 99.0%)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
