"""`mnist-cnn export`: ONNX, SavedModel and TFLite, each checked for parity with Keras."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import error_lines, last_json, run_cli, running_server

from mnist_cnn.backend import import_keras

import_keras()

from mnist_cnn.data import datasets, sources  # noqa: E402
from mnist_cnn.inference import export  # noqa: E402
from mnist_cnn.inference.classifier import Classifier  # noqa: E402
from mnist_cnn.models import loading  # noqa: E402

EXAMPLES = Path(__file__).parents[1] / "src" / "mnist_cnn" / "samples"


@pytest.fixture(scope="module")
def exports(fast_run) -> dict[str, dict]:
    done = {}
    for fmt in ("onnx", "saved_model", "tflite"):
        result = run_cli("export", fast_run, "--format", fmt, "--json")
        assert result.returncode == 0, result.stderr
        done[fmt] = last_json(result.stdout)
    return done


@pytest.mark.parametrize("fmt", ["onnx", "saved_model", "tflite"])
def test_export_passes_its_parity_check(exports, fast_run, fmt):
    report = exports[fmt]
    parity = report["parity"]
    assert parity["ok"] and parity["digits"] == 1000
    assert parity["max_difference"] <= 1e-4 and parity["disagreements"] == 0
    expected = {"onnx": "model.onnx", "saved_model": "saved_model", "tflite": "model.tflite"}
    assert Path(report["path"]) == Path(fast_run) / expected[fmt]
    assert Path(report["path"]).exists()
    # fast trains in float32: its export is checked against the model itself, nothing else
    assert parity["trained_max_difference"] is None and parity["trained_disagreements"] is None


def test_a_mixed_precision_model_exports_its_float32_twin(tmp_path):
    """Trained in mixed bfloat16 (as best is), the export is built from a float32 twin of the
    same weights, checked against that twin, and says how far it is from the model as trained."""
    trained = run_cli(
        "train",
        "fast",
        "--precision",
        "mixed_bfloat16",
        "--limit",
        "6000",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert trained.returncode == 0, trained.stderr
    result = run_cli("export", last_json(trained.stdout)["run_dir"], "--format", "onnx", "--json")
    assert result.returncode == 0, result.stderr
    parity = last_json(result.stdout)["parity"]
    assert parity["ok"] and parity["max_difference"] <= 1e-4 and parity["disagreements"] == 0
    assert 0 < parity["trained_max_difference"] < 0.05 and parity["trained_disagreements"] <= 5


def test_onnx_classifier_agrees_with_keras(exports, fast_run, mnist):
    _, (x_test, y_test) = mnist
    onnx = Classifier(exports["onnx"]["path"])
    keras_model = Classifier(fast_run)
    assert onnx.model is None  # ONNX Runtime, not Keras
    assert onnx.temperature == keras_model.temperature  # the run's calibration applies too
    a, b = onnx.probabilities(x_test), keras_model.probabilities(x_test)
    assert (a.argmax(1) != b.argmax(1)).sum() <= 5  # two runtimes' float32 round-off
    assert (a.argmax(1) == y_test).mean() >= 0.985


def test_onnx_predict_needs_no_tensorflow(exports, tmp_path):
    # A `tensorflow` (and `keras`) that cannot be imported: the command must not need them.
    for name in ("tensorflow", "keras"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    image = str(EXAMPLES / "photo-of-a-9.jpg")
    result = run_cli("predict", exports["onnx"]["path"], image, "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert last_json(result.stdout)["digit"] == 9
    broken = run_cli("predict", str(Path(exports["onnx"]["path"]).parent), image, env=env)
    assert broken.returncode != 0  # the same environment really has no TensorFlow


def test_serving_the_onnx_model(exports, mnist):
    with running_server(exports["onnx"]["path"]) as url:
        info = httpx.get(f"{url}/api/model").json()
        assert info["runtime"] == "onnxruntime" and info["name"] == "fast"
        pixels = mnist[1][0][0].tolist()
        assert httpx.post(f"{url}/api/predict", json={"pixels": pixels}).json()["digit"] == 7


def test_a_broken_export_fails_loudly_and_writes_nothing(fast_run, tmp_path, monkeypatch):
    real = export.runner

    def off_by_a_little(path, fmt):
        run = real(path, fmt)
        return lambda x: run(x) + np.float32(1e-3)

    monkeypatch.setattr(export, "runner", off_by_a_little)
    target = tmp_path / "broken.onnx"
    with pytest.raises(export.ExportError, match="does not match the Keras model"):
        export.export_model(fast_run, "onnx", target)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_export_of_a_missing_run_is_a_clear_error(tmp_path):
    result = run_cli("export", str(tmp_path / "nothing"), "--format", "onnx")
    assert result.returncode == 2
    assert "does not exist" in result.stderr and len(error_lines(result.stderr)) == 1


def test_float32_copy_keeps_the_weights(fast_run):
    from mnist_cnn.models.loading import with_precision

    model = loading.load_model(fast_run)
    copy = with_precision(model, "float32")
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    for a, b in zip(model.get_weights(), copy.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    digits = datasets.normalise(sources.load_dataset("mnist")[1][0][:200])
    np.testing.assert_allclose(
        copy.predict(digits, verbose=0), model.predict(digits, verbose=0), atol=0.02
    )
