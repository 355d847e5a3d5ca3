"""Load on `mnist-cnn serve`: requests per second, p50 and p99 latency, errors; 1-32 clients.

Starts the real server on 127.0.0.1 and drives it with closed-loop clients (each sends its
next request as soon as its last one is answered) over keep-alive HTTP/1.1 connections,
for a bounded time per level. Every request is a single-digit PNG upload (an MNIST test
digit as dark ink on white, 140x140 px, picked with a fixed seed), and every answer is
checked: a non-200 status or a broken connection counts as failed, a 200 whose digit is not
the label as a wrong digit (the model's mistake, not the server's). The clients are plain
asyncio sockets in this process, so that they take as little of the shared CPU as they can.
Each level runs --repeats times; the table shows the median run (by requests per second).

    python benchmarks/serve_load.py [RUN_DIR] [--workers 1] [--seconds 10] [--repeats 3]

With --ray-nodes N the same load goes to `mnist-cnn serve --address ADDR --replicas R` on
Ray Serve instead: a real cluster on this machine (tests/ray_cluster.py: a head with no
CPUs for tasks, running Serve's proxy, and N worker nodes of R/N CPUs, on 127.0.0.1).

    python benchmarks/serve_load.py RUN_DIR --ray-nodes 2 --replicas 2
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_cnn import rundir
from mnist_cnn.backend import versions
from mnist_cnn.data import sources

SEED = 0
DIGITS = 20


def digit_uploads(count: int, seed: int) -> list[tuple[bytes, int]]:
    """`count` HTTP requests, each a multipart PNG upload of one test digit, and its label."""
    _, (x_test, y_test) = sources.load_dataset("mnist")
    rng = np.random.default_rng(seed)
    requests = []
    for index in rng.choice(len(x_test), count, replace=False):
        buffer = io.BytesIO()
        Image.fromarray(255 - x_test[index]).resize((140, 140), Image.BICUBIC).save(buffer, "PNG")
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="digit.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            + buffer.getvalue()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        head = (
            f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        requests.append((head + body, int(y_test[index])))
    return requests


async def client(
    port: int, requests, stop_at: float, latencies: list, errors: list, wrong: list
) -> None:
    """One closed-loop client on one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < stop_at:
            request, label = requests[i % len(requests)]
            i += 1
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if b" 200 " not in status_line:
                errors.append(status_line.decode().strip())
            elif json.loads(body)["digit"] != label:
                wrong.append(label)
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(repr(exc))
    finally:
        writer.close()


async def level(port: int, clients: int, seconds: float, requests) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    wrong: list[int] = []
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(client(port, requests, stop_at, latencies, errors, wrong) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "clients": clients,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "errors": len(errors),
        "wrong": len(wrong),
    }


def start_server(model: Path, workers: int, ray=None, replicas=1) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = Path(sys.executable).with_name("mnist-cnn")
    where = ["--workers", str(workers)]
    if ray is not None:  # Ray Serve on that cluster
        where = ["--address", ray.address, "--replicas", str(replicas)]
    server = subprocess.Popen(
        [str(command), "serve", str(model), "--port", str(port), *where],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return server, port
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("serve_load: the server did not start") from None
            time.sleep(0.2)


def run_loop(coroutine):
    """asyncio.run, on uvloop when it is installed (it comes with uvicorn[standard]): the
    clients share the CPU with the server, so the lighter they are the better."""
    try:
        import uvloop

        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="run directory (default: the newest in runs/)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per level and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--ray-nodes", type=int, default=0, help="Ray Serve on N worker nodes")
    parser.add_argument("--replicas", type=int, default=1, help="Ray Serve replicas")
    args = parser.parse_args()
    model = Path(args.model) if args.model else rundir.newest_run()
    requests = digit_uploads(DIGITS, SEED)
    ray = None
    if args.ray_nodes:
        sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
        from ray_cluster import RayCluster

        ray = RayCluster(args.ray_nodes, cpus=math.ceil(args.replicas / args.ray_nodes))
    server, port = start_server(model, args.workers, ray, args.replicas)
    rows = []
    try:
        for clients in args.clients:
            run_loop(level(port, clients, 1.0, requests))  # warm-up, not counted
            runs = [
                run_loop(level(port, clients, args.seconds, requests)) for _ in range(args.repeats)
            ]
            for run in runs:
                print(
                    f"{clients} clients: {run['rps']:.0f} req/s, p50 {run['p50']:.1f} ms, "
                    f"p99 {run['p99']:.1f} ms, {run['errors']} failed, {run['wrong']} wrong digits",
                    file=sys.stderr,
                    flush=True,
                )
            median = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
            rows.append(
                (median, *(sum(r[key] for r in runs) for key in ("errors", "wrong", "requests")))
            )
    finally:
        server.terminate()  # on Ray, it tears its deployment down first
        server.wait(timeout=120)
        if ray is not None:
            ray.stop()

    info = versions()
    served = f"--workers {args.workers}"
    if ray is not None:
        served = (
            f"--address ADDR --replicas {args.replicas}` on Ray Serve ({args.ray_nodes} worker "
            f"node(s) of {ray.cpus} CPU(s) and a head for the proxy, on this machine)`"
        )
    print(
        f"{info['machine']}, {info['cpu_count']} CPU cores (server and clients share them); "
        f"`mnist-cnn serve {model} {served}`; single-digit 140x140 PNG "
        f"uploads ({DIGITS} test digits, "
        f"seed {SEED}); closed loop, {args.seconds:.0f} s per run, median of {args.repeats} runs.\n"
    )
    print("| clients | requests/s | p50 ms | p99 ms | failed (all runs) | wrong digits |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for median, errors, wrong, total in rows:
        print(
            f"| {median['clients']} | {median['rps']:.0f} | {median['p50']:.1f} "
            f"| {median['p99']:.1f} | {errors} of {total:,} | {wrong} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
