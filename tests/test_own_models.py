"""Your own networks through the real command: pasted layer lists, your .py file, every
recipe flag, and hostile lists that must run nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from conftest import COMMAND, assert_one_line_error, last_json, run_cli, run_cli_side_by_side

from mnist_cnn.backend import import_keras

import_keras()

from mnist_cnn.models import catalogue  # noqa: E402

# Each tutorial's network as its notebook writes it (input_shape on the first layer, tuples
# for kernels), to be pasted after --arch.
TUTORIAL_LAYERS = {
    "conv32-conv64-dropout": "Conv2D(32, kernel_size=(3, 3), activation='relu', "
    "input_shape=(28, 28, 1)), MaxPooling2D(pool_size=(2, 2)), "
    "Conv2D(64, kernel_size=(3, 3), activation='relu'), MaxPooling2D(pool_size=(2, 2)), "
    "Flatten(), Dropout(0.3), Dense(10, activation='softmax')",
    "conv28-dense128": "Conv2D(28, kernel_size=(3,3), activation='relu', input_shape=(28,28,1)), "
    "MaxPooling2D(pool_size=(2, 2)), Flatten(), Dense(128, activation='relu'), Dropout(0.2), "
    "Dense(10, activation='softmax')",
    "conv64-conv32": "Conv2D(64, kernel_size=3, activation='relu', input_shape=(28,28,1)), "
    "Conv2D(32, kernel_size=3, activation='relu'), MaxPooling2D(2), Flatten(), "
    "Dense(10, activation='softmax')",
    "conv6-dense128": "Conv2D(6, (3, 3), padding='same', activation='relu'), "
    "MaxPooling2D(pool_size=(2, 2), strides=2), Flatten(), Dense(128, activation='relu'), "
    "Dense(10, activation='softmax')",
    "conv32-conv64-dense128": "[layers.Conv2D(32, (3, 3), activation='relu'), "
    "layers.MaxPooling2D((2, 2)), layers.Conv2D(64, (3, 3), activation='relu'), "
    "layers.MaxPooling2D((2, 2)), layers.Flatten(), layers.Dense(128, activation='relu'), "
    "layers.Dense(10, activation='softmax')]",
    "keras-example": "keras.Input(shape=(28, 28, 1)), "
    'layers.Conv2D(32, kernel_size=(3, 3), activation="relu"), '
    "layers.MaxPooling2D(pool_size=(2, 2)), "
    'layers.Conv2D(64, kernel_size=(3, 3), activation="relu"), '
    "layers.MaxPooling2D(pool_size=(2, 2)), layers.Flatten(), layers.Dropout(0.5), "
    'layers.Dense(10, activation="softmax")',
    "lenet5": """
        tf.keras.layers.Conv2D(6, kernel_size=5, padding='same', activation='tanh'),
        tf.keras.layers.AveragePooling2D(pool_size=2),
        tf.keras.layers.Conv2D(16, kernel_size=5, activation='tanh'),
        tf.keras.layers.AveragePooling2D(pool_size=2),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(120, activation='tanh'),
        tf.keras.layers.Dense(84, activation='tanh'),
        tf.keras.layers.Dense(10, activation='softmax'),
    """,
}
SHORT = (
    "Conv2D(16, (3, 3), activation='relu'), MaxPooling2D((2, 2)), Flatten(), "
    "Dense(10, activation='softmax')"
)


def layers_of(model) -> list[dict]:
    """What makes two networks the same: each layer's class, settings, shape and weights."""
    return [
        {
            "layer": type(layer).__name__,
            "config": {k: v for k, v in layer.get_config().items() if k != "name"},
            "output_shape": list(layer.output.shape[1:]),
            "parameters": layer.count_params(),
        }
        for layer in model.layers
    ]


def test_every_tutorial_is_in_this_test():
    tutorials = {
        name for name, entry in catalogue.ENTRIES.items() if not entry.source.startswith("ours")
    }
    assert tutorials == set(TUTORIAL_LAYERS)


