"""The first hour (issue 26): what a newcomer trips on, each checked the way they meet it.

One rule for "not sure"; the 0..1 pixels that `x / 255` gives; the run `serve` picks; a
/docs page that works offline; bad names refused before Keras loads; a line before each
wait; no leftovers, no third-party noise; `--debug` after the command; Ctrl-C's count.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import COMMAND, error_lines, last_json, run_cli, said_before_waits
from PIL import Image

# --- one rule for "not sure" ------------------------------------------------------------------


def test_predict_serve_and_the_page_share_one_min_confidence():
    from mnist_cnn.cli.main import build_parser
    from mnist_cnn.inference import MIN_CONFIDENCE
    from mnist_cnn.inference.classifier import Classifier, answer
    from mnist_cnn.server.app import serve

    parser = build_parser()
    predict = parser.parse_args(["predict", "run", "digit.png"]).min_confidence
    served = parser.parse_args(["serve"]).min_confidence
    library = [
        inspect.signature(f).parameters["min_confidence"].default
        for f in (Classifier.__init__, answer, serve)
    ]
    assert predict == served == MIN_CONFIDENCE == 0.6
    assert library == [MIN_CONFIDENCE] * 3


def _png(pixels: np.ndarray, path: Path) -> Path:
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def test_an_unsure_answer_says_so_in_text_and_json(fast_run, mnist, tmp_path):
    """A test digit the model is torn about, read with predict's default: marked unsure."""
    from mnist_cnn.inference.classifier import Classifier

    _, (x_test, _) = mnist
    confidence = Classifier(fast_run).probabilities(x_test[:3000]).max(axis=1)
    torn = int(np.argmin(confidence))
    assert confidence[torn] < 0.6
    image = _png(x_test[torn], tmp_path / "torn.png")
    shown = run_cli("predict", fast_run, str(image))
    assert shown.returncode == 0, shown.stderr
    assert "unsure" in shown.stdout
    as_json = last_json(run_cli("predict", fast_run, str(image), "--json").stdout)
    assert as_json["unsure"] is True


def _row_of_digits(x_test: np.ndarray, count: int) -> np.ndarray:
    """`count` MNIST digits side by side, dark ink on white paper, with gaps between."""
    gap = np.zeros((28, 10))
    pieces = [np.hstack([x_test[i], gap]) for i in range(count)]
    row = np.pad(np.hstack([gap, *pieces]), 12)
    return 255 - row


def test_a_row_of_digits_without_multi_says_to_use_multi(fast_run, mnist, tmp_path):
    _, (x_test, _) = mnist
    row = _png(_row_of_digits(x_test, 6), tmp_path / "row.png")
    one = _png(255 - np.pad(x_test[0], 20), tmp_path / "one.png")
    text = run_cli("predict", fast_run, str(row), str(one))
    assert text.returncode == 0, text.stderr
    row_line, one_line = text.stdout.strip().splitlines()
    assert "6 digits" in row_line and "--multi" in row_line
    assert "digits here" not in one_line and "unsure" not in one_line
    answers = [
        json.loads(line)
        for line in run_cli("predict", fast_run, str(row), str(one), "--json").stdout.splitlines()
    ]
    assert [(a["digits_seen"], a["unsure"]) for a in answers] == [(6, True), (1, False)]


def test_files_may_follow_the_flags(fast_run):
    """`predict RUN --multi FILE`, as people write it, not only `predict RUN FILE --multi`."""
    result = run_cli("predict", fast_run, "--multi", "samples:number-961458")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == "961458"
    refused = run_cli("predict", fast_run, "--multi", "--bogus", "x.png")
    assert refused.returncode == 2 and "unrecognized arguments: --bogus" in refused.stderr


# --- the HTTP API -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(fast_run):
    from fastapi.testclient import TestClient

    from mnist_cnn.inference.classifier import Classifier
    from mnist_cnn.server.app import create_app

    with TestClient(create_app(Classifier(fast_run))) as client:
        yield client


def test_pixels_scaled_0_to_1_read_as_the_same_digit(client, mnist):
    """`x / 255`, as every tutorial normalises, is the same picture as 0..255."""
    _, (x_test, y_test) = mnist
    for index in range(5):
        as_bytes = client.post("/api/predict", json={"pixels": x_test[index].tolist()})
        scaled = client.post("/api/predict", json={"pixels": (x_test[index] / 255).tolist()})
        assert scaled.status_code == 200, scaled.text
        assert scaled.json()["digit"] == as_bytes.json()["digit"] == y_test[index]
        assert np.allclose(scaled.json()["probabilities"], as_bytes.json()["probabilities"])


