"""The Open Inference Protocol (KServe V2 REST) on `mnist-cnn serve`, spoken by a real client
of it: Triton's `tritonclient.http`, as anyone with a V2 client would call us. Its answers
must be `mnist-cnn predict`'s, and every bad request the protocol's `{"error"}` and a 4xx.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import tritonclient.http as tritonclient_http
from conftest import run_cli, running_server
from tritonclient.utils import InferenceServerException

# Test digits the small models often get wrong (ambiguous 4/9, 3/5, 7/1 ...), then ordinary
# ones: agreeing with `predict` must hold where the model is unsure, not only where it is easy.
HARD = [247, 321, 340, 445, 449, 582, 659, 684, 720, 947, 1014, 1039, 1182, 1226, 1232, 1242,
        1247, 1260, 1319, 1326, 1393, 1500, 1527, 1530, 1549, 1621, 1681, 1709, 1901, 2035,
        2070, 2130, 2135, 2182, 2293, 2387, 2414, 2447, 2462, 2597, 2654, 2896, 2939, 2953,
        3060, 3422, 3520, 3558, 3597, 3767]  # fmt: skip
INDICES = HARD + list(range(50))


def client(url: str):
    return tritonclient_http.InferenceServerClient(url=url.removeprefix("http://"))


def digits_input(images: np.ndarray, datatype: str, binary: bool = False):
    tensor = tritonclient_http.InferInput("images", list(images.shape), datatype)
    tensor.set_data_from_numpy(images, binary_data=binary)
    return tensor


@pytest.fixture(scope="module")
def digits(mnist) -> tuple[np.ndarray, np.ndarray]:
    _, (x_test, y_test) = mnist
    return x_test[INDICES], y_test[INDICES]


@pytest.fixture(scope="module")
def predicted(fast_run, tmp_path_factory) -> list[dict]:
    """`mnist-cnn predict RUN --index ...` for the same 100 digits: the answers to agree with."""
    args = [arg for i in INDICES for arg in ("--index", str(i))]
    out = tmp_path_factory.mktemp("predict")
    result = run_cli("predict", fast_run, *args, "--json", "--out", str(out))
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["index"] for a in answers] == INDICES
    return answers


def test_server_metadata_and_health(server):
    triton = client(server)
    assert triton.is_server_live() and triton.is_server_ready()
    metadata = triton.get_server_metadata()
    assert metadata["name"] == "mnist-cnn" and metadata["extensions"] == []
    assert metadata["version"] == httpx.get(f"{server}/api/model").json()["versions"]["mnist_cnn"]
    assert httpx.get(f"{server}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{server}/v2/").json() == metadata  # the spec's YAML writes /v2/


def test_model_metadata_and_readiness(server):
    triton = client(server)
    metadata = triton.get_model_metadata("fast")
    assert metadata == {
        "name": "fast",
        "versions": ["1"],
        "platform": "keras_keras",
        "inputs": [{"name": "images", "datatype": "UINT8", "shape": [-1, 28, 28]}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
            {"name": "digit", "datatype": "INT64", "shape": [-1]},
        ],
    }
    assert triton.get_model_metadata("fast", model_version="1") == metadata
    assert triton.is_model_ready("fast") and triton.is_model_ready("fast", "1")
    assert httpx.get(f"{server}/v2/models/fast/ready").json() == {"name": "fast", "ready": True}
    assert not triton.is_model_ready("slow") and not triton.is_model_ready("fast", "2")


def test_a_uint8_batch_gets_predicts_answers(server, digits, predicted):
    images, labels = digits
    result = client(server).infer("fast", [digits_input(images, "UINT8")], request_id="batch-1")
    assert result.get_response()["id"] == "batch-1"
    assert result.get_response()["model_name"] == "fast"
    found, probabilities = result.as_numpy("digit"), result.as_numpy("probabilities")
    assert found.dtype == np.int64 and found.shape == (100,)
    assert probabilities.dtype == np.float32 and probabilities.shape == (100, 10)
    assert found.tolist() == [a["digit"] for a in predicted]
    np.testing.assert_allclose(
        probabilities.max(axis=1), [a["confidence"] for a in predicted], atol=1e-5
    )
    assert (found == labels).mean() >= 0.5  # the hard half is hard, yet most are read


@pytest.mark.parametrize(
    "shape, binary",
    [((100, 784), False), ((100, 28, 28, 1), False), ((100, 28, 28), True)],
    ids=["flat-784", "nhwc", "binary-data"],
)
def test_fp32_batches_get_the_same_answers(server, digits, predicted, shape, binary):
    """0..1 floats (as tutorials scale), in every shape we take, in JSON or Triton's binary."""
    images = (digits[0] / 255).astype(np.float32).reshape(shape)
    result = client(server).infer("fast", [digits_input(images, "FP32", binary)])
    assert result.as_numpy("digit").tolist() == [a["digit"] for a in predicted]


