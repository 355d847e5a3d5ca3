"""Keras code as tutorials print it, read with `ast` and never run: which layers, in order.

People paste what a tutorial shows, not a bare layer list: `model = keras.Sequential([...])`,
or `model = Sequential()` and `model.add(...)` lines, with imports, `num_classes = 10`, and
`model.compile(...)` after. `read` finds the layer calls in such text and the literal names
they use; layer_list.py then checks each call as it checks a bare list. Nothing is run, and
anything that is not part of a Sequential network is refused with its line, so that what
trains is exactly what was pasted. No Keras here: a bad paste is answered at once.
"""

from __future__ import annotations

import ast
import math
import operator
import textwrap
from dataclasses import dataclass, field

# Module names that tutorials put before a layer (tf.keras.layers.Conv2D, keras.Input,
# keras.models.Sequential, tf.keras.layers.experimental.preprocessing.Rescaling).
MODULE_PARTS = frozenset(
    {"tf", "tensorflow", "keras", "layers", "models", "experimental", "preprocessing"}
)
ACTIVATION_MODULES = ("nn", "keras.activations", "activations")  # after tf. or tensorflow.
# What a tutorial does with its model after building it; train's flags set the recipe instead.
IGNORED_METHODS = frozenset(
    {"compile", "summary", "fit", "fit_generator", "evaluate", "predict", "save", "build"}
)
UNSAFE_NAMES = frozenset(
    {"eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "globals", "locals"}
    | {"vars", "breakpoint", "input", "exit", "quit", "memoryview", "type", "object"}
)
LARGEST_NUMBER = 1e9  # arithmetic on names (28 * 28) stays within this
EXAMPLE = (
    "write it as a tutorial does: \"Conv2D(32, (3,3), activation='relu'), Flatten(), "
    "Dense(10, activation='softmax')\", or paste model = Sequential([...]) with its imports"
)


class LayerListError(ValueError):
    """A layer list that cannot be read; the message names the item and what is wrong."""


class NotLiteral(Exception):
    """An argument that is not a literal; the message says what it is."""


@dataclass
class Pasted:
    """The layer calls found in pasted text, and what `read` learned along the way."""

    source: str  # the text as parsed, for ast.get_source_segment
    calls: list[ast.AST] = field(default_factory=list)
    names: dict = field(default_factory=dict)  # num_classes = 10
    aliases: dict = field(default_factory=dict)  # `from keras import layers as L`: L -> layers
    ignored: list[str] = field(default_factory=list)  # "model.compile(...) (line 9)"
    line_numbers: bool = False  # a statement or several lines: errors name the line
    indents: list[int] = field(default_factory=list)  # per line: what parsing stripped

    def line(self, node: ast.AST) -> int:
        return node.lineno

    def column(self, node: ast.AST) -> int:
        return node.col_offset + 1 + self.indents[node.lineno - 1]


def read(text: str) -> Pasted:
    """The layer calls of pasted Keras code, in order, with its literal names."""
    pasted = _parsed(text)
    tree = ast.parse(pasted.source)
    _refuse_unsafe(pasted, tree)
    model = None  # the variable holding the Sequential model, once made
    for statement in tree.body:
        model = _statement(pasted, statement, model)
    return pasted


def _parsed(text: str) -> Pasted:
    """The text made parseable: dedented, or, for a paste cut mid-cell, each line stripped
    (nothing read here spans an indented block, so stripping changes no meaning)."""
    lines = text.splitlines() or [""]
    dedented = textwrap.dedent(text)
    common = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    first_error = None
    stripped = "\n".join(line.lstrip() for line in lines)
    for source, indents in (
        (dedented, [common] * len(lines)),
        (stripped, [len(line) - len(line.lstrip()) for line in lines]),
    ):
        try:
            ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            first_error = first_error or exc
            continue
        multi_line = len([line for line in lines if line.strip()]) > 1
        return Pasted(source, line_numbers=multi_line, indents=indents)
    exc = first_error
    line = getattr(exc, "lineno", None)
    where = f" at line {line}, column {exc.offset + common}" if line and exc.offset else ""
    reason = getattr(exc, "msg", None) or type(exc).__name__
    raise LayerListError(f"--arch is not a layer list{where} ({reason}); {EXAMPLE}")


def _refuse_unsafe(pasted: Pasted, tree: ast.AST) -> None:
    """Refuse what only code that means harm writes, even in a line that would be ignored."""
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Attribute):
            name = node.attr
        if isinstance(node, ast.Lambda):
            what = "a lambda"
        elif name is not None and name.startswith("__"):
            what = f"the dunder name {name}"
        elif isinstance(node, ast.Name) and name in UNSAFE_NAMES:
            what = f"{name}()"
        else:
            continue
        raise LayerListError(
            f"--arch line {pasted.line(node)}, column {pasted.column(node)}: {what} is not "
            f"allowed in a layer list (it is read, never run); name keras.layers classes "
            f"with literal arguments"
        )


