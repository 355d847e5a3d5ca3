"""Batch norm's statistics, measured again after fit on clean training digits.

During fit each batch norm keeps a running average of the batches it saw: augmented digits,
under weights that kept moving. At inference it normalises clean digits with those averages.
Measured after fit instead (in inference mode, layer by layer, on digits as they come), the
statistics are those of the digits and weights it will be used with: on `efficient`'s
validation split this lowered the loss of all three seeds (docs/benchmarks.md), and a
one-cycle squeezed into a few hundred steps no longer collapses at inference.
"""

from __future__ import annotations

import numpy as np

from mnist_cnn.backend import import_keras

keras = import_keras()

BATCH = 512


def refresh(model, images: np.ndarray, count: int, seed: int = 0) -> int:
    """Set every batch norm's moving mean and variance to those of its input, in inference
    mode, over `count` of `images` (float32, as the model takes them) picked at random.

    The layers are done in order, each after the ones before it, so that each sees what it
    will see at inference. Returns how many batch norms were set (0: the model has none).
    """
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms or count <= 0:
        return 0
    picked = np.random.default_rng(seed).permutation(len(images))[:count]
    digits = images[np.sort(picked)]
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # as it is called
    for norm in norms:
        upstream = keras.Model(inputs, norm.input)
        mean, variance = _moments(upstream, digits, norm.axis)
        norm.moving_mean.assign(mean.astype(np.float32))
        norm.moving_variance.assign(variance.astype(np.float32))
    return len(norms)


def _moments(upstream, digits: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (biased, as batch norm's) variance of `upstream`'s output."""
    total = total_squares = 0.0
    seen = 0
    for start in range(0, len(digits), BATCH):
        out = keras.ops.convert_to_numpy(
            keras.ops.cast(upstream(digits[start : start + BATCH], training=False), "float32")
        ).astype(np.float64)
        out = np.moveaxis(out, axis, -1).reshape(-1, out.shape[axis])
        total = total + out.sum(axis=0)
        total_squares = total_squares + (out**2).sum(axis=0)
        seen += len(out)
    mean = total / seen
    return mean, np.maximum(total_squares / seen - mean**2, 0.0)
