"""Every catalogue entry builds with its documented layers and parameter count."""

from __future__ import annotations

import pytest

from mnist_cnn.backend import import_keras

import_keras()

from mnist_cnn import training  # noqa: E402
from mnist_cnn.models import catalogue  # noqa: E402

# (layer types in order, trainable parameters), worked out by hand from each source.
EXPECTED = {
    "conv32-conv64-dropout": (
        ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"],
        320 + 18_496 + 1_600 * 10 + 10,
    ),
    "conv28-dense128": (
        ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"],
        280 + 13 * 13 * 28 * 128 + 128 + 1_290,
    ),
    "conv64-conv32": (
        ["Conv2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense"],
        640 + 18_464 + 12 * 12 * 32 * 10 + 10,
    ),
    "conv6-dense128": (
        ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"],
        60 + 14 * 14 * 6 * 128 + 128 + 1_290,
    ),
    "conv32-conv64-dense128": (
        ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"],
        320 + 18_496 + 1_600 * 128 + 128 + 1_290,
    ),
    "keras-example": (
        ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"],
        34_826,
    ),
    "fast": (
        ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"],
        416 + 6_960 + 1_200 * 128 + 128 + 1_290,
    ),
    "best": (
        ["RandomAffine"]
        + ["Conv2D", "BatchNormalization", "ReLU"] * 3
        + ["Dropout"]
        + ["Conv2D", "BatchNormalization", "ReLU"] * 3
        + ["Dropout", "Conv2D", "BatchNormalization", "ReLU", "Flatten", "Dropout", "Dense"],
        (288 + 9_216 + 25_600 + 18_432 + 36_864 + 102_400 + 131_072)  # convolutions, no bias
        + 4 * (3 * 32 + 3 * 64 + 128)  # batch norm: gamma, beta, moving mean and variance
        + 1_290,
    ),
    "best-k7": (
        ["RandomAffine"]
        + ["Conv2D", "BatchNormalization", "ReLU"] * 4
        + ["Flatten", "Dropout", "Dense"],
        49 * (20 + 20 * 40 + 40 * 56 + 56 * 72)  # 7x7 convolutions, no bias
        + 4 * (20 + 40 + 56 + 72)
        + 4 * 4 * 72 * 10  # 28 -> 22 -> 16 -> 10 -> 4 pixels: valid 7x7, nothing pooled
        + 10,
    ),
    "best-pool": (
        ["RandomAffine"]
        + ["Conv2D", "BatchNormalization", "ReLU"] * 2
        + ["MaxPooling2D", "Dropout"]
        + ["Conv2D", "BatchNormalization", "ReLU"] * 2
        + ["MaxPooling2D", "Dropout", "Flatten", "Dense", "BatchNormalization", "ReLU"]
        + ["Dropout", "Dense"],
        (25 * 32 + 25 * 32 * 32 + 9 * 32 * 64 + 9 * 64 * 64)
        + 3 * 3 * 64 * 256  # 28 -> 24 -> 20 -> 10 -> 8 -> 6 -> 3 pixels
        + 4 * (32 + 32 + 64 + 64 + 256)
        + 2_570,
    ),
    "lenet5": (
        [
            "Conv2D",
            "AveragePooling2D",
            "Conv2D",
            "AveragePooling2D",
            "Flatten",
            "Dense",
            "Dense",
            "Dense",
        ],
        156 + 2_416 + 400 * 120 + 120 + 10_164 + 850,
    ),
}


EXPECTED["efficient"] = EXPECTED["best"]  # the same network, a shorter recipe


def test_every_documented_entry_is_in_the_catalogue():
    assert set(EXPECTED) <= set(catalogue.ENTRIES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entry_builds_as_documented(name):
    """As trained: the network with its recipe's augmentation (best's) in front."""
    layer_types, parameters = EXPECTED[name]
    entry = catalogue.get_entry(name)
    model = training.build(entry, training.resolve_settings(training.TrainConfig(model=name)))
    assert [type(layer).__name__ for layer in model.layers] == layer_types
    assert model.count_params() == parameters
    assert entry.parameters == parameters  # what `mnist-cnn models` lists without building
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)
    assert model.layers[-1].get_config()["activation"] == "softmax"


def test_published_recipes():
    recipe = catalogue.get_entry("keras-example").recipe
    assert (recipe.epochs, recipe.batch_size, recipe.validation_split) == (15, 128, 0.1)
    recipe = catalogue.get_entry("conv32-conv64-dropout").recipe
    assert (recipe.epochs, recipe.batch_size, recipe.validation_split) == (10, 32, 0.3)
    assert catalogue.get_entry("conv28-dense128").recipe.epochs == 1
    assert catalogue.get_entry("conv6-dense128").recipe.batch_size == 100


@pytest.mark.parametrize("name", sorted(catalogue.ENTRIES))
def test_no_entry_validates_on_the_test_set(name):
    entry = catalogue.get_entry(name)
    assert 0 < entry.recipe.validation_split < 1
    assert "of train" in entry.validation_note


def test_unknown_name_lists_the_catalogue():
    with pytest.raises(catalogue.UnknownModelError, match="keras-example"):
        catalogue.get_entry("resnet")
