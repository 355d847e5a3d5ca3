"""Any dataset by name, a catalogue one (IDX files) or `folder:PATH` (your own images): the one
place that tells the two apart, so every command reads both the same way."""

from __future__ import annotations

import os

import numpy as np

from mnist_cnn.data.datasets import folder_of, load_idx
from mnist_cnn.data.folders import FolderDataset, Part, load_folder


def load_parts(
    dataset: str, data_dir: str | os.PathLike | None = None
) -> tuple[dict[str, Part], FolderDataset | None]:
    """Any dataset's train and test parts, and the folder dataset they came from, if it is
    one (its files name each digit; a catalogue dataset's parts have no files)."""
    if folder_of(dataset) is not None:
        folder = load_folder(folder_of(dataset))
        return {"train": folder.train, "test": folder.test}, folder
    (x_train, y_train), (x_test, y_test) = load_idx(dataset, data_dir)
    return {"train": Part(x_train, y_train), "test": Part(x_test, y_test)}, None


def load_dataset(
    name: str = "mnist", data_dir: str | os.PathLike | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load a dataset as `keras.datasets` does, from the verified cache.

    Args:
        name: `"mnist"`, `"fashion-mnist"`, `"kmnist"`, or `"folder:PATH"` (your own
            labelled images, a folder per class).
        data_dir: where datasets are kept (default: `$MNIST_CNN_DATA` or the cache).

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 arrays, images (N, 28, 28) white on black.
    """
    parts, _ = load_parts(name, data_dir)
    return tuple((parts[p].images, parts[p].labels) for p in ("train", "test"))


def split_of(parts: dict[str, Part], split: str) -> Part:
    """The test part, the train part, or both together ("all")."""
    if split != "all":
        return parts[split]
    chosen = [parts["train"], parts["test"]]
    return Part(
        np.concatenate([p.images for p in chosen]),
        np.concatenate([p.labels for p in chosen]),
        [file for p in chosen for file in p.files],
    )
