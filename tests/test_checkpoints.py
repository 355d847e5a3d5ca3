"""Model selection keeps the epoch with the lowest validation loss, and remembers it on disk."""

from __future__ import annotations

import numpy as np

from mnist_cnn.backend import import_keras

keras = import_keras()

from mnist_cnn.training.callbacks import BestWeights, StopRequest  # noqa: E402


def _model_marked(value: float) -> keras.Model:
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    _mark(model, value)
    return model


def _mark(model: keras.Model, value: float) -> None:
    """Stand-in for an epoch of training: the weights now say which epoch they are from."""
    model.layers[0].kernel.assign(np.full((1, 1), value, dtype="float32"))


def _marker(model: keras.Model) -> float:
    return float(np.asarray(model.layers[0].kernel)[0, 0])


def _run_epochs(callback: BestWeights, model: keras.Model, logs: list[dict], first: int = 0):
    for epoch, epoch_logs in enumerate(logs, start=first):
        _mark(model, epoch)
        callback.on_epoch_end(epoch, epoch_logs)


def test_keeps_the_lowest_validation_loss_not_the_highest_accuracy(tmp_path):
    model = _model_marked(-1)
    best = BestWeights(tmp_path / "best.weights.h5", StopRequest())
    best.set_model(model)
    _run_epochs(
        best,
        model,
        [
            {"val_loss": 0.52, "val_accuracy": 0.9970},
            {"val_loss": 0.515, "val_accuracy": 0.9977},  # the luckiest accuracy
            {"val_loss": 0.510, "val_accuracy": 0.9970},  # the lowest loss
            {"val_loss": 0.512, "val_accuracy": 0.9973},
        ],
    )
    best.restore()
    assert _marker(model) == 2


def test_a_resumed_run_still_knows_its_best_epoch(tmp_path):
    path = tmp_path / "best.weights.h5"
    model = _model_marked(-1)
    before = BestWeights(path, StopRequest())
    before.set_model(model)
    _run_epochs(before, model, [{"val_loss": 0.6}, {"val_loss": 0.5}])

    # As after a kill: a new callback, given the history rows written so far.
    after = BestWeights(path, StopRequest(), done=[{"val_loss": 0.6}, {"val_loss": 0.5}])
    after.set_model(model)
    _run_epochs(after, model, [{"val_loss": 0.55}, {"val_loss": 0.52}], first=2)
    after.restore()
    assert _marker(model) == 1


def test_an_epoch_stopped_by_ctrl_c_is_not_kept(tmp_path):
    stop = StopRequest()
    model = _model_marked(-1)
    best = BestWeights(tmp_path / "best.weights.h5", stop)
    best.set_model(model)
    _run_epochs(best, model, [{"val_loss": 0.6}])
    stop.requested, stop.cut_at = True, "step 3 of 10"  # as StopOnRequest marks a cut epoch
    _run_epochs(best, model, [{"val_loss": 0.1}], first=1)
    best.restore()
    assert _marker(model) == 0


def test_an_epoch_whose_steps_all_ran_before_ctrl_c_is_kept(tmp_path):
    """Ctrl-C during an epoch's validation: every step ran, the epoch is whole and kept."""
    stop = StopRequest()
    model = _model_marked(-1)
    best = BestWeights(tmp_path / "best.weights.h5", stop)
    best.set_model(model)
    _run_epochs(best, model, [{"val_loss": 0.6}])
    stop.requested = True  # and no step was cut (StopOnRequest left cut_at None)
    _run_epochs(best, model, [{"val_loss": 0.1}], first=1)
    best.restore()
    assert _marker(model) == 1
