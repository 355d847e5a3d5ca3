"""Your own labelled digits: a folder of images laid out as PATH/0/ ... PATH/9/, as a dataset.

Every image goes through `imaging.to_mnist`, the path `mnist-cnn predict` takes, so a model
is trained and scored on exactly what it sees when it reads that file. PATH/train/ and
PATH/test/ (each with 0/ ... 9/) split it as you chose; without them a fixed, seeded fifth
of each digit is held out as the test part, and the split is recorded. A file that cannot
be read is named and skipped, never dropped in silence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_cnn.data import imaging
from mnist_cnn.data.datasets import DIGITS, DatasetError

TEST_SHARE = 0.2  # held out of each digit when the folder has no train/ and test/
SPLIT_SEED = 0
SIDE = imaging.SIZE


@dataclass
class Part:
    """One part of a folder dataset: MNIST-style digits, their labels, and their files."""

    images: np.ndarray
    labels: np.ndarray
    files: list[str] = field(default_factory=list)


@dataclass
class FolderDataset:
    root: Path
    train: Part
    test: Part
    split: str  # how train and test were chosen, in words
    skipped: list[tuple[str, str]]  # (file, why) for every file that could not be used

    def describe(self) -> dict:
        """What a run records about its data: where, how split, how many, what was skipped."""
        return {
            "folder": str(self.root),
            "split": self.split,
            "train": len(self.train.labels),
            "test": len(self.test.labels),
            "skipped": [{"file": file, "error": why} for file, why in self.skipped],
        }


def load_folder(path: str | os.PathLike) -> FolderDataset:
    """Read every image under PATH/[train/|test/]0..9/ into MNIST-style 28x28 digits."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"folder:{path}: no such folder; give a folder of 0/ ... 9/ folders")
    halves = [root / "train", root / "test"]
    if any(_digit_folders(half) for half in halves):
        missing = [h.name for h in halves if not _digit_folders(h)]
        if missing:
            raise DatasetError(
                f"folder:{root}: has no digit folders in {missing[0]}/; give both "
                f"train/0..9 and test/0..9, or put 0/ ... 9/ straight in {root}"
            )
        train_files, skipped = _labelled_files(root / "train")
        test_files, more = _labelled_files(root / "test")
        skipped += more
        split = "as laid out: train/ and test/"
    else:
        if not _digit_folders(root):
            raise DatasetError(
                f"folder:{root}: no digit folders; lay your images out as "
                f"{root}/0/*.png ... {root}/9/*.png"
            )
        files, skipped = _labelled_files(root)
        train_files, test_files = _seeded_split(files)
        split = f"{TEST_SHARE:.0%} of each digit held out as test (seed {SPLIT_SEED})"
    rng = np.random.default_rng(SPLIT_SEED)  # mixed, so that a validation split holds every digit
    train_files = [train_files[i] for i in rng.permutation(len(train_files))]
    train, bad_train = _read(train_files)
    test, bad_test = _read(test_files)
    skipped += bad_train + bad_test
    if not len(train.labels) and not len(test.labels):
        raise DatasetError(f"folder:{root}: no readable images in its digit folders")
    return FolderDataset(root, train, test, split, sorted(skipped))


def _digit_folders(folder: Path) -> list[Path]:
    return [folder / d for d in DIGITS if (folder / d).is_dir()]


def _labelled_files(folder: Path) -> tuple[list[tuple[Path, int]], list[tuple[str, str]]]:
    """Every image file under folder/0 ... folder/9 with its digit; other files, skipped."""
    found, skipped = [], []
    for digit_folder in _digit_folders(folder):
        for file in sorted(digit_folder.rglob("*")):
            if file.name.startswith(".") or not file.is_file():
                continue
            if file.suffix.lower() in imaging.IMAGE_SUFFIXES:
                found.append((file, int(digit_folder.name)))
            else:
                kinds = ", ".join(sorted(imaging.IMAGE_SUFFIXES))
                skipped.append((str(file), f"not an image file of a kind read here ({kinds})"))
    return found, skipped


def _seeded_split(files: list[tuple[Path, int]]):
    """Hold out TEST_SHARE of each digit's files, the same ones every time."""
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for digit in range(len(DIGITS)):
        mine = [item for item in files if item[1] == digit]
        order = rng.permutation(len(mine))
        held = int(round(len(mine) * TEST_SHARE))
        test += [mine[i] for i in sorted(order[:held])]
        train += [mine[i] for i in order[held:]]
    return train, test


def _read(files: list[tuple[Path, int]]) -> tuple[Part, list[tuple[str, str]]]:
    images, labels, names, skipped = [], [], [], []
    for file, digit in files:
        try:
            images.append(imaging.to_mnist(file, str(file)).image)
        except imaging.ImageError as exc:
            skipped.append((str(file), exc.reason(str(file))))
            continue
        labels.append(digit)
        names.append(str(file))
    stacked = np.stack(images) if images else np.zeros((0, SIDE, SIDE), np.uint8)
    return Part(stacked.astype(np.uint8), np.array(labels, dtype=np.uint8), names), skipped
