"""The named models: each a Keras architecture plus the training recipe it was published with.

Every tutorial network is built layer for layer as its source describes, so that
`mnist-cnn train NAME` reproduces it. One rule overrides the sources: validation never
uses the test set. Where a tutorial validated on the test set (or not at all), we hold
out the last part of the training set instead, and the entry says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from mnist_cnn.models.settings import Augmentation, Recipe

HELD_OUT = 0.1  # validation fraction used where the source validated on test data or not at all


class UnknownModelError(Exception):
    """A model name that is not in the catalogue."""


@dataclass(frozen=True)
class Entry:
    """A catalogue entry: how to build it, how to train it, where it comes from."""

    name: str
    summary: str
    build: Callable  # build(*front) -> keras.Model: `front` layers go before the first
    recipe: Recipe
    source: str
    published: str
    validation_note: str
    origin: dict | None = None  # a network of the user's: what made it (architecture.py)
    parameters: int | None = None  # a catalogue network's, kept so listing needs no Keras

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


def _network(builder: str) -> Callable:
    """networks.BUILDER, imported (with Keras) only when a network is built."""

    def build(*front):
        return getattr(importlib.import_module(".networks", __package__), builder)(*front)

    build.__name__ = builder
    return build


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
# For people's own handwriting: best's recipe with what the robustness suite measures added
# to the augmentation (chosen on the validation split and a suite of validation digits).
_ROBUST_RECIPE = replace(
    _BEST_RECIPE,
    epochs=30,
    augmentation=Augmentation(
        rotation=15, zoom=0.1, shift=0.1, shear=0.3, aspect=0.4, stroke=0.5, erase=0.5
    ),
)
# The most accuracy per minute: best's network and recipe, annealed in EPOCHS_EFFICIENT
# epochs instead of 60 (chosen on the validation split against best-pool's network at 15),
# batch norm's statistics then measured on clean digits (lower validation loss on 3 seeds).
EPOCHS_EFFICIENT = 9
_EFFICIENT_RECIPE = replace(_BEST_RECIPE, epochs=EPOCHS_EFFICIENT, batch_norm_refresh=4096)
_HELD_OUT_NOTE = f"last {HELD_OUT:.0%} of train"
_SELECTS_NOTE = "last 5% of train (selects by validation loss)"  # best's recipe and those on it

ENTRIES: dict[str, Entry] = {
    entry.name: entry
    for entry in (
        Entry(
            name="conv32-conv64-dropout",
            summary="Conv32, Pool, Conv64, Pool, Flatten, Dropout 0.3, Dense10",
            build=_network("conv32_conv64_dropout"),
            parameters=34_826,
            recipe=Recipe(epochs=10, batch_size=32, validation_split=0.3, loss="categorical"),
            source="tutorial notebook (Adam, one-hot CE, validation_split 0.3)",
            published="~98.9% validation",
            validation_note="last 30% of train (as published)",
        ),
        Entry(
            name="conv28-dense128",
            summary="Conv28, Pool, Flatten, Dense128, Dropout 0.2, Dense10",
            build=_network("conv28_dense128"),
            parameters=607_394,
            recipe=Recipe(epochs=1, batch_size=32, validation_split=HELD_OUT, loss="sparse"),
            source="tutorial notebook (Adam, sparse CE, 1 epoch)",
            published="11.35% test (a broken run; done right ~98%)",
            validation_note=f"{_HELD_OUT_NOTE} (published: none)",
        ),
        Entry(
            name="conv64-conv32",
            summary="Conv64, Conv32, Pool, Flatten, Dense10",
            build=_network("conv64_conv32"),
            parameters=65_194,
            recipe=Recipe(epochs=10, batch_size=32, validation_split=HELD_OUT, loss="categorical"),
            source="tutorial notebook (Adam, one-hot CE, validated on test)",
            published="98.15% test",
            validation_note=f"{_HELD_OUT_NOTE} (published: the test set)",
        ),
        Entry(
            name="conv6-dense128",
            summary="Conv6 same, Pool/2, Flatten, Dense128, Dense10",
            build=_network("conv6_dense128"),
            parameters=152_006,
            recipe=Recipe(epochs=10, batch_size=100, validation_split=HELD_OUT, loss="categorical"),
            source="tutorial notebook (Adam, one-hot CE, batch 100)",
            published="not stated",
            validation_note=f"{_HELD_OUT_NOTE} (published: none)",
        ),
        Entry(
            name="conv32-conv64-dense128",
            summary="Conv32, Pool, Conv64, Pool, Flatten, Dense128, Dense10",
            build=_network("conv32_conv64_dense128"),
            parameters=225_034,
            recipe=Recipe(epochs=5, batch_size=32, validation_split=HELD_OUT, loss="sparse"),
            source="tutorial notebook (Adam, sparse CE, validated on test)",
            published="~99% test",
            validation_note=f"{_HELD_OUT_NOTE} (published: the test set)",
        ),
        Entry(
            name="keras-example",
            summary="Conv32, Pool, Conv64, Pool, Flatten, Dropout 0.5, Dense10",
            build=_network("keras_example"),
            parameters=34_826,
            recipe=Recipe(epochs=15, batch_size=128, validation_split=0.1, loss="categorical"),
            source='keras.io "Simple MNIST convnet"',
            published="99.22% test",
            validation_note="last 10% of train (as published)",
        ),
        Entry(
            name="lenet5",
            summary="LeNet-5: Conv6 5x5 tanh, AvgPool, Conv16 5x5, AvgPool, Dense120, 84, 10",
            build=_network("lenet5"),
            parameters=61_706,
            recipe=Recipe(epochs=20, batch_size=128, validation_split=HELD_OUT, loss="sparse"),
            source="LeCun et al. 1998, adapted (Adam instead of its SGD schedule)",
            published="~99.2% test",
            validation_note=f"{_HELD_OUT_NOTE} (published: none)",
        ),
        Entry(
            name="fast",
            summary="Conv16 5x5, Pool, Conv48, Pool, Flatten, Dense128, Dense10",
            build=_network("fast"),
            parameters=162_394,
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
                precision="float32",  # bf16 is slower on a CPU without AMX (29 vs 19 ms/step)
            ),
            source="ours: train_mnist_fast's net, lighter; one epoch of one-cycle Adam, label "
            "smoothing (chosen on the validation split)",
            published="99% test in one GPU epoch (train_mnist_fast)",
            validation_note="last 5% of train",
        ),
        Entry(
            name="efficient",
            summary=f"best's network and recipe, one-cycle annealed in {EPOCHS_EFFICIENT} epochs",
            build=_network("efficient"),
            parameters=326_826,
            recipe=_EFFICIENT_RECIPE,
            source=f"ours: best's network and recipe in {EPOCHS_EFFICIENT} of its "
            f"{_BEST_RECIPE.epochs} epochs, batch norm measured again after fit (both chosen "
            "on the validation split)",
            published="none (ours)",
            validation_note=_SELECTS_NOTE,
        ),
        Entry(
            name="best",
            summary="augment (1 affine); Conv32 x2, Conv32 5x5/2, Conv64 x2, Conv64 5x5/2, "
            "Conv128 4x4; BN",
            build=_network("best"),
            parameters=326_826,
            recipe=_BEST_RECIPE,
            source="ours: Deotte's augmented CNN, one-cycle Adam, label smoothing, "
            "the epoch of lowest validation loss",
            published="99.64% mean single model, 99.75% ensemble (Kaggle)",
            validation_note=_SELECTS_NOTE,
        ),
        Entry(
            name="robust",
            summary="best's network; augment (1 affine with slant and aspect; stroke width, gaps)",
            build=_network("robust"),
            parameters=326_826,
            recipe=_ROBUST_RECIPE,
            source="ours: best for people's handwriting, augmented with what the robustness "
            "suite measures",
            published="none (ours)",
            validation_note=_SELECTS_NOTE,
        ),
        Entry(
            name="best-k7",
            summary="augment (1 affine); Conv20, 40, 56, 72 7x7, no pooling; BN",
            build=_network("best_k7"),
            parameters=359_790,
            recipe=_BEST_RECIPE,
            source="ours: An et al. 2020's M7 at two-fifths of its width, best's recipe",
            published="full width: in a 99.87% vote, epochs picked on test (An et al.)",
            validation_note=_SELECTS_NOTE,
        ),
        Entry(
            name="best-pool",
            summary="augment (1 affine); Conv32 5x5 x2, Pool, Conv64 x2, Pool, Dense256; BN",
            build=_network("best_pool"),
            parameters=233_514,
            recipe=_BEST_RECIPE,
            source="ours: a 5x5, max-pooling network with best's recipe",
            published="none (ours)",
            validation_note=_SELECTS_NOTE,
        ),
    )
}


def get_entry(name: str) -> Entry:
    """The entry called `name`, or an error that lists the names there are."""
    try:
        return ENTRIES[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(str(name), ENTRIES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}; {hint}run 'mnist-cnn models' to list them "
            f"({', '.join(ENTRIES)})"
        ) from None
