"""A Ray Serve replica's node lost under load: does `mnist-cnn serve --address` keep answering?

A real cluster on this machine (tests/ray_cluster.py: a head with no CPUs for tasks, which
runs Serve's controller and proxy, and two 1-CPU worker nodes, all on 127.0.0.1) and the
real command, `mnist-cnn serve RUN --address ADDR --replicas 2`, one replica per worker node.
Closed-loop clients (tests/serve_faults.py) send MNIST test digits for --seconds; at
--kill-at one worker node's raylet gets SIGKILL and a new 1-CPU node joins at once. Printed:
requests answered and failed (by kind) before and after the kill, the slowest request, and
the time from the kill until Serve reports both replicas running again.

    python benchmarks/serve_fault.py RUN_DIR [--seconds 20] [--kill-at 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from ray_cluster import RayCluster, non_loopback_ray_sockets  # noqa: E402
from serve_faults import under_load_with_a_node_killed  # noqa: E402

COMMAND = str(Path(sys.executable).with_name("mnist-cnn"))
SEED = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(model: str, address: str, replicas: int, port: int) -> subprocess.Popen:
    """`mnist-cnn serve --address`, once it answers /healthz."""
    server = subprocess.Popen(
        [COMMAND, "serve", model, "--address", address, "--replicas", str(replicas),
         "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("serve_fault: the deployment did not start") from None
            time.sleep(0.5)


def stop(server: subprocess.Popen) -> None:
    """Ctrl-C, as a person stops it: the command tears its deployment down."""
    import signal

    server.send_signal(signal.SIGINT)
    server.wait(timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="run directory or model file")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kill-at", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=15.0, help="each request's, client side")
    args = parser.parse_args()
    cluster = RayCluster(workers=2)
    try:
        port = free_port()
        server = start_serve(args.model, cluster.address, 2, port)
        try:
            run = under_load_with_a_node_killed(
                cluster, port, seconds=args.seconds, kill_at=args.kill_at,
                clients=args.clients, timeout=args.timeout, replicas=2, seed=SEED,
            )  # fmt: skip
            assert non_loopback_ray_sockets() == [], non_loopback_ray_sockets()
        finally:
            stop(server)
    finally:
        cluster.stop()

    before = [o for o in run.outcomes if o.started < run.killed_at]
    after = run.after_kill()
    print(
        f"`mnist-cnn serve MODEL --address ADDR --replicas 2`: a head (0 CPUs: Serve's controller "
        f"and proxy) and two 1-CPU worker nodes on 127.0.0.1; {args.clients} closed-loop clients, "
        f"JSON digits (20 MNIST test digits, seed {SEED}), client timeout {args.timeout:.0f} s, "
        f"Serve's request_timeout_s 10 s; {args.seconds:.0f} s of load, a worker node's raylet "
        f"killed (SIGKILL) at {run.killed_at:.1f} s and a new 1-CPU node added.\n"
    )
    print("| requests | answered | failed | failures | max latency |")
    print("| --- | ---: | ---: | --- | ---: |")
    for name, part in (("before the kill", before), ("after the kill", after)):
        counts = run.count(part)
        answered = counts.pop("answered", 0)
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"
        slowest = max((o.seconds for o in part), default=0)
        print(f"| {name} | {answered} | {sum(counts.values())} | {kinds} | {slowest:.2f} s |")
    back = run.replicas_back_after
    print(
        f"\nboth replicas running again {back:.1f} s after the kill"
        if back is not None
        else "\nthe lost replica did not come back within the limit"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
