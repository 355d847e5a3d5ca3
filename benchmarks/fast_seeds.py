"""`fast` over many seeds, side by side with a candidate recipe: the first impression
(`make run` trains seed 42) should not depend on a lucky seed.

Each seed runs `mnist-cnn train fast --seed S` in a fresh process, as a user does, and the
candidate in another, taking turns which goes first, so that the machine's drift falls on
both alike. The candidate is `fast` with recipe flags, or, when its flags have `--arch
LAYERS`, another network (give it `fast`'s recipe flags as well: `mnist-cnn models fast`
lists them). There is one epoch, so nothing is
chosen on the test set; the validation accuracy (the last 5% of train) is what chose the
candidate. Prints a Markdown table.

    python benchmarks/fast_seeds.py [--seeds 1 2 ... 10 42] [--candidate "FLAG VALUE ..."]
"""

from __future__ import annotations

import argparse
import csv
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from speed import fresh_train, keep_the_report_suite, train_args

from mnist_cnn.backend import versions

# The best of twenty variants on the validation split (docs/benchmarks.md), 2026-12-02.
CANDIDATE = ["--learning-rate", "0.02", "--warmup", "0.4"]


def validation_accuracy(run: Path) -> float:
    with open(run / "history.csv") as f:
        return float(list(csv.DictReader(f))[-1]["val_accuracy"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[*range(1, 11), 42])
    parser.add_argument(
        "--candidate",
        type=shlex.split,
        default=CANDIDATE,
        metavar="FLAGS",
        help="the candidate's train flags, as one quoted string",
    )
    args = parser.parse_args()
    RECIPES = {"fast": (), "candidate": tuple(args.candidate)}
    candidate = shlex.join(["mnist-cnn", *train_args("fast", "S", args.candidate)])
    started = time.time()
    keep_the_report_suite()
    runs: dict[str, dict[int, dict]] = {name: {} for name in RECIPES}
    with tempfile.TemporaryDirectory() as out:
        for turn, seed in enumerate(args.seeds):
            order = list(RECIPES) if turn % 2 == 0 else list(reversed(RECIPES))
            for name in order:
                row = fresh_train(seed, out, "fast", RECIPES[name])
                row["validation"] = validation_accuracy(row["run"])
                runs[name][seed] = row
                print(
                    f"{name} seed {seed}: test {row['accuracy']:.2%}, fit {row['fit']:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
    info = versions()
    print(
        f"{info['machine']}, {info['cpu_count']} CPU cores; Keras {info['keras']} on "
        f"{info['backend']} {info['backend_version']}; each `mnist-cnn train fast --seed S` "
        f"and `{candidate}` (the candidate), each in a fresh process, taking turns; "
        f"{(time.time() - started) / 60:.0f} min in all.\n"
    )
    print(
        "| seed | `fast`: validation | `fast`: test | `fast`: fit s (stolen) "
        "| candidate: validation | candidate: test | candidate: fit s (stolen) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for seed in args.seeds:
        cells = []
        for name in RECIPES:
            row = runs[name][seed]
            fit = f"{row['fit']:.2f} ({row['stolen']:.0%})"
            cells += [f"{row['validation']:.2%}", f"{row['accuracy']:.2%}", fit]
        print(f"| {seed} | {' | '.join(cells)} |")
    for label, summary in (("mean", statistics.mean), ("min", min), ("max", max)):
        cells = []
        for name in RECIPES:
            rows = runs[name].values()
            fit = statistics.median(r["fit"] for r in rows)
            cells += [
                f"{summary(r['validation'] for r in rows):.2%}",
                f"**{summary(r['accuracy'] for r in rows):.2%}**",
                f"{fit:.2f} (median)" if label == "mean" else "",
            ]
        print(f"| {label} | {' | '.join(cells)} |")
    fits = {name: statistics.median(r["fit"] for r in runs[name].values()) for name in RECIPES}
    walls = {name: statistics.median(r["wall"] for r in runs[name].values()) for name in RECIPES}
    print(
        f"\nFit, median of the fresh processes: the candidate {fits['candidate']:.2f} s against "
        f"`fast`'s {fits['fast']:.2f} s, **{fits['candidate'] / fits['fast']:.2f}x**; the whole "
        f"command {walls['candidate']:.1f} s against {walls['fast']:.1f} s "
        f"({walls['candidate'] / walls['fast']:.2f}x). Seeds at or above 99.0% on test: "
        f"`fast` {sum(r['accuracy'] >= 0.99 for r in runs['fast'].values())} of "
        f"{len(args.seeds)}, the candidate "
        f"{sum(r['accuracy'] >= 0.99 for r in runs['candidate'].values())} of {len(args.seeds)}."
    )
    print(
        "\nIn brackets, the share of the CPUs' time the host gave to other machines while the "
        "process ran (/proc/stat's steal)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
