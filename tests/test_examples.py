"""Every example in README.md and docs/**/*.md, checked against the real program, so that the
docs cannot drift from it (issue 27).

The convention the docs are written to (and that `collect` below reads):

- In a ```console block, a line starting with `$ ` is a command (a trailing `\\` continues it
  on the next line); the lines after it, up to the next `$ ` line or the end of the block,
  are its shown output. Output lines may start with `mnist-cnn` (`mnist-cnn train: error:
  ...`): they are output, not commands.
- In a ```sh, ```bash or ```shell block, a line starting with `mnist-cnn` is a command (no
  output shown); `# comments` after it are comments.
- Only commands whose program is `mnist-cnn` are collected (not `curl`, `make`, `ray` ...).
- Every collected command must parse with the real parser and pass the command's checks
  that need no Keras. One whose shown output has ` error: ` is meant to fail: with exactly
  the message shown, or else (an error met only when it runs, such as a cluster that does
  not answer) it must parse and pass those checks. A value the shell computes
  (`"$(cat my_model.py)"`, `$VAR`) cannot be checked: such a command's flags are.
- A block whose fence is immediately preceded by the line `<!-- example: run -->` is run
  for real, on a freshly trained `fast` run (any `runs/NAME-YYYYmmdd-HHMMSS` in it stands
  for that run): its output must match the shown output line for line, text exactly
  (spacing aside), numbers within `number_close`'s tolerance, JSON lines as JSON.
- Every ```python block in docs/ runs in a fresh interpreter and must exit 0, unless its
  fence is immediately preceded by `<!-- example: not run -->`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import error_lines, run_cli

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = "mnist-cnn"
RUN_MARK = "<!-- example: run -->"
NOT_RUN_MARK = "<!-- example: not run -->"
CONSOLE = {"console"}
SHELL = {"sh", "bash", "shell"}
PYTHON = {"python", "py"}
SHELL_EXPANSION = re.compile(r"\$[({\w]|`")
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "&"}
MIN_COMMANDS = 40


@dataclass
class Command:
    """One `mnist-cnn ...` line of the docs: its words, the output shown under it, and
    whether its block runs for real."""

    file: str
    line: int
    text: str
    output: list[str] = field(default_factory=list)
    checked: bool = False

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"

    def argv(self) -> list[str]:
        """The arguments after `mnist-cnn` (a pipe or redirection and what follows it is
        the shell's, not the program's)."""
        words = shlex.split(self.text, comments=True)[1:]
        for i, word in enumerate(words):
            if word in SHELL_OPERATORS:
                return words[:i]
        return words

    def shows_error(self) -> str | None:
        """The text after `error: ` of the first error line shown under it, if any."""
        for line in self.output:
            if " error: " in line:
                return line.split("error: ", 1)[1].strip()
        return None


@dataclass
class PythonBlock:
    file: str
    line: int
    code: str
    run: bool

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown page of the MkDocs site."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def blocks(path: Path):
    """(fence line number, info word, line before the fence, [(line number, line), ...]) for
    each fenced block of a Markdown file; the block's indentation is taken off its lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = re.match(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)", lines[i])
        if not match:
            i += 1
            continue
        indent, fence, info = match.groups()
        before = lines[i - 1].strip() if i else ""
        closing = re.compile(re.escape(fence[0]) + f"{{{len(fence)},}}")
        body = []
        j = i + 1
        while j < len(lines) and not closing.fullmatch(lines[j].strip()):
            text = lines[j]
            body.append((j + 1, text[len(indent) :] if text.startswith(indent) else text))
            j += 1
        yield i + 1, info.lower(), before, body
        i = j + 1


def _joined(body, k: int) -> tuple[str, int]:
    """The command starting at body[k], with its `\\` continuation lines; and the index
    after it."""
    text = body[k][1]
    while text.rstrip().endswith("\\") and k + 1 < len(body):
        k += 1
        text = text.rstrip()[:-1] + " " + body[k][1].strip()
    return text, k + 1


def _is_program(text: str) -> bool:
    words = text.split()
    return bool(words) and Path(words[0]).name == PROGRAM


