"""`--track URI`: runs and sweeps logged to a real MLflow tracking server (started here on
127.0.0.1), read back through MLflow's own client; and a server that dies mid-run costs
the run nothing but one warning line."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import COMMAND, error_lines, free_port, last_json, run_cli

mlflow = pytest.importorskip("mlflow", reason="pip install 'mnist-cnn[tracking]'")
MLFLOW = str(Path(sys.executable).with_name("mlflow"))
# Ray, for the sweep, on this machine only and quiet.
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_TRACKING_URI": ""}


@contextlib.contextmanager
def mlflow_server(folder: Path):
    """`mlflow server` for real (SQLite runs, artifacts served from a folder); yields its URI."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "w"),
        start_new_session=True,  # its workers go with it
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200:
                    break
            assert server.poll() is None, (folder / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        server.uri = uri
        yield server
    finally:
        stop(server)


def stop(server: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as running:
        yield running


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def _run_of(client, run_dir: str):
    """The MLflow run that logged this run directory (tagged with it)."""
    found = [
        run
        for experiment in client.search_experiments()
        for run in client.search_runs([experiment.experiment_id])
        if run.data.tags.get("mnist_cnn.run_dir") == run_dir
    ]
    assert len(found) == 1, run_dir
    return found[0]


def test_a_tracked_run_has_its_settings_epochs_test_figures_and_files(server, tmp_path):
    result = run_cli(
        "train", "fast", "--limit", "2000", "--epochs", "2", "--track", server.uri,
        "--out", str(tmp_path), "--json", env=ENV,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = last_json(result.stdout)
    assert "View run" not in result.stdout  # MLflow printed nothing of its own
    client = _client(server.uri)
    run = _run_of(client, summary["run_dir"])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model"] == "fast" and params["epochs"] == "2" and params["limit"] == "2000"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2]
    assert run.data.metrics["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    assert run.data.metrics["test_loss"] == pytest.approx(summary["test_loss"])
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "config.json", "model.keras"} <= files


def test_a_tracked_sweep_is_a_parent_run_with_a_child_run_per_trial(server, tmp_path):
    result = run_cli(
        "sweep", "fast", "--limit", "1000", "--epochs", "1",
        "--set", "learning-rate=0.001,0.003", "--track", server.uri,
        "--out", str(tmp_path), "--json", env=ENV,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = last_json(result.stdout)
    client = _client(server.uri)
    parent = _run_of(client, summary["sweep_dir"])
    assert parent.info.status == "FINISHED"
    selected = summary["selected"]
    assert parent.data.params["selected.trial"] == selected["trial_id"]
    assert parent.data.metrics["test_accuracy"] == pytest.approx(selected["test_accuracy"])
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"sweep.json"}
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(c.info.run_name for c in children) == sorted(
        t["trial_id"] for t in summary["trials"]
    )
    rates = sorted(float(c.data.params["learning_rate"]) for c in children)
    assert rates == [0.001, 0.003]
    for child in children:
        assert child.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_loss")] == [1]


def test_a_server_that_stops_mid_run_loses_nothing_and_says_so_once(tmp_path):
    """Killed after the first epoch: the run directory is whole, and one line on stderr
    says what MLflow did not get."""
    out = tmp_path / "runs"
    with mlflow_server(tmp_path / "mlflow") as server:
        training = subprocess.Popen(
            [COMMAND, "train", "fast", "--limit", "10000", "--epochs", "3",
             "--track", server.uri, "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **ENV},
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while not any(len(p.read_text().splitlines()) > 1 for p in out.glob("*/history.csv")):
            assert training.poll() is None and time.monotonic() < deadline, "no first epoch"
            time.sleep(0.05)
        stop(server)
        stdout, stderr = training.communicate(timeout=300)
    assert training.returncode == 0, stderr[-3000:]
    (run_dir,) = out.iterdir()
    for name in ("model.keras", "metrics.json", "report.html", "config.json"):
        assert (run_dir / name).is_file(), name
    said = [line for line in error_lines(stderr) if "MLflow" in line]
    assert len(said) == 1, stderr[-3000:]
    assert re.fullmatch(
        rf"mnist-cnn train: warning: MLflow at {re.escape(server.uri)} stopped answering "
        r"(after epoch \d|before the first epoch); not logged: (epochs? [\d, -]+, )?"
        r"the test figures, the artifacts",
        said[0],
    ), said[0]
