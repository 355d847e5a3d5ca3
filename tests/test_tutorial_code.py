"""Tutorial code pasted as written after --arch: Sequential([...]), model.add lines, imports,
names, Keras 1 and 2 spellings. Each builds the network the bare layer list builds; code that
means harm is refused, and nothing pasted is ever run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, last_json, run_cli, run_cli_side_by_side

from mnist_cnn.backend import import_keras

keras = import_keras()

from mnist_cnn.models import architecture  # noqa: E402
from mnist_cnn.models.loading import gives_probabilities  # noqa: E402

BARE = (
    "[Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)), MaxPooling2D((2, 2)), "
    "Conv2D(64, (3, 3), activation='relu'), AveragePooling2D(pool_size=(2, 2)), Flatten(), "
    "Dropout(0.25), Dense(128, activation='relu'), Dense(10, activation='softmax')]"
)
# The same network, as tutorials of several years print it.
TUTORIALS = {
    "keras.io, keras.Sequential": """
        from tensorflow import keras
        from tensorflow.keras import layers

        input_shape = (28, 28, 1)
        num_classes = 10

        model = keras.Sequential(
            [
                keras.Input(shape=input_shape),
                layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
                layers.MaxPooling2D(pool_size=(2, 2)),
                layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
                layers.AveragePooling2D(),
                layers.Flatten(),
                layers.Dropout(0.25),
                layers.Dense(128, activation="relu"),
                layers.Dense(num_classes, activation="softmax"),
            ]
        )
        model.summary()
    """,
    "tf.keras.Sequential, compile and fit": """
        import tensorflow as tf

        model = tf.keras.Sequential([
          tf.keras.layers.Conv2D(32, (3,3), activation='relu', input_shape=(28, 28, 1)),
          tf.keras.layers.MaxPooling2D(2, 2),
          tf.keras.layers.Conv2D(64, (3,3), activation=tf.nn.relu),
          tf.keras.layers.AveragePooling2D(2, 2),
          tf.keras.layers.Flatten(),
          tf.keras.layers.Dropout(0.25),
          tf.keras.layers.Dense(128, activation=tf.nn.relu),
          tf.keras.layers.Dense(10, activation=tf.nn.softmax)
        ])
        model.compile(optimizer=tf.keras.optimizers.Adam(lr=0.001),
                      loss='sparse_categorical_crossentropy', metrics=['accuracy'])
        history = model.fit(x_train, y_train, epochs=10, validation_data=(x_test, y_test))
        model.evaluate(x_test, y_test)
    """,
    "keras.models.Sequential, no assignment": """
        keras.models.Sequential([
            keras.layers.Conv2D(32, 3, activation='relu', input_shape=(28, 28, 1)),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation='relu'),
            keras.layers.AveragePooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(rate=0.25),
            keras.layers.Dense(units=128, activation='relu'),
            keras.layers.Dense(10, activation='softmax'),
        ])
    """,
    "models.Sequential with imports": """
        from tensorflow.keras import datasets, layers, models

        model = models.Sequential()
        model.add(layers.Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)))
        model.add(layers.MaxPooling2D((2, 2)))
        model.add(layers.Conv2D(64, (3, 3), activation='relu'))
        model.add(layers.AveragePooling2D((2, 2)))
        model.add(layers.Flatten())
        model.add(layers.Dropout(0.25))
        model.add(layers.Dense(128, activation='relu'))
        model.add(layers.Dense(10, activation='softmax'))
        print(model.summary())
    """,
    "Sequential() and add, another name": """
        from keras.models import Sequential
        from keras.layers import Dense, Dropout, Flatten
        from keras.layers import Conv2D, MaxPooling2D, AveragePooling2D

        batch_size = 128
        num_classes = 10
        img_rows, img_cols = 28, 28
        input_shape = (img_rows, img_cols, 1)

        cnn = Sequential()
        cnn.add(Conv2D(32, kernel_size=(3, 3),
                       activation='relu',
                       input_shape=input_shape))
        cnn.add(MaxPooling2D(pool_size=(2, 2)))
        cnn.add(Conv2D(64, (3, 3), activation='relu'))
        cnn.add(AveragePooling2D())
        cnn.add(Flatten())
        cnn.add(Dropout(0.25))
        cnn.add(Dense(128, activation='relu'))
        cnn.add(Dense(num_classes, activation='softmax'))

        cnn.compile(loss=keras.losses.categorical_crossentropy,
                    optimizer=keras.optimizers.Adadelta(), metrics=['accuracy'])
    """,
    "pasted from inside a function": """model = Sequential()
            model.add(Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)))
            model.add(MaxPooling2D())
            model.add(Conv2D(64, (3, 3), activation="relu"))
            model.add(AveragePooling2D())
            model.add(Flatten())
            model.add(Dropout(0.25))
            model.add(Dense(128, activation="relu"))
            model.add(Dense(10, activation="softmax"))""",
}
# Keras 1's mnist_cnn.py, as it was written: Convolution2D(32, 3, 3), border_mode=, output_dim=,
# Dropout(p=), dim_ordering=, AveragePooling2D() with Keras 2's default pool_size.
TUTORIALS["Keras 1 spellings"] = """
    from keras.layers import Dense, Dropout, Activation, Flatten
    from keras.layers import Convolution2D, MaxPooling2D, AveragePooling2D

    nb_classes = 10
    nb_filters = 32
    nb_pool = 2
    model = Sequential()
    model.add(Convolution2D(nb_filters, 3, 3, border_mode='valid', activation='relu',
                            input_shape=(28, 28, 1)))
    model.add(MaxPooling2D(pool_size=(nb_pool, nb_pool), dim_ordering='tf'))
    model.add(Convolution2D(nb_filters * 2, 3, 3, activation='relu'))
    model.add(AveragePooling2D())
    model.add(Flatten())
    model.add(Dropout(p=0.25))
    model.add(Dense(output_dim=128, activation='relu'))
    model.add(Dense(nb_classes, activation='softmax'))
