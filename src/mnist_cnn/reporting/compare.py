"""Compare runs (and model files trained elsewhere): accuracy, loss, size and time side by
side, curves overlaid, and the test digits on which they disagree (a table for the terminal
and one self-contained HTML page).
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_cnn import evaluation, rundir
from mnist_cnn.atomic import atomic_write_text
from mnist_cnn.data import sources
from mnist_cnn.inference.classifier import Classifier
from mnist_cnn.models.settings import added_later, flag_name, shown_value
from mnist_cnn.reporting import curves, pictures, plots
from mnist_cnn.reporting.report import STYLE, embedded_png

SHOWN_DISAGREEMENTS = 24


@dataclass
class Comparison:
    """What `compare_runs` found: one row per run, and where their answers differ."""

    rows: list[dict]
    disagreements: int
    page: Path
    examples: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "runs": self.rows,
            "disagreements": self.disagreements,
            "examples": self.examples,
            "page": str(self.page),
        }


def compare_runs(
    items: list[str | os.PathLike], out: str | os.PathLike, data_dir: str | None = None
) -> Comparison:
    """Read each run's (or model file's) test answers again, compare them, and write the page
    to `out`. A model trained elsewhere (a .keras or .h5 file) is scored now, and has no
    curves."""
    paths = [rundir.run_dir_of(item) or rundir.model_path(item) for item in items]
    names = [path.name for path in paths]
    if len(set(names)) != len(names):
        raise rundir.RunError("the same run is named twice; give different run directories")
    used = {rundir.dataset_of(path) for path in paths}
    if len(used) > 1:
        raise rundir.RunError(f"the runs use different datasets ({', '.join(sorted(used))})")
    _, (x_test, y_test) = sources.load_dataset(used.pop(), data_dir)

    rows, answers, drawn, settings = [], [], [], {}
    for path in paths:
        classifier = Classifier(path)
        probabilities = classifier.probabilities(x_test)
        answers.append(probabilities.argmax(axis=1))
        if path.is_dir():
            config = rundir.read_json(path / rundir.CONFIG)
            metrics = rundir.read_json(path / rundir.METRICS)
            drawn.append(curves.curve_of_run(path.name, path))
            recorded = config.get("settings", {})
            settings[path.name] = {**recorded, **added_later(recorded)}  # an older run's too
        else:
            config = {"model": path.stem}
            metrics = evaluation.evaluate(probabilities, y_test)
            metrics["parameters"] = int(classifier.model.count_params())
        rows.append(
            {
                "run": path.name,
                "model": config.get("model"),
                "test_accuracy": metrics["test_accuracy"],
                "test_loss": metrics["test_loss"],
                "temperature": metrics.get("calibration", {}).get("temperature", 1.0),
                "parameters": metrics.get("parameters"),
                "train_seconds": metrics.get("train_seconds"),
                "epochs": metrics.get("epochs"),
                "seed": config.get("settings", {}).get("seed"),
            }
        )
    answers = np.array(answers)
    differ = np.flatnonzero((answers != answers[0]).any(axis=0))
    examples = [
        {
            "index": int(i),
            "label": int(y_test[i]),
            "answers": {name: int(a) for name, a in zip(names, answers[:, i], strict=True)},
        }
        for i in differ[:SHOWN_DISAGREEMENTS]
    ]
    comparison = Comparison(rows, int(len(differ)), Path(out), examples)
    drawn = [curve for curve in drawn if curve is not None]
    atomic_write_text(out, _page(comparison, drawn, settings, x_test))
    return comparison


def format_table(comparison: Comparison) -> str:
    lines = [
        f"{'run':<36} {'model':<22} {'test acc':>8} {'test loss':>9} {'params':>9} {'fit s':>7}",
    ]
    for row in comparison.rows:
        seconds = "—" if row["train_seconds"] is None else f"{row['train_seconds']:.1f}"
        lines.append(
            f"{row['run']:<36} {row['model'] or '?':<22} {row['test_accuracy']:>8.2%} "
            f"{row['test_loss']:>9.4f} {row['parameters'] or 0:>9,} {seconds:>7}"
        )
    lines.append(
        "test loss: cross-entropy of the calibrated probabilities, not the loss trained on"
    )
    lines.append(f"test digits on which they disagree: {comparison.disagreements}")
    return "\n".join(lines)


def _page(comparison: Comparison, drawn: list, settings: dict, x_test: np.ndarray) -> str:
    e = html.escape
    head = ["run", "model", "seed", "epochs", "test accuracy", evaluation.TEST_LOSS]
    head += ["temperature", "parameters", "fit s"]
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{cell}</td>"
            for cell in (
                e(row["run"]),
                e(str(row["model"])),
                row["seed"],
                row["epochs"],
                f"{row['test_accuracy']:.2%}",
                f"{row['test_loss']:.4f}",
                f"{row['temperature']:.3g}",
                f"{row['parameters'] or 0:,}",
                "—" if row["train_seconds"] is None else f"{row['train_seconds']:.1f}",
            )
        )
        + "</tr>"
        for row in comparison.rows
    )
    table = "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + f"</tr>{body}</table>"
    chart = curves.note(drawn) + embedded_png(
        plots.overlaid_curves(drawn), "every run's training and validation curves, overlaid"
    )
    if comparison.examples:
        short = {row["run"]: f"R{i + 1}" for i, row in enumerate(comparison.rows)}
        titles = [
            f"true {x['label']} · "
            + " ".join(f"{short[name]}:{a}" for name, a in x["answers"].items())
            for x in comparison.examples
        ]
        images = x_test[[x["index"] for x in comparison.examples]]
        legend = ", ".join(f"R{i + 1} = {e(row['run'])}" for i, row in enumerate(comparison.rows))
        gallery = (
            f"<p>{comparison.disagreements} test digits get different answers; the first "
            f"{len(titles)}: {legend}.</p>"
            + embedded_png(
                pictures.disagreements(images, titles), "digits on which the runs disagree"
            )
        )
    else:
        gallery = "<p>The runs agree on every test digit.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mnist-cnn: comparing {len(comparison.rows)} runs</title><style>{STYLE}</style></head>
<body><h1>Comparing {len(comparison.rows)} runs</h1>
<section id="runs"><h2>Runs</h2>{table}</section>
<section id="settings"><h2>Settings</h2>{_settings_table(settings)}</section>
<section id="curves"><h2>Curves</h2>{chart}</section>
<section id="disagreements"><h2>Where they disagree</h2>{gallery}</section>
</body></html>
"""


def _settings_table(settings: dict[str, dict]) -> str:
    """The settings, by flag name and value, that differ between the runs; the rest in a line."""
    e = html.escape
    keys = list(dict.fromkeys(key for run in settings.values() for key in run))
    shown = {
        key: [shown_value(key, run.get(key)) if key in run else "?" for run in settings.values()]
        for key in keys
    }
    differ = {key: values for key, values in shown.items() if len(set(values)) > 1}
    same = ", ".join(
        f"{flag_name(key)} {values[0]}" for key, values in shown.items() if key not in differ
    )
    head = "".join(f"<th>{e(name)}</th>" for name in settings)
    rows = "".join(
        f"<tr><td>{e(flag_name(key))}</td>" + "".join(f"<td>{e(v)}</td>" for v in values) + "</tr>"
        for key, values in differ.items()
    )
    table = (
        f"<table id='settings-table'><tr><th>setting</th>{head}</tr>{rows}</table>"
        if differ
        else ""
    )
    return table + (f"<p class='muted'>The same for every run: {e(same)}.</p>" if same else "")
