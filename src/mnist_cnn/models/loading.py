"""Any saved model, loaded safely and made to fit: 28x28x1 digits in, 10 probabilities out.

A run's model.keras, a Keras 2 `.h5` from a notebook, or a network of your own may take
(28, 28) or (784,) input and end in logits; `adapted` puts a Reshape in front and a Softmax
behind, so that every command can feed them digits and read probabilities.
"""

from __future__ import annotations

import os

from mnist_cnn import rundir
from mnist_cnn.backend import import_keras
from mnist_cnn.data import INPUT_SHAPE, NUM_CLASSES
from mnist_cnn.errors import first_line

ACCEPTED_INPUTS = (INPUT_SHAPE, (28, 28), (784,))


class ArchitectureError(ValueError):
    """A network of the user's that cannot be built or used; the message says where and why."""


def load_model(path: str | os.PathLike):
    """Load the model of a run directory, `.keras` or Keras 2 `.h5` file, refusing layers
    that carry code, and made to take 28x28x1 digits and give probabilities.

    Keras's safe mode refuses Lambda layers and other objects that would run code (in `.h5`
    files too); nothing is unpickled. A run's model must also match the sha256 recorded in
    its config.json. A notebook's model that takes (28, 28) or (784,) input or gives logits
    is wrapped to fit (`adapted`).
    """
    keras = import_keras()
    from mnist_cnn.models import augmentation, batch_norm  # noqa: F401  (registers our layers)

    file = rundir.model_path(path)
    rundir.check_model_hash(file)
    try:
        model = keras.saving.load_model(file, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file; all mean the same here
        raise rundir.RunError(f"{file}: refused or unreadable model ({first_line(exc)})") from exc
    return adapted(model, str(file))


def adapted(model, where: str = "the model", add_softmax: bool = True, front=()):
    """The model, made to take (N, 28, 28, 1) digits and give (N, 10) probabilities.

    A (28, 28) or (784,) input gets a Reshape in front; logits (a last layer without
    activation) get a Softmax behind, if `add_softmax`; `front` layers (augmentation) go
    first of all. Anything else gets one clear error that starts with `where`.
    """
    keras = import_keras()
    input_shape = tuple(model.inputs[0].shape[1:]) if len(model.inputs) == 1 else None
    if input_shape not in ACCEPTED_INPUTS:
        accepted = ", ".join(str(s) for s in ACCEPTED_INPUTS)
        shapes = [tuple(i.shape[1:]) for i in model.inputs]
        raise ArchitectureError(
            f"{where} takes input {shapes[0] if len(shapes) == 1 else shapes}; "
            f"mnist-cnn feeds one 28x28 grey digit, as {accepted}"
        )
    output_shape = tuple(model.outputs[0].shape[1:]) if len(model.outputs) == 1 else None
    if output_shape != (NUM_CLASSES,):
        raise ArchitectureError(
            f"{where} gives output {output_shape}; it must give one score per digit, "
            f"({NUM_CLASSES},) - end with Flatten() and Dense(10, activation='softmax')"
        )
    needs_softmax = add_softmax and _gives_logits(model)
    if input_shape == INPUT_SHAPE and not needs_softmax and not front:
        return model
    layers = [keras.Input(shape=INPUT_SHAPE), *front]
    if input_shape != INPUT_SHAPE:
        layers.append(
            keras.layers.Reshape(input_shape, name="as_" + "x".join(map(str, input_shape)))
        )
    layers.append(model)
    if needs_softmax:
        layers.append(keras.layers.Softmax(name="probabilities", dtype="float32"))
    return keras.Sequential(layers, name=model.name)


def _last_activation(model) -> str | None:
    last = model.layers[-1]
    if type(last).__name__ == "Softmax":
        return "softmax"
    if isinstance(last, import_keras().Model):
        return _last_activation(last)
    activation = last.get_config().get("activation")
    return activation if isinstance(activation, str) else None


def gives_probabilities(model) -> bool:
    return _last_activation(model) == "softmax" or type(model.layers[-1]).__name__ == "Average"


def _gives_logits(model) -> bool:
    """A last Dense (or convolution) without activation: the scores of a from_logits model."""
    return _last_activation(model) == "linear"


def with_precision(model, policy: str):
    """The same network and weights with every layer computing under `policy` (a dtype
    policy name such as "float32" or "mixed_bfloat16")."""
    if all(layer.dtype_policy.name == policy for layer in model._flatten_layers()):
        return model

    def retyped(config):
        if isinstance(config, dict):
            if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
                return {**config, "config": {**config["config"], "name": policy}}
            return {key: retyped(value) for key, value in config.items()}
        if isinstance(config, list):
            return [retyped(value) for value in config]
        return config

    copy = model.__class__.from_config(retyped(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy
