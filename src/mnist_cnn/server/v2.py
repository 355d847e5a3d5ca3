"""The Open Inference Protocol (KServe "V2" REST) beside the app's own API, on its Classifier.

It follows `specification/protocol/inference_rest.md` of kserve/open-inference-protocol, so
any client of the protocol (KServe's, Triton's `tritonclient.http`) can read digits here. The
digits go through `Classifier.probabilities`, as `mnist-cnn predict --index` sends them, so
both give the same answers. Every error is `{"error": "..."}`: 400 for a request the protocol
or the model cannot take, 404 for a model or version this server does not have.
"""

from __future__ import annotations

import json
import math
import os

import anyio
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mnist_cnn import __version__
from mnist_cnn.inference.classifier import Classifier

NAME_ENV = "MNIST_CNN_MODEL_NAME"  # `serve --model-name`; default: the run's model
VERSION = "1"  # a served run is one model: it has one version
INPUT = "images"
SIDE = 28
OUTPUTS = {"probabilities": ("FP32", [-1, 10]), "digit": ("INT64", [-1])}
DTYPES = {"UINT8": np.dtype("<u1"), "FP32": np.dtype("<f4")}
SHAPES = "[N, 28, 28], [N, 28, 28, 1] or [N, 784]"
INLINE_BYTES = 64 * 1024  # larger bodies (~20 digits and up) are parsed and run off the loop
BINARY_HEADER = "inference-header-content-length"  # Triton's binary tensor data

INFER_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "example": {
                "id": "42",
                "inputs": [
                    {"name": INPUT, "datatype": "UINT8", "shape": [1, 784], "data": [0] * 784}
                ],
                "outputs": [{"name": "digit"}],
            }
        }
    },
}


class ProtocolError(Exception):
    """A request the protocol says to refuse: its HTTP status and the message for "error"."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def router(classifier: Classifier, info: dict) -> APIRouter:
    """The V2 routes for `classifier`, named $MNIST_CNN_MODEL_NAME or else `info["name"]`."""
    name = os.environ.get(NAME_ENV) or info["name"]
    platform = "onnx_onnxv1" if classifier.model is None else "keras_keras"
    routes = APIRouter(prefix="/v2", tags=["Open Inference Protocol (KServe V2)"])
    work: dict = {}

    def check(model: str, version: str | None) -> None:
        if model != name:
            raise ProtocolError(404, f"unknown model {model!r}: this server serves {name!r}")
        if version is not None and version != VERSION:
            raise ProtocolError(
                404, f"model {name!r} has no version {version!r}; its one version is {VERSION!r}"
            )

    @routes.get("", summary="Server metadata")
    @routes.get("/", include_in_schema=False)  # the spec's YAML writes it /v2/
    def server_metadata() -> dict:
        return {"name": "mnist-cnn", "version": __version__, "extensions": []}

    @routes.get("/health/live", summary="Server live")
    def live() -> dict:
        return {"live": True}

    @routes.get("/health/ready", summary="Server ready (the model is loaded before we listen)")
    def ready() -> dict:
        # The spec's text shows {"live": ...} here; KServe's servers answer {"ready": ...}.
        return {"live": True, "ready": True}

    def model_metadata(model: str, version: str | None = None):
        try:
            check(model, version)
        except ProtocolError as exc:
            return _error(exc)
        return {
            "name": name,
            "versions": [VERSION],
            "platform": platform,
            "inputs": [{"name": INPUT, "datatype": "UINT8", "shape": [-1, SIDE, SIDE]}],
            "outputs": [{"name": k, "datatype": t, "shape": s} for k, (t, s) in OUTPUTS.items()],
        }

    def model_ready(model: str, version: str | None = None):
        try:
            check(model, version)
        except ProtocolError as exc:
            return _error(exc)
        return {"name": name, "ready": True}

    async def infer(request: Request, model: str, version: str | None = None):
        try:
            check(model, version)
            body = await request.body()
            header = request.headers.get(BINARY_HEADER)
            if len(body) <= INLINE_BYTES:
                result = answer(classifier, body, header)
            else:
                if "limiter" not in work:  # made on first use, inside the server's event loop
                    work["limiter"] = anyio.CapacityLimiter(2)
                result = await anyio.to_thread.run_sync(
                    answer, classifier, body, header, limiter=work["limiter"]
                )
        except ProtocolError as exc:
            return _error(exc)
        return JSONResponse({"model_name": name, "model_version": VERSION, **result})

    for path in ("/models/{model}", "/models/{model}/versions/{version}"):
        routes.add_api_route(path, model_metadata, methods=["GET"], summary="Model metadata")
        routes.add_api_route(f"{path}/ready", model_ready, methods=["GET"], summary="Model ready")
        routes.add_api_route(
            f"{path}/infer",
            infer,
            methods=["POST"],
            summary=f"Read digits: one input {INPUT!r}, UINT8 0..255 or FP32 0..1, {SHAPES}",
            openapi_extra={"requestBody": INFER_BODY},
        )
    return routes


def _error(exc: ProtocolError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


def answer(classifier: Classifier, body: bytes, binary_header: str | None = None) -> dict:
    """The response's `id` and `outputs` for an inference request's body."""
    request_id, images, wanted = parse_request(body, binary_header)
    if len(images):
        probabilities = classifier.probabilities(images).astype(np.float32)
    else:
        probabilities = np.zeros((0, 10), np.float32)
    # The last of equal maxima, as `Classifier.predict_arrays` picks (a stable sort, reversed).
    digits = 9 - np.argmax(probabilities[:, ::-1], axis=1)
    tensors = {"probabilities": probabilities, "digit": digits.astype(np.int64)}
    outputs = [
        {
            "name": output,
            "datatype": OUTPUTS[output][0],
            "shape": list(tensors[output].shape),
            "data": tensors[output].ravel().tolist(),
        }
        for output in wanted
    ]
    return (
        {"id": request_id, "outputs": outputs} if request_id is not None else {"outputs": outputs}
    )


def parse_request(
    body: bytes, binary_header: str | None = None
) -> tuple[str | None, np.ndarray, list[str]]:
    """(id, uint8 digits (N, 28, 28), output names) of an inference request, or a 400.

    With Triton's `Inference-Header-Content-Length`, the JSON is that many bytes and the
    input's data follows it raw (`parameters.binary_data_size`), as `tritonclient` sends it.
    """
    raw = b""
    if binary_header is not None:
        try:
            length = int(binary_header)
        except ValueError:
            raise ProtocolError(400, "Inference-Header-Content-Length is not a number") from None
        if not 0 <= length <= len(body):
            raise ProtocolError(400, f"Inference-Header-Content-Length {length} is not in the body")
        body, raw = body[:length], body[length:]
    if not body:
        raise ProtocolError(400, 'the request body is empty; send {"inputs": [...]} as JSON')
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(400, f"malformed JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise ProtocolError(400, 'the request must be a JSON object {"inputs": [...]}')
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(400, '"id" must be a string')
    if not isinstance(payload.get("parameters", {}), dict):
        raise ProtocolError(400, '"parameters" must be an object')
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ProtocolError(400, f'"inputs" must hold one tensor, {INPUT!r}')
    return request_id, digits_of(inputs[0], raw), wanted_outputs(payload.get("outputs"))


def digits_of(tensor: dict, raw: bytes = b"") -> np.ndarray:
    """The uint8 digits (N, 28, 28) of the request's input tensor, or a 400 saying why not."""
    if tensor.get("name") != INPUT:
        raise ProtocolError(400, f"unknown input {tensor.get('name')!r}; the model's is {INPUT!r}")
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or datatype not in DTYPES:
        raise ProtocolError(
            400, f"datatype {datatype!r} is not taken: send UINT8 (0..255) or FP32 (0..1)"
        )
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        or shape[1:] not in ([SIDE, SIDE], [SIDE, SIDE, 1], [SIDE * SIDE])
    ):
        raise ProtocolError(400, f"shape {shape} is not taken: send {SHAPES}")
    size = math.prod(shape)
    parameters = tensor.get("parameters") or {}
    if isinstance(parameters, dict) and "binary_data_size" in parameters:
        array = _binary(parameters["binary_data_size"], raw, DTYPES[datatype], size)
    elif "data" not in tensor:
        raise ProtocolError(400, f'the input {INPUT!r} has no "data"')
    else:
        array = _numbers(tensor["data"], shape, size)
    if not np.isfinite(array).all():
        raise ProtocolError(400, "the data holds NaN or infinity")
    if datatype == "UINT8":
        if array.size and (array.min() < 0 or array.max() > 255 or (array != np.rint(array)).any()):
            raise ProtocolError(400, "UINT8 data must be whole numbers in 0..255")
        pixels = array.astype(np.uint8)
    else:
        if array.size and (array.min() < 0 or array.max() > 1):
            raise ProtocolError(400, "FP32 data must be in 0..1 (ink 1); send 0..255 as UINT8")
        pixels = np.rint(array.astype(np.float32) * np.float32(255)).astype(np.uint8)
    return pixels.reshape(shape[0], SIDE, SIDE)


