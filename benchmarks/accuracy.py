"""Accuracy of `best`: three seeds, and the ensemble that averages them.

Each seed trains through the same `train()` as `mnist-cnn train best`; its best epoch is
chosen on the validation split (the last 5% of train), never on the test set, which is
read once per model at the end. The ensemble averages the seeds' probabilities, exactly
as `mnist-cnn train best --ensemble 3` does. Test-time augmentation (the mean over the image
and its four 1-pixel shifts, fixed in advance) is measured on its own, in separate rows.
Prints a Markdown table.

With `--out DIR` the runs are kept in DIR, and a seed whose run there finished with the
same model, epochs and catalogue entry is read back instead of trained again: a benchmark
of an hour or more can be stopped and taken up again, or given more seeds later.

    python benchmarks/accuracy.py [--seeds 1 2 3] [--epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mnist_cnn.backend import import_keras, versions

import_keras()

from mnist_cnn import catalogue, checkpoints, datasets, evaluation, rundir  # noqa: E402
from mnist_cnn.training import TrainConfig, resolve_settings, train  # noqa: E402


def finished_run(out: Path, config: TrainConfig) -> Path | None:
    """A run in `out` that finished training `config` with today's catalogue entry, if any."""
    settings = resolve_settings(config)
    entry = catalogue.get_entry(config.model).describe()
    for run in sorted(out.glob(f"{config.model}-*")):
        if not (run / rundir.METRICS).is_file():
            continue
        recorded = rundir.read_json(run / rundir.CONFIG)
        if recorded["settings"] == settings and recorded["entry"] == entry:
            return run
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--model", default="best")
    parser.add_argument("--epochs", type=int, help="default: the entry's recipe")
    parser.add_argument("--out", type=Path, help="keep the runs here and reuse finished ones")
    args = parser.parse_args()
    _, (x_test, y_test) = datasets.load_dataset("mnist")
    started = time.time()

    rows, probabilities, tta, reused_runs = [], [], [], 0
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        for seed in args.seeds:
            config = TrainConfig(
                model=args.model, seed=seed, epochs=args.epochs, out=out, verbose=0
            )
            run = finished_run(out, config)
            reused = run is not None
            reused_runs += reused
            if not reused:
                run = train(config).run_dir
            metrics = rundir.read_json(run / rundir.METRICS)
            model = rundir.load_model(run)
            probabilities.append(evaluation.predict_probabilities(model, x_test))
            tta.append(evaluation.predict_with_tta(model, x_test))
            accuracy, seconds = metrics["test_accuracy"], metrics["train_seconds"]
            history = rundir.read_history(run / rundir.HISTORY)
            selected = checkpoints.selected_epoch(history)["val_accuracy"]
            rows.append((seed, accuracy, seconds, metrics["epochs"], selected))
            print(
                f"{args.model} seed {seed}: {accuracy:.2%} (validation {selected:.2%}) "
                f"in {seconds:.0f} s{' (finished run reused: ' + run.name + ')' if reused else ''}",
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
        f"{(time.time() - started) / 60:.0f} min in all"
        f"{f' ({reused_runs} finished runs read back)' if reused_runs else ''}.\n"
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