def test_a_raw_request_nested_data_and_chosen_outputs(server, digits, predicted):
    """What a plain HTTP client sees: the response's exact fields, data nested as the shape."""
    images = digits[0][:3]
    request = {
        "id": "42",
        "inputs": [
            {"name": "images", "shape": [3, 28, 28], "datatype": "UINT8", "data": images.tolist()}
        ],  # fmt: skip
        "outputs": [{"name": "digit"}],
    }
    response = httpx.post(f"{server}/v2/models/fast/versions/1/infer", json=request)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "model_name": "fast",
        "model_version": "1",
        "id": "42",
        "outputs": [
            {
                "name": "digit",
                "datatype": "INT64",
                "shape": [3],
                "data": [a["digit"] for a in predicted[:3]],
            }
        ],
    }


GOOD = {"name": "images", "shape": [1, 784], "datatype": "UINT8", "data": [0] * 784}
BAD_REQUESTS = {
    "wrong shape": {"inputs": [{**GOOD, "shape": [1, 28]}]},
    "shape and data disagree": {"inputs": [{**GOOD, "shape": [2, 784]}]},
    "wrong datatype": {"inputs": [{**GOOD, "datatype": "INT32"}]},
    "uint8 out of range": {"inputs": [{**GOOD, "data": [256] * 784}]},
    "fp32 past 1": {"inputs": [{**GOOD, "datatype": "FP32", "data": [255.0] * 784}]},
    "strings": {"inputs": [{**GOOD, "data": ["0"] * 784}]},
    "unknown input": {"inputs": [{**GOOD, "name": "pixels"}]},
    "two inputs": {"inputs": [GOOD, GOOD]},
    "unknown output": {"inputs": [GOOD], "outputs": [{"name": "logits"}]},
    "id not a string": {"id": 7, "inputs": [GOOD]},
    "not the protocol": {"pixels": [[0] * 28] * 28},
}


@pytest.mark.parametrize("body", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_requests_get_400_and_an_error(server, body):
    response = httpx.post(f"{server}/v2/models/fast/infer", json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and response.json()["error"]


def test_errors_reach_the_client(server, digits):
    """The protocol client raises with our status and message; 404 for an unknown model."""
    triton = client(server)
    with pytest.raises(InferenceServerException) as wrong:
        triton.infer("fast", [digits_input(digits[0][:, :14], "UINT8")])
    assert wrong.value.status() == "400" and "shape [100, 14, 28]" in wrong.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        triton.infer("slow", [digits_input(digits[0], "UINT8")])
    assert unknown.value.status() == "404" and "'fast'" in unknown.value.message()
    for path in ("/v2/models/slow", "/v2/models/fast/versions/2/infer"):
        response = httpx.request("POST" if path.endswith("infer") else "GET", f"{server}{path}")
        assert response.status_code == 404 and set(response.json()) == {"error"}
    garbage = httpx.post(f"{server}/v2/models/fast/infer", content=b"{not json")
    assert garbage.status_code == 400 and "malformed JSON" in garbage.json()["error"]


def test_model_name_and_body_cap(fast_run, digits, tmp_path):
    """`serve --model-name` renames the model in /v2; `--max-body-mb` caps V2 bodies too."""
    with running_server(fast_run, "--model-name", "digits", "--max-body-mb", "0.05") as url:
        triton = client(url)
        assert triton.get_model_metadata("digits")["name"] == "digits"
        assert not triton.is_model_ready("fast")
        five = triton.infer("digits", [digits_input(digits[0][:5], "UINT8")])
        assert five.get_response()["model_name"] == "digits" and len(five.as_numpy("digit")) == 5
        with pytest.raises(InferenceServerException) as large:  # 100 digits: ~250 kB of JSON
            triton.infer("digits", [digits_input(digits[0], "UINT8")])
        assert large.value.status() == "413" and "cap" in large.value.message()
        assert triton.is_server_live()  # and still serving
    result = run_cli("serve", fast_run, "--model-name", "a/b")
    assert result.returncode == 2 and "--model-name" in result.stderr
