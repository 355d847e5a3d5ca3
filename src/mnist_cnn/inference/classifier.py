"""`Classifier`: load a trained model once, then read digits fast from arrays, images and files.

`model.predict` costs 60-90 ms per call on a CPU, whatever the batch, so a classifier that
calls it per image is slow. This one calls a compiled forward pass on batches, and
applies the temperature that `train` fitted on the validation split, so that a confidence
of 0.9 is right about 90% of the time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from mnist_cnn import evaluation, rundir, samples
from mnist_cnn.data import INPUT_SHAPE, imaging
from mnist_cnn.data.datasets import normalise
from mnist_cnn.inference import MIN_CONFIDENCE
from mnist_cnn.models import loading

BATCH = 1024


@dataclass
class Prediction:
    """One answer: the digit, its confidence, all ten probabilities and the top k."""

    digit: int
    confidence: float
    probabilities: list[float]
    top_k: list[tuple[int, float]]
    unsure: bool
    digits_seen: int = 1  # more than 1: the picture holds a number (read it with --multi)

    def to_dict(self) -> dict:
        return asdict(self)


class Classifier:
    """A trained model, loaded once, that answers "which digit?" for many inputs quickly."""

    def __init__(
        self,
        path: str | os.PathLike,
        min_confidence: float = MIN_CONFIDENCE,
        top_k: int = 3,
        threads: int | None = None,
        turns: tuple[float, ...] = (),
    ):
        """Load a model once.

        Args:
            path: a run directory, a `.keras` file, or an `.onnx` export (run by ONNX
                Runtime, with no TensorFlow).
            min_confidence: answers below it are marked unsure (the same default as
                `predict`, `serve` and the page).
            top_k: how many ranked alternatives each answer lists.
            threads: ONNX Runtime's threads (default: all cores).
            turns: also read each digit turned by these angles (degrees) and average the
                probabilities (`--for handwriting`: people's digits lean further than
                MNIST's). The same numpy code for every backend and ONNX.
        """
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.path = rundir.model_path(path, rundir.MODEL_SUFFIXES)
        self.temperature = rundir.temperature_of(self.path)
        self.min_confidence = min_confidence
        self.top_k = max(1, min(10, top_k))
        self.turns = tuple(float(angle) for angle in turns)
        if self.path.suffix == ".onnx":
            self.model = None
            self._forward = onnx_forward(self.path, threads)
        else:
            self.model = loading.load_model(self.path)
            self._forward = compiled_forward(self.model)
        self._forward(np.zeros((1, *INPUT_SHAPE), np.float32))  # compile once, now

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for MNIST-style digits.

        Args:
            images: uint8 digits (N, 28, 28) or one (28, 28), white on black.

        Returns:
            An (N, 10) array: each row sums to 1, after the run's temperature.
        """
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[np.newaxis]
        if not self.turns:
            return evaluation.apply_temperature(self._raw(images), self.temperature)
        views = np.concatenate([images, *(turned(images, angle) for angle in self.turns)])
        calibrated = evaluation.apply_temperature(self._raw(views), self.temperature)
        return calibrated.reshape(len(self.turns) + 1, len(images), -1).mean(axis=0)

    def _raw(self, images: np.ndarray) -> np.ndarray:
        """The model's own probabilities, in batches of BATCH."""
        if len(images) <= BATCH:  # the common case, one call and no copy
            return self._forward(normalise(images))
        return np.concatenate(
            [self._forward(normalise(images[i : i + BATCH])) for i in range(0, len(images), BATCH)]
        )

    def predict_arrays(self, images: np.ndarray) -> list[Prediction]:
        """Answers for MNIST-style digits (already 28x28, white on black).

        Args:
            images: uint8 digits (N, 28, 28).

        Returns:
            One `Prediction` per digit.
        """
        return [self._answer(p) for p in self.probabilities(images)]

    def predict_images(
        self, sources: list[imaging.Source], names: list[str] | None = None
    ) -> list[tuple[imaging.Preprocessed | imaging.ImageError, Prediction | None]]:
        """Answers for any images, each made MNIST-style first (`imaging.to_mnist`).

        Args:
            sources: paths, bytes, PIL images or arrays, of any size: photos, scans, canvases.
            names: how errors name each input (default: its path).

        Returns:
            (preprocessed, prediction) per input, in order. An input that cannot be read gets
            (its ImageError, None); the others are still answered, together in one batch.
        """
        names = names or [None] * len(sources)
        prepared = [self.prepare(s, n) for s, n in zip(sources, names, strict=True)]
        good = [p.image for p in prepared if isinstance(p, imaging.Preprocessed)]
        answers = iter(self.predict_arrays(np.stack(good)) if good else [])
        return [
            (p, _several(next(answers), p) if isinstance(p, imaging.Preprocessed) else None)
            for p in prepared
        ]

    def predict_number(self, source: imaging.Source, name: str | None = None) -> dict:
        """Read a number written in a row (`predict --multi`).

        Args:
            source: a path, bytes, PIL image or array of a row of digits.
            name: how errors name the input.

        Returns:
            `number` (the digits as text), `confidence` (their product), `unsure`, and
            `digits`: each digit's answer, left to right.
        """
        digits = imaging.split_digits(source, name)
        answers = self.predict_arrays(np.stack([d.image for d in digits]))
        return {
            "number": "".join(str(a.digit) for a in answers),
            "confidence": float(np.prod([a.confidence for a in answers])),
            "unsure": any(a.unsure for a in answers),
            "digits": [a.to_dict() for a in answers],
        }

    @staticmethod
    def prepare(source, name: str | None = None) -> imaging.Preprocessed | imaging.ImageError:
        try:
            return imaging.to_mnist(source, name)
        except imaging.ImageError as exc:
            return exc

    def _answer(self, probabilities: np.ndarray) -> Prediction:
        return answer(probabilities, self.top_k, self.min_confidence)


def turned(images: np.ndarray, angle: float) -> np.ndarray:
    """uint8 digits (N, 28, 28) turned by `angle` degrees about the image's centre."""
    from scipy import ndimage

    rotated = ndimage.rotate(images.astype(np.float32), angle, axes=(2, 1), reshape=False, order=1)
    return np.clip(rotated, 0, 255).round().astype(np.uint8)


def answer(
    probabilities: np.ndarray, top_k: int = 3, min_confidence: float = MIN_CONFIDENCE
) -> Prediction:
    """The answer one digit's probabilities give (the same wherever they were computed)."""
    order = np.argsort(probabilities, kind="stable")[::-1]
    digit = int(order[0])
    confidence = float(probabilities[digit])
    return Prediction(
        digit=digit,
        confidence=confidence,
        probabilities=[float(p) for p in probabilities],
        top_k=[(int(d), float(probabilities[d])) for d in order[:top_k]],
        unsure=confidence < min_confidence,
    )


def _several(prediction: Prediction, prepared: imaging.Preprocessed) -> Prediction:
    """A picture that clearly holds a row of digits gets no confident-looking single digit:
    it is marked unsure with the count, so every output can say "read it with --multi"."""
    if prepared.digits_seen < 2:
        return prediction
    return replace(prediction, unsure=True, digits_seen=prepared.digits_seen)


def compiled_forward(model) -> Callable[[np.ndarray], np.ndarray]:
    """The fastest compiled forward pass for a batch of normalised digits, on this backend.

    Backend-specific (TensorFlow): `predict_on_batch` spends ~0.2 ms per call on Keras's
    data handling (measured: 0.59 ms against 0.38 ms for one digit), so TensorFlow gets a
    concrete `tf.function` of the model's call. Other backends (JAX: ~0.13 ms) use
    `predict_on_batch` as it is.
    """
    from mnist_cnn.backend import import_keras

    if import_keras().backend.backend() != "tensorflow":
        return lambda x: np.asarray(model.predict_on_batch(x))
    import tensorflow as tf

    call = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
    ).get_concrete_function()
    return lambda x: call(tf.constant(x)).numpy()


