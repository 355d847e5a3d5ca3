"""A Keras layer list as a tutorial writes it, read with `ast`: never run as Python.

"Conv2D(32, (3,3), activation='relu'), MaxPooling2D((2,2)), Flatten(), Dense(10, ...)"
becomes a list of calls, each a keras.layers name with literal arguments (numbers, strings,
tuples, lists, True, False, None, or names given such values). A tutorial's code pasted
whole (`model = Sequential([...])`, `model.add(...)`, imports, `num_classes = 10`) is read
by pasted_code.py into the same calls. Anything else (a lambda, a call inside a call,
`__import__`, a dict) is refused with one line that points at the item. This module imports
neither Keras nor the rest of the package, so that a bad list is answered at once;
architecture.py looks the names up in `keras.layers` and builds the network.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from mnist_cnn.models.keras_spellings import KNOWN_LAYERS, REFUSED_LAYERS, modernised, suggestion
from mnist_cnn.models.pasted_code import (
    LITERALS_HINT,
    LayerListError,
    NotLiteral,
    Pasted,
    dotted,
    layer_name,
    literal,
    quoted,
    read,
)

__all__ = ["LayerCall", "LayerListError", "parse", "python_file", "read_layers"]

MAX_TEXT = 20_000  # characters
MAX_LAYERS = 200

PYTHON_FILE = re.compile(r"(?P<file>.+\.py)(?::(?P<function>[A-Za-z_]\w*))?")


def python_file(text: str) -> tuple[str, str] | None:
    """(file, function) when --arch names a .py file (`my_net.py` or `my_net.py:FUNCTION`,
    function `build` by default) rather than a layer list; else None."""
    match = PYTHON_FILE.fullmatch(text.strip())
    return None if match is None else (match["file"], match["function"] or "build")


@dataclass(frozen=True)
class LayerCall:
    """One layer of a list: a keras.layers class name and its literal arguments (Keras 3's
    spelling of them: keras_spellings.modernised)."""

    position: int
    text: str
    name: str
    args: tuple
    kwargs: dict
    line: int | None = None  # of the pasted text, when it has several

    @property
    def where(self) -> str:
        line = f" (line {self.line})" if self.line else ""
        return f"--arch item {self.position}{line} `{self.text}`"


def parse(text: str) -> list[LayerCall]:
    """Read a layer list such as "Conv2D(32, (3,3), activation='relu'), Flatten(), ...",
    or a tutorial's Sequential model pasted whole (see pasted_code.py).

    Only the shape of the text is checked here, with `ast` and without Keras: each layer is
    a call of a keras.layers name with literal arguments. Nothing is run.
    """
    return read_layers(text)[0]


def read_layers(text: str) -> tuple[list[LayerCall], list[str]]:
    """The layer calls, and what was read but not used (model.compile(...) and the like)."""
    if not text.strip():
        raise LayerListError('--arch is empty; give layers such as "Flatten(), Dense(10, ...)"')
    if len(text) > MAX_TEXT:
        raise LayerListError(f"--arch is {len(text):,} characters; at most {MAX_TEXT:,}")
    pasted = read(text)
    if not pasted.calls:
        raise LayerListError(
            "--arch has no layers; give them as a list, Sequential([...]) or model.add(...) lines"
        )
    if len(pasted.calls) > MAX_LAYERS:
        raise LayerListError(f"--arch has {len(pasted.calls)} layers; at most {MAX_LAYERS}")
    calls = [_layer_call(pasted, position, node) for position, node in enumerate(pasted.calls, 1)]
    return calls, pasted.ignored


def _layer_call(pasted: Pasted, position: int, node: ast.AST) -> LayerCall:
    line = pasted.line(node) if pasted.line_numbers else None
    where = (
        f"--arch item {position}{f' (line {line})' if line else ''} `{quoted(pasted.source, node)}`"
    )
    if not isinstance(node, ast.Call):
        hint = f" (add the brackets: {node.id}())" if isinstance(node, ast.Name) else ""
        raise LayerListError(f"{where} is not a layer call such as Dense(10){hint}")
    if isinstance(node.func, ast.Call):
        raise LayerListError(
            f"{where}: a layer called on a tensor is Keras's functional API, not read here; "
            f"put it in FILE.py with a build() that returns the model, and give --arch FILE.py"
        )
    name = dotted(node.func, pasted.aliases)
    if name is None:
        raise LayerListError(
            f"{where}: `{quoted(pasted.source, node.func)}` is not a layer name; "
            f"name a keras.layers class such as Conv2D"
        )
    bare = layer_name(name)
    if bare is None or bare.startswith("_"):
        raise LayerListError(
            f"{where}: {name} is not in keras.layers; name a layer class such as Conv2D"
        )
    if bare in REFUSED_LAYERS:
        raise LayerListError(
            f"{where}: {bare} is not a layer a list may use (it would run code or wrap other "
            f"layers); name a keras.layers class such as Conv2D, MaxPooling2D, Flatten or Dense"
        )
    if bare not in KNOWN_LAYERS and bare != "Sequential":
        meant = suggestion(bare, KNOWN_LAYERS)
        if meant is not None:
            raise LayerListError(f"{where}: {bare} is not a Keras layer; did you mean {meant}?")
    for argument in node.args:
        if isinstance(argument, ast.Starred):
            raise LayerListError(f"{where}: *arguments are not allowed; {LITERALS_HINT}")
    for keyword in node.keywords:
        if keyword.arg is None:
            raise LayerListError(f"{where}: **arguments are not allowed; {LITERALS_HINT}")
    try:
        args = tuple(literal(a, pasted.names, pasted.aliases) for a in node.args)
        kwargs = {k.arg: literal(k.value, pasted.names, pasted.aliases) for k in node.keywords}
    except NotLiteral as exc:
        raise LayerListError(f"{where}: {exc} is not allowed; {LITERALS_HINT}") from None
    bare, args, kwargs = modernised(bare, args, kwargs)
    return LayerCall(position, quoted(pasted.source, node), bare, args, kwargs, line)
