"""A real multi-node Ray cluster on 127.0.0.1 for the tests, and a check that it stays there.

`ray.cluster_utils.Cluster` starts a real GCS and a real raylet per node, as `ray start`
does, but from this process, so every node can be given 127.0.0.1: `ray start --address`
refuses a second node under RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, and without it swaps
127.0.0.1 for the machine's own address. Its processes are ours and stopped by their ids
(`Cluster.shutdown`); killing a node's raylet with SIGKILL is a node failure.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

OBJECT_STORE_BYTES = 100_000_000
LOOPBACK = ("127.0.0.1", "[::ffff:127.0.0.1]")
RAY_PROCESS = re.compile(r'users:\(\("(raylet|gcs_server|ray::[^"]*|python)"')


def loopback_env() -> None:
    """What the tests and every Ray process they start run with (before Ray is imported)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.pop("RAY_ADDRESS", None)


class RayCluster:
    """A head that only schedules (no CPUs) and worker nodes of one CPU each."""

    def __init__(self, workers: int, pin: bool = False, cpus: int = 1):
        """`pin`: hold each worker node to a core of its own (node i to core i), so that a
        node of one CPU uses one, not the idle cores beside it (benchmarks). `cpus`: each
        worker node's CPUs (benchmarks/serve_load.py: two replicas on one node)."""
        self.pin = pin
        self.cpus = cpus
        loopback_env()
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 0,
                "include_dashboard": False,
                "node_ip_address": "127.0.0.1",
                "object_store_memory": OBJECT_STORE_BYTES,
            },
        )
        self.address = self.cluster.address
        self.workers = [self.add_worker() for _ in range(workers)]
        self.cluster.wait_for_nodes()

    def add_worker(self):
        node = self.cluster.add_node(
            num_cpus=self.cpus, node_ip_address="127.0.0.1", object_store_memory=OBJECT_STORE_BYTES
        )
        if self.pin:
            core = len(self.cluster.worker_nodes) - 1
            for raylet in node.all_processes["raylet"]:
                _pin_tree(raylet.process.pid, {core % os.cpu_count()})
        return node

    def raylet_pids(self) -> set[int]:
        return {
            process.process.pid
            for node in self.workers
            for process in node.all_processes.get("raylet", [])
        }

    def kill_raylet(self, pid: int) -> None:
        """`kill -9` a worker node's raylet: the node is lost, with what runs on it."""
        assert pid in self.raylet_pids(), f"{pid} is not a raylet of this cluster"
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        self.cluster.shutdown()


def _pin_tree(pid: int, cores: set[int]) -> None:
    """Every thread of a process and of its descendants onto `cores`; the processes it
    starts later inherit it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(parent_of(int(entry.name)), []).append(int(entry.name))
            except OSError:
                continue
    todo = [pid]
    while todo:
        process = todo.pop()
        todo += children.get(process, [])
        for task in Path(f"/proc/{process}/task").glob("*"):
            try:
                os.sched_setaffinity(int(task.name), cores)
            except OSError:
                continue


def parent_of(pid: int) -> int:
    """The parent process id (a Ray worker's parent is its node's raylet)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def process_in(folder_name: str) -> int | None:
    """The process whose working folder is named `folder_name` (Tune moves each trial
    into a folder named after it), or None."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "cwd").endswith("/" + folder_name):
                return int(entry.name)
        except OSError:
            continue
    return None


def non_loopback_ray_sockets() -> list[str]:
    """Every TCP socket of a Ray process (listening or connected) not on 127.0.0.1."""
    lines = subprocess.run(
        ["ss", "-tanp"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[1:]
    bad = []
    for line in lines:
        if RAY_PROCESS.search(line):
            local, peer = (address.rsplit(":", 1)[0] for address in line.split()[3:5])
            if local not in LOOPBACK or peer not in (*LOOPBACK, "*", "0.0.0.0", "[::]"):
                bad.append(line)
    return bad
