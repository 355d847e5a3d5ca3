"""What writing TensorBoard's event files costs `mnist-cnn train fast` (budget: 0.2 s).

The whole command, each run a fresh process, with the TensorBoard writing and without it
(the same command with `training.tensorboard.board` and `write_test` made to write
nothing), interleaved A B A B ... so that a machine shared with other work loads both
alike. Printed: the median of N runs of the wall time, of `fit` and of `evaluation` (the
test figures are written there) from each run's timings.json, with the same seed, and
the seconds spent inside the TensorBoard code itself (its callback's methods and the test
figures' writing, timed in the process: the machine's noise does not reach this one).

    python benchmarks/tensorboard_cost.py [--runs 5] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCH = """
import os, sys, time
from mnist_cnn.backend import import_keras
from mnist_cnn.training import tensorboard
if sys.argv.pop(1) == "off":
    tensorboard.board = lambda *args: import_keras().callbacks.Callback()
    tensorboard.write_test = lambda *args: None
else:  # the seconds spent in the TensorBoard code itself, written to SPENT as they add up
    spent = [0.0]
    def timed(call, record=False):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started
                if record:
                    with open(os.environ["SPENT"], "w") as f:
                        f.write(str(spent[0]))
        return wrapper
    Board = tensorboard.EpochBoard
    for name in ("on_train_begin", "on_epoch_begin", "on_train_batch_end", "on_test_end",
                 "on_epoch_end", "on_train_end"):
        setattr(Board, name, timed(getattr(Board, name), name == "on_train_end"))
    tensorboard.board = timed(tensorboard.board)
    tensorboard.write_test = timed(tensorboard.write_test, True)
from mnist_cnn.cli.main import run
run()
"""


def one_run(board: str, seed: int, out: Path) -> dict:
    """`mnist-cnn train fast` in a fresh process: its wall time and recorded phases."""
    command = [sys.executable, "-c", LAUNCH, board, "train", "fast", "--seed", str(seed)]
    spent = out / "spent"
    spent.unlink(missing_ok=True)
    env = {**os.environ, "SPENT": str(spent)}
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--out", str(out), "--json"], capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    run_dir = Path(json.loads(done.stdout.strip().splitlines()[-1])["run_dir"])
    written = list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert bool(written) == (board == "on"), (board, written)
    phases = json.loads((run_dir / "timings.json").read_text())["phases"]
    inside = float(spent.read_text()) if board == "on" else 0.0
    return {
        "wall": wall,
        "fit": phases["fit"],
        "evaluation": phases["evaluation"],
        "in TensorBoard code": inside,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.runs):
            for board in ("on", "off") if index % 2 == 0 else ("off", "on"):
                results[board].append(one_run(board, args.seed, Path(folder)))
                shown = ", ".join(f"{k} {v:.2f} s" for k, v in results[board][-1].items())
                print(f"run {index + 1} TensorBoard {board}: {shown}", file=sys.stderr)
    print(f"mnist-cnn train fast --seed {args.seed}: median of {args.runs} runs each, interleaved")
    print(f"{'seconds':<20}{'with':>8}{'without':>9}{'cost':>8}")
    for key in ("wall", "fit", "evaluation", "in TensorBoard code"):
        on, off = (statistics.median(r[key] for r in results[b]) for b in ("on", "off"))
        print(f"{key:<20}{on:>8.3f}{off:>9.3f}{on - off:>+8.3f}")


if __name__ == "__main__":
    main()