def collect(path: Path, root: Path = ROOT) -> list[Command]:
    """The `mnist-cnn` commands of one Markdown file, by the convention above."""
    name = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    commands: list[Command] = []
    for _, info, before, body in blocks(path):
        checked = before == RUN_MARK
        k = 0
        if info in CONSOLE:
            current = None
            while k < len(body):
                number, line = body[k]
                if line.startswith("$ "):
                    text, k = _joined(body, k)
                    text = text[2:].strip()
                    current = Command(name, number, text, checked=checked)
                    if _is_program(text):
                        commands.append(current)
                    continue
                if current is not None:
                    current.output.append(line)
                k += 1
        elif info in SHELL:
            while k < len(body):
                number, line = body[k]
                if line.startswith(PROGRAM):
                    text, k = _joined(body, k)
                    if _is_program(text):
                        commands.append(Command(name, number, text.strip(), checked=checked))
                    continue
                k += 1
    for command in commands:  # a block's trailing blank lines are not output
        while command.output and not command.output[-1].strip():
            command.output.pop()
    return commands


def collect_python(path: Path, root: Path = ROOT) -> list[PythonBlock]:
    name = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    return [
        PythonBlock(
            name, number, "\n".join(line for _, line in body) + "\n", before != NOT_RUN_MARK
        )
        for number, info, before, body in blocks(path)
        if info in PYTHON
    ]


# --- does a command parse, and pass its checks? -----------------------------------------


def keras_free_checks(args: argparse.Namespace) -> None:
    """What each command checks before it loads Keras, by the command's own functions
    (nothing here trains or loads Keras): a bad value, model name, layer list or sample."""
    from mnist_cnn.cli import common, sweep, train

    if args.command == "train":
        train.check_train_flags(args)
    elif args.command == "sweep" and not args.resume:
        values = sweep._sweep_values(args.set, args.samples)
        train.check_train_flags(args)
        for text in values.get("arch", []):
            train.check_train_flags(argparse.Namespace(**{**vars(args), "arch": text}))
    elif args.command == "predict":
        from mnist_cnn import samples

        for item in args.inputs:
            samples.from_input(item)
        common.check_min_confidence(args.min_confidence)
        if not 1 <= args.top_k <= 10:  # predict.run's own words
            raise common.UsageError(f"--top-k must be between 1 and 10, got {args.top_k}")
    elif args.command == "serve":
        common.check_min_confidence(args.min_confidence)
    elif args.command == "models" and (args.name or args.arch is not None):
        from mnist_cnn.models import catalogue, layer_list

        if args.arch is not None and layer_list.python_file(args.arch) is None:
            layer_list.parse(args.arch)
        if args.name is not None:
            catalogue.get_entry(args.name)


def refusal(argv: list[str], checks: bool = True) -> str | None:
    """None if the real parser and (with `checks`) the Keras-free checks accept `argv`; else
    the text after `error: ` of the one line the program would print."""
    from mnist_cnn.cli.common import input_errors
    from mnist_cnn.cli.main import parse_args
    from mnist_cnn.errors import first_line

    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
            args = parse_args(argv)
    except SystemExit as exc:
        if not exc.code:  # --help
            return None
        lines = said.getvalue().strip().splitlines()
        return lines[-1].split("error: ", 1)[1] if lines else f"exit {exc.code}"
    try:
        if checks:
            keras_free_checks(args)
    except Exception as exc:
        if isinstance(exc, input_errors()):
            return first_line(exc)
        raise
    return None


def drift(command: Command) -> str | None:
    """Why the docs and the program disagree about `command`, or None."""
    try:
        argv = command.argv()
    except ValueError as exc:
        return f"{command.id}: the shell cannot read it ({exc}): {command.text}"
    # a value the shell computes ("$(cat my_model.py)", $VAR) is not in the docs to check:
    # such a command's flags are checked, not its values
    got = refusal(argv, checks=not any(SHELL_EXPANSION.search(word) for word in argv))
    shown = command.shows_error()
    if got is None or got == shown:
        return None
    if shown is None:
        return f"{command.id}: {command.text}\n  refused: {got}"
    return f"{command.id}: {command.text}\n  shown:   {shown}\n  refused: {got}"


