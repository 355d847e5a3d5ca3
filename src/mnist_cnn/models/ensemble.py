"""An ensemble as one Keras model: members named `member_1`, `member_2`, ... whose
probabilities an Average layer combines. Training builds it, export rebuilds it without
augmentation, the report looks inside its first member; all find the members by name here.
"""

from __future__ import annotations

from mnist_cnn.backend import import_keras

MEMBER_PREFIX = "member_"


def ensemble_of(members: list, name: str):
    """One model that averages its members' probabilities; saved and loaded as one file."""
    keras = import_keras()
    inputs = keras.Input(shape=members[0].inputs[0].shape[1:])
    outputs = [
        keras.Model(member.inputs[0], member.outputs[0], name=f"{MEMBER_PREFIX}{index + 1}")(inputs)
        for index, member in enumerate(members)
    ]
    return keras.Model(inputs, keras.layers.Average()(outputs), name=name)


def members_of(model) -> list:
    """The member networks of an ensemble built by `ensemble_of`; [] for a single model."""
    return [layer for layer in model.layers if layer.name.startswith(MEMBER_PREFIX)]
