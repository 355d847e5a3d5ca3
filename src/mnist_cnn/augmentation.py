"""Elastic distortion, the augmentation that Keras lacks in a usable form.

Simard et al. (2003) bent each training digit by a smooth random displacement field, the
single augmentation that helped MNIST most. Keras 3's `RandomElasticTransform` loops over the
batch in Python and draws the same noise for both axes, so here is our own: a coarse grid of
random shifts, enlarged smoothly (bicubic) to one shift per pixel, then a bilinear resample.
It is built from `keras.ops` alone, so it runs under TensorFlow and JAX alike, and it is a
registered class, so a saved model that contains it loads in Keras's safe mode.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mnist_cnn")
class RandomElasticDistortion(keras.layers.Layer):
    """Bend each image by its own smooth random field; the identity outside training.

    `magnitude` is the standard deviation, in pixels, of the shift at each of the
    `grid` x `grid` control points; pixels between them move with their neighbours.
    The name starts with "Random" like Keras's own augmentation layers, which is how
    export recognises the training-only layers to leave out.
    """

    def __init__(self, magnitude: float = 1.0, grid: int = 4, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.magnitude = magnitude
        self.grid = grid
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        pixels = ops.cast(images[..., 0], "float32")  # (batch, height, width)
        height, width = images.shape[1], images.shape[2]
        coarse = keras.random.normal(
            (ops.shape(images)[0], self.grid, self.grid, 2),
            stddev=self.magnitude,
            seed=self.seed_generator,
        )
        field = ops.image.resize(coarse, (height, width), interpolation="bicubic")
        rows = ops.arange(height, dtype="float32")[None, :, None] + field[..., 0]
        cols = ops.arange(width, dtype="float32")[None, None, :] + field[..., 1]
        return ops.cast(_bilinear(pixels, rows, cols)[..., None], images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "magnitude": self.magnitude,
            "grid": self.grid,
            "seed": self.seed,
        }


def _bilinear(pixels, rows, cols):
    """Sample (batch, height, width) `pixels` at fractional `rows`, `cols`; zero outside."""
    height, width = pixels.shape[1], pixels.shape[2]
    flat = ops.reshape(pixels, (-1, height * width))
    top, left = ops.floor(rows), ops.floor(cols)
    down, right = rows - top, cols - left

    def at(row, col):
        inside = (row >= 0) & (row <= height - 1) & (col >= 0) & (col <= width - 1)
        index = ops.clip(row, 0, height - 1) * width + ops.clip(col, 0, width - 1)
        index = ops.reshape(ops.cast(index, "int32"), (-1, height * width))
        values = ops.reshape(ops.take_along_axis(flat, index, axis=1), ops.shape(rows))
        return values * ops.cast(inside, "float32")

    return (
        at(top, left) * (1 - down) * (1 - right)
        + at(top, left + 1) * (1 - down) * right
        + at(top + 1, left) * down * (1 - right)
        + at(top + 1, left + 1) * down * right
    )
