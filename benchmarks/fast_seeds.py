"""`fast` over many seeds, side by side with a candidate recipe: the first impression
(`make run` trains seed 42) should not depend on a lucky seed.

Each seed runs `mnist-cnn train fast --seed S` in a fresh process, as a user does, and the
candidate in another, taking turns which goes first, so that the machine's drift falls on
both alike. The candidate is `fast` with recipe flags, or, when its flags have `--arch
LAYERS`, another network (give it `fast`'s recipe flags as well: `mnist-cnn models fast`
lists them). There is one epoch, so nothing is
chosen on the test set; the validation accuracy (the last 5% of train) is what chose the
candidate. Prints a Markdown table.

A fresh fit on this VM is either quick or, now and then, nearly twice as slow, whichever
network it is; `--rounds R` trains every seed R times over (the same models each time), so
the fit ratio is a median of R x seeds processes a side, and of as many back-to-back pairs.

    python benchmarks/fast_seeds.py [--seeds 1 2 ... 10 42] [--rounds 1] [--candidate "..."]
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
    parser.add_argument("--rounds", type=int, default=1, help="times to train every seed")
    args = parser.parse_args()
    RECIPES = {"fast": (), "candidate": tuple(args.candidate)}
    candidate = shlex.join(["mnist-cnn", *train_args("fast", "S", args.candidate)])
    started = time.time()
    keep_the_report_suite()
    runs: dict[str, dict[int, dict]] = {name: {} for name in RECIPES}
    every: dict[str, list[dict]] = {name: [] for name in RECIPES}  # all rounds' processes
    pairs: list[float] = []  # the candidate's fit over fast's, the two run back to back
    with tempfile.TemporaryDirectory() as out:
        turn = 0
        for _ in range(args.rounds):
            for seed in args.seeds:
                order = list(RECIPES) if turn % 2 == 0 else list(reversed(RECIPES))
                turn += 1
                pair = {}
                for name in order:
                    row = fresh_train(seed, out, "fast", RECIPES[name])
                    row["validation"] = validation_accuracy(row["run"])
                    first = runs[name].setdefault(seed, row)
                    if row["accuracy"] != first["accuracy"]:
                        print(f"{name} seed {seed}: a different model this round", file=sys.stderr)
                    every[name].append({**row, "seed": seed})
                    pair[name] = row["fit"]
                    print(
                        f"{name} seed {seed}: test {row['accuracy']:.2%}, fit {row['fit']:.2f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                pairs.append(pair["candidate"] / pair["fast"])
    info = versions()
    print(
        f"{info['machine']}, {info['cpu_count']} CPU cores; Keras {info['keras']} on "
        f"{info['backend']} {info['backend_version']}; each `mnist-cnn train fast --seed S` "
        f"and `{candidate}` (the candidate), each in a fresh process, taking turns; "
        f"{args.rounds} round(s) of every seed; {(time.time() - started) / 60:.0f} min in all.\n"
    )
    fit_column = "fit s (stolen)" if args.rounds == 1 else "fit s (each round)"
    print(
        f"| seed | `fast`: validation | `fast`: test | `fast`: {fit_column} "
        f"| candidate: validation | candidate: test | candidate: {fit_column} |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for seed in args.seeds:
        cells = []
        for name in RECIPES:
            row = runs[name][seed]
            fit = (
                f"{row['fit']:.2f} ({row['stolen']:.0%})"
                if args.rounds == 1
                else " ".join(f"{r['fit']:.1f}" for r in every[name] if r["seed"] == seed)
            )
            cells += [f"{row['validation']:.2%}", f"{row['accuracy']:.2%}", fit]
        print(f"| {seed} | {' | '.join(cells)} |")
    fit = {name: statistics.median(r["fit"] for r in every[name]) for name in RECIPES}
    for label, summary in (("mean", statistics.mean), ("min", min), ("max", max)):
        cells = []
        for name in RECIPES:
            rows = runs[name].values()
            cells += [
                f"{summary(r['validation'] for r in rows):.2%}",
                f"**{summary(r['accuracy'] for r in rows):.2%}**",
                f"{fit[name]:.2f} (median)" if label == "mean" else "",
            ]
        print(f"| {label} | {' | '.join(cells)} |")
    walls = {name: statistics.median(r["wall"] for r in every[name]) for name in RECIPES}
    print(
        f"\nFit, median of the fresh processes: the candidate {fit['candidate']:.2f} s against "
        f"`fast`'s {fit['fast']:.2f} s, **{fit['candidate'] / fit['fast']:.2f}x** (median of "
        f"the {len(pairs)} back-to-back pairs' ratios: {statistics.median(pairs):.2f}x); the whole "
        f"command {walls['candidate']:.1f} s against {walls['fast']:.1f} s "
        f"({walls['candidate'] / walls['fast']:.2f}x). Seeds at or above 99.0% on test: "
        f"`fast` {sum(r['accuracy'] >= 0.99 for r in runs['fast'].values())} of "
        f"{len(args.seeds)}, the candidate "
        f"{sum(r['accuracy'] >= 0.99 for r in runs['candidate'].values())} of {len(args.seeds)}."
    )
    if args.rounds > 1:
        print(
            "\nThe fit cells are each round's seconds; the accuracies are the first round's "
            "(a later round that trained a different model is reported on stderr)."
        )
        return 0
    print(
        "\nIn brackets, the share of the CPUs' time the host gave to other machines while the "
        "process ran (/proc/stat's steal)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
