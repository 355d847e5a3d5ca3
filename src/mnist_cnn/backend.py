"""The Keras backend: import it quietly, and say which versions a run used.

TensorFlow's C++ runtime prints a oneDNN notice and a CUDA probe message to file
descriptor 2 when it loads, before any logging setting applies. They are noise on a
CPU machine, so the import happens with fd 2 pointed at /dev/null. `--debug` (or
MNIST_CNN_DEBUG=1) keeps them.
"""

from __future__ import annotations

import contextlib
import os
import sys

# importlib.metadata and platform are imported where used: the command's modules import this
# one, and `--help` should not pay for them.

DEFAULT_BACKEND = "tensorflow"


def import_keras(quiet: bool = True, intra_op_threads: int | None = None):
    """Import and return keras with its backend loaded, muting the backend's start-up noise.

    `intra_op_threads` (TensorFlow, first import only; $TF_NUM_INTRAOP_THREADS wins): one
    thread suits reading one digit at a time, where handing tiny ops between cores costs
    more than it saves (measured: 0.58 -> 0.35 ms per digit, batches still 58k/s).
    """
    os.environ.setdefault("KERAS_BACKEND", DEFAULT_BACKEND)
    if intra_op_threads is not None:
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(intra_op_threads))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" in sys.modules or not quiet:
        import keras

        return keras
    with native_stderr_muted():
        import keras

        keras.ops.convert_to_tensor(0.0)  # loads the backend's kernels (more start-up noise)
        import importlib.util

        if keras.backend.backend() != "tensorflow" and importlib.util.find_spec("tensorflow"):
            # Keras uses TensorFlow for tf.data, TensorBoard's summaries and exports on other
            # backends too: load it, and start its runtime (its CUDA probe), quietly now.
            import tensorflow

            tensorflow.constant(0.0)
    return keras


@contextlib.contextmanager
def native_stderr_muted():
    """File descriptor 2 pointed at /dev/null for the block: the C++ runtimes' notices
    (TensorFlow's start-up, TensorFlow Lite's "INFO: Created ... delegate") go nowhere.
    Python's own errors still reach the caller as exceptions. `--debug` keeps them all."""
    if os.environ.get("MNIST_CNN_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _version(package: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(runtime: str = "keras") -> dict:
    """Versions and hardware that decide a run's numbers, for config.json and the API.

    `runtime="onnxruntime"` describes an ONNX model's runtime instead, without importing Keras.
    """
    import platform

    common = {
        "mnist_cnn": _version("mnist-cnn"),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if runtime == "onnxruntime":
        return {**common, "backend": "onnxruntime", "backend_version": _version("onnxruntime")}
    keras = import_keras()
    backend = keras.backend.backend()
    backend_package = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    return {
        **common,
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": _version(backend_package) if backend_package else None,
    }