def _where(pasted: Pasted, node: ast.AST) -> str:
    return f"--arch line {pasted.line(node)} `{quoted(pasted.source, node)}`"


def _statement(pasted: Pasted, statement: ast.stmt, model: str | None) -> str | None:
    """Read one statement; return the model's variable name (once made)."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        for alias in statement.names:
            if alias.asname:
                pasted.aliases[alias.asname] = alias.name.rsplit(".", 1)[-1]
        return model
    if isinstance(statement, ast.Expr):
        value = statement.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return model  # a docstring
        if isinstance(value, (ast.List, ast.Tuple)):
            _bare_layers(pasted, value.elts, model)
            return model
        if isinstance(value, ast.Call):
            kind = _call_kind(pasted, value, model)
            if kind == "sequential":
                return _sequential(pasted, value, model, None)
            if kind == "add":
                if len(value.args) != 1 or value.keywords:
                    raise LayerListError(f"{_where(pasted, value)}: add() takes one layer")
                pasted.calls.append(value.args[0])
                return model
            if kind == "ignored":
                _ignore(pasted, value)
                return model
        _bare_layers(pasted, [value], model)
        return model
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target, value = statement.targets[0], statement.value
        if isinstance(value, ast.Call) and isinstance(target, ast.Name):
            kind = _call_kind(pasted, value, model)
            if kind == "sequential":
                return _sequential(pasted, value, model, target.id)
            if kind == "ignored":  # history = model.fit(...)
                _ignore(pasted, value)
                return model
            name = dotted(value.func, pasted.aliases)
            if name is not None and layer_name(name) is not None:
                raise LayerListError(
                    f"{_where(pasted, statement)}: a layer or model kept in a name is Keras's "
                    f"functional API, not read here; put it in FILE.py with a build() that "
                    f"returns the model, and give --arch FILE.py"
                )
        _assign(pasted, target, value)
        return model
    kind = type(statement).__name__
    hint = (
        "; put code that defines functions in FILE.py and give --arch FILE.py[:FUNCTION]"
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        else ""
    )
    raise LayerListError(
        f"{_where(pasted, statement)}: {_STATEMENTS.get(kind, 'this statement')} is not part "
        f"of a layer list; paste the lines that build a Sequential model{hint}"
    )


_STATEMENTS = {
    "FunctionDef": "a function",
    "AsyncFunctionDef": "a function",
    "ClassDef": "a class",
    "For": "a loop",
    "While": "a loop",
    "If": "an if",
    "With": "a with block",
    "Try": "a try block",
    "AugAssign": "an assignment",
    "AnnAssign": "an assignment",
    "Assign": "an assignment",
}


def _call_kind(pasted: Pasted, call: ast.Call, model: str | None) -> str:
    """'sequential', 'add' (model.add), 'ignored' (model.compile, print...) or 'layer'."""
    func = call.func
    name = dotted(func, pasted.aliases)
    if name is not None and layer_name(name) == "Sequential":
        return "sequential"
    if isinstance(func, ast.Name) and func.id == "print":
        return "ignored"
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if func.value.id == model and func.attr == "add":
            return "add"
        if func.value.id == model and func.attr in IGNORED_METHODS:
            return "ignored"
        if func.attr == "add" or (
            func.attr in IGNORED_METHODS and func.value.id not in MODULE_PARTS
        ):
            raise LayerListError(
                f"{_where(pasted, call)}: {func.value.id} is not a Sequential model made "
                f"above; start with {func.value.id} = Sequential()"
            )
    return "layer"


def _ignore(pasted: Pasted, call: ast.Call) -> None:
    pasted.ignored.append(f"{quoted(pasted.source, call.func)}(...) (line {call.lineno})")


def _sequential(pasted: Pasted, call: ast.Call, model: str | None, variable: str | None):
    """Sequential([...]) or Sequential(): its layers, if any, start the list."""
    if model is not None or pasted.calls:
        raise LayerListError(
            f"{_where(pasted, call)}: a second model; paste the lines of one Sequential model"
        )
    given = [*call.args, *(k.value for k in call.keywords if k.arg == "layers")]
    unknown = [k.arg for k in call.keywords if k.arg not in ("layers", "name", "trainable")]
    if len(given) > 1 or unknown or (given and not isinstance(given[0], (ast.List, ast.Tuple))):
        raise LayerListError(
            f"{_where(pasted, call)}: give Sequential a list of layers, Sequential([...]), "
            f"or nothing, then model.add(...) each layer"
        )
    if given:
        pasted.calls.extend(given[0].elts)
    return variable or "<the model>"


def _bare_layers(pasted: Pasted, items: list[ast.AST], model: str | None) -> None:
    if model is not None:
        node = items[0] if items else None
        where = _where(pasted, node) if node is not None else "--arch"
        raise LayerListError(
            f"{where}: layers outside the Sequential model; put them in its list or "
            f"model.add(...) them"
        )
    pasted.calls.extend(items)


def _assign(pasted: Pasted, target: ast.AST, value: ast.AST) -> None:
    """`num_classes = 10`, `img_rows, img_cols = 28, 28`: names for literal values."""
    targets, values = [target], [value]
    if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
        targets, values = target.elts, value.elts
    if len(targets) != len(values) or not all(isinstance(t, ast.Name) for t in targets):
        raise LayerListError(
            f"{_where(pasted, target)}: only simple names can be given values here, "
            f"as in input_shape = (28, 28, 1); paste only the lines that build the model"
        )
    for name, node in zip(targets, values, strict=True):
        try:
            pasted.names[name.id] = literal(node, pasted.names, pasted.aliases)
        except NotLiteral as exc:
            raise LayerListError(
                f"{_where(pasted, node)}: {name.id} is given {exc}, which is not read; "
                f"{LITERALS_HINT}, as in input_shape = (28, 28, 1); paste only the lines "
                f"that build the model"
            ) from None


# --- names and literals --------------------------------------------------------------------

LITERALS_HINT = (
    "arguments may be numbers, strings, tuples, lists, True, False, None, "
    "or names given such values above"
)


def quoted(source: str, node: ast.AST) -> str:
    text = " ".join((ast.get_source_segment(source, node) or "?").split())
    return text if len(text) <= 60 else text[:57] + "..."


def dotted(node: ast.AST, aliases: dict | None = None) -> str | None:
    """`tf.keras.layers.Conv2D` as text, its first name through import aliases; else None."""
    if isinstance(node, ast.Name):
        return (aliases or {}).get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = dotted(node.value, aliases)
        return None if base is None else f"{base}.{node.attr}"
    return None


def layer_name(name: str) -> str | None:
    """The keras.layers class a dotted name means (layers.Conv2D: Conv2D); None if its
    modules are not Keras's (os.system)."""
    *modules, last = name.split(".")
    return last if all(part in MODULE_PARTS for part in modules) else None


