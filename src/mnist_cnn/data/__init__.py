"""Digits in: IDX files and their verified cache, a folder of your own images, any image.

What every stage agrees on about a digit lives here, imported by the models and the
classifier alike: its shape as the networks take it, and the number of classes.
"""

INPUT_SHAPE = (28, 28, 1)  # one grey 28x28 digit, channels last
NUM_CLASSES = 10
