"""A model's scores on a dataset: what `mnist-cnn evaluate` prints and `mnist_cnn.evaluate`
returns (the same call)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mnist_cnn import evaluation, rundir
from mnist_cnn.data import sources
from mnist_cnn.data.datasets import DatasetError
from mnist_cnn.data.folders import FolderDataset
from mnist_cnn.inference.classifier import Classifier


@dataclass
class Scores:
    summary: dict  # what `mnist-cnn evaluate --json` prints
    digits: int  # how many were scored
    folder: FolderDataset | None  # a folder dataset: how it was split, what was skipped
    wrong: list[dict]  # a folder dataset's files read wrong
    temperature: float = 1.0  # the calibration the probabilities were scored after


def score(
    model: str | os.PathLike,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | os.PathLike | None = None,
) -> Scores:
    """Loss, accuracy, per-class scores and the confusion matrix of `model` (a run directory
    or a model file) on `split` ("test", "train" or "all") of `dataset` (default: the one
    the run trained on). A folder dataset's answer also names the files read wrong, with
    how the folder was split and what was skipped.

    `mnist_cnn.evaluate` returns its `summary`, the dict `mnist-cnn evaluate --json` prints.
    """
    classifier = Classifier(model)
    dataset = dataset or rundir.dataset_of(model)
    parts, folder = sources.load_parts(dataset, data_dir)
    part = sources.split_of(parts, split)
    if not len(part.labels):
        raise DatasetError(f"{dataset} has no {split} images; try --split all")
    probabilities = classifier.probabilities(part.images)
    metrics = evaluation.evaluate(probabilities, part.labels)
    wrong = evaluation.wrong_files(probabilities, part.labels, part.files)
    extra = {} if folder is None else {"wrong": wrong, **folder.describe()}
    summary = {"model": str(classifier.path), "dataset": dataset, "split": split} | metrics | extra
    return Scores(summary, len(part.labels), folder, wrong, classifier.temperature)