def onnx_forward(path: str | os.PathLike, threads: int | None = None):
    """ONNX Runtime's forward pass for an exported model, in batches of BATCH digits.

    Spinning is off: idle worker threads otherwise burn ~1 ms of CPU after every call,
    which a server answering one digit at a time pays on each request.
    """
    try:
        import onnxruntime
    except ImportError:
        raise rundir.RunError(
            f"{path}: running an .onnx model needs ONNX Runtime (pip install 'mnist-cnn[onnx]')"
        ) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ONNX Runtime raises its own types for a bad file
        raise rundir.RunError(f"{path}: cannot load the ONNX model ({exc})") from None
    name = session.get_inputs()[0].name

    def forward(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        parts = [session.run(None, {name: x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    return forward


def image_files(inputs: list[str]) -> list[Path | str]:
    """Expand files, folders (their images, sorted) and globs; "-" (stdin) passes through;
    `samples:NAME` is the packaged sample's file (SampleError if there is no such sample)."""
    import glob

    found: list[Path | str] = []
    for item in inputs:
        if item == "-":
            found.append(item)
        elif (sample := samples.from_input(item)) is not None:
            found.append(sample)
        elif Path(item).is_dir():
            found += sorted(
                p for p in Path(item).iterdir() if p.suffix.lower() in imaging.IMAGE_SUFFIXES
            )
        elif glob.has_magic(item):
            found += [Path(p) for p in sorted(glob.glob(item))] or [Path(item)]
        else:
            found.append(Path(item))
    return found
