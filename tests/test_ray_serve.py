"""`mnist-cnn serve --address`: the same app as Ray Serve replicas on a real local cluster (a
head with no CPUs for tasks and two 1-CPU worker nodes on 127.0.0.1), through the real
command; it keeps answering when a replica's node is killed under load."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import COMMAND, assert_one_line_error, free_port, run_cli
from ray_cluster import RayCluster, non_loopback_ray_sockets
from serve_faults import digit_bodies, under_load_with_a_node_killed

V2 = (Path(__file__).parents[1] / "src/mnist_cnn/server/v2.py").exists()


def test_a_wrong_address_or_replicas_without_one_is_one_line_before_anything_slow(fast_run):
    started = time.monotonic()
    refused = run_cli("serve", fast_run, "--address", f"127.0.0.1:{free_port()}", timeout=60)
    assert_one_line_error(refused, "no Ray cluster answers at 127.0.0.1:", "ray start --head")
    alone = run_cli("serve", fast_run, "--replicas", "2", timeout=60)
    assert_one_line_error(alone, "--replicas N serves on a Ray cluster; add --address")
    missing = run_cli("serve", "no/such/run", "--address", "127.0.0.1:1", timeout=60)
    assert_one_line_error(missing, "no/such/run")  # the model is checked first
    assert time.monotonic() - started < 30  # no Keras, no Ray start-up


@pytest.fixture(scope="module")
def ray_cluster():
    cluster = RayCluster(workers=2)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def deployed(ray_cluster, fast_run, tmp_path_factory):
    """The command, 2 replicas; stopped with Ctrl-C at the end, which must tear it down."""
    port = free_port()
    log = tmp_path_factory.mktemp("ray-serve") / "stderr.log"
    with open(log, "w") as errors:
        server = subprocess.Popen(
            [COMMAND, "serve", fast_run, "--address", ray_cluster.address,
             "--replicas", "2", "--port", str(port)],
            stdout=subprocess.PIPE, stderr=errors, text=True,
        )  # fmt: skip
        try:
            line = server.stdout.readline()  # printed once every replica answers
            assert line.startswith("serving "), log.read_text()[-3000:]
            yield port, line
        finally:
            server.send_signal(signal.SIGINT)
            try:
                code = server.wait(timeout=90)
            finally:
                server.kill()
    assert code == 0, log.read_text()[-3000:]
    with pytest.raises(OSError):  # the deployment and Serve's proxy are gone
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)


def _get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as response:
        return response.status, response.read()


def _predict(port: int, body: bytes) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/predict",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())


def test_the_page_the_api_and_health_answer_through_ray_serve(deployed, fast_run):
    """The same app as on one machine: its page, our API (the right digit) and /healthz,
    behind Ray Serve's proxy on 127.0.0.1; no Ray socket anywhere else."""
    port, line = deployed
    assert "with 2 replica(s) on 127.0.0.1:" in line and "(3 node(s), 2 CPU(s))" in line
    assert f"at http://127.0.0.1:{port}/ (Ctrl-C stops)" in line
    status, page = _get(port, "/")
    assert status == 200 and b"<canvas" in page
    assert json.loads(_get(port, "/healthz")[1]) == {"status": "ok"}
    for body, label in digit_bodies(5, seed=1):
        assert _predict(port, body)["digit"] == label
    if V2:  # the Open Inference Protocol routes, when server/v2.py is there
        assert _get(port, "/v2/health/ready")[0] == 200
    assert non_loopback_ray_sockets() == []


def test_a_node_killed_under_load_the_service_keeps_answering(ray_cluster, deployed):
    """12 s of load, a worker node (and its replica) killed at 4 s and a new node added:
    the other replica answers meanwhile, a failure is an error status from Serve, never a
    hang, and the lost replica runs again on the new node."""
    port, _ = deployed
    run = under_load_with_a_node_killed(
        ray_cluster, port, seconds=12, kill_at=4, clients=3, timeout=15, replicas=2
    )
    after = run.after_kill()
    counts = run.count()
    failures = {kind for kind in counts if kind != "answered"}
    assert all(kind.startswith("status ") for kind in failures), counts  # no hang, no reset
    answered = sum(o.result == "answered" for o in after)
    assert answered >= 0.8 * len(after) and answered > 10, run.count(after)
    assert any(o.result == "answered" and o.started > 10 for o in after), run.count(after)
    assert max(o.seconds for o in run.outcomes) < 15
    assert run.replicas_back_after is not None, "the lost replica did not come back"
    assert _get(port, "/healthz")[0] == 200
