"""A Keras layer list as a tutorial writes it, read with `ast`: never run as Python.

"Conv2D(32, (3,3), activation='relu'), MaxPooling2D((2,2)), Flatten(), Dense(10, ...)"
becomes a list of calls, each a plain layer name with literal arguments (numbers, strings,
tuples, lists, True, False, None). Anything else (an attribute, a lambda, a call inside a
call, `__import__`, a dict) is refused with one line that points at the item. This module
imports neither Keras nor the rest of the package, so that a bad list is answered at once;
architecture.py looks the names up in `keras.layers` and builds the network.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

MAX_TEXT = 20_000  # characters
MAX_LAYERS = 200
# as tutorials write them: layers.Dense, keras.layers.Dense, tf.keras.layers.Dense, keras.Input
LAYER_PREFIXES = ("tf.keras.layers.", "keras.layers.", "tf.keras.", "keras.", "layers.")


PYTHON_FILE = re.compile(r"(?P<file>.+\.py)(?::(?P<function>[A-Za-z_]\w*))?")


def python_file(text: str) -> tuple[str, str] | None:
    """(file, function) when --arch names a .py file (`my_net.py` or `my_net.py:FUNCTION`,
    function `build` by default) rather than a layer list; else None."""
    match = PYTHON_FILE.fullmatch(text.strip())
    return None if match is None else (match["file"], match["function"] or "build")


class LayerListError(ValueError):
    """A layer list that cannot be read; the message names the item and what is wrong."""


@dataclass(frozen=True)
class LayerCall:
    """One item of a layer list: a keras.layers class name and its literal arguments."""

    position: int
    text: str
    name: str
    args: tuple
    kwargs: dict


def parse(text: str) -> list[LayerCall]:
    """Read a layer list such as "Conv2D(32, (3,3), activation='relu'), Flatten(), ...".

    Only the shape of the text is checked here, with `ast` and without Keras: each item is
    a call of a plain name with literal arguments. Nothing is run.
    """
    if not text.strip():
        raise LayerListError('--arch is empty; give layers such as "Flatten(), Dense(10, ...)"')
    if len(text) > MAX_TEXT:
        raise LayerListError(f"--arch is {len(text):,} characters; at most {MAX_TEXT:,}")
    source = f"[\n{text}\n]"
    try:
        tree = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        where = (
            f" at line {exc.lineno - 1}, column {exc.offset}" if getattr(exc, "lineno", 0) else ""
        )
        reason = getattr(exc, "msg", None) or type(exc).__name__
        raise LayerListError(
            f"--arch is not a layer list{where} ({reason}); write it as a tutorial does: "
            f"\"Conv2D(32, (3,3), activation='relu'), Flatten(), Dense(10, activation='softmax')\""
        ) from None
    items = tree.elts
    if len(items) == 1 and isinstance(items[0], (ast.List, ast.Tuple)):  # pasted with [ ]
        items = items[0].elts
    if len(items) > MAX_LAYERS:
        raise LayerListError(f"--arch has {len(items)} layers; at most {MAX_LAYERS}")
    return [_layer_call(source, position, node) for position, node in enumerate(items, 1)]


def _quoted(source: str, node: ast.AST) -> str:
    text = " ".join((ast.get_source_segment(source, node) or "?").split())
    return text if len(text) <= 60 else text[:57] + "..."


def _layer_call(source: str, position: int, node: ast.AST) -> LayerCall:
    where = f"--arch item {position} `{_quoted(source, node)}`"
    if not isinstance(node, ast.Call):
        raise LayerListError(f"{where} is not a layer call such as Dense(10)")
    name = _dotted(node.func)
    if name is None:
        raise LayerListError(
            f"{where}: `{_quoted(source, node.func)}` is not a layer name; "
            f"name a keras.layers class such as Conv2D"
        )
    bare = next((name[len(p) :] for p in LAYER_PREFIXES if name.startswith(p)), name)
    if "." in bare or bare.startswith("_"):
        raise LayerListError(
            f"{where}: {name} is not in keras.layers; name a layer class such as Conv2D"
        )
    for argument in node.args:
        if isinstance(argument, ast.Starred):
            raise LayerListError(f"{where}: *arguments are not allowed; {_LITERALS_HINT}")
    for keyword in node.keywords:
        if keyword.arg is None:
            raise LayerListError(f"{where}: **arguments are not allowed; {_LITERALS_HINT}")
    try:
        args = tuple(_literal(a) for a in node.args)
        kwargs = {k.arg: _literal(k.value) for k in node.keywords}
    except _NotLiteral as exc:
        raise LayerListError(f"{where}: {exc} is not allowed; {_LITERALS_HINT}") from None
    return LayerCall(position, _quoted(source, node), bare, args, kwargs)


_LITERALS_HINT = "arguments may be numbers, strings, tuples, lists, True, False or None"


class _NotLiteral(Exception):
    pass


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _what(node: ast.AST) -> str:
    kinds = {
        ast.Lambda: "a lambda",
        ast.Call: "a call inside a call",
        ast.Attribute: "an attribute",
        ast.Name: "a name",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.Subscript: "an index",
        ast.JoinedStr: "an f-string",
        ast.BinOp: "arithmetic",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a generator",
        ast.NamedExpr: "an assignment",
    }
    return next((text for kind, text in kinds.items() if isinstance(node, kind)), "an expression")


def _literal(node: ast.AST):
    """The value of a literal: a number, string, True/False/None, or a tuple or list of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, type(None))):
        if isinstance(node.value, float) and not math.isfinite(node.value):
            raise _NotLiteral("a number that is not finite")
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    detail = f" ({node.id})" if isinstance(node, ast.Name) else ""
    raise _NotLiteral(f"{_what(node)}{detail}")
