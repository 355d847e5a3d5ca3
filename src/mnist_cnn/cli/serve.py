"""`mnist-cnn serve`: the draw-a-digit page and the HTTP API, on one model."""

from __future__ import annotations

from mnist_cnn.backend import import_keras
from mnist_cnn.cli.common import (
    PROG,
    UsageError,
    add_command,
    check_min_confidence,
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

    model = rundir.model_path(args.model or rundir.newest_run(args.runs), rundir.MODEL_SUFFIXES)
    if model.suffix != ".onnx":
        import_keras(intra_op_threads=1)  # requests run side by side, one core each
    from mnist_cnn.server import serve

    print(f"serving {model} at http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    serve(
        model,
        args.host,
        args.port,
        max_body=int(args.max_body_mb * 1024 * 1024),
        min_confidence=args.min_confidence,
        workers=args.workers,
    )


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
        help="the model to serve (default: the newest run under --runs)",
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
    p.add_argument(
        "--min-confidence",
        type=float,
        default=0.6,
        metavar="P",
        help="answers below this confidence are shown as unsure (default: 0.6)",
    )
