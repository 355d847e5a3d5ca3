"""The FastAPI app: `POST /api/predict`, `GET /api/model`, `GET /healthz`, the page at `/`.

Every answer comes from one `Classifier` through the same `imaging` path as
`mnist-cnn predict`, so the page, the API and the command always agree. Every error is a
4xx with `{"error": "..."}` saying what was wrong and what to send instead.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import sys
from pathlib import Path

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from mnist_cnn import __version__, rundir
from mnist_cnn.backend import versions
from mnist_cnn.data import imaging
from mnist_cnn.inference import MIN_CONFIDENCE
from mnist_cnn.inference.classifier import Classifier
from mnist_cnn.server import v2
from mnist_cnn.server.limits import BodyLimit

DEFAULT_MAX_BODY = 5 * 1024 * 1024
# Small images (a drawing, a digit photo) are answered on the event loop: measured on 2 cores
# with ONNX Runtime, 1.46 ms of server CPU a request, against 1.9-2.4 ms through a thread.
# Larger ones go to at most WORK_THREADS threads, so that none can stall the loop.
INLINE_BYTES = 256 * 1024
INLINE_PIXELS = 1_000_000
WORK_THREADS = 2
STATIC = Path(__file__).with_name("static")
SETTINGS_ENV = "MNIST_CNN_SERVE"
SIDE = 28
HOW_TO_SEND = (
    "send multipart/form-data with the image in the field 'file', "
    'or application/json {"pixels": 28 rows of 28 numbers in 0..255}'
)

PREDICT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "pixels": {
                        "type": "array",
                        "minItems": SIDE,
                        "maxItems": SIDE,
                        "items": {
                            "type": "array",
                            "minItems": SIDE,
                            "maxItems": SIDE,
                            "items": {"type": "number", "minimum": 0, "maximum": 255},
                        },
                    }
                },
                "required": ["pixels"],
            }
        },
    },
}


class RequestError(Exception):
    """A request the API cannot answer: its HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_app(
    classifier: Classifier, max_body: int = DEFAULT_MAX_BODY, chosen: dict | None = None
) -> FastAPI:
    """The app for one loaded classifier; bodies over `max_body` bytes get 413. `chosen`:
    what the model was chosen for and why (`serve --for`), shown by /api/model and the page."""
    api = FastAPIOffline(  # FastAPI, with /docs's scripts served from here, not a CDN
        title="mnist-cnn",
        version=__version__,
        summary="Read handwritten digits: draw one at /, or POST an image to /api/predict.",
    )
    api.add_middleware(BodyLimit, max_bytes=max_body)
    info = {**model_info(classifier), "chosen": chosen}
    work: dict = {}

    @api.exception_handler(RequestError)
    async def request_error(request, exc: RequestError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @api.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        message = exc.detail if exc.status_code != 404 else f"no such page: {request.url.path}"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def validation_error(request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"error": problems}, status_code=422)

    @api.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    api.mount("/static", StaticFiles(directory=STATIC), name="static")
    api.include_router(v2.router(classifier, info))  # the Open Inference Protocol, /v2/...

    @api.get("/healthz", summary="Health check")
    def healthz() -> dict:
        return {"status": "ok"}

    @api.get("/api/model", summary="The model being served: name, test accuracy, versions")
    def model() -> dict:
        return info

    @api.post(
        "/api/predict",
        summary="Read the digit in an image (or, with multi=1, the digits of a number)",
        openapi_extra={"requestBody": PREDICT_BODY},
    )
    async def predict(request: Request, multi: bool = False):
        source, name = await read_source(request)
        if is_small(source):  # ~1 ms of work: a thread hop would cost more than it saves
            result = answer(classifier, source, name, multi)
        else:  # a large photo: decode and preprocess off the event loop
            if "limiter" not in work:  # made on first use, inside the server's event loop
                work["limiter"] = anyio.CapacityLimiter(WORK_THREADS)
            result = await anyio.to_thread.run_sync(
                answer, classifier, source, name, multi, limiter=work["limiter"]
            )
        # A plain JSONResponse: FastAPI's encoder would spend ~0.5 ms walking the 28x28 image.
        return JSONResponse(result)

    return api