# --- does real output match the shown output? -------------------------------------------

NUMBER = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?%?")
RUN_DIR = re.compile(r"(?<![\w/.-])runs/[\w.-]+?-\d{8}-\d{6}")


def tolerance(shown: float, percent: bool = False) -> float:
    """How far a real number may be from the one shown: half a point for a percentage,
    0.01 for a value in [0, 1], else 3 or 5% of the shown value, whichever is more."""
    if percent:
        return 0.5
    if 0 <= shown <= 1:
        return 0.01
    return max(3.0, 0.05 * abs(shown))


def number_close(shown: str, real: str, in_json: bool = False) -> bool:
    """A number in the docs against the one printed: decimals and percentages within
    `tolerance`; whole numbers equal, except on a JSON line."""
    percent = shown.endswith("%")
    if percent != real.endswith("%"):
        return False
    s, r = (float(text.rstrip("%").replace(",", "")) for text in (shown, real))
    decimal = percent or "." in shown or "e" in shown.lower()
    if not decimal and not in_json:
        return s == r
    return abs(s - r) <= tolerance(s, percent)


def json_close(shown, real, where: str = "") -> list[str]:
    """Differences between two JSON values: the same keys in the same nesting, lists of the
    same length, strings equal, numbers within `tolerance`."""
    if isinstance(shown, dict):
        if not isinstance(real, dict) or list(shown) != list(real):
            keys = list(real) if isinstance(real, dict) else type(real).__name__
            return [f"{where or 'top'}: keys {list(shown)} shown, {keys} printed"]
        return [p for key in shown for p in json_close(shown[key], real[key], f"{where}.{key}")]
    if isinstance(shown, list):
        if not isinstance(real, list) or len(shown) != len(real):
            n = len(real) if isinstance(real, list) else type(real).__name__
            return [f"{where}: {len(shown)} items shown, {n} printed"]
        return [
            p
            for i, (s, r) in enumerate(zip(shown, real, strict=True))
            for p in json_close(s, r, f"{where}[{i}]")
        ]
    numbers = (int, float)
    if isinstance(shown, numbers) and not isinstance(shown, bool):
        ok = isinstance(real, numbers) and not isinstance(real, bool)
        if ok and math.isfinite(real) and abs(shown - real) <= tolerance(shown):
            return []
    elif shown == real:
        return []
    return [f"{where}: {shown!r} shown, {real!r} printed"]


def _as_json(line: str):
    if not line.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(line)
    except ValueError:
        return None


def line_close(shown: str, real: str) -> list[str]:
    """Differences between a shown line and a printed one (see the module's docstring)."""
    shown_json = _as_json(shown)
    if shown_json is not None:
        real_json = _as_json(real)
        if real_json is None:
            return [f"JSON shown, not printed: {real!r}"]
        return json_close(shown_json, real_json)
    text = [" ".join(part.split()) for part in NUMBER.split(shown)]
    real_text = [" ".join(part.split()) for part in NUMBER.split(real)]
    if text != real_text:
        return [f"text differs:\n    shown:   {shown}\n    printed: {real}"]
    return [
        f"{s} shown, {r} printed: {real}"
        for s, r in zip(NUMBER.findall(shown), NUMBER.findall(real), strict=True)
        if not number_close(s, r)
    ]


def output_close(shown: list[str], real: list[str]) -> list[str]:
    """Differences between a command's shown output and what it printed."""
    if len(shown) != len(real):
        return [f"{len(shown)} lines shown, {len(real)} printed:\n" + "\n".join(real)]
    return [
        f"line {i}: {p}"
        for i, (s, r) in enumerate(zip(shown, real, strict=True), 1)
        for p in line_close(s, r)
    ]


def with_run(text: str, run: str) -> str:
    """Any runs/NAME-YYYYmmdd-HHMMSS in `text` stands for `run`."""
    return RUN_DIR.sub(lambda _: run, text)


