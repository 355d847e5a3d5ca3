"""Your own network: a pasted Keras layer list, a build() in your .py file, or a saved model.

Each becomes a catalogue `Entry`, so that everything below `train()` (the run directory,
resume, the report, compare, export) treats it as it treats a catalogue network. A layer
list is read with Python's `ast` and built from `keras.layers` classes called with literal
arguments; it is never run as Python. A `.py` file is your own code, run on purpose.

Models saved elsewhere (a notebook's `model.save("mnist.h5")`) may take (28, 28) or (784,)
input and end in logits; `loading.adapted` puts a Reshape in front and a Softmax behind, so that
every command can feed them 28x28x1 digits and read probabilities.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import math
import re
from dataclasses import replace
from pathlib import Path

from mnist_cnn import rundir
from mnist_cnn.backend import import_keras
from mnist_cnn.data import INPUT_SHAPE
from mnist_cnn.data.datasets import sha256_of
from mnist_cnn.errors import first_line
from mnist_cnn.models import catalogue
from mnist_cnn.models.keras_spellings import REFUSED_LAYERS, suggestion
from mnist_cnn.models.layer_list import LayerCall, python_file, read_layers
from mnist_cnn.models.loading import (
    ACCEPTED_INPUTS,
    ArchitectureError,
    adapted,
    gives_probabilities,
    load_model,
    with_precision,
)

INPUT_NAMES = ("Input", "InputLayer")
MAX_PARAMETERS = 50_000_000  # ~200 MB of float32 weights; the tutorials' nets have < 1M
MAX_ACTIVATIONS = 2_000_000  # values one layer may output per digit (best's largest: 25,088)
CUSTOM_NAME = "custom"
FINETUNE_NAME = "finetune"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# A network of your own trains with the keras.io example's recipe unless flags say otherwise.
# A saved model is fine-tuned gently: a tenth of the rate, in small batches (a folder of your
# digits may hold a few hundred). benchmarks/finetune.py measured 1e-4, 3e-4 and 1e-3; the
# validation split could not tell the first two apart, and 1e-4 forgets the least MNIST.
CUSTOM_RECIPE = catalogue.get_entry("keras-example").recipe
FINETUNE_RECIPE = replace(CUSTOM_RECIPE, epochs=10, batch_size=32, learning_rate=1e-4)


# --- a pasted layer list -------------------------------------------------------------------


def layer_list_entry(text: str, name: str = CUSTOM_NAME) -> catalogue.Entry:
    """A pasted layer list as a catalogue entry; checked now by building it once, weightless.

    A list that ends in logits (Dense(10)) gets a Softmax, as a saved model does (`adapted`):
    mnist-cnn trains and serves probabilities. Its origin records that, for config.json.
    """
    calls, ignored = read_layers(text)
    input_shape, layer_calls = _input_of(calls)
    summary = ", ".join(call.text for call in layer_calls)
    softmax_added = _check_layer_by_layer(input_shape, layer_calls)

    def build(*front):
        keras = import_keras()
        layers = [_make_layer(keras, call) for call in layer_calls]
        if softmax_added:
            layers.append(keras.layers.Softmax(name="probabilities", dtype="float32"))
        if input_shape == INPUT_SHAPE:  # one flat stack, as the catalogue's networks are
            stack = keras.Sequential([keras.Input(shape=INPUT_SHAPE), *front, *layers], name=name)
            return adapted(stack, "--arch", add_softmax=False)
        stack = keras.Sequential([keras.Input(shape=input_shape), *layers], name=name)
        return adapted(stack, "--arch", add_softmax=False, front=front)

    entry = _yours(
        name,
        summary if len(summary) <= 200 else summary[:197] + "...",
        build,
        CUSTOM_RECIPE,
        "your layer list (--arch)",
        {"kind": "layers", "layers": text, **_notes(softmax_added, ignored)},
    )
    _check_buildable(entry, "--arch")
    return entry


def _notes(softmax_added: bool, ignored: list[str]) -> dict:
    """What the run should say about how it read the list (config.json, entry.origin)."""
    notes = [f"not read: {', '.join(ignored)}; train's flags set the recipe"] if ignored else []
    if softmax_added:
        notes.append("the last layer gives logits: a Softmax was added after it")
    recorded = {"softmax_added": True} if softmax_added else {}
    return {**recorded, "notes": notes} if notes else recorded


def _check_layer_by_layer(input_shape: tuple, calls: list[LayerCall]) -> bool:
    """Call each layer on the output of the one before, without allocating weights, so that
    the first layer that does not fit, or is too large for 28x28 digits, is named. True if
    the last layer gives logits (an activation of None: 'linear')."""
    keras = import_keras()
    parameters = 0
    with keras.StatelessScope():
        x = keras.Input(shape=input_shape)
        for call in calls:
            where = call.where
            layer = _make_layer(keras, call)
            try:
                x = layer(x)
            except Exception as exc:  # Keras raises ValueError and others for a misfit
                raise ArchitectureError(
                    f"{where} does not fit what comes before it ({first_line(exc, typed=True)})"
                ) from None
            if not isinstance(x, keras.KerasTensor):
                raise ArchitectureError(f"{where} gives more than one output")
            values = math.prod(d or 1 for d in x.shape[1:])
            if values > MAX_ACTIVATIONS:
                raise ArchitectureError(
                    f"{where} outputs {tuple(x.shape[1:])}, {values:,} values per digit, more "
                    f"than {MAX_ACTIVATIONS:,}; make it smaller"
                )
            parameters += layer.count_params()
            if parameters > MAX_PARAMETERS:
                raise ArchitectureError(
                    f"{where} brings the network to {parameters:,} parameters, more than "
                    f"{MAX_PARAMETERS:,}; use fewer or smaller layers"
                )
    return layer.get_config().get("activation") == "linear"


def _input_of(calls: list[LayerCall]) -> tuple[tuple, list[LayerCall]]:
    """The input shape the list asks for (Input(...) or input_shape=), and the other layers."""
    shape, rest = INPUT_SHAPE, list(calls)
    if rest and rest[0].name in INPUT_NAMES:
        first = rest.pop(0)
        given = first.kwargs.get("shape", first.args[0] if first.args else None)
        given = first.kwargs.get("input_shape", given)  # Keras 2's InputLayer(input_shape=)
        shape = _accepted_shape(first, given)
    if not rest:
        raise ArchitectureError("--arch has no layers besides the input")
    layers = []
    for call in rest:
        if call.name in INPUT_NAMES:
            raise ArchitectureError(f"{call.where}: an input can only come first")
        for key in ("input_shape", "input_dim", "batch_input_shape"):
            if key in call.kwargs:
                given = call.kwargs[key]
                if key == "batch_input_shape" and isinstance(given, (tuple, list)):
                    given = given[1:]
                shape = _accepted_shape(call, (given,) if key == "input_dim" else given)
                call = replace(call, kwargs={k: v for k, v in call.kwargs.items() if k != key})
        layers.append(call)
    return shape, layers


def _accepted_shape(call: LayerCall, given) -> tuple:
    shape = tuple(given) if isinstance(given, (tuple, list)) else given
    if shape not in ACCEPTED_INPUTS:
        accepted = ", ".join(str(s) for s in ACCEPTED_INPUTS)
        raise ArchitectureError(
            f"{call.where}: input shape {shape!r} does not fit "
            f"28x28 grey digits; use one of {accepted}, or leave the input out"
        )
    return shape


def _make_layer(keras, call: LayerCall):
    """The layer a call names, made by its keras.layers class (Keras checks the arguments)."""
    where = call.where
    cls = getattr(keras.layers, call.name, None)
    if call.name in REFUSED_LAYERS:  # parse refuses them first; this is the second lock
        raise ArchitectureError(f"{where}: {call.name} would run code or wrap other layers")
    if not inspect.isclass(cls) or not issubclass(cls, keras.layers.Layer):
        names = [n for n in dir(keras.layers) if n[0].isupper() and n not in REFUSED_LAYERS]
        meant = suggestion(call.name, names)
        hint = f"did you mean {meant}?" if meant else "name a keras.layers class such as Conv2D"
        raise ArchitectureError(f"{where}: {call.name} is not a Keras layer; {hint}")
    try:
        return cls(*call.args, **call.kwargs)
    except Exception as exc:  # Keras raises TypeError, ValueError and others for bad arguments
        raise ArchitectureError(
            f"{where}: Keras refused it ({first_line(exc, typed=True)})"
        ) from None


# --- your Python ---------------------------------------------------------------------------


def python_entry(spec: str, name: str = CUSTOM_NAME) -> catalogue.Entry:
    """The keras.Model that FUNCTION (default `build`) of a .py file returns, as an entry.

    This runs the file: it is your code, named on purpose. config.json keeps its sha256 and a
    copy of its source, so that the run says exactly what trained.
    """
    file, function_name = python_file(spec)
    path = Path(file).expanduser().resolve()
    if not path.is_file():
        raise ArchitectureError(f"--arch {path}: no such file")
    source = path.read_text(encoding="utf-8", errors="replace")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    module_name = f"mnist_cnn_user_{digest[:16]}"
    loader = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader)
    try:
        loader.loader.exec_module(module)
    except Exception as exc:  # the user's code may raise anything
        raise ArchitectureError(
            f"--arch {path}: running it failed ({first_line(exc, typed=True)})"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ArchitectureError(
            f"--arch {path}: it has no function {function_name}(); "
            f"define one that returns a keras.Model, or name it with {path.name}:FUNCTION"
        )

    def build(*front):
        keras = import_keras()
        try:
            model = function()
        except Exception as exc:
            raise ArchitectureError(
                f"--arch {path}:{function_name}() failed ({first_line(exc, typed=True)})"
            ) from None
        if not isinstance(model, keras.Model):
            raise ArchitectureError(
                f"--arch {path}:{function_name}() returned {type(model).__name__}, "
                f"not a keras.Model"
            )
        return adapted(model, f"--arch {path}:{function_name}()", front=front)

    origin = {
        "kind": "python",
        "file": str(path),
        "function": function_name,
        "sha256": digest,
        "source": source,
    }
    where = f"{path}:{function_name}()"
    source_note = f"your code: {where} (sha256 {digest[:12]}...)"
    entry = _yours(
        name, f"{path.name}:{function_name}()", build, CUSTOM_RECIPE, source_note, origin
    )
    _check_buildable(entry, f"--arch {path}:{function_name}()")
    return entry


# --- a saved model to start from -----------------------------------------------------------


def init_entry(model: str, name: str = FINETUNE_NAME) -> catalogue.Entry:
    """A saved model (a run directory, .keras or .h5) to fine-tune: its network and weights.

    Its augmentation layers are left out (the recipe's --augment decides), and it is retyped
    to the recipe's precision.
    """
    file = rundir.model_path(model).resolve()
    digest = sha256_of(file)

    def build(*front):
        from mnist_cnn.models.augmentation import without_augmentation

        keras = import_keras()
        loaded = without_augmentation(load_model(file))
        retyped = with_precision(loaded, keras.mixed_precision.global_policy().name)
        return adapted(retyped, f"--init {file}", front=front)

    entry = _yours(
        name,
        f"the network and weights of {file}",
        build,
        FINETUNE_RECIPE,
        f"fine-tuned from {file} (sha256 {digest[:12]}...)",
        {"kind": "init", "file": str(file), "sha256": digest},
    )
    _check_buildable(entry, f"--init {file}", weightless=False)
    return entry


def _yours(name, summary, build, recipe, source, origin: dict) -> catalogue.Entry:
    """A network of yours as a catalogue entry; `origin` is what rebuilds it (--resume)."""
    return catalogue.Entry(
        name=name,
        summary=summary,
        build=build,
        recipe=recipe,
        source=source,
        published="none (yours)",
        validation_note=f"last {recipe.validation_split:.0%} of train",
        origin=origin,
    )


# --- one entry for whatever was asked ------------------------------------------------------


def entry_for(
    model: str | None, arch: str | None = None, init: str | None = None, name: str | None = None
) -> catalogue.Entry:
    """The entry to train: a catalogue name, a layer list or .py file (--arch), or a saved
    model (--init); exactly one of them."""
    given = [flag for flag, value in (("NAME", model), ("--arch", arch), ("--init", init)) if value]
    if len(given) != 1:
        got = f"; got {' and '.join(given)}" if given else ""
        raise ArchitectureError(
            "give one of: a catalogue NAME (see 'mnist-cnn models'), --arch LAYERS|FILE.py, "
            f"or --init MODEL{got}"
        )
    if name is not None:
        if model:
            raise ArchitectureError(
                "--name names a network of your own (--arch or --init); "
                "a catalogue run is named after its entry"
            )
        if not NAME_PATTERN.fullmatch(name):
            raise ArchitectureError(
                f"--name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
            )
    if model:
        return catalogue.get_entry(model)
    if init:
        return init_entry(init, name or FINETUNE_NAME)
    if python_file(arch) is not None:
        return python_entry(arch, name or CUSTOM_NAME)
    return layer_list_entry(arch, name or CUSTOM_NAME)


def request_of(origin: dict) -> dict:
    """The --arch or --init that made an entry, from its recorded origin (for --resume).

    A .py file or saved model must still be the one that trained: same sha256.
    """
    kind = origin.get("kind") if isinstance(origin, dict) else None
    if kind == "layers" and isinstance(origin.get("layers"), str):
        return {"arch": origin["layers"]}
    if kind in ("python", "init") and isinstance(origin.get("file"), str):
        file = Path(origin["file"])
        if not file.is_file() or sha256_of(file) != origin.get("sha256"):
            raise ArchitectureError(
                f"{file} is missing or has changed since the run started (sha256); "
                f"put the original back, or train again"
            )
        if kind == "init":
            return {"init": str(file)}
        return {"arch": f"{file}:{origin.get('function', 'build')}"}
    raise ArchitectureError(f"the recorded network ({kind!r}) cannot be rebuilt")


# --- checks and adaptation -----------------------------------------------------------------


def _check_buildable(entry: catalogue.Entry, where: str, weightless: bool = True) -> None:
    """Build the network once (without allocating its weights, unless they come from a file)
    and check its size and its output, before a run directory is made for it."""
    keras = import_keras()
    with keras.StatelessScope() if weightless else contextlib.nullcontext():
        model = entry.build()
        parameters = model.count_params()
    if parameters > MAX_PARAMETERS:
        raise ArchitectureError(
            f"{where}: {parameters:,} parameters is more than {MAX_PARAMETERS:,}; "
            f"use fewer or smaller layers"
        )
    for layer in model.layers:
        shape = tuple(layer.output.shape[1:])
        if math.prod(d or 1 for d in shape) > MAX_ACTIVATIONS:
            raise ArchitectureError(
                f"{where}: layer {layer.name} outputs {shape} values per digit, more than "
                f"{MAX_ACTIVATIONS:,}; shrink it"
            )
    if not gives_probabilities(model):
        last = model.layers[-1]
        raise ArchitectureError(
            f"{where}: the last layer ({type(last).__name__}) gives scores, not probabilities; "
            f"end with activation='softmax', e.g. Dense(10, activation='softmax')"
        )


def describe_layers(model) -> list[dict]:
    """Each layer of a built network: its class, output shape, parameters and settings."""
    return [
        {
            "layer": type(layer).__name__,
            "output_shape": list(layer.output.shape[1:]),
            "parameters": int(layer.count_params()),
            "config": {
                key: value
                for key, value in layer.get_config().items()
                if key not in ("name", "trainable", "dtype")
            },
        }
        for layer in model.layers
    ]
