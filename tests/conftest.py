"""Shared fixtures: the real command, a real HTTP server on 127.0.0.1, one trained run."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

COMMAND = str(Path(sys.executable).with_name("mnist-cnn"))


def run_cli(*args: str, env: dict | None = None, cwd=None, timeout: int = 600):
    """Run the installed `mnist-cnn` command for real; return the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [COMMAND, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )


def run_side_by_side(commands: list[list[str]], at_once: int = 3, timeout: int = 600) -> list:
    """Run several commands at the same time (each spends most of its life starting up),
    and return their CompletedProcesses in order."""
    from concurrent.futures import ThreadPoolExecutor

    def run(command):
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)

    with ThreadPoolExecutor(at_once) as pool:
        return list(pool.map(run, commands))


def run_cli_side_by_side(commands: list[list[str]], at_once: int = 3) -> list:
    """`mnist-cnn ARGS...` for each list of arguments, at the same time."""
    return run_side_by_side([[COMMAND, *args] for args in commands], at_once)


def said_before_waits(line: str) -> bool:
    """A line the command prints on stderr before a wait ("mnist-cnn: loading TensorFlow ...")."""
    return line.startswith("mnist-cnn: ") and line.endswith(" ...")


def error_lines(stderr: str) -> list[str]:
    """What the command said on stderr, less the lines it prints before a wait."""
    return [line for line in stderr.strip().splitlines() if not said_before_waits(line)]


def assert_one_line_error(result, *needles: str, code: int = 2) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def mnist():
    """Real MNIST, loaded once."""
    from mnist_cnn.data.sources import load_dataset

    return load_dataset("mnist")


@pytest.fixture
def http_server():
    """Start a static file server for a folder on 127.0.0.1; yields `serve(folder) -> url`."""
    servers = []

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    def serve(folder: Path) -> str:
        handler = functools.partial(QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


# `make test` runs on both cores with pytest-xdist, a module at a time per worker (so its
# module-scoped runs are trained once), except that the tests that time themselves or hold
# ports and clusters form one unit together: they never share the two cores with each other.
TIMING_SENSITIVE = {
    "test_resume",
    "test_server",
    "test_page",
    "test_cluster",
    "test_fuzz",
    "test_ray_serve",
    "test_v2",
    "test_tracking",
}
# Seconds each unit took, run alone one after another (pytest --durations, 2026-12-01): the
# heaviest go first, so that neither worker is left alone with a long module at the end.
COST = {
    "timing": 370,
    "test_own_models": 175,
    "test_notebook_models": 123,
    "test_own_digits": 100,
    "test_examples": 90,  # a fast run, the checked examples, docs/ Python (parsing: 2 s)
    "test_ensemble": 86,
    "test_hostile": 61,
    "test_api": 60,
    "test_predict": 54,
    "test_export": 50,
    "test_tensorboard": 50,  # a run and an ensemble, side by side
    "test_cli": 46,
    "test_report": 41,
    "test_photos": 40,
    "test_ray_serve": 110,  # a 3-node Ray cluster, 2 replicas, a node killed; in "timing"
    "test_tracking": 240,  # a run, a sweep and a run whose server dies; runs in "timing"
}
# `make check`'s tier: modules whose tests train nothing and start no server, less any test
# that asks for a trained run.
QUICK = {"test_catalogue", "test_cli", "test_datasets", "test_imaging", "test_layout"}
TRAINED = {"trained_run", "fast_run", "server", "browser"}


def _unit(nodeid: str) -> str:
    module = Path(nodeid.split("::", 1)[0]).stem
    return "timing" if module in TIMING_SENSITIVE else module


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: -COST.get(_unit(item.nodeid), 0))  # stable within a module
    for item in items:
        quick = _unit(item.nodeid) in QUICK
        if quick and not TRAINED & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.quick)


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadscope` (make test): xdist's scope scheduling, with our units as the
    scopes, in the order collected. Any other mode is xdist's own (make check: load)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    config.option.loadscopereorder = False  # keep the heaviest first, as sorted above
    return UnitScheduling(config, log)


def shared(tmp_path_factory, name: str, make):
    """`make(folder)` once per test session, even across xdist workers: the first worker
    computes it under a lock, the others read its JSON answer."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder every worker's base folder sits in
    answer = root / f"{name}.json"
    with FileLock(str(answer) + ".lock"):
        if not answer.exists():
            folder = root / f"{name}-runs"
            folder.mkdir(exist_ok=True)
            answer.write_text(json.dumps(make(folder)))
    return json.loads(answer.read_text())


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> dict:
    """A short real training run through the command: 1 epoch on 6000 digits."""
    return shared(tmp_path_factory, "trained_run", _train_short)


def _train_short(out: Path) -> dict:
    result = run_cli(
        "train",
        "conv32-conv64-dense128",
        "--limit",
        "6000",
        "--epochs",
        "2",
        "--out",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    summary["stdout"], summary["stderr"] = result.stdout, result.stderr
    return summary


@pytest.fixture(scope="session")
def fast_run(tmp_path_factory) -> str:
    """The `fast` model, trained for real through the command (about 10 s)."""
    return shared(tmp_path_factory, "fast_run", _train_fast)


def _train_fast(out: Path) -> str:
    result = run_cli("train", "fast", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["test_accuracy"] >= 0.985
    return summary["run_dir"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(model: str, *options: str, log: Path | None = None):
    """`mnist-cnn serve MODEL` for real, on a free port of 127.0.0.1; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    errors = open(log or os.devnull, "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [COMMAND, "serve", model, "--port", str(port), *options],
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"the server exited with {server.returncode}"
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start in 120 s"
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        errors.close()


@pytest.fixture(scope="session")
def server(fast_run, tmp_path_factory) -> str:
    """The `fast` model behind `mnist-cnn serve`, shared by the API and browser tests."""
    with running_server(fast_run, log=tmp_path_factory.mktemp("serve") / "stderr.log") as url:
        yield url


CHROMIUM = os.environ.get("MNIST_CNN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium (never a downloaded browser), headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's browser (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
