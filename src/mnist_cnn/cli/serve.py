"""`mnist-cnn serve`: the draw-a-digit page and the HTTP API, on one model."""

from __future__ import annotations

import sys

from mnist_cnn.cli.common import (
    PROG,
    UsageError,
    add_command,
    add_min_confidence_option,
    check_min_confidence,
    load_keras,
)


def run(args) -> None:
    if not 0 < args.max_body_mb <= 1024:
        raise UsageError(f"--max-body-mb must be between 0 and 1024, got {args.max_body_mb}")
    check_min_confidence(args.min_confidence)
    if not 1 <= args.workers <= 64:
        raise UsageError(f"--workers must be between 1 and 64, got {args.workers}")
    if args.workers > 1 and args.port == 0:
        raise UsageError("--port 0 (any free port) works with one worker only")
    from mnist_cnn import rundir

    warning = None
    if args.model is None:
        args.model, warning = rundir.run_to_serve(args.runs)
    model = rundir.model_path(args.model, rundir.MODEL_SUFFIXES)
    if model.suffix != ".onnx":
        load_keras(intra_op_threads=1)  # requests run side by side, one core each
    from mnist_cnn.server import serve

    if warning:
        print(f"{PROG} serve: warning: {warning}", file=sys.stderr)
    print(
        f"serving {model} ({_accuracy(model)}) at http://{args.host}:{args.port}/ (Ctrl-C stops)",
        flush=True,
    )
    serve(
        model,
        args.host,
        args.port,
        max_body=int(args.max_body_mb * 1024 * 1024),
        min_confidence=args.min_confidence,
        workers=args.workers,
    )


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
        f"{PROG} serve runs/fast-20261121-101500 --port 8000",
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
    p.add_argument(
        "--runs", default="runs", help="where to look for the newest run (default: runs/)"
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
