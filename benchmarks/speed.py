"""What the user waits for: `mnist-cnn train fast` as whole commands in fresh processes.

1. `mnist-cnn train fast --seed S` for each seed, each a new process as a user runs it: the
   wall time from launch to exit, where it went (start-up and imports before `train()`
   begins, then the phases the run records in timings.json, then the rest: printing,
   exit), the fit, and the test accuracy. Every run file must be there, report included.
2. `mnist-cnn models` and `mnist-cnn --help`: wall time, and whether TensorFlow was loaded.
3. The same seeds trained one after another in this process (the warm figure this script
   reported before: all but the first run find TensorFlow loaded and its kernels ready).
4. The compute floor: the multiply-adds of one epoch of `fast`, forward and backward,
   counted from the layer shapes, against this CPU's peak.
5. (`--example-seeds`) keras.io's example for comparison: the fit seconds until its test
   accuracy first reaches 99.0% (read after each epoch, only to measure).

    python benchmarks/speed.py [--seeds 1 2 3 4 5] [--example-seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mnist_cnn.data import sources

COMMAND = Path(sys.executable).with_name("mnist-cnn")
TARGET = 0.99
RUN_FILES = (
    "config.json",
    "history.csv",
    "steps.csv",
    "model.keras",
    "calibration.json",
    "metrics.json",
    "report.html",
    "robustness.json",
    "timings.json",
    "plots/samples.png",
    "plots/training_curves.png",
    "plots/predictions.png",
    "plots/confusion_matrix.png",
)
PHASES = (
    "data",
    "build, compile, save",
    "fit",
    "calibration",
    "evaluation",
    "pictures",
    "report",
)


def stolen_seconds() -> float:
    """CPU seconds this VM's hypervisor has given to others since boot, all CPUs summed
    (/proc/stat's steal): on a shared host the hypervisor can take CPU time from a fit, so
    timings record it beside the wall clock (here, 2026-12-03, it was 1-16% and did not explain
    the fits that took 1.7x as long). NaN where the kernel does not count it."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def train_args(model: str, seed: int | str, flags: Sequence[str] = ()) -> list[str]:
    """`train MODEL --seed S FLAGS`, without MODEL when the flags give the network
    (`--arch LAYERS`): the one rule for what a benchmark runs and what it prints it ran."""
    named = [] if "--arch" in flags else [model]
    return ["train", *named, "--seed", str(seed), *flags]


def fresh_train(seed: int, out: str, model: str, flags: Sequence[str] = ()) -> dict:
    """One `mnist-cnn` `train_args(model, seed, flags)` in a new process, timed from launch."""
    launched, stolen = time.time(), stolen_seconds()
    argv = train_args(model, seed, flags)
    result = subprocess.run(
        [str(COMMAND), *argv, "--out", out, "--json"], capture_output=True, text=True
    )
    wall = time.time() - launched
    stolen = stolen_seconds() - stolen
    if result.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed:\n{result.stderr}")
    run = Path(json.loads(result.stdout.strip().splitlines()[-1])["run_dir"])
    missing = [name for name in RUN_FILES if not (run / name).is_file()]
    if missing:
        raise SystemExit(f"{run} lacks {', '.join(missing)}")
    timings = json.loads((run / "timings.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    phases = timings["phases"]
    startup = timings["started_at"] - launched
    return {
        "wall": wall,
        "start-up and imports": startup,
        **{name: phases.get(name, 0.0) for name in PHASES},
        "anything else": wall - startup - sum(phases.values()),
        "accuracy": metrics["test_accuracy"],
        "run": run,
        "stolen": stolen / (wall * (os.cpu_count() or 1)),  # the share of the CPUs' time
    }


def quick_command(*args: str) -> tuple[float, bool]:
    """Wall seconds of `mnist-cnn ARGS` in a new process, and whether it loaded TensorFlow."""
    probe = (
        "import sys; from mnist_cnn.cli import main\n"
        "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
        "sys.stderr.write('TF' if 'tensorflow' in sys.modules else 'no TF'); sys.exit(code)"
    )
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
    )
    return time.time() - started, result.stderr.endswith("TF") and "no TF" not in result.stderr


def warm_fits(seeds, out: str, model: str) -> list[float]:
    """The same training, one run after another in this process (the old, warm figure)."""
    from mnist_cnn.backend import import_keras

    import_keras()
    from mnist_cnn.training import TrainConfig, train

    return [
        train(TrainConfig(model=model, seed=seed, out=out, verbose=0)).train_seconds
        for seed in seeds
    ]


def epoch_flops(model_name: str) -> tuple[float, int]:
    """FLOPs of one training epoch (forward and backward) and the images it sees.

    Counted from the layer shapes: a convolution does out_h*out_w*out_c*k_h*k_w*in_c
    multiply-adds per image, a dense layer in*out. The backward pass does about twice the
    forward (gradients of the inputs and of the weights), except that nothing needs the
    gradient of the first layer's input. Pooling, activations and the optimizer are left
    out: they are memory-bound, not multiply-adds.
    """
    import numpy as np

    from mnist_cnn import training
    from mnist_cnn.backend import import_keras
    from mnist_cnn.models import catalogue

    keras = import_keras()
    entry = catalogue.get_entry(model_name)
    settings = training.resolve_settings(training.TrainConfig(model=model_name))
    model = training.build(entry, settings)
    macs = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, oh, ow, _ = layer.output.shape
            macs.append(oh * ow * cout * kh * kw * cin)
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            macs.append(cin * cout)
    forward = 2 * float(np.sum(macs))
    backward = 2 * forward - 2 * macs[0]  # no gradient for the digit itself
    images = int(round(60_000 * (1 - settings["validation_split"]))) * settings["epochs"]
    return (forward + backward) * images, images


def flops_per_cycle(cpuinfo: str) -> tuple[int, str]:
    """float32 FLOPs per core and cycle: two FMA units x lanes x 2, read from the vector flags.

    Zen 4 runs AVX-512 on 256-bit units; Zen 5 and Xeon Scalable (Gold and up) on 512-bit
    ones. A Xeon with one 512-bit FMA unit would have half of this: the floor is then low."""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    flags = set(fields.get("flags\t\t", "").split())
    vendor, family = fields.get("vendor_id\t", "").strip(), fields.get("cpu family\t", "0")
    if "avx512f" in flags and not (vendor == "AuthenticAMD" and int(family) < 26):
        return 2 * 16 * 2, "AVX-512: two FMA units of 16 lanes"
    if "avx512f" in flags or {"avx2", "fma"} <= flags:
        return 2 * 8 * 2, "two 256-bit FMA units of 8 lanes"
    return 2 * 4 * 2, "SSE: two units of 4 lanes"


def cpu_peak() -> tuple[float, float, str]:
    """This CPU's float32 peak (cores x clock x FLOPs per cycle) and a measured matmul."""
    import numpy as np

    cpuinfo = Path("/proc/cpuinfo").read_text()
    mhz = [float(line.split(":")[1]) for line in cpuinfo.splitlines() if line.startswith("cpu MHz")]
    per_cycle, units = flops_per_cycle(cpuinfo)
    model = next(
        (
            line.split(":")[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    cores = len(os.sched_getaffinity(0))
    theoretical = cores * statistics.median(mhz) * 1e6 * per_cycle
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(5))
    how = (
        f"{model}, {cores} cores x {statistics.median(mhz) / 1000:.2f} GHz (/proc/cpuinfo) x "
        f"{per_cycle} float32 FLOPs per cycle ({units})"
    )
    return theoretical, 2 * 2048**3 / best, how


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def keep_the_report_suite() -> float:
    """Draw the report's robustness pages, as the first run on a machine does, and say how
    long it took: the runs timed after it find them kept, as every run but the first does."""
    from mnist_cnn.reporting import robustness

    _, (x_test, y_test) = sources.load_dataset("mnist")
    started = time.perf_counter()
    robustness.cached_suite(x_test, y_test)
    return time.perf_counter() - started


def example_to_target(seeds, out: str) -> list[tuple]:
    """keras-example: (test accuracy, fit s, first epoch at 99.0%, fit s until then)."""
    from mnist_cnn.backend import import_keras

    keras = import_keras()
    from mnist_cnn import evaluation
    from mnist_cnn.training import TrainConfig, train

    _, (x_test, y_test) = sources.load_dataset("mnist")

    class TestAccuracyWatch(keras.callbacks.Callback):
        """Test accuracy after each epoch, after the history callback has timed it."""

        accuracy: list[float]

        def on_train_begin(self, logs=None):
            self.accuracy = []

        def on_epoch_end(self, epoch, logs=None):
            probabilities = evaluation.predict_probabilities(self.model, x_test)
            self.accuracy.append(float((probabilities.argmax(1) == y_test).mean()))

    rows = []
    for seed in seeds:
        watch = TestAccuracyWatch()
        result = train(TrainConfig(model="keras-example", seed=seed, out=out, verbose=0), [watch])
        seconds = [row["seconds"] for row in result.history]
        reached = next((i for i, a in enumerate(watch.accuracy) if a >= TARGET), None)
        until = None if reached is None else sum(seconds[: reached + 1])
        rows.append((result.metrics["test_accuracy"], sum(seconds), reached, until))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--example-seeds", type=int, nargs="*", default=[])
    parser.add_argument("--model", default="fast")
    args = parser.parse_args()
    started = time.time()
    suite_seconds = keep_the_report_suite()
    with tempfile.TemporaryDirectory() as out:
        fresh = []
        for seed in args.seeds:
            fresh.append(fresh_train(seed, out, args.model))
            row = fresh[-1]
            print(
                f"fresh {args.model} seed {seed}: {row['accuracy']:.2%}, wall {row['wall']:.2f} s, "
                f"fit {row['fit']:.2f} s",
                file=sys.stderr,
                flush=True,
            )
        quick = {
            name: [quick_command(*argv) for _ in range(5)]
            for name, argv in (("mnist-cnn models", ["models"]), ("mnist-cnn --help", ["--help"]))
        }
        warm = warm_fits(args.seeds, out, args.model)
        example = example_to_target(args.example_seeds, out)
    flops, images = epoch_flops(args.model)
    theoretical, measured, how = cpu_peak()

    from mnist_cnn.backend import versions

    info = versions()
    median = lambda key: statistics.median(row[key] for row in fresh)  # noqa: E731
    accuracy = [row["accuracy"] for row in fresh]
    walls = ", ".join(f"{row['wall']:.1f}" for row in fresh)
    fits = ", ".join(f"{row['fit']:.2f}" for row in fresh)
    print(
        f"{info['machine']}, {info['cpu_count']} CPU cores; Keras {info['keras']} on "
        f"{info['backend']} {info['backend_version']}; `{args.model}` seeds {args.seeds}, each "
        f"`mnist-cnn train {args.model} --seed S` in a fresh process; "
        f"{(time.time() - started) / 60:.0f} min in all. The report's robustness sample is "
        f"drawn once per machine and kept ({suite_seconds:.1f} s here now; 0 when kept "
        "already): every run below found it kept.\n"
    )
    print(f"| `mnist-cnn train {args.model}`, {len(fresh)} fresh processes | median s |")
    print("| --- | ---: |")
    print(f"| **whole command, Enter to exit** | **{median('wall'):.2f}** |")
    for key in ("start-up and imports", *PHASES, "anything else"):
        print(f"| {key} | {median(key):.2f} |")
    print(
        f"\nTest accuracy: mean **{statistics.mean(accuracy):.2%}**, min {min(accuracy):.2%}, "
        f"max {max(accuracy):.2%}. Walls: {walls} s; fits: {fits} s.\n"
    )
    print("| fit of `fast` | median s |")
    print("| --- | ---: |")
    print(f"| in a fresh process (what a user gets) | {median('fit'):.2f} |")
    print(f"| warm: one process, run after run (first included) | {statistics.median(warm):.2f} |")
    peak = max(theoretical, measured)  # the cores may run above their nominal clock
    floor = flops / peak
    print(
        f"\nCompute floor: one epoch of `{args.model}` is {flops / 1e9:.0f} GFLOP "
        f"({flops / images / 1e6:.2f} MFLOP per image, forward and backward, {images:,} images). "
        f"This CPU's float32 peak: {theoretical / 1e9:.0f} GFLOP/s at its nominal clock ({how}); "
        f"a 2048x2048 float32 matrix product in NumPy reached {measured / 1e9:.0f} GFLOP/s. At "
        f"the higher, {peak / 1e9:.0f} GFLOP/s, the floor is **{floor:.2f} s**; the fresh fit "
        f"({median('fit'):.2f} s) is {median('fit') / floor:.1f}x it, the warm fit "
        f"{statistics.median(warm) / floor:.1f}x.\n"
    )
    print("| command | median s (5 runs) | loads TensorFlow |")
    print("| --- | ---: | --- |")
    for name, runs in quick.items():
        seconds = statistics.median(s for s, _ in runs)
        print(f"| `{name}` | {seconds:.2f} | {'yes' if any(tf for _, tf in runs) else 'no'} |")
    if example:
        reached = [row for row in example if row[2] is not None]
        print("\n| keras-example | runs | mean test acc | first epoch ≥ 99.0% | fit s to 99.0% |")
        print("| --- | ---: | ---: | ---: | ---: |")
        print(
            f"| seeds {args.example_seeds} | {len(example)} "
            f"| {statistics.mean(r[0] for r in example):.2%} "
            f"| {statistics.median(r[2] + 1 for r in reached) if reached else 'never'} "
            f"| {statistics.median(r[3] for r in reached) if reached else '—'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
