"""mnist-cnn: train, understand and use convolutional networks on handwritten digits.

    import mnist_cnn
    run = mnist_cnn.train("fast", epochs=2)       # a Run: .metrics, .history, .report_path
    mnist_cnn.evaluate(run)                       # the scores, as `mnist-cnn evaluate --json`
    classifier = mnist_cnn.Classifier(run.path)   # load once, predict fast
    (x_train, y_train), (x_test, y_test) = mnist_cnn.load_dataset()

`import mnist_cnn` stays light: each name is imported when first used (module `__getattr__`),
so Keras and its backend load only when a model is needed.
"""

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    "train": "mnist_cnn.api",
    "evaluate": "mnist_cnn.api",
    "sweep": "mnist_cnn.api",
    "Run": "mnist_cnn.reporting.run",
    "load_dataset": "mnist_cnn.data.sources",
    "Classifier": "mnist_cnn.inference.classifier",
    "TrainConfig": "mnist_cnn.training",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value  # found once; later lookups skip this function
        return value
    raise AttributeError(f"module 'mnist_cnn' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_PUBLIC])
