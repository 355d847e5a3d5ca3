"""`python -m mnist_cnn` is the `mnist-cnn` command."""

from .cli import run

run()
