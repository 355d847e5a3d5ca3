"""The catalogue's networks as Keras layer stacks, layer for layer as their sources build them.

Apart from catalogue.py so that listing, checking and parsing never load Keras: a network's
builder is looked up here only when it is built.
"""

from __future__ import annotations

from mnist_cnn.backend import import_keras
from mnist_cnn.data import INPUT_SHAPE, NUM_CLASSES
from mnist_cnn.models.batch_norm import BatchNormalization

keras = import_keras()  # quietly: TensorFlow's start-up notices muted, as for the command
layers = keras.layers


def _sequential(name: str, front: tuple, *body: layers.Layer) -> keras.Model:
    """The network as one flat stack, the training-only `front` layers (augmentation) first.

    The caller makes them before the network's own layers are made here, so a seed gives
    the same network it gave when `best`'s augmentation was written into `best` itself."""
    return keras.Sequential([keras.Input(shape=INPUT_SHAPE), *front, *body], name=name)


def conv32_conv64_dropout(*front: layers.Layer) -> keras.Model:
    return _sequential(
        "conv32-conv64-dropout",
        front,
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(NUM_CLASSES, activation="softmax"),
    )


def conv28_dense128(*front: layers.Layer) -> keras.Model:
    return _sequential(
        "conv28-dense128",
        front,
        layers.Conv2D(28, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(NUM_CLASSES, activation="softmax"),
    )


def conv64_conv32(*front: layers.Layer) -> keras.Model:
    return _sequential(
        "conv64-conv32",
        front,
        layers.Conv2D(64, 3, activation="relu"),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(NUM_CLASSES, activation="softmax"),
    )


def conv6_dense128(*front: layers.Layer) -> keras.Model:
    return _sequential(
        "conv6-dense128",
        front,
        layers.Conv2D(6, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2, strides=2),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(NUM_CLASSES, activation="softmax"),
    )


def conv32_conv64_dense128(*front: layers.Layer) -> keras.Model:
    return _sequential(
        "conv32-conv64-dense128",
        front,
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(NUM_CLASSES, activation="softmax"),
    )


def keras_example(*front: layers.Layer) -> keras.Model:
    """keras.io "Simple MNIST convnet" (fchollet)."""
    return _sequential(
        "keras-example",
        front,
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(NUM_CLASSES, activation="softmax"),
    )


def lenet5(*front: layers.Layer) -> keras.Model:
    """LeNet-5 (LeCun et al. 1998): tanh, average-pool subsampling, C5/F6 as dense layers.

    Adapted: 'same' padding on C1 stands in for padding the 28x28 digits to 32x32,
    full S2-C3 connectivity replaces the sparse table, and softmax replaces the RBF output.
    """
    return _sequential(
        "lenet5",
        front,
        layers.Conv2D(6, 5, padding="same", activation="tanh"),
        layers.AveragePooling2D(2),
        layers.Conv2D(16, 5, activation="tanh"),
        layers.AveragePooling2D(2),
        layers.Flatten(),
        layers.Dense(120, activation="tanh"),
        layers.Dense(84, activation="tanh"),
        layers.Dense(NUM_CLASSES, activation="softmax"),
    )


def fast(*front: layers.Layer) -> keras.Model:
    """Ours: the quickest way to 99% on a CPU (train_mnist_fast's shape, made lighter).

    train_mnist_fast's 24 5x5 filters on the 1-channel digit took 6 of a 16 ms step on a
    CPU (a 1-channel convolution keeps the vector units starved); 16 filters and a Dense128
    halve the step, and score higher on the validation split in one epoch. A second
    convolution of 48 filters (not 32) lifted the weakest of eleven seeds on validation and on
    shifted, turned and thickened validation digits, for 1.14x the fit (one run of 33 fresh
    processes each, 2026-12-03; three earlier runs of 11 on this noisy VM: 1.07x to 1.65x).
    """
    return _sequential(
        "fast",
        front,
        layers.Conv2D(16, 5, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(48, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        # float32 output, as Keras advises under mixed precision: exact softmax probabilities
        layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
    )


def _conv_bn(filters: int, kernel: int, **kwargs) -> list[layers.Layer]:
    """A bias-free convolution (batch norm has its own shift), batch norm, ReLU."""
    return [
        layers.Conv2D(filters, kernel, use_bias=False, **kwargs),
        BatchNormalization(),  # Keras's, trained with TensorFlow's fused kernel
        layers.ReLU(),
    ]


def _dense_bn(units: int) -> list[layers.Layer]:
    """Keras's own batch norm: a dense layer's 2-D output never takes the fused kernel."""
    return [layers.Dense(units, use_bias=False), layers.BatchNormalization(), layers.ReLU()]


def best(*front: layers.Layer) -> keras.Model:
    """Ours: the most accurate single model.

    The strongly augmented CNN of C. Deotte's Kaggle study (99.64% mean over 100 runs):
    stacked 3x3 convolutions with batch norm, learnable 5x5 stride-2 downsampling, dropout.
    Its rotation, zoom and shift (the recipe's augmentation) are one affine resampling per
    digit (as in the study's ImageDataGenerator), not Keras's three layers in a row, which
    blur the training digits.
    """
    return _deotte("best", front)


def robust(*front: layers.Layer) -> keras.Model:
    """Ours: `best`'s network for people's handwriting. What differs is its recipe: digits
    slanted, squashed and stretched, with thicker and thinner strokes and gaps cut in them."""
    return _deotte("robust", front)


def efficient(*front: layers.Layer) -> keras.Model:
    """Ours: the most accuracy per minute of fit. `best`'s network: annealed in 9 epochs it
    matched `best-pool`'s cheaper epochs annealed in 15 on validation, in less time."""
    return _deotte("efficient", front)


def _deotte(name: str, front: tuple) -> keras.Model:
    return _sequential(
        name,
        front,
        *_conv_bn(32, 3),
        *_conv_bn(32, 3),
        *_conv_bn(32, 5, strides=2, padding="same"),
        layers.Dropout(0.4),
        *_conv_bn(64, 3),
        *_conv_bn(64, 3),
        *_conv_bn(64, 5, strides=2, padding="same"),
        layers.Dropout(0.4),
        *_conv_bn(128, 4),
        layers.Flatten(),
        layers.Dropout(0.4),
        layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
    )


def best_k7(*front: layers.Layer) -> keras.Model:
    """A network unlike `best`, trained the same way: 7x7 kernels and no downsampling at all.

    After the M7 network of An et al. 2020 (four valid 7x7 convolutions with 48, 96, 144 and
    192 channels, batch norm, no pooling), at about two-fifths of its width so that it trains
    about as fast as `best` on a CPU. Tried as a member that would make other mistakes than
    `best` in an ensemble: it did not (README, "Best").
    """
    return _sequential(
        "best-k7",
        front,
        *_conv_bn(20, 7),
        *_conv_bn(40, 7),
        *_conv_bn(56, 7),
        *_conv_bn(72, 7),
        layers.Flatten(),
        layers.Dropout(0.4),
        layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
    )


def best_pool(*front: layers.Layer) -> keras.Model:
    """A network unlike `best`, trained the same way: 5x5 kernels, max pooling, a dense layer.

    Tried, like `best_k7`, as an ensemble member with other mistakes than `best`'s.
    """
    return _sequential(
        "best-pool",
        front,
        *_conv_bn(32, 5),
        *_conv_bn(32, 5),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        *_conv_bn(64, 3),
        *_conv_bn(64, 3),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Flatten(),
        *_dense_bn(256),
        layers.Dropout(0.4),
        layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
    )