@pytest.fixture(scope="module")
def pasted() -> dict:
    """`mnist-cnn models --arch LIST --json` for every tutorial's list."""
    names = sorted(TUTORIAL_LAYERS)
    commands = [["models", "--arch", TUTORIAL_LAYERS[name], "--json"] for name in names]
    return dict(zip(names, run_cli_side_by_side(commands), strict=True))


@pytest.mark.parametrize("name", sorted(TUTORIAL_LAYERS))
def test_a_pasted_tutorial_builds_its_catalogue_network(pasted, name):
    result = pasted[name]
    assert result.returncode == 0, result.stderr
    shown = last_json(result.stdout)
    entry = catalogue.get_entry(name).build()
    assert shown["parameters"] == entry.count_params()
    expected = json.loads(json.dumps(layers_of(entry)))  # tuples as JSON has them
    got = [
        {k: row[k] for k in ("layer", "config", "output_shape", "parameters")}
        for row in shown["layers"]
    ]
    for row in got:
        row["config"].pop("dtype", None)
    for row in expected:
        row["config"].pop("dtype", None)
        row["config"].pop("trainable", None)
    assert got == expected


def test_models_shows_a_catalogue_network_layer_by_layer():
    result = run_cli("models", "keras-example")
    assert result.returncode == 0, result.stderr
    assert "Conv2D" in result.stdout and "(26, 26, 32)" in result.stdout
    assert "34,826" in result.stdout and "--epochs 15 --batch-size 128" in result.stdout


def history_rows(run: Path) -> list[str]:
    path = run / "history.csv"
    return path.read_text().splitlines()[1:] if path.exists() else []


