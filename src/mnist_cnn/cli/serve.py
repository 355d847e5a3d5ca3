"""`mnist-cnn serve`: the draw-a-digit page and the HTTP API, on one model."""

from __future__ import annotations

import os
import re
import sys

from mnist_cnn.cli.common import (
    PROG,
    UsageError,
    add_address_option,
    add_command,
    add_for_option,
    add_min_confidence_option,
    check_min_confidence,
    load_keras,
    log,
    model_and_purpose,
    model_for,
)


def run(args) -> None:
    if not 0 < args.max_body_mb <= 1024:
        raise UsageError(f"--max-body-mb must be between 0 and 1024, got {args.max_body_mb}")
    check_min_confidence(args.min_confidence)
    _use_model_name(args.model_name)
    if not 1 <= args.workers <= 64:
        raise UsageError(f"--workers must be between 1 and 64, got {args.workers}")
    if args.workers > 1 and args.port == 0:
        raise UsageError("--port 0 (any free port) works with one worker only")
    address = _address(args)
    from mnist_cnn import rundir

    if args.purpose and args.model is not None:
        raise model_and_purpose(args)
    chosen = model_for(args)
    warning = None
    if args.model is None:
        args.model, warning = rundir.run_to_serve(args.runs)
    model = rundir.model_path(args.model, rundir.MODEL_SUFFIXES)
    if address:
        return _serve_on_cluster(args, address, model, warning, chosen)
    if model.suffix != ".onnx":
        load_keras(intra_op_threads=1)  # requests run side by side, one core each
    from mnist_cnn.server import serve

    if warning:
        print(f"{PROG} serve: warning: {warning}", file=sys.stderr)
    print(
        f"serving {model} ({_accuracy(model)}){_purpose(chosen)} at "
        f"http://{args.host}:{args.port}/ (Ctrl-C stops)",
        flush=True,
    )
    serve(
        model,
        args.host,
        args.port,
        max_body=int(args.max_body_mb * 1024 * 1024),
        min_confidence=args.min_confidence,
        workers=args.workers,
        chosen=chosen,
    )


def _address(args) -> str | None:
    """--address (or $RAY_ADDRESS): Ray Serve on that cluster; its flags checked at once."""
    from mnist_cnn.scale.cluster import address_or_default

    if not 1 <= args.replicas <= 64:
        raise UsageError(f"--replicas must be between 1 and 64, got {args.replicas}")
    address = address_or_default(args.address)
    if address is None and args.replicas != 1:
        raise UsageError("--replicas N serves on a Ray cluster; add --address")
    if address and args.workers != 1:
        raise UsageError("--workers is for one machine; on a Ray cluster use --replicas N")
    if address and args.port == 0:
        raise UsageError("--port 0 (any free port) works without --address only")
    return address


def _purpose(chosen: dict | None) -> str:
    return f" for {chosen['for']}" if chosen else ""


def _serve_on_cluster(args, address: str, model, warning: str | None, chosen: dict | None) -> None:
    """The same app as N Ray Serve replicas across the cluster, until Ctrl-C."""
    from mnist_cnn.scale import cluster, serving

    cluster.check_ready(address)  # no Ray, or nobody at the address: one line, now
    if warning:
        print(f"{PROG} serve: warning: {warning}", file=sys.stderr)
    log.info(f"starting {args.replicas} replica(s) on Ray Serve at {address} ...")

    def ready(url: str, where) -> None:
        print(
            f"serving {model} ({_accuracy(model)}){_purpose(chosen)} with {args.replicas} "
            "replica(s) on "
            f"{where.describe()} at {url} (Ctrl-C stops)",
            flush=True,
        )

    settings = {
        "model": str(model.resolve()),
        "max_body": int(args.max_body_mb * 1024 * 1024),
        "min_confidence": args.min_confidence,
        "chosen": chosen,
    }
    serving.serve_on_cluster(
        address, model.resolve(), args.host, args.port, args.replicas, settings, ready
    )


def _use_model_name(name: str | None) -> None:
    """`--model-name`: the model's name in /v2/models/NAME (it goes in URLs, so no slashes)."""
    if name is None:
        return
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise UsageError(f"--model-name takes letters, digits, '.', '_' and '-', got {name!r}")
    os.environ["MNIST_CNN_MODEL_NAME"] = name  # server.v2.NAME_ENV, read as the app is built


def _accuracy(model) -> str:
    """What the model scored on the test set, as its run recorded it, for the first line."""
    from mnist_cnn import rundir

    run = rundir.run_dir_of(model)
    metrics = run / rundir.METRICS if run else None
    if metrics is None or not metrics.is_file():
        return "test accuracy not recorded"
    return f"{rundir.read_json(metrics)['test_accuracy']:.2%} on the test set"


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "serve",
        "the draw-a-digit page and the HTTP API (POST /api/predict, GET /api/model, /docs)",
        f"{PROG} serve runs/fast-20261121-101500 --port 8000\n  {PROG} serve --for handwriting",
        run,
    )
    p.add_argument(
        "model",
        nargs="?",
        metavar="RUN_DIR|MODEL",
        help="the model to serve (default: the newest run under --runs trained on all of MNIST)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    add_for_option(p)
    p.add_argument(
        "--runs",
        default="runs",
        help="where to look for the newest run, or with --for the best (default: runs/)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes, each with its own copy of the model (default: 1)",
    )
    p.add_argument(
        "--max-body-mb",
        type=float,
        default=5.0,
        metavar="MB",
        help="refuse request bodies larger than this with 413 (default: 5)",
    )
    add_min_confidence_option(p)
    p.add_argument(
        "--model-name",
        metavar="NAME",
        help="the model's name in the Open Inference Protocol, /v2/models/NAME "
        "(default: the run's model, e.g. fast)",
    )
    add_address_option(p, "serve on a Ray cluster with Ray Serve (its proxy on the head node)")
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        metavar="N",
        help="with --address: copies of the app across the cluster, one CPU each (default: 1)",
    )
