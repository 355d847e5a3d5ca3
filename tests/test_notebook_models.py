"""A model from someone's notebook: a plain Keras script (nothing of ours) trains a tutorial
network, saves it as `.h5` and `.keras`, and every command takes both files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import error_lines, last_json, run_cli, running_server
from PIL import Image

NOTEBOOK = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    from keras import layers

    folder = sys.argv[1]
    with np.load(sys.argv[2]) as data:
        x_train, y_train = data["x_train"], data["y_train"]
        x_test, y_test = data["x_test"], data["y_test"]
    x_train, x_test = x_train.astype("float32") / 255.0, x_test.astype("float32") / 255.0
    keras.utils.set_random_seed(1)

    model = keras.Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train[..., None], y_train, epochs=1, batch_size=128, verbose=0)
    model.save(f"{folder}/mnist.h5")
    model.save(f"{folder}/mnist.keras")

    # TensorFlow's beginner tutorial: flattened input, logits out
    flat = keras.Sequential([
        keras.Input(shape=(784,)),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(10),
    ])
    flat.compile(optimizer="adam",
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 metrics=["accuracy"])
    flat.fit(x_train.reshape(-1, 784), y_train, epochs=1, batch_size=128, verbose=0)
    flat.save(f"{folder}/flat.h5")

    assert not any(name.startswith("mnist_cnn") for name in sys.modules)
    print(json.dumps({
        "mnist": model.evaluate(x_test[..., None], y_test, verbose=0)[1],
        "flat": flat.evaluate(x_test.reshape(-1, 784), y_test, verbose=0)[1],
    }))
    """
)
FILES = ["mnist.h5", "mnist.keras", "flat.h5"]


@pytest.fixture(scope="module")
def notebook(tmp_path_factory, mnist) -> tuple[Path, dict]:
    """The notebook's folder of saved models, and its own test accuracies."""
    folder = tmp_path_factory.mktemp("notebook")
    (x_train, y_train), (x_test, y_test) = mnist
    data = folder / "mnist.npz"
    np.savez(data, x_train=x_train[:20000], y_train=y_train[:20000], x_test=x_test, y_test=y_test)
    made = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, str(folder), str(data)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    return folder, last_json(made.stdout)


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory, mnist) -> tuple[list[str], list[int]]:
    folder = tmp_path_factory.mktemp("digits")
    _, (x_test, y_test) = mnist
    files = []
    for index in range(40):
        path = folder / f"test-{index}.png"
        Image.fromarray(255 - x_test[index]).resize((112, 112)).save(path)  # dark on white
        files.append(str(path))
    return files, [int(y) for y in y_test[:40]]


@pytest.mark.parametrize("name", FILES)
def test_evaluate_scores_it_as_the_notebook_does(notebook, name):
    folder, accuracy = notebook
    result = run_cli("evaluate", str(folder / name), "--json")
    assert result.returncode == 0, result.stderr
    metrics = last_json(result.stdout)
    assert metrics["test_accuracy"] == pytest.approx(accuracy[Path(name).stem], abs=2e-4)
    assert metrics["test_accuracy"] > 0.9
    # logits or not, what comes out are probabilities
    assert 0 < metrics["test_loss"] < 1


@pytest.mark.parametrize("name", FILES)
def test_predict_reads_digits_with_it(notebook, digit_files, name):
    folder, _ = notebook
    files, labels = digit_files
    result = run_cli("predict", str(folder / name), *files, "--json")
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["file"] for a in answers] == files
    right = sum(a["digit"] == label for a, label in zip(answers, labels, strict=True))
    assert right >= 36, right
    for answer in answers:
        assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-4)


@pytest.mark.parametrize("name", FILES)
def test_export_to_onnx_passes_parity(notebook, name, tmp_path):
    folder, _ = notebook
    target = tmp_path / f"{name}.onnx"
    result = run_cli("export", str(folder / name), "--format", "onnx", "--out", str(target))
    assert result.returncode == 0, result.stderr
    assert "0 digits differ" in result.stdout and target.is_file()


def test_export_names_the_file_after_the_model(notebook, tmp_path):
    folder, _ = notebook
    copy = tmp_path / "my_model.h5"
    copy.write_bytes((folder / "mnist.h5").read_bytes())
    result = run_cli("export", str(copy), "--format", "onnx")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "my_model.onnx").is_file()


@pytest.mark.parametrize("name", FILES)
def test_serve_answers_with_it(notebook, digit_files, name):
    folder, _ = notebook
    files, labels = digit_files
    with running_server(str(folder / name)) as url:
        described = httpx.get(f"{url}/api/model").json()
        assert described["name"] == Path(name).stem
        right = 0
        for file, label in zip(files[:10], labels[:10], strict=True):
            with open(file, "rb") as f:
                answer = httpx.post(f"{url}/api/predict", files={"file": f})
            assert answer.status_code == 200, answer.text
            right += answer.json()["digit"] == label
        assert right >= 9


def test_a_model_that_does_not_fit_is_one_line(tmp_path):
    script = textwrap.dedent(
        """
        import sys, keras
        from keras import layers
        folder = sys.argv[1]
        keras.Sequential([keras.Input((32, 32, 3)), layers.Flatten(),
                          layers.Dense(10, activation="softmax")]).save(f"{folder}/rgb.h5")
        keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(),
                          layers.Dense(5, activation="softmax")]).save(f"{folder}/five.keras")
        """
    )
    made = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True)
    assert made.returncode == 0, made.stderr
    rgb = run_cli("evaluate", str(tmp_path / "rgb.h5"))
    assert rgb.returncode == 2 and len(error_lines(rgb.stderr)) == 1
    assert "(32, 32, 3)" in rgb.stderr and "28x28" in rgb.stderr
    five = run_cli("predict", str(tmp_path / "five.keras"), "--index", "0")
    assert five.returncode == 2 and len(error_lines(five.stderr)) == 1
    assert "(5,)" in five.stderr and "(10,)" in five.stderr


@pytest.mark.parametrize("name", ["mnist.h5", "flat.h5"])
def test_report_and_compare_take_it(notebook, trained_run, name, tmp_path):
    import re

    folder, accuracy = notebook
    expected = accuracy[Path(name).stem]
    result = run_cli("report", str(folder / name), "--out", str(tmp_path / "report.html"))
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "report.html").read_text()
    shown = float(re.search(r'id="test-accuracy" data-value="([0-9.]+)"', page)[1])
    assert shown == pytest.approx(expected, abs=2e-4)
    assert "trained elsewhere" in page and "Confusion matrix" in page

    result = run_cli(
        "compare", str(folder / name), trained_run["run_dir"], "--out", str(tmp_path / "c.html"),
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {row["run"]: row for row in last_json(result.stdout)["runs"]}
    assert rows[name]["test_accuracy"] == pytest.approx(expected, abs=2e-4)
    assert rows[name]["parameters"] > 0 and rows[name]["train_seconds"] is None
