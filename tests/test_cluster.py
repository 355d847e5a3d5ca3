"""Sweeps, ensembles and batch prediction on a real Ray cluster (a head and 1-CPU worker
nodes on 127.0.0.1), through the real command: ranking on validation only, a lost node,
a killed driver, and the same answers as on one machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import COMMAND, assert_one_line_error, last_json, run_cli, run_side_by_side
from ray_cluster import (
    RayCluster,
    loopback_env,
    non_loopback_ray_sockets,
    parent_of,
    process_in,
)

MODEL = "conv28-dense128"  # small, float32: 1-CPU trials of a few seconds an epoch
TIMEOUT = 300


@pytest.fixture(scope="module")
def ray_cluster():
    cluster = RayCluster(workers=2)
    yield cluster
    cluster.stop()


def _sweep_json(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep.json").read_text())


def _history(run_dir) -> list[dict]:
    import csv

    with open(Path(run_dir) / "history.csv") as f:
        return list(csv.DictReader(f))


def _start_sweep(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [COMMAND, "sweep", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(what)


def _sweep_dir(out: Path) -> Path | None:
    found = [p for p in out.glob("sweep-*") if (p / "sweep.json").exists()]
    return found[0] if found else None


def test_a_sweep_on_two_nodes_survives_its_driver_ranks_on_validation_and_tests_one_trial(
    ray_cluster, tmp_path
):
    """A 4-trial grid on two 1-CPU nodes. Its driver is killed once a trial has finished;
    `sweep --resume` completes it without training that trial again. Trials are ranked on
    validation only, and only the selected one has read the test set."""
    driver = _start_sweep(
        MODEL, "--limit", "2000", "--epochs", "2",
        "--set", "learning-rate=0.0003,0.003", "--set", "batch-size=32,128",
        "--address", ray_cluster.address, "--out", str(tmp_path),
    )  # fmt: skip
    try:
        sweep_dir = _wait_for(lambda: _sweep_dir(tmp_path), 120, "the sweep did not start")
        finished = _wait_for(
            lambda: list((sweep_dir / "trials").glob("*/model.keras")), 150, "no trial finished"
        )
        time.sleep(0.5)  # past Tune's record of it
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        driver.kill()
    before = {p: p.stat().st_mtime_ns for p in finished}
    assert _sweep_json(sweep_dir)["status"] == "running"
    result = run_cli(
        "sweep", "--resume", str(sweep_dir), "--address", ray_cluster.address, "--json",
        timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in finished} == before  # not trained again
    assert _sweep_json(sweep_dir)["status"] == "finished"
    assert non_loopback_ray_sockets() == []

    summary = last_json(result.stdout)
    trials = summary["trials"]
    assert len(trials) == 4 and {t["status"] for t in trials} == {"finished"}
    assert {(t["settings"]["learning_rate"], t["settings"]["batch_size"]) for t in trials} == {
        (0.0003, 32), (0.0003, 128), (0.003, 32), (0.003, 128)
    }  # fmt: skip
    # Ranked by validation accuracy (then loss), each the trial's own last epoch.
    ranking = [(-t["val_accuracy"], t["val_loss"]) for t in trials]
    assert ranking == sorted(ranking)
    for trial in trials:
        last = _history(trial["run_dir"])[-1]
        assert trial["val_accuracy"] == pytest.approx(float(last["val_accuracy"]))
    # Only the selected trial has read the test set, once.
    selected = summary["selected"]
    assert selected["run_dir"] == trials[0]["run_dir"]
    tested = [t for t in trials if (Path(t["run_dir"]) / "metrics.json").exists()]
    assert [t["run_dir"] for t in tested] == [selected["run_dir"]]
    metrics = json.loads((Path(selected["run_dir"]) / "metrics.json").read_text())
    assert selected["test_accuracy"] == metrics["test_accuracy"] > 0.85
    assert (Path(selected["run_dir"]) / "report.html").exists()
    assert summary["selected_by"].startswith("highest val_accuracy")
    page = (Path(summary["sweep_dir"]) / "sweep.html").read_text()
    ranking_table = page.split("<table id='ranking'>", 1)[1].split("</table>", 1)[0]
    assert f"{selected['test_accuracy']:.2%}" in page and ranking_table.count("<tr") == 5


def test_a_trial_on_a_killed_node_carries_on_from_its_last_epoch(ray_cluster, tmp_path):
    """kill -9 the raylet running a trial in its second epoch; a new node joins; the trial
    resumes there from epoch 1's checkpoint and its history holds each epoch once."""
    driver = _start_sweep(
        MODEL, "--limit", "6000", "--epochs", "3", "--set", "learning-rate=0.001,0.002",
        "--address", ray_cluster.address, "--out", str(tmp_path),
    )  # fmt: skip
    try:
        sweep_dir = _wait_for(lambda: _sweep_dir(tmp_path), 120, "the sweep did not start")

        def trial_in_epoch_2():
            for history in (sweep_dir / "trials").glob("*/history.csv"):
                rows = _history(history.parent)
                pid = process_in(history.parent.name)  # Tune runs a trial in its own folder
                if len(rows) == 1 and pid:
                    return history.parent, rows[0], pid
            return None

        run_dir, epoch_1, pid = _wait_for(trial_in_epoch_2, 150, "no trial reached epoch 2")
        raylet = parent_of(pid)
        ray_cluster.kill_raylet(raylet)
        ray_cluster.workers.append(ray_cluster.add_worker())  # the replacement
        stdout, stderr = driver.communicate(timeout=TIMEOUT)
    finally:
        driver.kill()
    assert driver.returncode == 0, stderr[-3000:]
    summary = last_json(stdout)
    assert {t["status"] for t in summary["trials"]} == {"finished"}
    rows = _history(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert rows[0] == epoch_1  # epoch 1 was not trained again
    assert not any(p.name == "checkpoints" for p in run_dir.iterdir())
    assert non_loopback_ray_sockets() == []


def test_an_ensemble_trained_across_the_cluster_equals_the_local_one(ray_cluster, tmp_path):
    args = [
        "train", MODEL, "--limit", "600", "--epochs", "1", "--ensemble", "2", "--seed", "5",
        "--json",
    ]  # fmt: skip
    # Side by side (each command mostly starts up). The local one with one thread, as each
    # member's task has: TensorFlow's sums then run in the same order.
    one_thread = ["env", "TF_NUM_INTRAOP_THREADS=1", COMMAND]
    spread, local = run_side_by_side(
        [
            [COMMAND, *args, "--address", ray_cluster.address, "--out", str(tmp_path / "ray")],
            [*one_thread, *args, "--out", str(tmp_path / "local")],
        ],
        timeout=TIMEOUT,
    )
    assert spread.returncode == 0, spread.stderr[-3000:]
    assert local.returncode == 0, local.stderr[-3000:]
    spread, local = last_json(spread.stdout), last_json(local.stdout)
    assert spread["ensemble"] == local["ensemble"] == 2
    rows = _history(spread["run_dir"])
    assert [(r["member"], r["epoch"]) for r in rows] == [("1", "1"), ("2", "1")]
    from mnist_cnn.backend import import_keras

    import_keras()
    from mnist_cnn.data.datasets import normalise
    from mnist_cnn.data.sources import load_dataset
    from mnist_cnn.models.loading import load_model

    _, (x_test, _) = load_dataset("mnist")
    digits = normalise(x_test[:1000])
    a = load_model(Path(spread["run_dir"]) / "model.keras").predict(digits, verbose=0)
    b = load_model(Path(local["run_dir"]) / "model.keras").predict(digits, verbose=0)
    assert np.abs(a - b).max() <= 1e-5
    assert spread["test_accuracy"] == pytest.approx(local["test_accuracy"], abs=1e-4)


def test_predicting_a_folder_across_the_cluster_gives_the_local_answers(
    ray_cluster, trained_run, mnist, tmp_path
):
    from PIL import Image

    (_, _), (x_test, _) = mnist
    folder = tmp_path / "digits"
    folder.mkdir()
    for index in range(2000):
        Image.fromarray(255 - x_test[index]).save(folder / f"{index:04d}.png")  # ink on paper
    (folder / "zzz-broken.png").write_bytes(b"not an image")
    model = trained_run["run_dir"]
    local = run_cli("predict", model, str(folder), "--json")
    spread = run_cli("predict", model, str(folder), "--json", "--address", ray_cluster.address)
    assert local.returncode == spread.returncode == 2  # the broken file
    assert spread.stdout == local.stdout
    lines = spread.stdout.strip().splitlines()
    assert len(lines) == 2001 and "error" in json.loads(lines[-1])
    assert spread.stderr.count("zzz-broken") == local.stderr.count("zzz-broken") == 0


def test_a_sweep_without_an_address_runs_on_an_embedded_ray(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    result = subprocess.run(
        [COMMAND, "sweep", MODEL, "--limit", "500", "--epochs", "1",
         "--set", "learning-rate=0.001,0.003", "--out", str(tmp_path), "--json"],
        capture_output=True, text=True, env=env, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = last_json(result.stdout)
    assert [t["status"] for t in summary["trials"]] == ["finished", "finished"]
    assert 0.5 < summary["selected"]["test_accuracy"] <= 1
    # TensorBoard shows each trial under its settings, and the selected one's test figures.
    boards = sorted(Path(summary["sweep_dir"]).glob("trials/*/tensorboard/*/train"))
    assert sorted(b.parent.name for b in boards) == ["learning-rate=0.001", "learning-rate=0.003"]
    selected = Path(summary["selected"]["run_dir"]) / "tensorboard"
    assert list(selected.glob("learning-rate=*/test/events.out.tfevents.*"))


def test_a_wrong_address_or_no_ray_is_one_line_and_leaves_nothing(ray_cluster, tmp_path):
    loopback_env()
    from conftest import free_port

    sweep = [COMMAND, "sweep", MODEL, "--set", "epochs=1,2", "--out", str(tmp_path)]
    empty = tmp_path.parent / "no-data-here"
    empty.mkdir(exist_ok=True)
    refused, garbled, without_ray, no_data = run_side_by_side([
        [*sweep, "--address", f"127.0.0.1:{free_port()}"],
        [*sweep, "--address", "not-an-address"],
        [sys.executable, "-c",
         "import sys; sys.modules['ray'] = None; from mnist_cnn.cli import main; "
         "sys.exit(main(sys.argv[1:]))", *sweep[1:]],
        # a node that cannot find the dataset is named before any sweep folder is made
        ["env", "MNIST_CNN_OFFLINE=1", *sweep, "--data-dir", str(empty),
         "--address", ray_cluster.address],
    ], at_once=4, timeout=TIMEOUT)  # fmt: skip
    assert_one_line_error(refused, "no Ray cluster answers at 127.0.0.1:", "ray start --head")
    assert_one_line_error(garbled, "is not a Ray address")
    assert_one_line_error(without_ray, "pip install 'mnist-cnn[cluster]'")
    assert_one_line_error(no_data, "node 127.0.0.1", "is missing and downloads are off")
    assert list(tmp_path.iterdir()) == []
