"""The named models: each a Keras architecture plus the training recipe it was published with.

Every tutorial network is built layer for layer as its source describes, so that
`mnist-cnn train NAME` reproduces it. One rule overrides the sources: validation never
uses the test set. Where a tutorial validated on the test set (or not at all), we hold
out the last part of the training set instead, and the entry says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import keras
from keras import layers

from .settings import Augmentation, Recipe

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
HELD_OUT = 0.1  # validation fraction used where the source validated on test data or not at all


class UnknownModelError(Exception):
    """A model name that is not in the catalogue."""


@dataclass(frozen=True)
class Entry:
    """A catalogue entry: how to build it, how to train it, where it comes from."""

    name: str
    summary: str
    build: Callable[..., keras.Model]  # build(*front): `front` layers go before the first
    recipe: Recipe
    source: str
    published: str
    validation_note: str
    origin: dict | None = None  # a network of the user's: what made it (architecture.py)

    def describe(self) -> dict:
        """A plain dict for listings and config.json."""
        described = {
            "name": self.name,
            "summary": self.summary,
            "recipe": asdict(self.recipe),
            "source": self.source,
            "published": self.published,
            "validation": self.validation_note,
        }
        return described if self.origin is None else {**described, "origin": self.origin}


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
    """Ours: the quickest way to 99% on a CPU (after train_mnist_fast's small network)."""
    return _sequential(
        "fast",
        front,
        layers.Conv2D(24, 5, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(256, activation="relu"),
        # float32 output, as Keras advises under mixed precision: exact softmax probabilities
        layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
    )


def _conv_bn(filters: int, kernel: int, **kwargs) -> list[layers.Layer]:
    """A bias-free convolution (batch norm has its own shift), batch norm, ReLU."""
    return [
        layers.Conv2D(filters, kernel, use_bias=False, **kwargs),
        layers.BatchNormalization(),
        layers.ReLU(),
    ]


def _dense_bn(units: int) -> list[layers.Layer]:
    return [layers.Dense(units, use_bias=False), layers.BatchNormalization(), layers.ReLU()]


def best(*front: layers.Layer) -> keras.Model:
    """Ours: the most accurate single model.

    The strongly augmented CNN of C. Deotte's Kaggle study (99.64% mean over 100 runs):
    stacked 3x3 convolutions with batch norm, learnable 5x5 stride-2 downsampling, dropout.
    Its rotation, zoom and shift (the recipe's augmentation) are one affine resampling per
    digit (as in the study's ImageDataGenerator), not Keras's three layers in a row, which
    blur the training digits.
    """
    return _sequential(
        "best",
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


_BEST_RECIPE = Recipe(
    epochs=60,
    batch_size=128,
    validation_split=0.05,
    loss="categorical",
    label_smoothing=0.1,
    learning_rate=3e-3,
    schedule="one-cycle",
    warmup=0.2,
    steps_per_execution=8,
    precision="mixed_bfloat16",
    select_best=True,
    augmentation=Augmentation(rotation=10, zoom=0.1, shift=0.1),  # Deotte's
)
_HELD_OUT_NOTE = f"last {HELD_OUT:.0%} of train"

ENTRIES: dict[str, Entry] = {
    entry.name: entry
    for entry in (
        Entry(
            name="conv32-conv64-dropout",
            summary="Conv32, Pool, Conv64, Pool, Flatten, Dropout 0.3, Dense10",
            build=conv32_conv64_dropout,
            recipe=Recipe(epochs=10, batch_size=32, validation_split=0.3, loss="categorical"),
            source="tutorial notebook (Adam, one-hot CE, validation_split 0.3)",
            published="~98.9% validation",
            validation_note="last 30% of train (as published)",
        ),
        Entry(
            name="conv28-dense128",
            summary="Conv28, Pool, Flatten, Dense128, Dropout 0.2, Dense10",
            build=conv28_dense128,
            recipe=Recipe(epochs=1, batch_size=32, validation_split=HELD_OUT, loss="sparse"),
            source="tutorial notebook (Adam, sparse CE, 1 epoch)",
            published="11.35% test (a broken run; done right ~98%)",
            validation_note=f"{_HELD_OUT_NOTE} (published: none)",
        ),
        Entry(
            name="conv64-conv32",
            summary="Conv64, Conv32, Pool, Flatten, Dense10",
            build=conv64_conv32,
            recipe=Recipe(epochs=10, batch_size=32, validation_split=HELD_OUT, loss="categorical"),
            source="tutorial notebook (Adam, one-hot CE, validated on test)",
            published="98.15% test",
            validation_note=f"{_HELD_OUT_NOTE} (published: the test set)",
        ),
        Entry(
            name="conv6-dense128",
            summary="Conv6 same, Pool/2, Flatten, Dense128, Dense10",
            build=conv6_dense128,
            recipe=Recipe(epochs=10, batch_size=100, validation_split=HELD_OUT, loss="categorical"),
            source="tutorial notebook (Adam, one-hot CE, batch 100)",
            published="not stated",
            validation_note=f"{_HELD_OUT_NOTE} (published: none)",
        ),
        Entry(
            name="conv32-conv64-dense128",
            summary="Conv32, Pool, Conv64, Pool, Flatten, Dense128, Dense10",
            build=conv32_conv64_dense128,
            recipe=Recipe(epochs=5, batch_size=32, validation_split=HELD_OUT, loss="sparse"),
            source="tutorial notebook (Adam, sparse CE, validated on test)",
            published="~99% test",
            validation_note=f"{_HELD_OUT_NOTE} (published: the test set)",
        ),
        Entry(
            name="keras-example",
            summary="Conv32, Pool, Conv64, Pool, Flatten, Dropout 0.5, Dense10",
            build=keras_example,
            recipe=Recipe(epochs=15, batch_size=128, validation_split=0.1, loss="categorical"),
            source='keras.io "Simple MNIST convnet"',
            published="99.22% test",
            validation_note="last 10% of train (as published)",
        ),
        Entry(
            name="lenet5",
            summary="LeNet-5: Conv6 5x5 tanh, AvgPool, Conv16 5x5, AvgPool, Dense120, 84, 10",
            build=lenet5,
            recipe=Recipe(epochs=20, batch_size=128, validation_split=HELD_OUT, loss="sparse"),
            source="LeCun et al. 1998, adapted (Adam instead of its SGD schedule)",
            published="~99.2% test",
            validation_note=f"{_HELD_OUT_NOTE} (published: none)",
        ),
        Entry(
            name="fast",
            summary="Conv24 5x5, Pool, Conv32, Pool, Flatten, Dense256, Dense10",
            build=fast,
            recipe=Recipe(
                epochs=1,
                batch_size=128,
                validation_split=0.05,
                loss="categorical",
                label_smoothing=0.1,
                learning_rate=1e-2,
                schedule="one-cycle",
                warmup=0.25,
                steps_per_execution=8,
                precision="mixed_bfloat16",
            ),
            source="ours: train_mnist_fast's net; one epoch of one-cycle Adam, label smoothing, "
            "bf16",
            published="99% test in one GPU epoch (train_mnist_fast)",
            validation_note="last 5% of train",
        ),
        Entry(
            name="best",
            summary="augment (1 affine); Conv32 x2, Conv32 5x5/2, Conv64 x2, Conv64 5x5/2, "
            "Conv128 4x4; BN",
            build=best,
            recipe=_BEST_RECIPE,
            source="ours: Deotte's augmented CNN, one-cycle Adam, label smoothing, "
            "the epoch of lowest validation loss",
            published="99.64% mean single model, 99.75% ensemble (Kaggle)",
            validation_note="last 5% of train (selects by validation loss)",
        ),
        Entry(
            name="best-k7",
            summary="augment (1 affine); Conv20, 40, 56, 72 7x7, no pooling; BN",
            build=best_k7,
            recipe=_BEST_RECIPE,
            source="ours: An et al. 2020's M7 at two-fifths of its width, best's recipe",
            published="full width: in a 99.87% vote, epochs picked on test (An et al.)",
            validation_note="last 5% of train (selects by validation loss)",
        ),
        Entry(
            name="best-pool",
            summary="augment (1 affine); Conv32 5x5 x2, Pool, Conv64 x2, Pool, Dense256; BN",
            build=best_pool,
            recipe=_BEST_RECIPE,
            source="ours: a 5x5, max-pooling network with best's recipe",
            published="none (ours)",
            validation_note="last 5% of train (selects by validation loss)",
        ),
    )
}


def get_entry(name: str) -> Entry:
    """The entry called `name`, or an error that lists the names there are."""
    try:
        return ENTRIES[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; run 'mnist-cnn models' to list them ({', '.join(ENTRIES)})"
        ) from None
