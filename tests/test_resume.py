"""Runs that survive: `kill -9` and Ctrl-C in the middle of training, then `--resume`.

Real processes: the `mnist-cnn` command is started, killed or interrupted during epoch 2
of 4, and resumed; the history must hold epochs 1-4 exactly once and the result must be
within noise of the same run left alone.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import COMMAND, error_lines, last_json, run_cli

ARGS = ["conv32-conv64-dense128", "--limit", "12000", "--epochs", "4", "--seed", "7"]
NOISE = 0.012  # test-accuracy spread between seeds of this short run is about 0.5%


def history_of(run: Path) -> list[dict]:
    path = run / "history.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def start(out: Path) -> tuple[subprocess.Popen, Path]:
    """Start training; wait until epoch 1 is on disk and epoch 2 is under way."""
    process = subprocess.Popen(
        [COMMAND, "train", *ARGS, "--out", str(out), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while True:
        runs = list(out.glob("*/history.csv"))
        if runs and len(history_of(runs[0].parent)) >= 1:
            break
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "epoch 1 never finished"
        time.sleep(0.05)
    run = runs[0].parent
    time.sleep(float(history_of(run)[0]["seconds"]) * 0.3)  # well inside epoch 2
    return process, run


def assert_tensorboard_once(run: Path) -> None:
    """TensorBoard's reader finds epochs 1-4 once each, and the steps once each, in order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for part, tag, count in [
        ("train", "epoch_loss", 4),
        ("train", "batch_loss", None),
        ("validation", "epoch_loss", 4),
    ]:
        events = EventAccumulator(str(run / "tensorboard" / part))
        events.Reload()
        steps = [event.step for event in events.Tensors(tag)]
        assert steps == sorted(set(steps)) and steps, (part, steps)
        assert count is None or steps == list(range(count)), (part, steps)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    result = run_cli("train", *ARGS, "--out", str(tmp_path_factory.mktemp("whole")), "--json")
    assert result.returncode == 0, result.stderr
    return last_json(result.stdout)


def test_kill_9_in_epoch_2_then_resume(tmp_path, uninterrupted):
    process, run = start(tmp_path)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert [row["epoch"] for row in history_of(run)] == ["1"], "the kill missed epoch 2"
    assert not (run / "model.keras").exists()

    first = history_of(run)[0]
    resumed = run_cli("train", "--resume", str(run), "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = last_json(resumed.stdout)
    assert [row["epoch"] for row in history_of(run)] == ["1", "2", "3", "4"]
    # It continued from the checkpoint: epoch 1 was not trained again.
    assert "Epoch 2/4" in resumed.stdout and "Epoch 1/4" not in resumed.stdout
    assert history_of(run)[0] == first
    assert_tensorboard_once(run)
    assert abs(summary["test_accuracy"] - uninterrupted["test_accuracy"]) <= NOISE
    assert not (run / "checkpoints").exists()  # cleaned up once the run finished
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["epochs"] == 4 and config["settings"]["seed"] == 7


def test_ctrl_c_saves_prints_the_resume_command_and_exits_130(tmp_path, uninterrupted):
    process, run = start(tmp_path)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert f"mnist-cnn train --resume {run}" in stderr
    assert [row["epoch"] for row in history_of(run)] == ["1"]  # epoch 2 was not finished
    assert (run / "checkpoints").is_dir()

    resumed = run_cli("train", "--resume", str(run), "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert [row["epoch"] for row in history_of(run)] == ["1", "2", "3", "4"]
    assert_tensorboard_once(run)
    accuracy = last_json(resumed.stdout)["test_accuracy"]
    assert abs(accuracy - uninterrupted["test_accuracy"]) <= NOISE


def test_resume_refuses_what_it_cannot_do(tmp_path, uninterrupted):
    finished = run_cli("train", "--resume", uninterrupted["run_dir"])
    assert finished.returncode == 2 and "finished already" in finished.stderr
    both = run_cli("train", "fast", "--resume", uninterrupted["run_dir"])
    assert both.returncode == 2 and "own settings" in both.stderr
    nothing = run_cli("train", "--resume", str(tmp_path))
    assert nothing.returncode == 2 and "config.json" in nothing.stderr
    (tmp_path / "config.json").write_text('{"model": "fast", "settings": {"epochs": "many"}}')
    broken = run_cli("train", "--resume", str(tmp_path))
    assert broken.returncode == 2 and "cannot resume" in broken.stderr
    assert len(error_lines(broken.stderr)) == 1
