"""Hostile files and failing disks: models that would run code, tampered models, a full disk.

Each refusal is one clear line and a non-zero exit, and nothing the payload would have
done has happened.
"""

from __future__ import annotations

import re
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import COMMAND, error_lines, run_cli

SOURCE = Path(__file__).parents[1] / "src" / "mnist_cnn"
IMAGE = str(SOURCE / "samples" / "photo-of-a-9.jpg")

CRAFT = textwrap.dedent(
    """
    import json, sys, zipfile
    from mnist_cnn.backend import import_keras
    keras = import_keras()
    folder, marker = sys.argv[1], sys.argv[2]
    # A Lambda layer whose function writes the marker file when it runs.
    payload = keras.layers.Lambda(lambda x: (open(marker, "a").write("ran"), x)[1])
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), payload,
                              keras.layers.Dense(10, activation="softmax")])
    model.save(f"{folder}/lambda.keras")
    model.save(f"{folder}/lambda.h5")  # Keras 2's format, as notebooks save it
    # A Dense layer whose activation names os.system, smuggled into config.json.
    plain = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    plain.save(f"{folder}/plain.keras")
    with zipfile.ZipFile(f"{folder}/plain.keras") as z:
        files = {name: z.read(name) for name in z.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["layers"][-1]["config"]["activation"] = {
        "module": "os", "class_name": "function", "config": "system",
        "registered_name": "system"}
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(f"{folder}/os-system.keras", "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    """
)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "payload-ran"
    made = subprocess.run(
        [sys.executable, "-c", CRAFT, str(folder), str(marker)], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    marker.unlink(missing_ok=True)  # building the model ran the lambda once, here
    return folder, marker


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("command", ["predict", "evaluate", "export", "serve", "train"])
def test_a_lambda_model_is_refused_and_runs_nothing(hostile, command, suffix, tmp_path):
    folder, marker = hostile
    model = str(folder / f"lambda{suffix}")
    args = {
        "predict": [model, IMAGE],
        "evaluate": [model],
        "export": [model, "--format", "onnx"],
        "serve": [model, "--port", "0"],
        "train": ["--init", model, "--out", str(tmp_path)],
    }[command]
    result = run_cli(command, *args, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Lambda" in result.stderr and "arbitrary code" in result.stderr
    assert len(error_lines(result.stderr)) == 1
    assert not marker.exists()


def test_a_config_that_names_os_system_is_refused(hostile):
    folder, marker = hostile
    result = run_cli("predict", str(folder / "os-system.keras"), IMAGE)
    assert result.returncode == 2
    assert "refused or unreadable model" in result.stderr
    assert len(error_lines(result.stderr)) == 1


def test_nothing_is_ever_unpickled():
    for path in SOURCE.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"\bimport (c?pickle|dill|joblib)\b|allow_pickle\s*=\s*True", text), (
            path
        )


def test_a_tampered_model_fails_its_sha256_check(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run["run_dir"], run)
    assert len(run.joinpath("config.json").read_text().split('"model_sha256"')) == 2
    model = run / "model.keras"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    result = run_cli("predict", str(run), IMAGE)
    assert result.returncode == 2
    assert "sha256 does not match" in result.stderr and str(model) in result.stderr
    untouched = run_cli("predict", trained_run["run_dir"], IMAGE)
    assert untouched.returncode == 0, untouched.stderr


def test_an_output_folder_that_cannot_exist(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli("train", "conv28-dense128", "--limit", "100", "--out", str(blocker / "runs"))
    assert result.returncode == 2
    assert "cannot create a run directory" in result.stderr and "--out" in result.stderr
    assert blocker.read_text() == "not a folder"


def _small_disk(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_leaves_a_consistent_run_that_resumes(tmp_path):
    """Files may not grow past 1 MB (as if the disk were full): the first checkpoint fails."""
    args = ["train", "conv28-dense128", "--limit", "2000", "--out", str(tmp_path), "--json"]
    full = subprocess.run(
        [COMMAND, *args], capture_output=True, text=True, preexec_fn=_small_disk(1_000_000)
    )
    assert full.returncode == 1
    lines = full.stderr.strip().splitlines()
    assert len(lines) == 1 and "File too large" in lines[0] and "--resume" in lines[0], lines
    (run,) = tmp_path.iterdir()
    leftovers = [p for p in run.rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # no half-written temporary files
    assert (run / "config.json").read_text().startswith("{")
    assert not (run / "model.keras").exists()

    resumed = run_cli("train", "--resume", str(run), "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert (run / "model.keras").exists() and (run / "report.html").exists()