def run_example(command: Command, run: str, cwd: Path) -> list[str]:
    """Run a checked command for real on `run` (in `cwd`); the differences between what it
    printed (stdout, then stderr less the lines said before a wait) and what the docs show."""
    argv = [with_run(word, run) for word in command.argv()]
    result = run_cli(*argv, cwd=cwd)
    real = result.stdout.rstrip("\n").splitlines() + error_lines(result.stderr)
    real = [line.replace(run, "RUN") for line in real]
    shown = [with_run(line, "RUN") for line in command.output]
    if (result.returncode != 0) != (command.shows_error() is not None):
        return [f"exit {result.returncode}: {result.stderr.strip()}"]
    return output_close(shown, real)


# --- the tests ----------------------------------------------------------------------------

COMMANDS = [command for path in doc_files() for command in collect(path)]
CHECKED = [command for command in COMMANDS if command.checked]
PYTHON_BLOCKS = [block for path in doc_files()[1:] for block in collect_python(path)]  # docs/
RUN_PYTHON = [block for block in PYTHON_BLOCKS if block.run]


@pytest.mark.quick
def test_the_docs_show_enough_commands():
    """The collector finds the docs' commands: if the convention and the docs part ways
    (a renamed fence, a lost `$ `), this count falls instead of the checks going quiet."""
    per_file = {path.relative_to(ROOT).as_posix(): len(collect(path)) for path in doc_files()}
    assert sum(per_file.values()) >= MIN_COMMANDS, per_file


@pytest.mark.quick
@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_each_command_parses_and_its_values_are_accepted(command):
    """A renamed flag, a removed choice, a changed refusal: the docs say what the program says."""
    problem = drift(command)
    assert problem is None, problem


@pytest.mark.quick
def test_output_tolerance():
    """Numbers a retrained model moves a little pass; a changed word, a lost line, a number
    far off or a JSON key renamed does not."""
    shown = [
        "test accuracy: 98.87%  (113 wrong of 10000)",
        "test loss: 0.0317  temperature 1.25",
        '{"model": "runs/x.keras", "test_accuracy": 0.9887, "per_class": [980, 1135]}',
    ]
    assert (
        output_close(
            shown,
            [
                "test accuracy: 99.12%  (113 wrong of 10000)",
                "test loss: 0.0297  temperature 3.9",
                '{"model": "runs/x.keras", "test_accuracy": 0.991, "per_class": [981, 1134]}',
            ],
        )
        == []
    )
    for real in (
        ["test accuracy: 97.87%  (113 wrong of 10000)", *shown[1:]],  # a point off
        ["test accuracy: 98.87%  (114 wrong of 10000)", *shown[1:]],  # a whole number
        ["test accuracy: 98.87%  (113 wrong in 10000)", *shown[1:]],  # a word
        ["test loss: 0.0517  temperature 1.25" if i == 1 else s for i, s in enumerate(shown)],
        [*shown[:2], shown[2].replace('"per_class"', '"per_digit"')],
        [*shown[:2], shown[2].replace("[980, 1135]", "[980]")],
        shown[:2],
    ):
        assert output_close(shown, real), real
    assert with_run("runs/fast-20261201-045056/model.keras", "/tmp/r") == "/tmp/r/model.keras"


@pytest.mark.parametrize("command", CHECKED, ids=[c.id for c in CHECKED])
def test_checked_examples_print_what_they_show(command, fast_run, tmp_path):
    """A block marked `<!-- example: run -->` runs for real, on a freshly trained `fast`
    run, and prints what the docs show, numbers within tolerance."""
    problems = run_example(command, fast_run, tmp_path)
    assert not problems, f"{command.id}: {command.text}\n" + "\n".join(problems)


@pytest.mark.parametrize("block", RUN_PYTHON, ids=[b.id for b in RUN_PYTHON])
def test_python_examples_run(block, tmp_path):
    """The docs' Python runs as written, in a fresh interpreter and an empty folder."""
    env = {**os.environ}
    result = subprocess.run(
        [sys.executable, "-c", block.code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, f"{block.id}:\n{result.stderr[-3000:]}"
