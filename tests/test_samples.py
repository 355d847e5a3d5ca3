"""The pictures that ship with the package, to try `predict` on before you have a photo:
`predict RUN --sample` and `samples:NAME`, through the real command, and from the wheel
installed in a fresh environment outside the checkout (what `pip install` gives people).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from importlib import metadata
from pathlib import Path

from conftest import assert_one_line_error, run_cli

ROOT = Path(__file__).parents[1]
FOLDER = ROOT / "src" / "mnist_cnn" / "samples"
# What each sample is (the README): a photo of a 9, and a row of six digits.
PHOTO, NUMBER = "samples:photo-of-a-9", "samples:number-961458"
HEAVY = ("keras", "tensorflow", "jax", "torch", "matplotlib", "ray")


def sample_files() -> list[Path]:
    return sorted(p for p in FOLDER.iterdir() if p.suffix in (".png", ".jpg"))


def check_every_sample_answered(stdout: str) -> None:
    """--sample answers both samples, named `samples:NAME`: the 9 as a confident 9, the
    number as unsure, with its six digits counted (it says to use --multi)."""
    answers = {a["file"]: a for a in map(json.loads, stdout.splitlines())}
    assert sorted(answers) == [NUMBER, PHOTO], stdout
    assert answers[PHOTO]["digit"] == 9
    assert not answers[PHOTO]["unsure"]
    assert answers[NUMBER]["unsure"]
    assert answers[NUMBER]["digits_seen"] == 6


def test_predict_sample_reads_every_sample(fast_run, tmp_path):
    result = run_cli("predict", fast_run, "--sample", "--json", "--show", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    check_every_sample_answered(result.stdout)
    shown = sorted(p.name for p in tmp_path.iterdir())  # named by the sample, not "samples:"
    assert shown == ["number-961458.mnist.png", "photo-of-a-9.mnist.png"]


def test_samples_by_name(fast_run):
    result = run_cli("predict", fast_run, NUMBER, PHOTO, "--multi")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [[f"{NUMBER}:", "961458"], [f"{PHOTO}:", "9"]]


def test_an_unknown_sample_is_one_line_before_keras():
    result = run_cli("predict", "no-such-run", "samples:nine")
    assert_one_line_error(
        result, "no sample called nine; the samples are: number-961458, photo-of-a-9"
    )
    code = (
        "import sys\nfrom mnist_cnn.cli import main\n"
        "print(main(['predict', 'no-such-run', 'samples:nine']))\n"
        f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.splitlines()[-2:] == ["2", "[]"], loaded.stdout + loaded.stderr


def test_predict_help_lists_every_sample():
    result = run_cli("predict", "--help")
    assert result.returncode == 0
    assert "--sample" in result.stdout
    for file in sample_files():
        assert file.stem in result.stdout


def run(command: list, **kwargs) -> str:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_the_wheel_ships_the_samples_and_they_work_from_anywhere(fast_run, tmp_path):
    """Built, installed into a fresh environment and run from outside the checkout: the
    samples come from the installed package (importlib.resources), not from docs/ or src/."""
    started = time.monotonic()
    setuptools = metadata.version("setuptools")
    assert int(setuptools.split(".")[0]) >= 77, f"setuptools {setuptools}: pip install '.[test]'"
    source = tmp_path / "source"  # a copy: the build's build/ and egg-info stay out of the checkout
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    wheels = tmp_path / "wheels"
    run([*pip, "wheel", source, "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels])
    (wheel,) = wheels.glob("mnist_cnn-*.whl")

    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"mnist_cnn", "mnist_cnn-0.1.0.dist-info"}
    for file in sample_files():
        assert f"mnist_cnn/samples/{file.name}" in names
    assert sum(f.stat().st_size for f in sample_files()) < 200_000  # small: they ship

    env = tmp_path / "env"
    run([sys.executable, "-m", "venv", "--without-pip", env])
    python = env / "bin" / "python"
    run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel])
    # The dependencies are this environment's, by a .pth written after the install (so pip
    # never sees the checkout's editable mnist-cnn): it adds the folder only; the editable
    # install's own .pth inside it is not read, so /work/main/src stays off the path.
    (site,) = (env / "lib").glob("python*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    imported = run(
        [python, "-c", "import mnist_cnn; print(mnist_cnn.__file__)"], cwd=tmp_path, env=clean
    )
    assert Path(imported.strip()).is_relative_to(site), imported
    answers = run(
        [env / "bin" / "mnist-cnn", "predict", fast_run, "--sample", "--json"],
        cwd=tmp_path,
        env=clean,
    )
    check_every_sample_answered(answers)
    print(f"\nthe wheel built, installed and run in {time.monotonic() - started:.1f} s")
