"""Fuzzing with hypothesis: random and mutated bytes into every parser of outside input.

Only the project's own error types may escape (never a crash, never a hang). At least 200
examples per target in `make test`; more with FUZZ_EXAMPLES=5000 make test.
"""

from __future__ import annotations

import io
import json
import os
import struct

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_cnn import rundir
from mnist_cnn.data import datasets, imaging
from mnist_cnn.server import v2
from mnist_cnn.server.app import RequestError, pixels_of

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=5000,  # ms per example: a hang fails the test
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run (reproducible CI)
)


def _idx(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    buffer.write(struct.pack(">HBB", 0, 0x08, array.ndim))
    buffer.write(struct.pack(f">{array.ndim}I", *array.shape))
    buffer.write(array.astype(np.uint8).tobytes())
    return buffer.getvalue()


def _encoded(fmt: str) -> bytes:
    image = np.full((40, 40), 255, np.uint8)
    image[10:30, 18:22] = 0  # a "1"
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt)
    return buffer.getvalue()


VALID_IDX = _idx(np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256)
VALID_IMAGES = [_encoded("PNG"), _encoded("JPEG"), _encoded("BMP"), _encoded("GIF")]


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A valid file with bytes flipped, cut short, or with junk spliced in."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "header"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:  # the header decides sizes and types: hit it on purpose
            data[draw(st.integers(0, min(16, len(data) - 1)))] = draw(st.integers(0, 255))
    return bytes(data)


@FUZZ
@given(st.one_of(st.binary(max_size=64), mutated([VALID_IDX])))
def test_idx_reader(data):
    try:
        array = datasets.parse_idx(data, "fuzz")
    except datasets.DatasetError:
        return
    assert isinstance(array, np.ndarray)


@FUZZ
@given(st.one_of(st.binary(max_size=256), mutated(VALID_IMAGES)))
def test_image_preprocessing(data):
    try:
        prepared = imaging.to_mnist(data, "fuzz")
    except imaging.ImageError:
        return
    assert prepared.image.shape == (28, 28) and prepared.image.dtype == np.uint8


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=60,
)


@st.composite
def pixel_bodies(draw):
    """Mostly well-formed 28x28 grids with a few wrong cells, rows or types; or anything."""
    if draw(st.booleans()):
        return draw(JSON_VALUES)
    rows = [[draw(st.integers(0, 255)) for _ in range(28)] for _ in range(28)]
    for _ in range(draw(st.integers(0, 3))):
        r = draw(st.integers(0, 27))
        rows[r][draw(st.integers(0, 27))] = draw(JSON_VALUES)
    if draw(st.booleans()):
        rows = rows[: draw(st.integers(0, 28))]
    return {"pixels": rows}


@FUZZ
@given(pixel_bodies())
def test_json_pixels(payload):
    try:
        pixels = pixels_of(payload)
    except RequestError as exc:
        assert 400 <= exc.status < 500
        return
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        pixel_bodies().map(lambda p: json.dumps(p, allow_nan=True).encode()),
    ),
    st.sampled_from(["application/json", "multipart/form-data; boundary=x", "image/png", ""]),
)
def test_predict_endpoint_over_http(server, body, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = httpx.post(f"{server}/api/predict", content=body, headers=headers, timeout=30)
    assert response.status_code in (200, 400, 413, 415, 422), response.text
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code != 200:
        assert response.json()["error"]


@st.composite
def v2_bodies(draw):
    """Open Inference Protocol requests, mostly well-formed with a few wrong parts; or anything."""
    if draw(st.integers(0, 3)) == 0:
        return draw(JSON_VALUES)
    n = draw(st.integers(0, 2))
    shape = draw(st.sampled_from([[n, 28, 28], [n, 28, 28, 1], [n, 784]]))
    fill = draw(st.sampled_from([0, 255, 0.5, 1.0]))
    data = [fill] * (n * 784)
    for _ in range(draw(st.integers(0, 3)) if data else 0):
        data[draw(st.integers(0, len(data) - 1))] = draw(JSON_VALUES)
    if data and draw(st.booleans()):  # nested as the shape, as the protocol allows
        data = np.asarray(data, dtype=object).reshape(shape).tolist()
    tensor = {
        "name": "images",
        "shape": shape,
        "datatype": draw(st.sampled_from(["UINT8", "FP32", "INT64", "BYTES"])),
        "data": data,
    }
    for _ in range(draw(st.integers(0, 2))):
        tensor[draw(st.sampled_from([*tensor, "parameters"]))] = draw(JSON_VALUES)
    body = {"inputs": [tensor]}
    for key in draw(st.lists(st.sampled_from(["id", "outputs", "parameters", "inputs"]))):
        body[key] = draw(JSON_VALUES)
    return body


@FUZZ
@given(v2_bodies(), st.sampled_from(["json", "binary", "header"]), st.text(max_size=6))
def test_v2_request_parser(payload, kind, header):
    """JSON data; Triton's binary data (JSON, then raw bytes); or a wrong length header."""
    body = json.dumps(payload, allow_nan=True).encode()
    binary_header = None if kind == "json" else str(len(body)) if kind == "binary" else header
    if kind != "json":
        body += b"\x00\x7f" * 392  # one digit of raw UINT8, or 196 FP32 numbers
    try:
        request_id, digits, wanted = v2.parse_request(body, binary_header)
    except v2.ProtocolError as exc:
        assert exc.status == 400 and str(exc)
        return
    assert digits.dtype == np.uint8 and digits.shape[1:] == (28, 28)
    assert request_id is None or isinstance(request_id, str)
    assert wanted and set(wanted) <= set(v2.OUTPUTS)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        v2_bodies().map(lambda p: json.dumps(p, allow_nan=True).encode()),
    ),
    st.sampled_from(["/v2/models/fast/infer", "/v2/models/fast/versions/1/infer"]),
)
def test_v2_infer_over_http(server, body, path):
    response = httpx.post(f"{server}{path}", content=body, timeout=30)
    assert response.status_code in (200, 400, 413), response.text
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code != 200:
        assert set(response.json()) == {"error"} and response.json()["error"]
    else:
        assert response.json()["model_name"] == "fast"