def test_the_api_says_a_row_of_digits_is_a_number(client, mnist):
    _, (x_test, _) = mnist
    buffer = io.BytesIO()
    Image.fromarray(_row_of_digits(x_test, 4).astype(np.uint8)).save(buffer, "PNG")
    files = {"file": ("row.png", buffer.getvalue(), "image/png")}
    body = client.post("/api/predict", files=files).json()
    assert body["unsure"] is True and body["digits_seen"] == 4 and "multi=1" in body["hint"]


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


def test_docs_load_nothing_from_other_hosts(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    links = _Links()
    links.feed(page.text)
    assert links.found and all(link.startswith("/") for link in links.found), links.found
    assert "cdn" not in page.text.lower()
    for link in links.found:
        assert client.get(link).status_code == 200, link


def _run(folder: Path, limit: int | None, age: float) -> Path:
    """A finished run as `serve` finds it: config.json and a model file of a given age."""
    folder.mkdir(parents=True)
    settings = {"limit": limit, "dataset": "mnist"}
    (folder / "config.json").write_text(json.dumps({"model": "fast", "settings": settings}))
    model = folder / "model.keras"
    model.write_bytes(b"")
    stamp = time.time() - age
    os.utime(model, (stamp, stamp))
    return folder


def test_serve_without_a_model_passes_over_quick_trials(tmp_path):
    from mnist_cnn import rundir

    full = _run(tmp_path / "runs" / "fast-1", None, age=600)
    _run(tmp_path / "runs" / "fast-2", 2000, age=60)
    assert rundir.run_to_serve(tmp_path / "runs") == (full, None)
    trial = _run(tmp_path / "only" / "fast-3", 2000, age=60)
    chosen, warning = rundir.run_to_serve(tmp_path / "only")
    assert chosen == trial and "2,000 training images" in warning and "--limit" in warning


# --- never slow to say no, never silent ---------------------------------------------------------

REFUSED = [
    (["models", "fsat"], "did you mean 'fast'"),
    (["train", "fsat"], "did you mean 'fast'"),
    (["train", "fast", "--limit", "0"], "--limit"),
    (["train", "fast", "--loss", "sparse", "--label-smoothing", "0.1"], "--label-smoothing"),
    (["predict", "no-such-run", "digit.png"], "no-such-run"),
    (["evaluate", "no-such-run"], "no-such-run"),
    (["export", "no-such-run", "--format", "onnx"], "no-such-run"),
    (["report", "no-such-run"], "no-such-run"),
    (["robustness", "no-such-run"], "no-such-run"),
]


@pytest.mark.parametrize(("argv", "named"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_a_bad_name_or_value_is_refused_in_under_a_second(argv, named, tmp_path):
    times = []
    for _ in range(3):  # the best of three: a busy machine only ever adds time
        started = time.perf_counter()
        result = run_cli(*argv, cwd=tmp_path)
        times.append(time.perf_counter() - started)
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()  # one line, and no "loading TensorFlow"
        assert named in line, line
    assert min(times) < 1.0, times


def test_a_command_says_what_it_waits_for_and_json_keeps_quiet():
    said = run_cli("models", "fast")
    assert said.returncode == 0, said.stderr
    assert said.stderr.splitlines() == ["mnist-cnn: loading TensorFlow ..."]
    quiet = run_cli("models", "fast", "--json")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_train_says_what_it_is_doing_before_each_wait(tmp_path):
    result = run_cli("train", "fast", "--limit", "500", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    waits = [line for line in result.stderr.splitlines() if said_before_waits(line)]
    assert waits[0] == "mnist-cnn: loading TensorFlow ..."
    assert "building fast" in waits[1] and "writing its report" in waits[-1]
    assert error_lines(result.stderr) == []


def test_building_the_robustness_suite_is_said_once(mnist, tmp_path, caplog):
    from mnist_cnn.reporting import robustness

    _, (x_test, y_test) = mnist
    caplog.set_level("INFO", logger="mnist_cnn")
    robustness.cached_suite(x_test[:200], y_test[:200], per_change=2, folder=tmp_path)
    robustness.cached_suite(x_test[:200], y_test[:200], per_change=2, folder=tmp_path)
    said = [r.getMessage() for r in caplog.records if "robustness suite" in r.getMessage()]
    assert len(said) == 1 and "once per machine" in said[0]


# --- no leftovers, no noise -------------------------------------------------------------------


def test_a_failed_download_leaves_no_folder(tmp_path):
    from mnist_cnn.data import datasets

    data = tmp_path / "data"
    with pytest.raises(datasets.DatasetError):
        datasets.ensure_dataset(
            "fashion-mnist", data, mirrors=["http://127.0.0.1:9/"], progress=False
        )
    assert not data.exists()


def test_the_embedded_ray_leaves_no_session_folder():
    pytest.importorskip("ray")
    # Ray keeps its sessions under $TMPDIR; a short one, for the length of its socket paths.
    folder = tempfile.mkdtemp(prefix="r", dir="/tmp")
    try:
        code = (
            "from mnist_cnn.scale import cluster\nwith cluster.connected(None) as c: print(c.nodes)"
        )
        env = {**os.environ, "TMPDIR": folder, "RAY_USAGE_STATS_ENABLED": "0"}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip() == "1"
        assert os.listdir(folder) == []
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_tflite_export_prints_no_third_party_lines(fast_run, tmp_path):
    result = run_cli("export", fast_run, "--format", "tflite", "--out", str(tmp_path / "m.tflite"))
    assert result.returncode == 0, result.stderr
    assert error_lines(result.stderr) == [], result.stderr
    assert (tmp_path / "m.tflite").is_file()


def test_the_python_api_prints_no_backend_noise():
    code = "import mnist_cnn.training, mnist_cnn.models.networks"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_debug_is_taken_after_the_command_too():
    from mnist_cnn.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["predict", "run", "digit.png", "--debug"]).debug is True
    assert parser.parse_args(["--debug", "models"]).debug is True
    assert parser.parse_args(["models"]).debug is False
    result = subprocess.run([COMMAND, "models", "fsat", "--debug"], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" in result.stderr


# --- Ctrl-C: the count agrees with what was printed -----------------------------------------


def _fit_until_ctrl_c(tmp_path, mnist, when: str):
    """A real fit of a small network, with Ctrl-C "pressed" (the flag SIGINT sets) in epoch 2:
    during its validation, or at its third step."""
    from mnist_cnn.backend import import_keras
    from mnist_cnn.training.callbacks import HistoryWriter, StopOnRequest, StopRequest

    keras = import_keras()
    (x_train, y_train), _ = mnist
    x, y = x_train[:1024, :, :, None] / 255.0, y_train[:1024]
    stop = StopRequest()

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_test_begin(self, logs=None):
            stop.requested |= when == "validation" and self.epoch == 1

        def on_train_batch_begin(self, batch, logs=None):
            stop.requested |= when == "step" and self.epoch == 1 and batch == 2

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    writer = HistoryWriter(tmp_path / "history.csv", stop, steps_path=tmp_path / "steps.csv")
    model.fit(
        x[:768],
        y[:768],
        batch_size=128,
        epochs=4,
        validation_data=(x[768:], y[768:]),
        callbacks=[writer, StopOnRequest(stop), CtrlC()],
        verbose=0,
    )
    return [row["epoch"] for row in writer.rows], stop


def test_ctrl_c_during_validation_keeps_the_epoch_it_finished(tmp_path, mnist):
    from mnist_cnn.training.config import TrainingInterrupted

    epochs, stop = _fit_until_ctrl_c(tmp_path, mnist, "validation")
    assert epochs == [1, 2] and stop.cut_at is None
    assert "after 2 complete epoch(s);" in str(TrainingInterrupted(tmp_path, 2, stop.cut_at))


def test_ctrl_c_mid_epoch_says_where_it_stopped(tmp_path, mnist):
    from mnist_cnn.training.config import TrainingInterrupted

    epochs, stop = _fit_until_ctrl_c(tmp_path, mnist, "step")
    assert epochs == [1] and stop.cut_at == "step 3 of 6"
    message = str(TrainingInterrupted(tmp_path, 1, stop.cut_at))
    assert "after 1 complete epoch(s) (epoch 2 stopped at step 3 of 6; it runs again)" in message
