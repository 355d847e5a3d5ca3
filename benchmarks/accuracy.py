"""Accuracy of `best`: three seeds, and the ensemble `train best --ensemble 3` makes.

Each model trains through the same `train()` as `mnist-cnn train NAME`; its epoch is chosen
on the validation split (the last 5% of train), never on the test set, which is read once
per model at the end. The ensemble averages its members' probabilities, exactly as
`mnist-cnn train best --ensemble K --seed S` does: member i is trained with seed S + i, the
same model a single run with that seed trains, so the members are trained (or read back)
as single runs. `--members` also measures an ensemble of different networks, one per seed
(the README's `--members best best-k7 best-pool`). Test-time augmentation (the mean over
the image and its four 1-pixel shifts, fixed in advance) is measured on its own, in
separate rows. Prints a Markdown table.

`--frontier` prints instead what each entry buys for its fit: a row per entry or ensemble
(`fast=1,2,3 best=1 best*3=1`) with its epochs, seeds, fit in seconds and as a multiple of
`fast`'s and `best`'s in the same run, and the test accuracy's mean, min and max over seeds.

With `--out DIR` the runs are kept in DIR, and a run there that finished the same network
(name, summary) with the same settings (every field of the recipe, as resolved) is read
back instead of trained again: a benchmark of an hour or more can be stopped and taken up
again, or given more seeds later.

    python benchmarks/accuracy.py [--seeds 1 2 3] [--members NAME ...] [--epochs N] [--out DIR]
    python benchmarks/accuracy.py --frontier fast=1,2,3 best=1 [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cnn.backend import import_keras, versions

import_keras()

from mnist_cnn import evaluation, rundir  # noqa: E402
from mnist_cnn.data import sources  # noqa: E402
from mnist_cnn.models import catalogue, loading  # noqa: E402
from mnist_cnn.models.settings import added_later  # noqa: E402
from mnist_cnn.training import TrainConfig, callbacks, resolve_settings, train  # noqa: E402

# With the settings (the recipe as resolved, every field of it), what decides how a run
# trains; the prose of an entry (source, published, notes) does not, nor the recipe's own
# defaults: `--epochs 60` under a 40-epoch recipe trains what a 60-epoch recipe trains.
TRAINED_BY = ("name", "summary")


@dataclass
class Measured:
    model: str
    seed: int
    epochs: int
    validation: float  # the validation accuracy of the selected epoch
    test: float
    seconds: float
    probabilities: np.ndarray
    tta: np.ndarray
    reused: bool


def finished_run(out: Path, config: TrainConfig) -> Path | None:
    """A run in `out` that finished training `config` the way today's catalogue would."""
    settings = resolve_settings(config)
    entry = catalogue.get_entry(config.model).describe()
    for run in sorted(out.glob(f"{config.model}-*")):
        if not (run / rundir.METRICS).is_file():
            continue
        recorded = rundir.read_json(run / rundir.CONFIG)
        older = added_later(recorded["settings"])  # fields it predates, as it trained them
        if {**recorded["settings"], **older} == settings and all(
            recorded["entry"].get(key) == entry[key] for key in TRAINED_BY
        ):
            return run
    return None


