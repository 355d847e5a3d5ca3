"""mnist-cnn: train, understand and use convolutional networks on handwritten digits.

The public API lives in its modules, imported on use so that `import mnist_cnn` stays
light (Keras and its backend load only when a model is needed):

    from mnist_cnn.datasets import load_dataset
    from mnist_cnn.training import TrainConfig, train
    from mnist_cnn.catalogue import ENTRIES
"""

__version__ = "0.1.0"
