"""Inference: a trained model answering "which digit?" (classifier), scored (scoring), exported.

`MIN_CONFIDENCE` is the one rule for "not sure": `predict`, `serve`, the page and
`Classifier` all mark an answer unsure below it, unless told otherwise. With calibrated
probabilities, an answer under 0.6 is wrong at least four times in ten.
"""

MIN_CONFIDENCE = 0.6