def _numbers(data, shape: list[int], size: int) -> np.ndarray:
    """JSON `data`, flat or nested in the tensor's shape, as numbers in that shape."""
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        array = None  # ragged, or too deep for NumPy
    if array is None or array.dtype.kind not in "iuf":
        raise ProtocolError(400, f"the data must be numbers, flat or nested in the shape {shape}")
    if array.shape != tuple(shape) and not (array.ndim == 1 and array.size == size):
        raise ProtocolError(
            400,
            f"the data holds {array.size} numbers in {list(array.shape)}; shape {shape} says "
            f"{size}",
        )
    return array.reshape(shape)


def _binary(declared, raw: bytes, dtype: np.dtype, size: int) -> np.ndarray:
    """Raw little-endian data after the JSON header (Triton's binary tensor data)."""
    if not isinstance(declared, int) or isinstance(declared, bool) or declared != len(raw):
        raise ProtocolError(400, f"binary_data_size {declared!r}: the body holds {len(raw)} bytes")
    if declared != size * dtype.itemsize:
        raise ProtocolError(
            400, f"{declared} bytes of data; the shape needs {size * dtype.itemsize}"
        )
    return np.frombuffer(raw, dtype).astype(np.float64)


def wanted_outputs(requested) -> list[str]:
    """The output names a request asks for, in its order (all of them when it names none)."""
    if requested is None or requested == []:  # none named: all of them, as the spec says
        return list(OUTPUTS)
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise ProtocolError(400, '"outputs" must be a list of {"name": ...}')
    names = [o.get("name") for o in requested]
    for output in names:
        if not isinstance(output, str) or output not in OUTPUTS:
            raise ProtocolError(
                400, f"unknown output {output!r}; the model's are {', '.join(OUTPUTS)}"
            )
    return list(dict.fromkeys(names))