async def read_source(request: Request) -> tuple[bytes | np.ndarray, str]:
    """The image bytes of a multipart upload, or the array of a JSON pixels body."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=8)
        except Exception as exc:  # python-multipart raises several types for a broken body
            raise RequestError(400, f"malformed multipart body ({exc}); {HOW_TO_SEND}") from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise RequestError(
                422, f"the multipart body has no file in the field 'file'; {HOW_TO_SEND}"
            )
        data = await upload.read()
        name = upload.filename or "upload"
        if not data:
            raise RequestError(400, f"{name}: the uploaded file is empty")
        return data, name
    body = await request.body()
    if not body:
        raise RequestError(400, f"the request body is empty; {HOW_TO_SEND}")
    if media != "application/json":
        raise RequestError(415, f"unsupported media type {media or 'none'!r}; {HOW_TO_SEND}")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, f"malformed JSON ({exc}); {HOW_TO_SEND}") from None
    return pixels_of(payload), "pixels"


def is_small(source: bytes | np.ndarray) -> bool:
    """Whether an upload is cheap enough to answer without leaving the event loop."""
    if isinstance(source, np.ndarray):
        return True
    return len(source) <= INLINE_BYTES and imaging.declared_pixels(source) <= INLINE_PIXELS


def pixels_of(payload) -> np.ndarray:
    """The 28x28 uint8 image of a JSON `{"pixels": ...}` body, or a 422 naming what is wrong."""
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise RequestError(422, f'the JSON body needs a "pixels" field; {HOW_TO_SEND}')
    rows = payload["pixels"]
    if not isinstance(rows, list) or len(rows) != SIDE:
        got = f"{len(rows)} row(s)" if isinstance(rows, list) else f"a {type(rows).__name__}"
        raise RequestError(422, f'"pixels" must be {SIDE} rows of {SIDE} numbers; got {got}')
    for r, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != SIDE:
            got = f"{len(row)} numbers" if isinstance(row, list) else f"a {type(row).__name__}"
            raise RequestError(422, f'"pixels" row {r} must hold {SIDE} numbers; it holds {got}')
        for c, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RequestError(422, f'"pixels"[{r}][{c}] is {value!r}, not a number')
            if not (0 <= value <= 255) or (isinstance(value, float) and math.isnan(value)):
                raise RequestError(
                    422, f'"pixels"[{r}][{c}] is {value}, outside 0..255; scale to 0..255'
                )
    pixels = np.asarray(rows, dtype=np.float64)
    if 0 < pixels.max() <= 1:  # `x / 255`, as tutorials normalise: the same digit, on 0..1
        pixels = pixels * 255
    return np.rint(pixels).astype(np.uint8)


def answer(classifier: Classifier, source, name: str, multi: bool) -> dict:
    """The prediction as JSON; an unreadable image is a 422 with the imaging error's message."""
    if multi:
        try:
            return classifier.predict_number(source, name)
        except imaging.ImageError as exc:
            raise RequestError(422, str(exc)) from None
    [(prepared, prediction)] = classifier.predict_images([source], [name])
    if prediction is None:  # `prepared` is the ImageError that says why
        raise RequestError(422, str(prepared))
    result = {**prediction.to_dict(), "image": prepared.image.tolist()}
    if prediction.digits_seen > 1:
        result["hint"] = f"{prediction.digits_seen} digits here: ask with ?multi=1 for the number"
    return result


def model_info(classifier: Classifier) -> dict:
    """What `GET /api/model` says: the model, its measured accuracy, and the versions."""
    run = rundir.run_dir_of(classifier.path)
    config = rundir.read_json(run / rundir.CONFIG) if run else {}
    metrics_file = run / rundir.METRICS if run else None
    metrics = rundir.read_json(metrics_file) if metrics_file and metrics_file.is_file() else {}
    return {
        "name": config.get("model", classifier.path.stem),
        "path": str(classifier.path),
        "test_accuracy": metrics.get("test_accuracy"),
        "parameters": metrics.get("parameters")
        or (int(classifier.model.count_params()) if classifier.model is not None else None),
        "runtime": "onnxruntime" if classifier.model is None else "keras",
        "temperature": classifier.temperature,
        "min_confidence": classifier.min_confidence,
        "trained_with": config.get("versions"),
        "versions": versions("onnxruntime" if classifier.model is None else "keras"),
    }


def serve(
    model: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_body: int = DEFAULT_MAX_BODY,
    min_confidence: float = MIN_CONFIDENCE,
    workers: int = 1,
    chosen: dict | None = None,
) -> None:
    """Run the app on uvicorn until interrupted; each of `workers` processes loads the model."""
    import uvicorn

    os.environ[SETTINGS_ENV] = json.dumps(
        {
            "model": str(model),
            "max_body": max_body,
            "min_confidence": min_confidence,
            "chosen": chosen,
        }
    )
    if workers == 1:
        uvicorn.run(app_from_environment(), host=host, port=port, log_level="warning")
        return
    # Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads connections
    # among them. (With one shared socket, measured: one worker took 31 of 32 connections.)
    import multiprocessing

    app_from_environment()  # fail here, once and clearly, if the model cannot be served
    spawn = multiprocessing.get_context("spawn")
    children = [spawn.Process(target=_worker, args=(host, port)) for _ in range(workers)]
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for child in children:
            child.start()
        for child in children:
            child.join()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for child in children:
            child.terminate()
        for child in children:
            child.join(timeout=30)


def _worker(host: str, port: int) -> None:
    """One server process (see `serve`): its own socket on the shared port, its own model."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    config = uvicorn.Config(app_from_environment(), log_level="warning")
    uvicorn.Server(config).run(sockets=[listener])


def app_from_environment() -> FastAPI:
    """The app `serve` describes in $MNIST_CNN_SERVE (how uvicorn's worker processes get it)."""
    settings = json.loads(os.environ[SETTINGS_ENV])
    turns = (settings.get("chosen") or {}).get("turns", ())  # `serve --for handwriting`
    classifier = Classifier(
        settings["model"], min_confidence=settings["min_confidence"], threads=1, turns=turns
    )
    return create_app(classifier, settings["max_body"], settings.get("chosen"))
