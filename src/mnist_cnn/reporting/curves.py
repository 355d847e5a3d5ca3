"""Several runs' training curves on one axis, for compare.html and sweep.html.

A `fast` run trains one epoch: drawn one point per epoch, as history.csv has it, it was a
lone dot on an axis from 0.95 to 1.05. Its steps.csv has ~50 points of that epoch, as the
run's own report draws them. So each run is drawn against epochs counted in steps (step ÷
steps per epoch): training from steps.csv as a line, validation at each epoch's end as dots.
Epochs rather than steps, so that runs of other batch sizes or --limit line up; a long run
is the same drawing with more epochs, and a run without steps.csv is drawn per epoch.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from mnist_cnn import evaluation, rundir

AXIS = "epoch (training steps ÷ steps per epoch)"


@dataclass
class Curve:
    """One run's points, x in epochs: training every few steps (or per epoch), validation
    at each epoch's end; rows of (epoch, accuracy, loss)."""

    name: str
    training: list[tuple[float, float, float]]
    validation: list[tuple[float, float, float]]
    per_step: bool
    label_smoothing: float | None = None  # what its loss was trained with (config.json)


def curve_of(name: str, history: list[dict], steps: list[dict] = (), smoothing=None) -> Curve:
    """A run's curve from history.csv and steps.csv rows; an ensemble's first member."""
    first = min((row.get("member", 1) for row in [*history, *steps]), default=1)
    rows = [row for row in history if row.get("member", 1) == first]
    trained = [row for row in steps if row.get("member", 1) == first]
    validation = [
        (float(row["epoch"]), row["val_accuracy"], row["val_loss"])
        for row in rows
        if "val_accuracy" in row and "val_loss" in row
    ]
    if trained:  # each epoch's last row is its last step: epoch e ends at step e * per_epoch
        last = max(trained, key=lambda row: row["step"])
        per_epoch = last["step"] / last["epoch"]
        training = [(row["step"] / per_epoch, row["accuracy"], row["loss"]) for row in trained]
    else:
        training = [(float(row["epoch"]), row["accuracy"], row["loss"]) for row in rows]
    return Curve(name, training, validation, bool(trained), smoothing)


def curve_of_run(name: str, run_dir: str | Path) -> Curve | None:
    """The curve of a run directory (None if it has no history yet)."""
    run_dir = Path(run_dir)
    history = rundir.read_history(run_dir / rundir.HISTORY, missing_ok=True)
    if not history:
        return None
    steps = rundir.read_history(run_dir / rundir.STEPS, missing_ok=True)
    config = run_dir / rundir.CONFIG
    settings = rundir.read_json(config).get("settings", {}) if config.is_file() else {}
    return curve_of(name, history, steps, settings.get("label_smoothing"))


def loss_name(curves: list[Curve], what: str = "loss") -> str:
    """What the curves' loss is: the one trained on, with the runs' label smoothing."""
    return evaluation.trained_loss_name([curve.label_smoothing for curve in curves], what)


def note(curves: list[Curve]) -> str:
    """What the chart draws, in words and per run (the counts are those of the points drawn)."""
    e = html.escape
    rows = "".join(
        f"<tr data-run='{e(c.name)}' data-per-step='{str(c.per_step).lower()}'>"
        f"<td>{e(c.name)}</td><td class='training-points'>{len(c.training)}</td>"
        f"<td class='validation-points'>{len(c.validation)}</td>"
        f"<td>{'steps.csv' if c.per_step else 'history.csv, per epoch'}</td></tr>"
        for c in curves
    )
    return (
        f"<p class='muted' id='curves-note' data-axis='{e(AXIS)}'>Against the {e(AXIS)}: "
        "training loss and accuracy every few steps (lines; the mean over the steps since the "
        "point before), validation at each epoch's end (dots). Drawn: the "
        f"{e(loss_name(curves, 'training and validation loss'))}; the test loss in the table "
        "is the cross-entropy of the calibrated probabilities, another number.</p>"
        "<table id='curve-points'><tr><th>run</th><th>training points</th>"
        f"<th>validation points</th><th>from</th></tr>{rows}</table>"
    )
