"""Ray: where sweeps, ensemble members and batch prediction run when one machine is not enough.

We add no scheduler of our own. `connected()` joins the Ray cluster at an address (Ray's
own syntax: `auto`, `HOST:PORT`, `ray://HOST:10001`; $RAY_ADDRESS by default) or starts
an embedded one on this machine (loopback only, no dashboard). Ensemble members run as
Ray tasks calling `training.fit_member`; batch prediction is Ray Data's `map_batches`
with one `Classifier` per actor. Sweeps (sweep.py) run on Ray Tune.

Every node must have mnist-cnn installed, see `--out` (a shared filesystem) and find
the dataset: $MNIST_CNN_DATA travels in the job's runtime environment, otherwise each
node fills its own verified cache. `check_nodes` asks every node before anything is
written, so a node that cannot take part is one line, not a half-made sweep.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mnist_cnn import rundir
from mnist_cnn.data import datasets
from mnist_cnn.errors import first_line

INSTALL = "pip install 'mnist-cnn[cluster]'"
ADDRESS_ENV = "RAY_ADDRESS"
LOOPBACK = "127.0.0.1"
RAY_ENV = {  # quiet, and no usage reports (yours to switch back on)
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AIR_NEW_OUTPUT": "0",  # Tune's older reporter, which verbose=0 silences
}
# An embedded Ray binds and talks to 127.0.0.1 only: without this, Ray swaps 127.0.0.1 for
# the machine's own address. Not for a real cluster, whose nodes must reach the driver.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
PROBE_TIMEOUT_S = 5
NODE_CHECK_TIMEOUT_S = 300  # a node may download the dataset into its cache


class ClusterError(Exception):
    """Ray missing, an address that does not answer, or a node that cannot take part."""


def import_ray(embedded: bool = False):
    """Ray, with our environment set (read when Ray is first imported: say `embedded` then,
    for a Ray of our own on this machine); or one line saying how to install it."""
    for key, value in {**RAY_ENV, **(LOOPBACK_ONLY if embedded else {})}.items():
        os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError:
        raise ClusterError(f"this needs Ray, which is not installed; {INSTALL}") from None
    return ray


def address_or_default(address: str | None) -> str | None:
    """The address given, else $RAY_ADDRESS, else None (an embedded Ray on this machine)."""
    return address or os.environ.get(ADDRESS_ENV) or None


def worker_env(cpus: int) -> dict[str, str]:
    """What every task and actor of ours starts with: Ray sets OMP_NUM_THREADS to the CPUs
    it holds, but not TensorFlow's thread pools, so they are set here."""
    env = {
        **RAY_ENV,
        "TF_NUM_INTRAOP_THREADS": str(cpus),
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
    }
    for key in (datasets.DATA_ENV, datasets.OFFLINE_ENV):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


def probe(address: str) -> None:
    """Answer an address that nobody listens at in seconds, not after Ray's long retries."""
    if address == "auto":
        return
    where = address.removeprefix("ray://")
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(
            f"--address {address!r} is not a Ray address; give HOST:PORT (as 'ray start "
            f"--head' prints), ray://HOST:10001, or auto"
        )
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            f"'ray start --head' or check --address / ${ADDRESS_ENV}"
        ) from None


@dataclass
class Cluster:
    """The Ray we are connected to: its address ("embedded": started here) and size."""

    address: str
    nodes: int
    cpus: int

    def describe(self) -> str:
        where = "an embedded Ray on this machine" if self.address == "embedded" else self.address
        return f"{where} ({self.nodes} node(s), {self.cpus} CPU(s))"


@contextlib.contextmanager
def connected(address: str | None, cpus_per_task: int = 1) -> Iterator[Cluster]:
    """Join the Ray cluster at `address`, or start an embedded one; leave it on exit.

    The embedded Ray has as many CPUs as this machine, so one trial runs per core, and
    binds to 127.0.0.1 only, without a dashboard.
    """
    address = address_or_default(address)
    ray = import_ray(embedded=address is None)
    options = {
        "runtime_env": {"env_vars": worker_env(cpus_per_task)},
        "logging_level": logging.ERROR,
        "log_to_driver": False,
    }
    if address:
        probe(address)
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(
                f"cannot join the Ray cluster at {address} ({first_line(exc)})"
            ) from None
    else:  # its session files (logs, sockets, spilled objects) in a folder removed after
        session = tempfile.mkdtemp(prefix="mnist-cnn-ray-")
        ray.init(
            address="local",  # a new Ray of our own, even where another runs
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            _node_ip_address=LOOPBACK,
            _temp_dir=session,
            **options,
        )
    try:
        resources = ray.cluster_resources()
        alive = [node for node in ray.nodes() if node["Alive"]]
        yield Cluster(address or "embedded", len(alive), int(resources.get("CPU", 0)))
    finally:
        ray.shutdown()
        if not address:
            shutil.rmtree(session, ignore_errors=True)


def _check_node(dataset: str | None, data_dir: str | None, see: list[str]) -> str | None:
    """On one node: why it cannot take part, or None."""
    for path in see:
        if not Path(path).exists():
            return f"cannot see {path}; give paths on storage that every node sees"
    folder = None if dataset is None else datasets.folder_of(dataset)
    if folder is not None:
        return None if folder.is_dir() else f"no folder {folder} there"
    try:
        if dataset is not None:
            datasets.ensure_dataset(dataset, data_dir, progress=False)
    except datasets.DatasetError as exc:
        return str(exc)
    return None


