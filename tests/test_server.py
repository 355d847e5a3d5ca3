"""The HTTP API over real HTTP: `mnist-cnn serve` on 127.0.0.1, driven with httpx."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import running_server
from PIL import Image

EXAMPLES = Path(__file__).parents[1] / "src" / "mnist_cnn" / "samples"
FIVE_MB = 5 * 1024 * 1024


def on_paper(digit: np.ndarray, fmt: str, scale: int = 5) -> bytes:
    """An MNIST digit as dark ink on white paper, enlarged, encoded as PNG or JPEG."""
    image = Image.fromarray(255 - digit).resize((28 * scale, 28 * scale), Image.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def first_of_each_digit(mnist) -> list[tuple[np.ndarray, int]]:
    _, (x_test, y_test) = mnist
    return [(x_test[int(np.argmax(y_test == d))], d) for d in range(10)]


def post_file(url: str, data: bytes, name: str, mime: str, **params) -> httpx.Response:
    return httpx.post(f"{url}/api/predict", files={"file": (name, data, mime)}, params=params)


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_uploaded_images_get_the_right_digit(server, mnist, fmt, mime):
    for digit, label in first_of_each_digit(mnist):
        response = post_file(server, on_paper(digit, fmt), f"{label}.{fmt.lower()}", mime)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["digit"] == label
        assert set(body) >= {"digit", "confidence", "probabilities", "unsure"}
        assert body["confidence"] == pytest.approx(max(body["probabilities"]))
        assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        assert np.array(body["image"]).shape == (28, 28)


def test_json_pixels_get_the_right_digit(server, mnist):
    for digit, label in first_of_each_digit(mnist):
        response = httpx.post(f"{server}/api/predict", json={"pixels": digit.tolist()})
        assert response.status_code == 200, response.text
        assert response.json()["digit"] == label
    floats = (mnist[1][0][0] / 1.0).tolist()  # numbers, not only integers
    assert httpx.post(f"{server}/api/predict", json={"pixels": floats}).json()["digit"] == 7


def test_multi_reads_a_number(server):
    data = (EXAMPLES / "number-961458.png").read_bytes()
    response = post_file(server, data, "number.png", "image/png", multi=1)
    assert response.status_code == 200, response.text
    assert response.json()["number"] == "961458"
    assert len(response.json()["digits"]) == 6


def test_model_endpoint_reports_the_run(server, fast_run):
    info = httpx.get(f"{server}/api/model").json()
    metrics = json.loads((Path(fast_run) / "metrics.json").read_text())
    assert info["name"] == "fast"
    assert info["test_accuracy"] == metrics["test_accuracy"]
    assert info["versions"]["keras"] and info["versions"]["backend"] == "tensorflow"


def test_docs_and_openapi(server):
    assert "swagger" in httpx.get(f"{server}/docs").text.lower()
    schema = httpx.get(f"{server}/openapi.json").json()
    body = schema["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}


def _pixels(value) -> str:
    rows = [[0] * 28 for _ in range(28)]
    rows[5][7] = value
    return json.dumps({"pixels": rows})


BAD_REQUESTS = {
    # name: (content type, body, expected status, words the message must contain)
    "malformed JSON": ("application/json", b'{"pixels": [[1, 2', 400, "malformed JSON"),
    "JSON without pixels": ("application/json", b'{"image": []}', 422, '"pixels" field'),
    "wrong shape": ("application/json", json.dumps({"pixels": [[0] * 28] * 27}), 422, "27 row"),
    "short row": ("application/json", json.dumps({"pixels": [[0] * 27] * 28}), 422, "row 0"),
    "value too big": ("application/json", _pixels(256), 422, '"pixels"[5][7] is 256'),
    "negative value": ("application/json", _pixels(-1), 422, "outside 0..255"),
    "not a number": ("application/json", _pixels("a"), 422, "not a number"),
    "boolean": ("application/json", _pixels(True), 422, "not a number"),
    "blank pixels": ("application/json", _pixels(0), 422, "no digit"),
    "empty body": ("application/json", b"", 400, "body is empty"),
    "empty body, no type": (None, b"", 400, "body is empty"),
    "unsupported media type": ("text/plain", b"a seven", 415, "unsupported media type"),
    "broken multipart": ("multipart/form-data; boundary=xyz", b"--xyz\r\nbad", 422, "field 'file'"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_a_clear_4xx(server, case):
    content_type, body, status, words = BAD_REQUESTS[case]
    headers = {"content-type": content_type} if content_type else {}
    response = httpx.post(f"{server}/api/predict", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


BAD_UPLOADS = {
    "not an image": (b"%PDF-1.4 this is a document", "doc.pdf", 422, "doc.pdf"),
    "empty file": (b"", "empty.png", 400, "empty"),
    "blank white image": (None, "white.png", 422, "no digit"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_uploads_get_a_clear_4xx(server, case):
    data, name, status, words = BAD_UPLOADS[case]
    if data is None:
        buffer = io.BytesIO()
        Image.new("L", (100, 100), 255).save(buffer, "PNG")
        data = buffer.getvalue()
    response = post_file(server, data, name, "application/octet-stream")
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_multipart_without_the_file_field(server):
    response = httpx.post(f"{server}/api/predict", files={"image": ("a.png", b"x", "image/png")})
    assert response.status_code == 422
    assert "field 'file'" in response.json()["error"]


def test_oversized_bodies_are_refused_with_413(server):
    big = b"\0" * (FIVE_MB + 1)
    response = post_file(server, big, "big.png", "image/png")
    assert response.status_code == 413
    assert "5,242,880-byte cap" in response.json()["error"]

    def chunks():  # no Content-Length: the cap must hold while the body streams
        for _ in range(12):
            yield b"\0" * (1024 * 1024)

    streamed = httpx.post(
        f"{server}/api/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert "cap" in streamed.json()["error"]


def test_unknown_paths_and_methods(server):
    missing = httpx.get(f"{server}/api/nothing")
    assert missing.status_code == 404 and "/api/nothing" in missing.json()["error"]
    assert httpx.get(f"{server}/api/predict").status_code == 405
    assert httpx.post(f"{server}/api/predict?multi=maybe", json={}).status_code == 422


def test_server_still_answers_after_everything(server, mnist):
    """Run after the bad requests (file order): the worker is alive and still right."""
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    cases = first_of_each_digit(mnist) * 3
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda case: post_file(server, on_paper(case[0], "PNG"), "d.png", "image/png"),
                cases,
            )
        )
    assert [a.json()["digit"] for a in answers] == [label for _, label in cases]


def test_the_cap_is_configurable(fast_run, mnist):
    small = on_paper(mnist[1][0][0], "PNG", scale=2)
    with running_server(fast_run, "--max-body-mb", "0.01") as url:  # 10,485 bytes
        assert post_file(url, small, "7.png", "image/png").json()["digit"] == 7
        refused = post_file(url, b"\0" * 20_000, "big.png", "image/png")
        assert refused.status_code == 413 and "10,485-byte cap" in refused.json()["error"]


def test_two_worker_processes_share_the_port_and_stop_together(fast_run, mnist):
    digit = on_paper(mnist[1][0][0], "PNG")
    with running_server(fast_run, "--workers", "2") as url:
        port = int(url.rsplit(":", 1)[1])
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda _: post_file(url, digit, "7.png", "image/png"), range(32))
            )
        assert [a.json()["digit"] for a in answers] == [7] * 32
    # After the parent was terminated, no worker still holds the port.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
