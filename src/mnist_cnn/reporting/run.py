"""A finished run, read from its directory: what a notebook shows of it.

`mnist_cnn.train(...)` returns one; `Run(path)` opens any run directory. In Jupyter it
shows itself as its key figures and its training curves (`_repr_html_`).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from mnist_cnn import evaluation, rundir
from mnist_cnn.reporting.report import REPORT, embedded_png


class Run:
    """A run directory: its settings, metrics, history and report, read when asked for.

    Args:
        path: the run directory (`runs/fast-20261201-045056`).
        result: training's RunResult, when the run was just trained here.

    Raises:
        RunError: the folder is not a run directory.
    """

    def __init__(self, path: str | os.PathLike, result: object = None):
        self.path = Path(path)
        self.result = result
        if not (self.path / rundir.CONFIG).is_file():
            raise rundir.RunError(f"{self.path} is not a run directory (it has no {rundir.CONFIG})")

    @property
    def name(self) -> str:
        """The network's name: a catalogue entry's, or your own."""
        return str(self.config["model"])

    @property
    def config(self) -> dict:
        """config.json: the entry, every setting, the seed, versions."""
        return rundir.read_json(self.path / rundir.CONFIG)

    @property
    def metrics(self) -> dict:
        """metrics.json: test accuracy and loss, per class, confusion matrix ({} if untested)."""
        file = self.path / rundir.METRICS
        return rundir.read_json(file) if file.is_file() else {}

    @property
    def history(self) -> list[dict]:
        """history.csv: one dict per epoch (loss, accuracy, val_loss, val_accuracy, seconds)."""
        return rundir.read_history(self.path / rundir.HISTORY, missing_ok=True)

    @property
    def report_path(self) -> Path:
        """report.html: the run on one page."""
        return self.path / REPORT

    @property
    def model_path(self) -> Path:
        """model.keras: the trained model."""
        return self.path / rundir.MODEL

    def __repr__(self) -> str:
        accuracy = self.metrics.get("test_accuracy")
        shown = "untested" if accuracy is None else f"test accuracy {accuracy:.2%}"
        return f"Run({str(self.path)!r}, {self.name}, {shown})"

    def _repr_html_(self) -> str:
        """The key figures and the training curves, for Jupyter."""
        e = html.escape
        metrics = self.metrics
        rows = [("model", self.name), ("run directory", str(self.path))]
        if metrics:
            rows += [
                ("test accuracy", f"{metrics['test_accuracy']:.2%}"),
                (
                    evaluation.test_loss_name(metrics.get("calibration", {}).get("temperature")),
                    f"{metrics['test_loss']:.4f}",
                ),
                ("epochs", str(metrics.get("epochs", len(self.history)))),
                ("fit", f"{metrics.get('train_seconds', 0.0):.1f} s"),
                ("parameters", f"{metrics.get('parameters', 0):,}"),
            ]
        if self.report_path.is_file():
            rows.append(("report", str(self.report_path)))
        table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
        curves = self.path / rundir.PLOTS / "training_curves.png"
        picture = embedded_png(curves.read_bytes(), "training curves") if curves.is_file() else ""
        return f"<div><table>{table}</table>{picture}</div>"
