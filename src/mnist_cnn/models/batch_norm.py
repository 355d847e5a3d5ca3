"""Batch norm that trains with TensorFlow's fused kernel: the same maths, a third of the time.

Keras 3 trains `BatchNormalization` as separate ops (the input cast to float32, its mean,
its variance, the normalisation, the cast back) on every backend. On this project's 2-core
CPU that made batch norm a third of `best`'s training step, as much as the convolutions on
the 26x26 and 24x24 maps. TensorFlow's fused kernel (the one Keras 2 used by default) does
it in one pass: `best`'s batch norms forward and backward in a third of the time, its whole
training step in 0.70x (`benchmarks/epoch_profile.py`, docs/benchmarks.md). Registered, so
a saved model containing it loads in Keras's safe mode; anywhere it does not pay or cannot
be used (inference, maps of 1x1, the JAX backend, a mask) it is Keras's own.
"""

from __future__ import annotations

from mnist_cnn.backend import import_keras

keras = import_keras()  # quietly: TensorFlow's start-up notices muted, as for the command
ops = keras.ops

FUSED_DTYPES = ("float32", "bfloat16", "float16")


@keras.saving.register_keras_serializable(package="mnist_cnn")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras's batch norm; in training under TensorFlow, one fused kernel.

    As Keras does it: the batch is normalised by its own mean and biased variance, and the
    moving averages follow them by the layer's momentum. The kernel returns the variance
    with Bessel's correction, which is taken off before it reaches the moving average.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training is True and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones((channels,), "float32")
        beta = tf.cast(self.beta, "float32") if self.center else tf.zeros((channels,), "float32")
        normalised, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True
        )
        count = tf.cast(tf.size(inputs) // channels, "float32")
        variance = variance * (count - 1) / tf.maximum(count, 1.0)  # biased, as Keras's
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1 - self.momentum)
        )
        return ops.cast(normalised, self.compute_dtype)

    def _fusable(self, inputs, mask) -> bool:
        """TensorFlow, NHWC maps larger than 1x1 (on `best`'s 1x1x128 map the fused kernel
        was 2x slower than Keras's ops), nothing Keras-only."""
        shape = inputs.shape
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(shape) == 4
            and self.axis in (-1, 3)
            and (shape[1] or 2) * (shape[2] or 2) > 1
            and keras.backend.standardize_dtype(inputs.dtype) in FUSED_DTYPES
            and self.epsilon >= 1.001e-5  # the kernel's least
        )
