"""Inference speed of a trained model on the CPU, through `Classifier`: Keras and ONNX Runtime.

Trains `fast` (seed 42) unless given a run, exports it to ONNX (if the run has no
model.onnx yet), then measures, for the Keras model and for the ONNX export:
- batch throughput: the 10,000 test digits at once (median of 5 passes);
- single-image latency, p50 and p99 of 1000 calls: from a 28x28 array, and from a PNG file
  (decode, MNIST-style preprocessing, predict);
- `model.predict` on one image, the call tutorials use, for comparison (p50 of 50 calls).

    python benchmarks/inference.py [--run RUN_DIR]
    TF_NUM_INTRAOP_THREADS=1 python benchmarks/inference.py   # latency over throughput
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_cnn.backend import import_keras, versions

import_keras()

from mnist_cnn import rundir  # noqa: E402
from mnist_cnn.data import datasets, sources  # noqa: E402
from mnist_cnn.inference.classifier import Classifier  # noqa: E402
from mnist_cnn.inference.export import export_model  # noqa: E402
from mnist_cnn.training import TrainConfig, train  # noqa: E402

CALLS = 1000


def latencies_ms(call, n: int) -> np.ndarray:
    times = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
    return np.array(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run directory or .keras file (default: train fast)")
    args = parser.parse_args()
    _, (x_test, y_test) = sources.load_dataset("mnist")

    threads = 1 if os.environ.get("TF_NUM_INTRAOP_THREADS") == "1" else None
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        run = args.run or str(train(TrainConfig(model="fast", out=scratch, verbose=0)).run_dir)
        onnx_file = rundir.model_path(run).parent / "model.onnx"
        if not onnx_file.exists():
            onnx_file = export_model(run, "onnx", Path(scratch) / "model.onnx")[0]
        pngs = []
        for i in range(CALLS):
            buffer = io.BytesIO()
            Image.fromarray(x_test[i]).save(buffer, "PNG")
            pngs.append(Path(scratch) / f"{i}.png")
            pngs[-1].write_bytes(buffer.getvalue())

        for runtime, path in (("Keras", run), ("ONNX Runtime", onnx_file)):
            classifier = Classifier(path, threads=threads)
            passes = []
            for _ in range(5):
                started = time.perf_counter()
                probabilities = classifier.probabilities(x_test)
                passes.append(time.perf_counter() - started)
            rows[runtime] = {
                "accuracy": float((probabilities.argmax(1) == y_test).mean()),
                "throughput": len(x_test) / statistics.median(passes),
                "array": latencies_ms(
                    lambda i, c=classifier: c.predict_arrays(x_test[i % 10000]), CALLS
                ),
                "png": latencies_ms(lambda i, c=classifier: c.predict_images([pngs[i]]), CALLS),
            }
            if classifier.model is not None:
                one = datasets.normalise(x_test[:1])
                classifier.model.predict(one, verbose=0)
                keras_predict = latencies_ms(
                    lambda i, c=classifier, x=one: c.model.predict(x, verbose=0), 50
                )

    info = versions()
    accuracies = ", ".join(f"{name} {row['accuracy']:.2%}" for name, row in rows.items())
    print(
        f"{info['machine']}, {info['cpu_count']} CPU cores; Keras {info['keras']} on "
        f"{info['backend']} {info['backend_version']}; ONNX Runtime "
        f"{versions('onnxruntime')['backend_version']}; model {Path(run).name} "
        f"(test accuracy through Classifier: {accuracies}); threads: "
        f"{os.environ.get('TF_NUM_INTRAOP_THREADS', 'all cores (default)')}.\n"
    )
    print("| runtime | path | p50 ms | p99 ms | throughput |")
    print("| --- | --- | ---: | ---: | ---: |")
    for runtime, row in rows.items():
        print(
            f"| {runtime} | batch of 10,000 test digits (`Classifier.probabilities`) | | | "
            f"**{row['throughput']:,.0f} images/s** |"
        )
        for label, times in (
            ("one 28x28 array (`predict_arrays`)", row["array"]),
            ("one PNG file (`predict_images`: decode, preprocess, predict)", row["png"]),
        ):
            print(
                f"| {runtime} | {label} | {np.percentile(times, 50):.3f} "
                f"| {np.percentile(times, 99):.3f} | {1000 / np.median(times):,.0f} images/s |"
            )
    print(
        f"| Keras | `model.predict` on one image, for comparison | "
        f"{np.percentile(keras_predict, 50):.3f} | {np.percentile(keras_predict, 99):.3f} "
        f"| {1000 / np.median(keras_predict):,.0f} images/s |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