"""


def network(text: str) -> tuple[list[dict], int]:
    """The network an --arch text builds: each layer's class and settings (names aside),
    and its parameter count. Built, never trained."""
    model = architecture.layer_list_entry(textwrap.dedent(text) if "\n" in text else text).build()
    configs = [
        {
            "layer": type(layer).__name__,
            **{k: v for k, v in layer.get_config().items() if k != "name"},
        }
        for layer in model.layers
    ]
    return configs, model.count_params()


@pytest.fixture(scope="module")
def bare() -> tuple[list[dict], int]:
    return network(BARE)


@pytest.mark.parametrize("name", sorted(TUTORIALS))
def test_pasted_tutorial_code_builds_the_bare_lists_network(bare, name):
    configs, parameters = network(TUTORIALS[name])
    assert parameters == bare[1]
    assert configs == bare[0]


def test_a_list_ending_in_logits_gets_a_softmax():
    """TensorFlow's beginner tutorial ends in Dense(10) and trains from_logits; the list gets
    a Softmax, as a saved model ending in logits does, and says so in its origin."""
    entry = architecture.layer_list_entry(BEGINNER)
    assert entry.origin["softmax_added"] is True
    assert any("Softmax was added" in note for note in entry.origin["notes"])
    model = entry.build()
    assert gives_probabilities(model)
    last = model.layers[-1]
    while isinstance(last, keras.Model):  # (28, 28) input: a Reshape, then the list's stack
        last = last.layers[-1]
    assert type(last).__name__ == "Softmax"
    digits = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    probabilities = np.asarray(model(digits))
    assert probabilities.shape == (8, 10) and (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    ends_in_softmax = BEGINNER.replace("Dense(10)", "Dense(10, activation='softmax')")
    assert (
        model.count_params()
        == architecture.layer_list_entry(ends_in_softmax).build().count_params()
    )


BEGINNER = """
import tensorflow as tf

