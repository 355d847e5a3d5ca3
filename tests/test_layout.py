"""The package's shape, checked: the import contracts, no circles, light entry points,
modules of a readable size, the command's flags as they were, duplicates written once."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SOURCE = ROOT / "src" / "mnist_cnn"
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
HEAVY = ("keras", "tensorflow", "jax", "torch", "matplotlib", "ray", "mlflow")


def lint_imports(source_root: Path = ROOT / "src"):
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], capture_output=True, text=True, cwd=ROOT, env=env
    )


def test_the_import_contracts_hold():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_breaking_a_contract_on_purpose_fails_lint_imports(tmp_path):
    """The contracts can fail: an upward import from data/, and Keras in the catalogue."""
    copy = tmp_path / "src" / "mnist_cnn"
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "data" / "folders.py", "a") as f:
        f.write("\nfrom mnist_cnn.training import train  # noqa\n")
    with open(copy / "models" / "catalogue.py", "a") as f:
        f.write("\nimport keras  # noqa\n")
    result = lint_imports(tmp_path / "src")
    assert result.returncode != 0, result.stdout
    assert "2 broken" in result.stdout, result.stdout
    assert "mnist_cnn.data.folders -> mnist_cnn.training" in result.stdout
    assert "mnist_cnn.models.catalogue -> keras" in result.stdout


def test_no_module_imports_itself_through_others():
    """No import cycle anywhere in the package (strongly connected parts of grimp's graph)."""
    import grimp

    graph = grimp.build_graph("mnist_cnn")
    edges = {
        m: {n for n in graph.find_modules_directly_imported_by(m) if n.startswith("mnist_cnn")}
        for m in graph.modules
    }
    cycles = []
    for start in edges:
        seen, todo = set(), list(edges[start])
        while todo:
            module = todo.pop()
            if module == start:
                cycles.append(start)
                break
            if module not in seen:
                seen.add(module)
                todo.extend(edges[module])
    assert cycles == []


def test_modules_stay_readable():
    """cli/ modules under 300 lines; the training, models and data modules about 400."""
    limits = {"cli": 300, "training": 400, "models": 410, "data": 410}
    too_long = [
        f"{path.relative_to(SOURCE)}: {count} lines"
        for package, limit in limits.items()
        for path in (SOURCE / package).glob("*.py")
        if (count := len(path.read_text().splitlines())) > limit
    ]
    assert too_long == []


def _help(argv: list[str]) -> str:
    from mnist_cnn.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return out.getvalue()


RECORDED = json.loads((ROOT / "tests" / "data" / "cli_flags.json").read_text())


@pytest.mark.parametrize("command", sorted(RECORDED))
def test_every_command_keeps_its_flags(command):
    """Each command's --help lists the flags recorded before the layout moved."""
    text = _help([] if command == "(top)" else command.split())
    flags = sorted(set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", text.split("example:")[0])))
    assert flags == RECORDED[command]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["models"],
        ["models", "--json"],
        ["train", "x", "--epochs", "0"],
        ["train", "x", "--epochs", "0", "--track", "http://127.0.0.1:9"],  # MLflow: when used
    ],
)
def test_help_models_and_a_bad_flag_load_no_keras(argv):
    code = (
        "import sys\nfrom mnist_cnn.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


def test_import_mnist_cnn_is_light_and_names_its_api():
    code = (
        "import sys, mnist_cnn\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', *{HEAVY!r})))\n"
        "print(sorted(mnist_cnn.__all__))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded, names = result.stdout.strip().splitlines()
    assert loaded == "[]", result.stderr
    for name in ("train", "evaluate", "sweep", "load_dataset", "Classifier", "Run"):
        assert name in names


def _grep_count(pattern: str) -> int:
    return sum(len(re.findall(pattern, p.read_text())) for p in SOURCE.rglob("*.py"))


@pytest.mark.parametrize(
    ("what", "pattern", "times"),
    [
        ("the first line of an exception", r"splitlines\(\)\[0\]", 1),
        ("--data-dir", r'"--data-dir"', 1),
        ("the --min-confidence check", r"--min-confidence must be", 1),
        ("a private Keras importer", r"def _keras\(", 0),
        ("a literal digit shape", r"\(1, 28, 28, 1\)|INPUT_SHAPE = \(", 1),
        ("the folder-or-IDX switch", r"(?<!def )load_folder\(", 1),
    ],
)
def test_shared_logic_is_written_once(what, pattern, times):
    assert _grep_count(pattern) == times, what