def test_the_server_survived_the_fuzzing(server):
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}


RUN_CONFIG = {
    "model": "conv28-dense128",
    "settings": {
        "epochs": 1,
        "batch_size": 32,
        "validation_split": 0.1,
        "loss": "sparse",
        "optimizer": "adam",
        "learning_rate": 0.001,
        "schedule": "constant",
        "warmup": 0.0,
        "steps_per_execution": 1,
        "label_smoothing": 0.0,
        "precision": "float32",
        "select_best": False,
        "augmentation": None,
        "seed": 42,
        "dataset": "mnist",
        "limit": None,
        "ensemble": 1,
        "mix_mnist": 0,
    },
}


@st.composite
def run_configs(draw) -> bytes:
    """config.json as a run leaves it, with values replaced or removed; or random bytes."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(st.binary(max_size=100))
    config = json.loads(json.dumps(RUN_CONFIG))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*config["settings"], "model"]))
        target = config if key == "model" else config["settings"]
        if draw(st.booleans()):
            target[key] = draw(JSON_VALUES)
        else:
            target.pop(key, None)
    text = json.dumps(config)
    return text.encode() if choice == 1 else draw(mutated([text.encode()]))


@pytest.fixture(scope="module")
def training_loaded():
    """The training package, imported once before the examples: importing it loads Keras
    (seconds), which is no part of any one example's time."""
    import mnist_cnn.training

    return mnist_cnn.training


@FUZZ
@given(run_configs())
def test_run_config_loader(training_loaded, tmp_path_factory, data):
    config_from_run = training_loaded.config_from_run
    run = tmp_path_factory.mktemp("run")
    (run / "config.json").write_bytes(data)
    try:
        config, settings_ = config_from_run(run)
    except rundir.RunError as exc:
        assert str(exc).count("\n") == 0
        return
    assert config.epochs == settings_["epochs"] and config.model == RUN_CONFIG["model"]


def test_a_run_recorded_before_a_new_strength_resumes(training_loaded, tmp_path):
    """A run's config.json from before `clip` existed (its augmentation without the key)
    resumes with the strengths it recorded."""
    strengths = dict.fromkeys(("zoom", "shift", "shear", "aspect", "stroke", "erase"), 0.0)
    recorded = {**RUN_CONFIG, "settings": {**RUN_CONFIG["settings"]}}
    recorded["settings"]["augmentation"] = {**strengths, "rotation": 10.0}
    (tmp_path / "config.json").write_text(json.dumps(recorded))
    _, settings = training_loaded.config_from_run(tmp_path)
    assert settings["augmentation"] == {**strengths, "rotation": 10.0}


@pytest.mark.parametrize("data", [b"", b"\x00" * 4, VALID_IDX[:10]])
def test_idx_regressions(data):
    with pytest.raises(datasets.DatasetError):
        datasets.parse_idx(data, "fuzz")