def literal(node: ast.AST, names: dict, aliases: dict | None = None):
    """The value of a literal: a number, string, True/False/None, a tuple or list of them, a
    name given one above, or + - * / // of numbers. Worked out here; nothing is run."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, type(None))):
        if isinstance(node.value, float) and not math.isfinite(node.value):
            raise NotLiteral("a number that is not finite")
        return node.value
    if isinstance(node, ast.Tuple):
        return tuple(literal(e, names, aliases) for e in node.elts)
    if isinstance(node, ast.List):
        return [literal(e, names, aliases) for e in node.elts]
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Attribute):  # activation=tf.nn.relu, as TensorFlow 1 wrote it
        name = dotted(node, aliases)
        module, _, function = (name or "").rpartition(".")
        module = module.removeprefix("tf.").removeprefix("tensorflow.")
        if module in ACTIVATION_MODULES and function.isidentifier():
            return function
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _number(literal(node.operand, names, aliases), node)
        return -value if isinstance(node.op, ast.USub) else value
    operations = {
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv,
    }
    if isinstance(node, ast.BinOp) and type(node.op) in operations:
        left = _number(literal(node.left, names, aliases), node)
        right = _number(literal(node.right, names, aliases), node)
        if isinstance(node.op, (ast.Div, ast.FloorDiv)) and right == 0:
            raise NotLiteral("a division by zero")
        value = operations[type(node.op)](left, right)
        if abs(value) > LARGEST_NUMBER:
            raise NotLiteral(f"a number above {LARGEST_NUMBER:.0e}")
        return value
    detail = f" ({node.id}, not given a value above)" if isinstance(node, ast.Name) else ""
    raise NotLiteral(f"{what(node)}{detail}")


def _number(value, node: ast.AST):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NotLiteral("arithmetic on something that is not a number")
    if abs(value) > LARGEST_NUMBER:
        raise NotLiteral(f"a number above {LARGEST_NUMBER:.0e}")
    return value


def what(node: ast.AST) -> str:
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
