"""`python -m mnist_cnn` is the `mnist-cnn` command."""

from mnist_cnn.cli import run

run()