def measure(model: str, seed: int, epochs: int | None, out: Path, x_test) -> Measured:
    """Train one model (or read back its finished run) and predict the test set once."""
    config = TrainConfig(model=model, seed=seed, epochs=epochs, out=out, verbose=0)
    run = finished_run(out, config)
    reused = run is not None
    if not reused:
        run = train(config).run_dir
    metrics = rundir.read_json(run / rundir.METRICS)
    network = loading.load_model(run)
    history = rundir.read_history(run / rundir.HISTORY)
    measured = Measured(
        model=model,
        seed=seed,
        epochs=metrics["epochs"],
        validation=callbacks.selected_epoch(history)["val_accuracy"],
        test=metrics["test_accuracy"],
        seconds=metrics["train_seconds"],
        probabilities=evaluation.predict_probabilities(network, x_test),
        tta=evaluation.predict_with_tta(network, x_test),
        reused=reused,
    )
    note = f" (finished run reused: {run.name})" if reused else ""
    print(
        f"{model} seed {seed}: {measured.test:.2%} (validation {measured.validation:.2%}) "
        f"in {measured.seconds:.0f} s{note}",
        file=sys.stderr,
        flush=True,
    )
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--model", default="best")
    parser.add_argument(
        "--members", nargs="+", help="the ensemble's networks, one per seed (default: --model)"
    )
    parser.add_argument("--epochs", type=int, help="default: the entry's recipe")
    parser.add_argument("--out", type=Path, help="keep the runs here and reuse finished ones")
    parser.add_argument(
        "--frontier",
        nargs="+",
        type=Wanted.parse,
        metavar="NAME=SEEDS",
        help="instead: a row per entry (fast=1,2,3) or ensemble (best*3=1): fit and accuracy",
    )
    args = parser.parse_args()
    if args.frontier:
        return _print_frontier(args.frontier, args.out)
    wanted = [(args.model, seed) for seed in args.seeds]
    if args.members and len(args.members) != len(args.seeds):
        parser.error(f"--members names {len(args.members)} networks for {len(args.seeds)} seeds")
    mixed = list(zip(args.members, args.seeds, strict=True)) if args.members else []
    for name, _ in mixed:
        catalogue.get_entry(name)  # an unknown name fails now, not after an hour of training
    _, (x_test, y_test) = sources.load_dataset("mnist")
    started = time.time()

    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        done: dict[tuple[str, int], Measured] = {}
        for key in dict.fromkeys(wanted + mixed):  # each (network, seed) once, in order
            done[key] = measure(*key, args.epochs, out, x_test)

    def accuracy_of(p: np.ndarray) -> float:
        return float((p.argmax(1) == y_test).mean())

    def ensemble_accuracy(keys, field="probabilities") -> float:
        return accuracy_of(np.mean([getattr(done[k], field) for k in keys], axis=0))

    singles = [done[key] for key in wanted]
    print(_header(started, sum(m.reused for m in done.values())) + "\n")
    print("| model | seed | epochs | validation (selected epoch) | test accuracy | fit s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for m in singles:
        print(_row(m))
    print(
        f"| **mean ± sd** | {len(singles)} seeds | | "
        f"{statistics.mean(m.validation for m in singles):.2%} | "
        f"**{_mean_sd([m.test for m in singles])}** "
        f"| {sum(m.seconds for m in singles):.0f} in all |"
    )
    consecutive = args.seeds == list(range(args.seeds[0], args.seeds[0] + len(args.seeds)))
    command = f"`train {args.model} --ensemble {len(wanted)} --seed {args.seeds[0]}`"
    print(
        f"| **ensemble** (mean of the {len(wanted)} seeds' probabilities"
        f"{', as ' + command if consecutive else ''}) | | | | "
        f"**{ensemble_accuracy(wanted):.2%}** | |"
    )
    print(f"| with TTA, each seed | | | | {_mean_sd([accuracy_of(m.tta) for m in singles])} | |")
    print(f"| with TTA, ensemble | | | | {ensemble_accuracy(wanted, 'tta'):.2%} | |")
    if mixed:
        for key in mixed:
            if key not in wanted:
                print(_row(done[key]))
        names = ", ".join(f"`{name}` {seed}" for name, seed in mixed)
        print(
            f"| ensemble of different networks ({names}) | | | | {ensemble_accuracy(mixed):.2%} | |"
        )
        print(f"| with TTA, that ensemble | | | | {ensemble_accuracy(mixed, 'tta'):.2%} | |")
    return 0


# --- the frontier: each entry's accuracy against its fit, side by side ----------------------


@dataclass(frozen=True)
class Wanted:
    """One row of the frontier: `NAME=1,2,3` (single models) or `NAME*5=1,6` (5-member
    ensembles whose first seeds are 1 and 6, as `train NAME --ensemble 5 --seed 1`)."""

    model: str
    seeds: tuple[int, ...]
    members: int = 1

    @classmethod
    def parse(cls, text: str) -> Wanted:
        name, _, seeds = text.partition("=")
        name, _, members = name.partition("*")
        try:
            wanted = cls(name, tuple(int(s) for s in seeds.split(",")), int(members or 1))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: write NAME=SEEDS or NAME*K=FIRST_SEEDS, e.g. fast=1,2,3 or best*3=1"
            ) from None
        try:
            catalogue.get_entry(wanted.model)  # an unknown name fails now, not an hour later
        except catalogue.UnknownModelError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return wanted

    def members_from(self, first: int) -> list[tuple[str, int]]:
        """The runs of one model or ensemble: an ensemble's members are seeds S, S+1, ..."""
        return [(self.model, first + i) for i in range(self.members)]

    def runs(self) -> list[tuple[str, int]]:
        """Every single run this row needs."""
        return [key for first in self.seeds for key in self.members_from(first)]

    def label(self) -> str:
        return f"`{self.model}`" + (f" ×{self.members}" if self.members > 1 else "")


