"""Fine-tuning on your own digits: how much it helps, at what rate, and whether mixing MNIST in
keeps the model from forgetting MNIST.

"Your own digits" are MNIST training digits written again in one person's hand: every digit
slanted, narrow and in a heavy felt pen, photographed on paper (tests/paper.py, `in_a_hand`).
They are the last 5% of MNIST's training set, the part `fast` holds out for validation and
never trains on, so the MNIST test set stays unseen by every model here. The folder is split
as `--dataset folder:PATH` splits any folder: a seeded fifth of each digit held out as test.

The base model is `fast` (trained here, seed 1, through `train()`). Each fine-tuning run is
`mnist-cnn train --init BASE --dataset folder:PATH` with the flags in its row, through the
same `train()`. The learning rate is chosen on the folder's validation split (the last 10% of
its training part), never on its test part; then, at the chosen rate, `--mix-mnist N` is
measured against none. Every model's test digits, the folder's and MNIST's, are read once.

    python benchmarks/finetune.py [--digits 1000] [--seeds 1 2 3] [--mix 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from paper import in_a_hand, write_folder  # noqa: E402

from mnist_cnn.backend import import_keras, versions  # noqa: E402

import_keras()

from mnist_cnn import evaluation  # noqa: E402
from mnist_cnn.data import sources  # noqa: E402
from mnist_cnn.models import loading  # noqa: E402
from mnist_cnn.training import TrainConfig, train  # noqa: E402

RATES = (1e-4, 3e-4, 1e-3)
BATCH = 32
EPOCHS = 10
FOLDER_SEED = 0


def fine_tune(base: Path, folder: Path, out: Path, seed: int, rate: float, mix: int) -> dict:
    config = TrainConfig(
        init=str(base),
        dataset=f"folder:{folder}",
        learning_rate=rate,
        batch_size=BATCH,
        epochs=EPOCHS,
        mix_mnist=mix,
        seed=seed,
        out=str(out),
        verbose=0,
    )
    result = train(config)
    return {
        "validation": result.history[-1]["val_accuracy"],
        "folder": result.metrics["test_accuracy"],
        "mnist": mnist_accuracy(result.run_dir),
        "seconds": result.train_seconds,
    }


def mnist_accuracy(run: Path) -> float:
    _, (x_test, y_test) = sources.load_dataset("mnist")
    probabilities = evaluation.predict_probabilities(loading.load_model(run), x_test)
    return float((probabilities.argmax(1) == y_test).mean())


def mean_sd(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2%} ± {spread:.2%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=1000, help="size of the folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--mix", type=int, default=2000, help="MNIST digits to mix in")
    args = parser.parse_args()
    started = time.time()
    (x_train, y_train), _ = sources.load_dataset("mnist")
    held = slice(len(x_train) - args.digits, len(x_train))  # fast's validation part

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        folder = scratch / "my-digits"
        write_folder(folder, x_train[held], y_train[held], in_a_hand, FOLDER_SEED)
        base = train(TrainConfig(model="fast", seed=1, out=str(scratch), verbose=0))
        _, (folder_test, labels) = sources.load_dataset(f"folder:{folder}")
        model = loading.load_model(base.run_dir)
        before = float(
            (evaluation.predict_probabilities(model, folder_test).argmax(1) == labels).mean()
        )
        rows = {}
        for rate in RATES:
            rows[(rate, 0)] = [
                fine_tune(base.run_dir, folder, scratch, seed, rate, 0) for seed in args.seeds
            ]
            print(f"rate {rate:g}: done", file=sys.stderr, flush=True)
        chosen = max(RATES, key=lambda r: statistics.mean(x["validation"] for x in rows[(r, 0)]))
        rows[(chosen, args.mix)] = [
            fine_tune(base.run_dir, folder, scratch, seed, chosen, args.mix) for seed in args.seeds
        ]
        base_mnist = base.metrics["test_accuracy"]

    info = versions()
    print(
        f"{info['machine']}, {info['cpu_count']} CPU cores; Keras {info['keras']} on "
        f"{info['backend']} {info['backend_version']}; {args.digits} digits in the folder "
        f"({len(labels)} of them its test part); seeds {args.seeds}; "
        f"{(time.time() - started) / 60:.0f} min in all.\n"
    )
    print(
        "| model | validation (folder) | test: the folder's test part | test: MNIST | "
        "fit s (median) |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| `fast` as trained on MNIST (seed 1) | | {before:.2%} | {base_mnist:.2%} | |")
    for (rate, mix), runs in rows.items():
        flags = f"--learning-rate {rate:g}" + (f" --mix-mnist {mix}" if mix else "")
        mark = " (chosen on validation)" if rate == chosen and not mix else ""
        validation = mean_sd([r["validation"] for r in runs]) if not mix else "(mixed)"
        print(
            f"| fine-tuned, `{flags}`{mark} | {validation} | "
            f"{mean_sd([r['folder'] for r in runs])} | {mean_sd([r['mnist'] for r in runs])} | "
            f"{statistics.median(r['seconds'] for r in runs):.1f} |"
        )
    print(f"\nEvery fine-tuning run: --batch-size {BATCH} --epochs {EPOCHS}, Adam.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
