"""A Ray Serve node killed under load: what tests/test_ray_serve.py asserts and
benchmarks/serve_fault.py prints, measured the same way.

Closed-loop clients (threads, one keep-alive connection each, a timeout on every request)
send MNIST test digits as JSON pixels to POST /api/predict (whether they are read right is
the API tests' business: here a 200 with a digit is an answer). At `kill_at` seconds one
worker node's raylet is killed with SIGKILL (the node is lost, with the replica on it) and a new
1-CPU node joins at once, as an autoscaler would bring one; Serve's controller starts the
lost replica there. Every request is counted: answered (200, a digit) or failed
(an error status, a client timeout or a broken connection, each counted apart).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field

APP = "mnist-cnn"


def digit_bodies(count: int, seed: int) -> list[tuple[bytes, int]]:
    """`count` JSON bodies {"pixels": ...} of MNIST test digits, and their labels."""
    import numpy as np

    from mnist_cnn.data import sources

    _, (x_test, y_test) = sources.load_dataset("mnist")
    rng = np.random.default_rng(seed)
    return [
        (json.dumps({"pixels": x_test[i].tolist()}).encode(), int(y_test[i]))
        for i in rng.choice(len(x_test), count, replace=False)
    ]


@dataclass
class Outcome:
    started: float  # seconds from the start of the load
    seconds: float
    result: str  # "answered", "status 503", "timeout", "connection: ..."


@dataclass
class FaultRun:
    outcomes: list[Outcome] = field(default_factory=list)
    killed_at: float | None = None
    replicas_back_after: float | None = None  # seconds from the kill to all replicas running

    def after_kill(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.started >= (self.killed_at or 0)]

    def count(self, outcomes=None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes if outcomes is None else outcomes:
            counts[o.result] = counts.get(o.result, 0) + 1
        return counts


def _client(port, bodies, started, stop_at, timeout, outcomes, lock, offset):
    connection = None
    i = offset
    while time.monotonic() < stop_at:
        body = bodies[i % len(bodies)]
        i += 1
        sent = time.monotonic()
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            connection.request("POST", "/api/predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                result = f"status {response.status}"
            else:
                result = "answered" if json.loads(answer)["digit"] in range(10) else "no digit"
        except TimeoutError:
            result = "timeout"
        except (OSError, http.client.HTTPException) as exc:
            result = f"connection: {type(exc).__name__}"
        if result != "answered" and connection is not None:
            connection.close()
            connection = None
        with lock:
            outcomes.append(Outcome(sent - started, time.monotonic() - sent, result))
    if connection is not None:
        connection.close()


def running_replicas() -> int:
    """Replicas of our app that Serve reports running (needs a ray.init to the cluster)."""
    from ray import serve

    app = serve.status().applications.get(APP)
    if app is None:
        return 0
    return sum(d.replica_states.get("RUNNING", 0) for d in app.deployments.values())


def under_load_with_a_node_killed(
    ray_cluster,
    port: int,
    *,
    seconds: float,
    kill_at: float,
    clients: int,
    timeout: float,
    replicas: int,
    seed: int = 0,
    recovery_limit: float = 120,
) -> FaultRun:
    """Load for `seconds`, a worker node killed at `kill_at` and a new one added; then wait
    (up to `recovery_limit` s after the kill) until `replicas` replicas run again."""
    import ray

    bodies = [body for body, _ in digit_bodies(20, seed)]
    run = FaultRun()
    lock = threading.Lock()
    ray.init(address=ray_cluster.address, logging_level="ERROR", log_to_driver=False)
    try:
        assert running_replicas() == replicas, "not every replica runs before the kill"
        started = time.monotonic()
        threads = [
            threading.Thread(
                target=_client,
                args=(port, bodies, started, started + seconds, timeout, run.outcomes, lock, k),
            )
            for k in range(clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(kill_at)
        [raylet] = [p.process.pid for p in ray_cluster.workers[0].all_processes["raylet"]]
        ray_cluster.kill_raylet(raylet)  # its node had one of the replicas (1 CPU each)
        killed = time.monotonic()
        run.killed_at = killed - started
        ray_cluster.workers.append(ray_cluster.add_worker())  # the replacement node
        seen_fewer = False
        while time.monotonic() < killed + recovery_limit:
            running = running_replicas()
            seen_fewer = seen_fewer or running < replicas
            if seen_fewer and running == replicas:
                run.replicas_back_after = time.monotonic() - killed
                break
            time.sleep(0.25)
        for thread in threads:
            thread.join()
    finally:
        ray.shutdown()
    return run