model = tf.keras.models.Sequential([
  tf.keras.layers.Flatten(input_shape=(28, 28)),
  tf.keras.layers.Dense(128, activation='relu'),
  tf.keras.layers.Dropout(0.2),
  tf.keras.layers.Dense(10)
])
loss_fn = 'sparse_categorical_crossentropy'
model.compile(optimizer='adam', loss=loss_fn, metrics=['accuracy'])
model.fit(x_train, y_train, epochs=5)
"""


def test_a_logits_tutorial_trains_and_its_config_says_a_softmax_was_added(tmp_path):
    result = run_cli(
        "train", "--arch", BEGINNER, "--epochs", "1", "--limit", "200", "--out", str(tmp_path),
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = Path(last_json(result.stdout)["run_dir"])
    origin = json.loads((run / "config.json").read_text())["entry"]["origin"]
    assert origin["kind"] == "layers" and origin["layers"] == BEGINNER
    assert origin["softmax_added"] is True
    assert any("model.compile(...) (line 11)" in note for note in origin["notes"])
    assert last_json(result.stdout)["notes"] == origin["notes"]  # and the command says so


MISTAKES = {  # pasted text -> what its one error line must say
    "Conv2d(32, (3,3), activation='relu'), Flatten(), Dense(10, activation='softmax')": [
        "item 1",
        "did you mean Conv2D?",
    ],
    "model = Sequential()\nmodel.add(Conv2D(8, 3))\nmodel.add(Maxpooling2D())\n": [
        "line 3",
        "did you mean MaxPooling2D?",
    ],
    "layers.Flatten(), layers.Dense2(10, activation='softmax')": ["did you mean Dense?"],
    "model = keras.Sequential([\n  layers.Flatten(),\n  layers.Dense(num_classes)\n])": [
        "line 3",
        "num_classes, not given a value above",
    ],
    "inputs = keras.Input(shape=(28, 28, 1))\nx = layers.Conv2D(8, 3)(inputs)": [
        "line 1",
        "functional API",
        "FILE.py",
    ],
}


def test_a_mistake_in_pasted_code_is_one_line_that_says_what_to_do():
    results = run_cli_side_by_side([["train", "--arch", text] for text in MISTAKES])
    for result, needles in zip(results, MISTAKES.values(), strict=True):
        assert_one_line_error(result, "--arch", *needles)


def test_a_misspelt_layer_is_answered_before_keras_loads():
    probe = textwrap.dedent(
        """
        import sys, time
        start = time.perf_counter()
        from mnist_cnn.models import layer_list
        try:
            layer_list.parse("model = Sequential()\\nmodel.add(Conv2d(32, 3))")
        except layer_list.LayerListError as exc:
            print(exc)
        print("keras" in sys.modules, time.perf_counter() - start)
        """
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    message, loaded = result.stdout.strip().splitlines()
    assert "line 2" in message and "did you mean Conv2D?" in message
    keras_loaded, seconds = loaded.split()
    assert keras_loaded == "False" and float(seconds) < 1.0


HOSTILE = {  # code that means harm, each in a line that would otherwise be read or ignored
    "model = Sequential([Flatten(), Dense(10, activation='softmax')])\n"
    "model.fit(__import__('os').system('touch {marker}'))": ["line 2", "__import__"],
    "import os\nmodel = Sequential()\nmodel.add(Flatten())\n"
    "model.add(Dense(10, activation=().__class__.__base__.__subclasses__))": [
        "line 4",
        "dunder",
    ],
    "model = Sequential()\nmodel.add(Lambda(lambda x: open('{marker}', 'w')))\n"
    "model.add(Flatten())": ["line 2", "lambda"],
    "num_classes = 10\nprint(exec(\"open('{marker}', 'w')\"))\n"
    "Flatten(), Dense(num_classes, activation='softmax')": ["line 2", "exec"],
    "model = Sequential([Flatten(), Dense(10, activation='softmax')])\n"
    "os.system('touch {marker}')": ["line 2", "os.system"],
}


def test_pasted_code_that_means_harm_is_refused_and_runs_nothing(tmp_path):
    texts = [text.format(marker=tmp_path / f"ran-{i}") for i, text in enumerate(HOSTILE)]
    out = str(tmp_path / "runs")
    results = run_cli_side_by_side([["train", "--arch", text, "--out", out] for text in texts])
    for index, (result, needles) in enumerate(zip(results, HOSTILE.values(), strict=True)):
        assert_one_line_error(result, "--arch", *needles)
        assert not (tmp_path / f"ran-{index}").exists()
    assert not (tmp_path / "runs").exists()


def test_every_known_layer_name_is_a_keras_layer():
    """The names offered by "did you mean" (known before Keras loads) are all real layers."""
    from mnist_cnn.models import keras_spellings

    for name in keras_spellings.KNOWN_LAYERS - {"Input"}:
        assert issubclass(getattr(keras.layers, name), keras.layers.Layer), name
    assert not keras_spellings.KNOWN_LAYERS & keras_spellings.REFUSED_LAYERS
