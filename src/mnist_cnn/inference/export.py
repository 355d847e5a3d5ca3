"""Export a trained model for deployment (ONNX, SavedModel, TFLite), checked for parity.

Keras's own `model.export` does the work. The exported copy is float32 (ONNX Runtime and
TFLite have no bfloat16 convolutions), built from the same weights. Every export is run
beside the Keras model on 1,000 test digits; if the probabilities differ by more than
1e-4 or any digit differs, the export is removed and an `ExportError` is raised.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mnist_cnn import rundir
from mnist_cnn.backend import import_keras, native_stderr_muted
from mnist_cnn.data import INPUT_SHAPE, datasets, sources
from mnist_cnn.errors import first_line
from mnist_cnn.models.augmentation import without_augmentation
from mnist_cnn.models.ensemble import ensemble_of, members_of
from mnist_cnn.models.loading import load_model, with_precision

keras = import_keras()

# format name -> (Keras's name for it, the file or folder written into the run directory;
# beside a model file of your own, mnist.h5, it is mnist.onnx, mnist_saved_model, ...)
FORMATS = {
    "onnx": ("onnx", "model.onnx"),
    "saved_model": ("tf_saved_model", "saved_model"),
    "tflite": ("litert", "model.tflite"),
}
PARITY_DIGITS = 1000
MAX_DIFFERENCE = 1e-4


class ExportError(Exception):
    """An export that failed, or whose output does not behave like the Keras model."""


@dataclass
class Parity:
    """How the exported model compares with the Keras model on the same test digits."""

    digits: int
    max_difference: float
    disagreements: int
    # The same, against the model as trained when it trained in mixed precision (for the record)
    trained_max_difference: float | None = None
    trained_disagreements: int | None = None

    @property
    def ok(self) -> bool:
        return self.max_difference <= MAX_DIFFERENCE and self.disagreements == 0

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "tolerance": MAX_DIFFERENCE}


def inference_copy(model: keras.Model) -> keras.Model:
    """The model as it runs at inference: float32, and without its training-only augmentation
    layers (identity at inference, but their random ops would be traced into the export)."""
    members = members_of(model)
    if members:  # an ensemble: rebuild it from the same members without augmentation
        return ensemble_of([_plain(member) for member in members], model.name)
    return _plain(model)


def _plain(net: keras.Model) -> keras.Model:
    return with_precision(without_augmentation(net), "float32")


def runner(path: Path, fmt: str):
    """A function from normalised digits (N, 28, 28, 1) to probabilities, for an export."""
    if fmt == "onnx":
        from mnist_cnn.inference.classifier import onnx_forward

        return onnx_forward(path)
    import tensorflow as tf

    if fmt == "saved_model":
        loaded = tf.saved_model.load(str(path))
        return lambda x: loaded.serve(tf.constant(x)).numpy()
    interpreter = tf.lite.Interpreter(model_path=str(path))
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(source["index"], list(x.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], x.astype(np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(sink["index"]).copy()

    return run


def export_model(
    model_path: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike | None = None,
    data_dir: str | None = None,
) -> tuple[Path, Parity]:
    """Export a run's model as `fmt`, check parity, and return where it went and the check."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    keras_format, filename = FORMATS[fmt]
    source = rundir.model_path(model_path)
    if source.name != rundir.MODEL:  # a model file of your own: mnist.h5 -> mnist.onnx
        kind = "_saved_model" if fmt == "saved_model" else Path(filename).suffix
        filename = source.stem + kind
    target = Path(out) if out else source.parent / filename
    trained = load_model(source)
    model = inference_copy(trained)
    model(np.zeros((1, *INPUT_SHAPE), np.float32))  # Keras exports only a model that has run

    _, (x_test, _) = sources.load_dataset(rundir.dataset_of(source), data_dir)
    digits = datasets.normalise(x_test[:PARITY_DIGITS])

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staged = work / target.name
    try:
        try:
            with warnings.catch_warnings(), native_stderr_muted():  # converters' chatter
                warnings.simplefilter("ignore")
                model.export(str(staged), format=keras_format, verbose=False)
        except Exception as exc:  # converters raise many types; all mean "could not export"
            raise ExportError(f"cannot export to {fmt}: {first_line(exc)}") from exc
        with warnings.catch_warnings(), native_stderr_muted():  # TF Lite's INFO line
            warnings.simplefilter("ignore")
            exported = runner(staged, fmt)(digits)
        parity = compare(exported, np.asarray(model.predict(digits, verbose=0)))
        if model is not trained:
            reference = compare(exported, np.asarray(trained.predict(digits, verbose=0)))
            parity.trained_max_difference = reference.max_difference
            parity.trained_disagreements = reference.disagreements
        if not parity.ok:
            raise ExportError(
                f"the {fmt} export does not match the Keras model on {parity.digits} test "
                f"digits: max probability difference {parity.max_difference:.2e} "
                f"(allowed {MAX_DIFFERENCE:.0e}), {parity.disagreements} digits differ; "
                f"nothing was written"
            )
        _replace(staged, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target, parity


def compare(exported: np.ndarray, expected: np.ndarray) -> Parity:
    return Parity(
        digits=len(expected),
        max_difference=float(np.abs(exported - expected).max()),
        disagreements=int((exported.argmax(1) != expected.argmax(1)).sum()),
    )


def _replace(staged: Path, target: Path) -> None:
    """Move a finished export into place; an older export there is replaced only then."""
    if target.is_dir() and not target.is_symlink():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        staged.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, target)
