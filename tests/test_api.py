"""The Python API a notebook uses: the same calls the command makes, and a Run to look at."""

from __future__ import annotations

import pytest
from conftest import last_json, run_cli

SETTINGS = {"limit": 2000, "epochs": 1}


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    import mnist_cnn

    return mnist_cnn.train("fast", out=str(tmp_path_factory.mktemp("api")), **SETTINGS)


def test_train_returns_a_run_with_its_figures(api_run):
    import mnist_cnn

    assert isinstance(api_run, mnist_cnn.Run)
    assert api_run.name == "fast"
    assert 0.8 < api_run.metrics["test_accuracy"] <= 1.0
    assert [row["epoch"] for row in api_run.history] == [1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(api_run.history[0])
    assert api_run.report_path.is_file()
    assert api_run.config["settings"]["limit"] == 2000


def test_a_run_shows_itself_in_jupyter(api_run):
    page = api_run._repr_html_()
    assert f"{api_run.metrics['test_accuracy']:.2%}" in page
    assert 'src="data:image/png;base64,' in page  # the training curves, inside the page
    assert "fast" in repr(api_run) and "test accuracy" in repr(api_run)


def test_evaluate_gives_what_the_command_prints(api_run):
    import mnist_cnn

    scores = mnist_cnn.evaluate(api_run)
    printed = last_json(run_cli("evaluate", str(api_run.path), "--json").stdout)
    assert scores["test_accuracy"] == pytest.approx(api_run.metrics["test_accuracy"])
    assert set(scores) == set(printed)
    assert scores["confusion_matrix"] == printed["confusion_matrix"]
    assert scores["test_loss"] == pytest.approx(printed["test_loss"])


def test_the_command_trains_what_the_call_trains(api_run, tmp_path):
    """`mnist-cnn train fast --limit 2000 --epochs 1` and `train("fast", ...)`: the same run."""
    printed = last_json(
        run_cli(
            "train", "fast", "--limit", "2000", "--epochs", "1", "--out", str(tmp_path), "--json"
        ).stdout
    )
    assert printed["test_accuracy"] == pytest.approx(api_run.metrics["test_accuracy"], abs=0.005)


def test_train_refuses_a_setting_it_does_not_know(tmp_path):
    import mnist_cnn

    with pytest.raises(TypeError, match="epoch.*it takes.*epochs"):
        mnist_cnn.train("fast", epoch=1, out=str(tmp_path))


def test_the_public_names_are_there():
    import mnist_cnn

    (x_train, _), (x_test, _) = mnist_cnn.load_dataset()
    assert x_train.shape == (60_000, 28, 28) and x_test.shape == (10_000, 28, 28)
    assert callable(mnist_cnn.sweep) and callable(mnist_cnn.Classifier)