def frontier(rows: list[Wanted], out: Path, x_test, y_test) -> tuple[list[str], int]:
    """Train (or read back) every run the rows need: a table line per row, and how many
    runs were read back (their fit was timed when they trained, not in this run)."""
    needed = dict.fromkeys(key for row in rows for key in row.runs())  # each run once, in order
    done = {key: measure(*key, None, out, x_test) for key in needed}

    def accuracy(row: Wanted, first: int) -> float:
        mean = np.mean([done[key].probabilities for key in row.members_from(first)], axis=0)
        return float((mean.argmax(1) == y_test).mean())

    def fit(row: Wanted, first: int) -> float:
        return sum(done[key].seconds for key in row.members_from(first))

    fits = {row: statistics.mean(fit(row, s) for s in row.seeds) for row in rows}
    floor = {row.model: fits[row] for row in rows if row.members == 1}
    lines = [
        "| entry | epochs | seeds | fit s (mean) | × `fast` | × `best` | test mean | min | max |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        scores = [accuracy(row, s) for s in row.seeds]
        seeds = ", ".join(
            str(s) if row.members == 1 else f"{s}–{s + row.members - 1}" for s in row.seeds
        )
        lines.append(
            f"| {row.label()} | {done[row.runs()[0]].epochs} | {seeds} | {fits[row]:.0f} "
            f"| {_ratio(fits[row], floor, 'fast')} | {_ratio(fits[row], floor, 'best')} "
            f"| {statistics.mean(scores):.2%} "
            f"| {min(scores):.2%} | {max(scores):.2%} |"
        )
    return lines, sum(m.reused for m in done.values())


def _ratio(seconds: float, floor: dict[str, float], name: str) -> str:
    return f"{seconds / floor[name]:.2f}" if name in floor else "—"


def _print_frontier(rows: list[Wanted], out: Path | None) -> int:
    _, (x_test, y_test) = sources.load_dataset("mnist")
    started = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        lines, reused = frontier(rows, out or Path(scratch), x_test, y_test)
    print(_header(started, reused) + "\n")
    print("\n".join(lines))
    return 0


def _header(started: float, reused: int) -> str:
    info = versions()
    return (
        f"{info['machine']}, {info['cpu_count']} CPU cores; Keras {info['keras']} on "
        f"{info['backend']} {info['backend_version']}; "
        f"{(time.time() - started) / 60:.0f} min in all"
        f"{f' ({reused} finished runs read back)' if reused else ''}."
    )


def _row(m: Measured) -> str:
    return (
        f"| `{m.model}` | {m.seed} | {m.epochs} | {m.validation:.2%} | {m.test:.2%} "
        f"| {m.seconds:.0f} |"
    )


def _mean_sd(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2%} ± {spread:.2%}"


if __name__ == "__main__":
    sys.exit(main())
