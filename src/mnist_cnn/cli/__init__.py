"""The `mnist-cnn` command: `main.py` registers one module per command (data, models,
train, sweep, evaluate, predict, report, robustness, compare, export, serve), each with its
parser beside its handler. It parses, calls the stage packages, and prints."""

from mnist_cnn.cli.main import main, run

__all__ = ["main", "run"]