def test_a_pasted_list_trains_resumes_and_reports(tmp_path, trained_run):
    """Ctrl-C in epoch 2 of a pasted network with recipe flags, then --resume: the layer
    list and every flag come back from config.json."""
    flags = ["--optimizer", "rmsprop", "--learning-rate", "0.002", "--batch-size", "64"]
    flags += ["--augment", "rotation=5", "--label-smoothing", "0.05", "--select-best"]
    process = subprocess.Popen(
        [COMMAND, "train", "--arch", SHORT, "--name", "mine", "--limit", "12000"]
        + ["--epochs", "2", "--out", str(tmp_path), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not any(history_rows(run) for run in tmp_path.glob("mine-*")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "epoch 1 never finished"
        time.sleep(0.05)
    (run,) = tmp_path.glob("mine-*")
    first_epoch = float(history_rows(run)[0].split(",")[-1])  # its seconds
    time.sleep(first_epoch * 0.3)  # well inside epoch 2
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert len(history_rows(run)) == 1

    resumed = run_cli("train", "--resume", str(run), "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = last_json(resumed.stdout)
    assert summary["model"] == "mine" and len(history_rows(run)) == 2
    assert summary["test_accuracy"] > 0.9  # chance is 0.1
    config = json.loads((run / "config.json").read_text())
    assert config["entry"]["origin"] == {"kind": "layers", "layers": SHORT}
    settings = config["settings"]
    assert (settings["optimizer"], settings["learning_rate"], settings["batch_size"]) == (
        "rmsprop",
        0.002,
        64,
    )
    assert settings["augmentation"] == {
        **dict.fromkeys(
            ("zoom", "shift", "shear", "aspect", "stroke", "erase", "clip", "blur"), 0.0
        ),
        "rotation": 5.0,
    }
    assert settings["label_smoothing"] == 0.05 and settings["select_best"] is True
    assert "Conv2D(16, (3, 3)" in (run / "report.html").read_text()

    compared = run_cli(
        "compare", str(run), trained_run["run_dir"], "--out", str(tmp_path / "c.html")
    )
    assert compared.returncode == 0, compared.stderr
    assert "mine" in compared.stdout


def test_a_short_pasted_list_learns_in_one_epoch(tmp_path):
    result = run_cli(
        "train", "--arch", SHORT, "--epochs", "1", "--limit", "6000", "--out", str(tmp_path),
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["model"] == "custom" and Path(summary["run_dir"]).name.startswith("custom-")
    assert summary["test_accuracy"] > 0.8  # chance is 0.1


def test_every_recipe_flag_reaches_a_catalogue_entry(tmp_path):
    flags = {
        "--loss": "categorical",
        "--optimizer": "adamw",
        "--learning-rate": "0.003",
        "--schedule": "one-cycle",
        "--warmup": "0.2",
        "--label-smoothing": "0.1",
        "--precision": "mixed_bfloat16",
        "--steps-per-execution": "4",
        "--augment": "on",
        "--validation-split": "0.2",
        "--batch-size": "256",
        "--batch-norm-refresh": "256",
    }
    args = [item for pair in flags.items() for item in pair]
    result = run_cli(
        "train", "conv6-dense128", *args, "--select-best", "--epochs", "1", "--limit", "6000",
        "--out", str(tmp_path), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = Path(last_json(result.stdout)["run_dir"])
    settings = json.loads((run / "config.json").read_text())["settings"]
    assert settings == {
        "epochs": 1,
        "batch_size": 256,
        "validation_split": 0.2,
        "loss": "categorical",
        "optimizer": "adamw",
        "learning_rate": 0.003,
        "schedule": "one-cycle",
        "warmup": 0.2,
        "steps_per_execution": 4,
        "label_smoothing": 0.1,
        "precision": "mixed_bfloat16",
        "select_best": True,
        "augmentation": {
            **dict.fromkeys(("shear", "aspect", "stroke", "erase", "clip", "blur"), 0.0),
            "rotation": 10.0,
            "zoom": 0.1,
            "shift": 0.1,
        },
        "batch_norm_refresh": 256,
        "seed": 42,
        "dataset": "mnist",
        "limit": 6000,
        "ensemble": 1,
        "mix_mnist": 0,
    }
    assert last_json(result.stdout)["test_accuracy"] > 0.5


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--optimizer", "adamm"], ["--optimizer", "adamw", "rmsprop"]),
        (["--precision", "float8"], ["--precision", "mixed_bfloat16"]),
        (["--schedule", "cosine"], ["--schedule", "one-cycle"]),
        (["--augment", "spin=3"], ["--augment", "rotation, zoom, shift"]),
        (["--augment", "zoom=1.5"], ["--augment", "zoom", "below 1"]),
        (["--warmup", "1.5"], ["--warmup", "[0, 1)"]),
        (["--learning-rate", "-1"], ["--learning-rate", "above 0"]),
        (["--loss", "sparse", "--label-smoothing", "0.1"], ["--label-smoothing", "categorical"]),
        (["--steps-per-execution", "0"], ["--steps-per-execution", "at least 1"]),
    ],
)
def test_a_bad_recipe_value_names_the_flag_and_what_it_takes(args, needles, tmp_path):
    result = run_cli("train", "keras-example", *args, "--out", str(tmp_path))
    assert_one_line_error(result, *needles)
    assert not list(tmp_path.iterdir())  # no run directory for a run that cannot start


MY_NET = textwrap.dedent(
    """
    import keras
    from keras import layers


    def build():
        inputs = keras.Input(shape=(28, 28, 1))
        x = layers.Conv2D(16, 3, activation="relu")(inputs)
        x = layers.MaxPooling2D()(x)
        x = layers.Flatten()(x)
        return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


    def flat():
        return keras.Sequential([keras.Input((784,)), layers.Dense(64, activation="relu"),
                                 layers.Dense(10)])
    """
)


def test_your_python_file_trains_and_is_recorded(tmp_path):
    path = tmp_path / "my_net.py"
    path.write_text(MY_NET)
    result = run_cli(
        "train", "--arch", str(path), "--epochs", "1", "--limit", "6000",
        "--out", str(tmp_path / "runs"), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["test_accuracy"] > 0.8
    origin = json.loads((Path(summary["run_dir"]) / "config.json").read_text())["entry"]["origin"]
    assert origin["source"] == MY_NET and origin["function"] == "build"
    import hashlib

    assert origin["sha256"] == hashlib.sha256(MY_NET.encode()).hexdigest()


def test_a_784_input_logits_network_of_yours_trains(tmp_path):
    """A (784,) network ending in logits, as TensorFlow's beginner tutorial writes it:
    a Reshape goes in front and a Softmax behind."""
    path = tmp_path / "my_net.py"
    path.write_text(MY_NET)
    result = run_cli(
        "train", "--arch", f"{path}:flat", "--epochs", "1", "--limit", "6000",
        "--out", str(tmp_path / "runs"), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["test_accuracy"] > 0.8
    shown = run_cli("evaluate", summary["run_dir"], "--json")
    assert last_json(shown.stdout)["test_accuracy"] == pytest.approx(summary["test_accuracy"])


def test_a_broken_python_file_is_one_line(tmp_path):
    path = tmp_path / "my_net.py"
    path.write_text(MY_NET + "\n\ndef broken():\n    raise RuntimeError('oops')\n")
    assert_one_line_error(run_cli("train", "--arch", f"{path}:broken"), "broken()", "oops")
    assert_one_line_error(run_cli("train", "--arch", f"{path}:nope"), "no function nope()")
    assert_one_line_error(run_cli("train", "--arch", str(tmp_path / "x.py")), "no such file")


HOSTILE = [
    "__import__('os').system('touch {marker}')",
    "Lambda(lambda x: open('{marker}', 'w'))",
    "Dense(10, activation=exec(\"open('{marker}', 'w')\"))",
    "os.system('touch {marker}')",
    "Flatten(), [open('{marker}', 'w') for _ in 'x']",
    "Dense(10, kernel_initializer={{'module': 'os', 'class_name': 'system', "
    "'config': 'touch {marker}'}})",
    "Dense(*open('{marker}', 'w'))",
    "Dense(**{{'units': 10}})",
    "Dense(10)); open('{marker}', 'w'",
    "Dense(f\"{{open('{marker}', 'w')}}\")",
    "Flatten(), Dense(10, activation='softmax').__class__.__init__",
    "Dense(units=(lambda: open('{marker}', 'w'))())",
    "Flatten(), Dense(10, activation='softmax'), eval(\"open('{marker}', 'w')\")",
    "TFSMLayer('{marker}')",
    "Flatten(), Dense(10, activation='os.system')",
    "Flatten(), system('touch {marker}')",
]
BROKEN = {
    "Conv2D(32, (3,3), activation='relu'), Flatten(), Dense(7, activation='softmax')": "(10,)",
    "Flatten(), Dense(10, activation='relu')": "activation='softmax'",  # logits get one
    "Conv2D(32, (3,3), activaton='relu'), Flatten(), Dense(10, activation='softmax')": "activaton",
    "Dense(100000), Flatten(), Dense(10, activation='softmax')": "item 1",
    "Flatten(), Dense(70000), Dense(10, activation='softmax')": "item 2",
    "Flatten(), Conv2D(8, 3), Dense(10, activation='softmax')": "item 2",
    "Conv2D(32, (3,3), input_shape=(32, 32, 3)), Flatten(), Dense(10, activation='softmax')": (
        "28x28"
    ),
    "": "empty",
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory) -> tuple[Path, list]:
    """`train --arch LIST` for every hostile list (each with a marker file of its own that
    its payload would write) and every broken one, all refused, none run."""
    folder = tmp_path_factory.mktemp("refusals")
    texts = [text.format(marker=folder / f"ran-{i}") for i, text in enumerate(HOSTILE)]
    texts += list(BROKEN)
    out = str(folder / "runs")
    return folder, run_cli_side_by_side([["train", "--arch", t, "--out", out] for t in texts])


@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_a_hostile_layer_list_is_refused_and_runs_nothing(refusals, index):
    folder, results = refusals
    assert_one_line_error(results[index], "--arch")
    assert not (folder / f"ran-{index}").exists()
    assert not (folder / "runs").exists()


@pytest.mark.parametrize("index", range(len(BROKEN)))
def test_a_broken_layer_list_says_what_to_change(refusals, index):
    folder, results = refusals
    needle = list(BROKEN.values())[index]
    assert_one_line_error(results[len(HOSTILE) + index], "--arch", needle)
    assert not (folder / "runs").exists()


def test_what_to_train_is_one_thing(tmp_path):
    assert_one_line_error(run_cli("train", "fast", "--arch", SHORT), "NAME and --arch")
    assert_one_line_error(run_cli("train", "fast", "--name", "x"), "--name")
    assert_one_line_error(run_cli("train", "--arch", SHORT, "--name", "../x"), "--name")
