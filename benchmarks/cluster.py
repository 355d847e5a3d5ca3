"""What a Ray cluster buys: the same sweep on one worker node and on two, and against a loop.

A real cluster on this machine (tests/ray_cluster.py: a real GCS and raylets on 127.0.0.1,
a head that only schedules, worker nodes of one CPU each, each held to a core of its own:
unpinned, a "1-CPU" node also borrows the idle core beside it, for TensorFlow's input
pipeline and its other threads, which flatters the one-node run). Every figure is the whole
command, `mnist-cnn ...` in a fresh process, as a user runs it:

- the sweep: 8 trials (`conv28-dense128 --limit N --epochs E`, learning rate x batch size,
  seed 42), with `--address` on a 1-node and on a 2-node cluster: wall time, speed-up;
- the same 8 runs as `mnist-cnn train` in a shell loop (no Ray, both cores);
- overhead per run: the time not spent in `fit`, (wall x trials at once - the runs' own fit
  seconds) / 8: for the sweep Ray's start, scheduling and each trial's process, for the loop
  each command's imports, test set, pictures and report;
- a 2-member ensemble (`train --ensemble 2 --seed 42`): on this machine, and with
  `--address` on the 1-node and 2-node clusters.

The sweeps are medians of --repeats rounds; the loop and the ensembles run once (they
take longest and decide nothing).

    python benchmarks/cluster.py [--limit 24000] [--epochs 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from ray_cluster import RayCluster, loopback_env  # noqa: E402

COMMAND = str(Path(sys.executable).with_name("mnist-cnn"))
MODEL = "conv28-dense128"
RATES = "0.0005,0.001,0.002,0.004"
BATCHES = "32,128"


def timed(*args: str) -> tuple[float, dict]:
    """Run the command; its wall seconds and its last JSON line."""
    started = time.perf_counter()
    done = subprocess.run([COMMAND, *args, "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def fit_seconds(run_dir: str) -> float:
    with open(Path(run_dir) / "history.csv") as f:
        return sum(float(row["seconds"]) for row in csv.DictReader(f))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=24000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    loopback_env()
    out = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    run = ["--limit", str(args.limit), "--epochs", str(args.epochs)]
    sweep = [
        "sweep",
        MODEL,
        *run,
        "--set",
        f"learning-rate={RATES}",
        "--set",
        f"batch-size={BATCHES}",
    ]
    pairs = [(rate, batch) for rate in RATES.split(",") for batch in BATCHES.split(",")]
    ensemble = ["train", MODEL, *run, "--ensemble", "2", "--seed", "42"]
    rows: dict[str, list[tuple[float, float]]] = {}  # what -> (wall, fit seconds) per round

    def note(what: str, wall: float, fit: float) -> None:
        rows.setdefault(what, []).append((wall, fit))
        print(f"  {what}: {wall:.1f} s (fit {fit:.1f} s)", file=sys.stderr, flush=True)

    for round_ in range(args.repeats):  # the sweeps, the figures that decide the speed-up
        print(f"round {round_ + 1} of {args.repeats}", file=sys.stderr, flush=True)
        for nodes in (1, 2):
            cluster = RayCluster(workers=nodes, pin=True)
            try:
                where = ["--address", cluster.address, "--out", str(out / f"r{round_}n{nodes}")]
                wall, summary = timed(*sweep, *where)
                assert len(summary["trials"]) == 8
                fit = sum(fit_seconds(t["run_dir"]) for t in summary["trials"])
                note(f"sweep, {nodes} node(s)", wall, fit)
                if round_ == 0:
                    wall, summary = timed(*ensemble, *where)
                    note(f"ensemble, {nodes} node(s)", wall, fit_seconds(summary["run_dir"]))
            finally:
                cluster.stop()
    started, fit = time.perf_counter(), 0.0  # once: the same 8 runs, one command after another
    for rate, batch in pairs:
        _, summary = timed(
            "train", MODEL, *run, "--learning-rate", rate, "--batch-size", batch,
            "--out", str(out / "loop"),
        )  # fmt: skip
        fit += fit_seconds(summary["run_dir"])
    note("train loop", time.perf_counter() - started, fit)
    wall, summary = timed(*ensemble, "--out", str(out / "local"))
    note("ensemble, no Ray", wall, fit_seconds(summary["run_dir"]))

    print_tables(rows, args, len(pairs))


LABELS = {
    "sweep, 1 node(s)": "`mnist-cnn sweep --address`, 1 node",
    "sweep, 2 node(s)": "`mnist-cnn sweep --address`, 2 nodes",
    "train loop": "`mnist-cnn train` x 8 in a loop (no Ray, 2 cores)",
    "ensemble, no Ray": "`train --ensemble 2` (no Ray, 2 cores)",
    "ensemble, 1 node(s)": "`train --ensemble 2 --address`, 1 node",
    "ensemble, 2 node(s)": "`train --ensemble 2 --address`, 2 nodes",
}


def print_tables(rows: dict, args, runs: int) -> None:
    """The Markdown tables, from each measurement's (wall, fit seconds) per round."""
    median = {what: statistics.median(w for w, _ in v) for what, v in rows.items()}
    fits = {what: statistics.median(f for _, f in v) for what, v in rows.items()}
    print(
        f"\n{os.cpu_count()} CPU cores; {MODEL} --limit {args.limit} --epochs {args.epochs}, "
        f"seed 42; sweeps: medians of {args.repeats} rounds, the loop and the ensembles: one "
        f"round; worker nodes of 1 CPU each\n"
    )
    print("| 8 runs (learning rate x batch size) | wall s | speed-up | fit s (sum) | "
          "overhead per run s |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: |")
    for what in ("sweep, 1 node(s)", "sweep, 2 node(s)", "train loop"):
        speedup = median["sweep, 1 node(s)"] / median[what]
        at_once = 2 if what == "sweep, 2 node(s)" else 1
        overhead = (median[what] * at_once - fits[what]) / runs
        print(f"| {LABELS[what]} | {median[what]:.1f} | {speedup:.2f}x | {fits[what]:.1f} | "
              f"{overhead:.1f} |")  # fmt: skip
    print("\n| 2-member ensemble | wall s | fit s (sum) |")
    print("| --- | ---: | ---: |")
    for what in ("ensemble, no Ray", "ensemble, 1 node(s)", "ensemble, 2 node(s)"):
        print(f"| {LABELS[what]} | {median[what]:.1f} | {fits[what]:.1f} |")


if __name__ == "__main__":
    main()