def check_nodes(
    dataset: str | None, data_dir: str | None, out: Path | None, see: list[Path] = ()
) -> None:
    """Ask every live node whether it can run our code, find the dataset, see `out` (where
    runs will be written) and the files in `see`.

    A marker file in `out` (created if need be) stands for the run directories to come;
    it is removed again, so a refusal leaves nothing behind.
    """
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    paths = [str(Path(path).resolve()) for path in see]
    probe = None
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / f".mnist-cnn-probe-{uuid.uuid4().hex}"
            probe.touch()
        except OSError as exc:
            raise ClusterError(f"cannot write to --out {out} ({exc.strerror or exc})") from None
        paths.append(str(probe))
    check = ray.remote(num_cpus=0, max_retries=0)(_check_node)
    try:
        nodes = [node for node in ray.nodes() if node["Alive"]]
        pending = {
            check.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ).remote(dataset, data_dir, paths): node
            for node in nodes
        }
        for ref, node in pending.items():
            where = f"node {node['NodeManagerAddress']} ({node['NodeID'][:8]})"
            try:
                problem = ray.get(ref, timeout=NODE_CHECK_TIMEOUT_S)
            except ray.exceptions.TaskUnschedulableError:
                continue  # a node that left after ray.nodes() listed it: no work goes there
            except Exception as exc:  # it could not even run our code there
                cause = getattr(exc, "cause", None) or exc
                text = str(cause).strip()
                raise ClusterError(
                    f"{where} cannot run mnist-cnn ({type(cause).__name__}: "
                    f"{text.splitlines()[-1] if text else ''}); install mnist-cnn[cluster] "
                    f"on every node"
                ) from None
            if problem:
                raise ClusterError(f"{where}: {problem}")
    finally:
        if probe is not None:
            probe.unlink(missing_ok=True)


def check_ready(address: str | None) -> None:
    """A missing extra or an address that does not answer: one line now, before Keras loads."""
    address = address_or_default(address)
    import_ray(embedded=address is None)
    if address:
        probe(address)


def ensemble_runner(address_flag: str | None, resume: str | None, ensemble, dataset, data_dir, out):
    """With --address (or $RAY_ADDRESS), an ensemble's members train side by side on Ray:
    a context that yields the member runner; else None. A resumed run's own settings say
    how many members it has and where its data is."""
    address = address_or_default(address_flag)
    if address is None:
        return None
    if resume:
        recorded = rundir.read_json(Path(resume) / rundir.CONFIG)
        settings = recorded.get("settings", {})
        ensemble, dataset = settings.get("ensemble"), settings.get("dataset", "mnist")
        data_dir, out = recorded.get("data_dir"), Path(resume).resolve().parent
    if not ensemble or ensemble < 2:
        if address_flag:
            raise ClusterError("--address trains an ensemble's members on Ray; add --ensemble K")
        return None  # $RAY_ADDRESS set, but there is nothing to spread
    check_ready(address)
    return members_on(address, dataset, data_dir, Path(out).resolve())


@contextlib.contextmanager
def members_on(address: str, dataset: str, data_dir: str | None, out: Path):
    """Connected, and every node checked for the run: yields the member runner."""
    with connected(address):
        check_nodes(dataset, data_dir, out)
        yield member_runner()


def member_runner(cpus: int = 1):
    """An ensemble's members as Ray tasks, side by side (training.MemberRunner).

    A task that dies with its node is run again by Ray (max_retries) and carries on from
    the member's last checkpoint, which lives in the run directory on shared storage.
    """
    ray = import_ray()
    from mnist_cnn import training

    task = ray.remote(num_cpus=cpus, max_retries=3)(training.fit_member)

    def run(run_dir: Path, indices: list[int]) -> None:
        refs = [task.remote(str(run_dir.resolve()), index) for index in indices]
        try:
            ray.get(refs)
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise training.TrainingInterrupted(run_dir, 0) from None

    return run


class _Reader:
    """A Ray Data actor: one Classifier, loaded once, reading batches of image files."""

    def __init__(self, model: str, threads: int, turns: tuple[float, ...]):
        from mnist_cnn.inference.classifier import Classifier

        self.classifier = Classifier(model, threads=threads, turns=turns)  # (imports Keras)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        from mnist_cnn.data.imaging import ImageError

        paths = [str(p) for p in batch["path"]]
        answers = self.classifier.predict_images(paths, paths)
        errors = [
            prepared.reason(path) if isinstance(prepared, ImageError) else ""
            for path, (prepared, _) in zip(paths, answers, strict=True)
        ]
        probabilities = np.stack(
            [np.asarray(a.probabilities) if a is not None else np.zeros(10) for _, a in answers]
        )
        return {"index": batch["index"], "probabilities": probabilities, "error": errors}


def read_files(
    model: Path, files: list[Path], cpus: int = 1, turns: tuple[float, ...] = ()
) -> list[tuple]:
    """Probabilities for many image files, read by Ray Data across the cluster.

    One actor per `cpus` CPUs, each with its own Classifier (Keras or ONNX; reading each
    digit turned by `turns` too, as `predict --for handwriting` does). Returns, in
    the order of `files`, (probabilities, "") or (None, the reason it could not be read).
    """
    from mnist_cnn.inference.classifier import BATCH

    ray = import_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    actors = max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus)
    items = [{"index": i, "path": str(Path(f).resolve())} for i, f in enumerate(files)]
    rows = (
        ray.data.from_items(items)
        .map_batches(
            _Reader,
            fn_constructor_args=(str(Path(model).resolve()), cpus, tuple(turns)),
            batch_size=BATCH,  # the batches a local predict runs
            num_cpus=cpus,
            concurrency=actors,
        )
        .take_all()
    )
    rows.sort(key=lambda row: row["index"])
    return [(None, row["error"]) if row["error"] else (row["probabilities"], "") for row in rows]
