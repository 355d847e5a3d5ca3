"""How long a photo takes through the page's API: `POST /api/predict`, one client, p50/p90.

Starts the real `mnist-cnn serve` on 127.0.0.1 (`--for handwriting --runs RUNS`, or a named
run) and sends, one after another over a keep-alive connection, each of:
- the sample photo (samples/photo-of-a-9.jpg: a 9 on paper, 414x409 px);
- the same photo enlarged to 1600 px, as a phone sends it (the server reduces it to 400);
- a 28x28 PNG of an MNIST digit: the floor (HTTP, decoding and the model, almost no imaging).
Each row: --requests requests after 10 unmeasured, --repeats times; the median repeat is
shown, and the photo's p50 as a multiple of the floor's, measured in the same run. Beside it,
`imaging.to_mnist` on the photo in this process (p50 of 50): the preprocessing alone.

    python benchmarks/photo_latency.py --for handwriting [--runs runs] [--requests 100]
    python benchmarks/photo_latency.py RUN_DIR
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from mnist_cnn.backend import versions
from mnist_cnn.data import imaging, sources

PHOTO = resources.files("mnist_cnn.samples") / "photo-of-a-9.jpg"


def start_server(chosen: list[str]) -> tuple[subprocess.Popen, str]:
    """`mnist-cnn serve` on a free port of 127.0.0.1, once it answers /healthz."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = Path(sys.executable).with_name("mnist-cnn")
    server = subprocess.Popen(
        [str(command), "serve", *chosen, "--port", str(port)], stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=2).raise_for_status()
            return server, url
        except httpx.HTTPError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("photo_latency: the server did not start") from None
            time.sleep(0.2)


def uploads() -> dict[str, bytes]:
    """The files sent, by row name."""
    photo = PHOTO.read_bytes()
    large = io.BytesIO()
    image = Image.open(io.BytesIO(photo))
    image.resize((1600, round(1600 * image.height / image.width)), Image.BICUBIC).save(
        large, "JPEG", quality=90
    )
    _, (x_test, _) = sources.load_dataset("mnist")
    small = io.BytesIO()
    Image.fromarray(255 - x_test[0]).save(small, "PNG")
    return {
        f"sample photo ({image.width}x{image.height})": photo,
        "the photo at 1600 px wide": large.getvalue(),
        "28x28 PNG (the floor)": small.getvalue(),
    }


def latencies(url: str, body: bytes, requests: int) -> list[float]:
    """Milliseconds per request, one after another on one connection."""
    times = []
    with httpx.Client(timeout=30) as client:
        for index in range(requests + 10):
            start = time.perf_counter()
            answer = client.post(f"{url}/api/predict", files={"file": ("upload", body)})
            if index >= 10:
                times.append(1000 * (time.perf_counter() - start))
            answer.raise_for_status()
    return times


def preprocessing_ms(count: int = 50) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        imaging.to_mnist(str(PHOTO))
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="run directory (or use --for handwriting)")
    parser.add_argument("--for", dest="purpose", choices=("handwriting",))
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if bool(args.model) == bool(args.purpose):
        parser.error("name a run directory, or give --for handwriting")
    chosen = [args.model] if args.model else [f"--for={args.purpose}", "--runs", args.runs]
    server, url = start_server(chosen)
    try:
        model = httpx.get(f"{url}/api/model").json()
        rows = {}
        for _ in range(args.repeats):  # interleaved: a slow spell of the VM hits every row
            for name, body in uploads().items():
                times = latencies(url, body, args.requests)
                rows.setdefault(name, []).append(
                    (statistics.median(times), float(np.percentile(times, 90)))
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
    median = {name: sorted(runs)[len(runs) // 2] for name, runs in rows.items()}
    floor = median["28x28 PNG (the floor)"][0]
    print(f"model: {model['path']} ({model['name']})")
    if model.get("chosen"):
        print(model["chosen"]["why"])
    info = versions()
    print(
        f"{args.requests} requests x {args.repeats} repeats, one client; "
        f"{time.strftime('%Y-%m-%d')}; {info['machine']}, {info['cpu_count']} CPU cores; "
        f"Keras {info['keras']} on {info['backend']} {info['backend_version']}\n"
    )
    print("| upload | p50 ms | p90 ms | p50 / floor |")
    print("| --- | ---: | ---: | ---: |")
    for name, (p50, p90) in median.items():
        print(f"| {name} | {p50:.1f} | {p90:.1f} | {p50 / floor:.2f} |")
    print(f"\n`imaging.to_mnist` on the sample photo, in process: {preprocessing_ms():.1f} ms p50")
    return 0


if __name__ == "__main__":
    sys.exit(main())
