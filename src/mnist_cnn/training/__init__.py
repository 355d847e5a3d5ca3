"""Training: a config and data in, a complete run directory out (see train.py).

Importing it loads Keras. Its modules, in the order they depend on each other:
`config` (what to train), `callbacks` (checkpoints, Ctrl-C, the history files), `fit`
(one network fitted and calibrated), `finish` (the test set, pictures and report) and
`train` (train, resume, an ensemble's members).
"""

from mnist_cnn.training.config import (
    MemberRunner,
    RunResult,
    TrainConfig,
    TrainingError,
    TrainingInterrupted,
    config_from_run,
    entry_of,
    resolve_settings,
)
from mnist_cnn.training.finish import finish
from mnist_cnn.training.fit import build, split_validation
from mnist_cnn.training.train import fit_member, resume, train

__all__ = [
    "MemberRunner",
    "build",
    "RunResult",
    "TrainConfig",
    "TrainingError",
    "TrainingInterrupted",
    "config_from_run",
    "entry_of",
    "finish",
    "fit_member",
    "resolve_settings",
    "resume",
    "split_validation",
    "train",
]
