"""One self-contained HTML report per run (or model file): what was trained, how it learned,
where it errs.

Everything is in one file (images embedded as PNG data URIs), so it can be mailed or
archived with the run. The test digits are read again through `Classifier`, so the numbers
are those of `metrics.json` (the calibration temperature included).
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

import numpy as np

from mnist_cnn import evaluation, rundir
from mnist_cnn.atomic import atomic_write_json, atomic_write_text
from mnist_cnn.backend import import_keras, versions
from mnist_cnn.data import datasets, sources
from mnist_cnn.inference.classifier import Classifier
from mnist_cnn.models.ensemble import members_of
from mnist_cnn.models.settings import shown_settings
from mnist_cnn.reporting import pictures, plots, robustness

REPORT = "report.html"
SAMPLE_SEED = 0
SAMPLES = 16
GALLERY = 32
PAIRS = 10
PAIR_EXAMPLES = 6
CHANGE_EXAMPLES = 6  # wrong digits shown per change, the strongest first

SECTIONS = {
    "summary": "Summary",
    "curves": "Training curves",
    "metrics": "Test metrics",
    "confusion": "Confusion matrix",
    "per-class": "Per-class scores",
    "confused-pairs": "Most-confused pairs",
    "misclassified": "Misclassified digits",
    "samples": "Sample predictions",
    "calibration": "Calibration",
    "robustness": "How it holds up",
    "filters": "First-layer filters",
    "feature-maps": "Feature maps",
}

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1b1b1b; max-width: 980px;
       margin: 0 auto; padding: 16px 20px 48px; }
h1 { margin-bottom: 0; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.muted { color: #555; } nav a { margin-right: 0.8em; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.big { font-size: 2em; font-weight: 700; }
img { max-width: 100%; height: auto; }
.side { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
#confusion-table .diagonal { font-weight: 700; }
#confusion-table td { padding: 0; } #confusion-table td:first-child { padding: 3px 10px; }
#confusion-table span { display: block; min-width: 3.2em; padding: 6px 4px; text-align: center; }
table.kv td { text-align: left; }
"""


def write_report(
    model: str | os.PathLike, data_dir: str | None = None, out: str | os.PathLike | None = None
) -> Path:
    """Write the report of a run (RUN_DIR/report.html) or of a model file of yours (trained
    elsewhere: MODEL.report.html beside it, scored now on the test set), and return its path."""
    run = rundir.run_dir_of(model)
    classifier = Classifier(run or rundir.model_path(model))
    _, (x_test, y_test) = sources.load_dataset(rundir.dataset_of(classifier.path), data_dir)
    probabilities = classifier.probabilities(x_test)
    if run is not None:
        return write_report_of(run, classifier.model, (x_test, y_test), probabilities, out)
    metrics = evaluation.evaluate(probabilities, y_test)
    metrics["parameters"] = int(classifier.model.count_params())
    config = {
        "model": classifier.path.stem,
        "entry": {"summary": "a model trained elsewhere", "source": str(classifier.path)},
        "settings": {"dataset": rundir.dataset_of(classifier.path)},
        "versions": versions(),
    }
    target = Path(out) if out else classifier.path.with_name(f"{classifier.path.stem}.{REPORT}")
    figures = _figures(config, metrics, [], classifier.model, (x_test, y_test), probabilities)
    atomic_write_text(target, _render(classifier.path.name, config, metrics, figures))
    return target


def write_report_of(
    run: Path, model, test_set, probabilities: np.ndarray, out: str | os.PathLike | None = None
) -> Path:
    """Write the report of a run whose model and calibrated test probabilities are at hand
    (as `train` has them at its end), and return its path."""
    config = rundir.read_json(run / rundir.CONFIG)
    metrics = rundir.read_json(run / rundir.METRICS)
    history = rundir.read_history(run / rundir.HISTORY)
    steps = rundir.read_history(run / rundir.STEPS, missing_ok=True)
    figures = _figures(config, metrics, history, model, test_set, probabilities, steps)
    if figures["robustness"] is not None:
        atomic_write_json(run / rundir.ROBUSTNESS, figures["robustness"])
    path = Path(out) if out else run / REPORT
    atomic_write_text(path, _render(run.name, config, metrics, figures))
    return path


def _figures(config, metrics, history, model, test_set, probabilities, steps=()) -> dict:
    """Every picture of the report, with what it needs to say beside it."""
    x_test, y_test = test_set
    predicted = probabilities.argmax(axis=1)
    trained = config.get("settings", {}).get("label_smoothing")
    loss = evaluation.trained_loss_name(trained, "loss")
    figures = {
        "curves": plots.training_curves(history, steps=steps, loss=loss) if history else None,
        "curves-note": _curves_note(history, steps)
        + f" Drawn: the {evaluation.trained_loss_name(trained, 'training and validation loss')}"
        "; the test loss below is another number.",
        "samples": _sample_predictions(x_test, y_test, probabilities),
        "calibration": plots.reliability_diagram(
            evaluation.reliability_bins(probabilities, y_test),
            evaluation.expected_calibration_error(probabilities, y_test),
        ),
    }
    pairs = evaluation.most_confused_pairs(metrics["confusion_matrix"], PAIRS)
    figures["confused-pairs"] = pictures.confused_pairs(
        pairs, [_examples(x_test, y_test, probabilities, t, p) for t, p, _ in pairs]
    )
    wrong = np.flatnonzero(predicted != y_test)
    worst = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:GALLERY]
    figures["misclassified"] = pictures.misclassified(
        x_test[worst], y_test[worst], probabilities[worst]
    )
    figures.update(_inside_the_network(model, x_test[0]))
    figures.update(_holds_up(config, model, test_set))
    return figures


def _holds_up(config, model, test_set) -> dict:
    """The robustness suite's sample (the same pages for every run: cached) on this model,
    its chart, and the digits it read wrong. MNIST's digits only."""
    if config.get("settings", {}).get("dataset", "mnist") != "mnist":
        return {"robustness": None}
    suite = robustness.cached_suite(*test_set)
    results = robustness.score(
        suite, lambda digits: evaluation.predict_probabilities(model, digits)
    )
    rows = []
    for name in robustness.NAMES:
        wrong = [
            (suite.entries[(name, row["strength"])], index, predicted, row["strength"])
            for row in reversed(results["rows"])
            if row["change"] == name
            for index, predicted in zip(
                row["wrong_examples"], row["predicted_examples"], strict=True
            )
        ][:CHANGE_EXAMPLES]
        rows.append(
            (
                name,
                [entry.digits[i] for entry, i, _, _ in wrong],
                [f"{entry.labels[i]}→{p} @{s:g}" for entry, i, p, s in wrong],
            )
        )
    return {
        "robustness": results,
        "robustness-chart": pictures.share_panels(
            [(name, _against_strength(results, name)) for name in robustness.NAMES]
        ),
        "robustness-mistakes": pictures.changed_mistakes(rows),
    }


def _against_strength(results: dict, change: str) -> list[tuple[str, float]]:
    """(strength, accuracy) of one change, mild to strong, after the unchanged page's at 0."""
    rows = [row for row in results["rows"] if row["change"] == change]
    return [("0", results["baseline"])] + [(f"{r['strength']:g}", r["accuracy"]) for r in rows]


def _curves_note(history, steps) -> str:
    epochs = len({(row.get("member"), row["epoch"]) for row in history})
    if not steps:
        return f"Training and validation at the end of each of {epochs} epoch(s)."
    return (
        f"Training loss and accuracy at <span id='curve-points'>{len(steps)}</span> points "
        f"(steps.csv: the mean over the steps since the point before), validation at the end "
        f"of each of {epochs} epoch(s)."
    )


def _sample_predictions(x_test, y_test, probabilities) -> bytes:
    shown = min(SAMPLES, len(x_test))
    picks = np.random.default_rng(SAMPLE_SEED).choice(len(x_test), shown, replace=False)
    return pictures.prediction_grid(x_test[picks], y_test[picks], probabilities[picks], columns=8)


def _examples(x_test, y_test, probabilities, true: int, predicted: int) -> list[np.ndarray]:
    """The most confident mistakes of one kind (true digit read as `predicted`)."""
    where = np.flatnonzero((y_test == true) & (probabilities.argmax(axis=1) == predicted))
    order = np.argsort(-probabilities[where, predicted], kind="stable")
    return [x_test[i] for i in where[order][:PAIR_EXAMPLES]]


def _inside_the_network(model, digit: np.ndarray) -> dict[str, bytes]:
    """First-layer filters, and one digit's feature maps through every convolution."""
    keras = import_keras()
    members = members_of(model)
    network = members[0] if members else model  # an ensemble: its first member
    convolutions = [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convolutions:
        return {}
    probe = keras.Model(network.inputs[0], [layer.output for layer in convolutions])
    outputs = probe(datasets.normalise(digit[np.newaxis]), training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    maps = [
        (layer.name, np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)[0])
        for layer, out in zip(convolutions, outputs, strict=True)
    ]
    kernel = np.asarray(keras.ops.convert_to_numpy(convolutions[0].kernel), dtype=np.float32)
    return {
        "filters": pictures.filters(kernel),
        "feature-maps": pictures.feature_maps(digit, maps),
    }


def embedded_png(png: bytes, alt: str) -> str:
    """An <img> that carries its PNG inside the page (a data URI)."""
    data = base64.b64encode(png).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _holds_up_section(figures, table) -> str:
    results = figures["robustness"]
    if results is None:
        return "<p>The robustness suite changes MNIST's digits; this run is of another dataset.</p>"
    e = html.escape

    def value(row) -> str:
        return (
            f'<span data-change="{e(row["change"])}" data-strength="{row["strength"]:g}" '
            f'data-value="{row["accuracy"]!r}">{row["accuracy"]:.1%}</span>'
        )

    by_change = {}
    for row in results["rows"][1:]:
        by_change.setdefault(row["change"], []).append(row)
    columns = max(len(rows) for rows in by_change.values())
    cells = [
        [e(name), e(robustness.CHANGES[name][0])]
        + [f"{value(row)} <span class='muted'>({row['strength']:g})</span>" for row in rows]
        + [""] * (columns - len(rows))
        for name, rows in by_change.items()
    ]
    worst = results["worst"]
    return (
        f"<p>{results['per_change']} test digits (picked with seed {results['seed']}) changed "
        "in named ways at three strengths, each drawn on a page as dark ink on light paper and "
        "read back through the same preprocessing as <code>mnist-cnn predict</code>; a page "
        "it could not read counts as wrong. "
        f"The unchanged page: <b id='robustness-baseline' data-value='{results['baseline']!r}'>"
        f"{results['baseline']:.1%}</b>; the mean over the changes: "
        f"<b id='robustness-mean' data-value='{results['mean']!r}'>{results['mean']:.1%}</b>; "
        f"the worst: {worst['accuracy']:.1%} ({e(worst['change'])} {worst['strength']:g}). "
        "<code>mnist-cnn robustness RUN --per-change N</code> measures more digits.</p>"
        + table(
            cells,
            ["change", "what it does", "mild", "middle", "strong"][: 2 + columns],
            ' id="robustness-table" class="kv"',
        )
        + embedded_png(figures["robustness-chart"], "accuracy against strength, per change")
        + "<p class='muted'>Mistakes each change caused (digits read right on the unchanged "
        "page), as the model saw them after preprocessing: true → answer @ strength, the "
        "strongest first.</p>"
        + embedded_png(figures["robustness-mistakes"], "changed digits read wrong")
    )


def _render(title: str, config, metrics, figures) -> str:
    pairs = evaluation.most_confused_pairs(metrics["confusion_matrix"], PAIRS)
    errors = metrics["errors"]
    settings = config.get("settings", {})
    versions = config.get("versions", {})
    entry = config.get("entry", {})
    accuracy = metrics["test_accuracy"]
    calibration = metrics.get("calibration", {})
    e = html.escape

    def table(rows, head=None, attributes="") -> str:
        header = "<tr>" + "".join(f"<th>{e(str(h))}</th>" for h in head) + "</tr>" if head else ""
        body = "".join(
            "<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows
        )
        return f"<table{attributes}>{header}{body}</table>"

    summary_rows = [
        ("model", f"<b>{e(config.get('model', '?'))}</b>: {e(entry.get('summary', ''))}"),
        ("source", e(entry.get("source", ""))),
        ("dataset", e(settings.get("dataset", "mnist"))),
        ("parameters", f"{metrics.get('parameters', 0):,}"),
        ("seed", e(str(settings.get("seed")))),
        ("time to train", f"{metrics.get('train_seconds', 0):.1f} s in model.fit"),
        ("started", e(config.get("started", ""))),
        (
            "hardware",
            e(
                f"{versions.get('machine')} · {versions.get('cpu_count')} CPU cores · "
                f"{versions.get('platform')}"
            ),
        ),
        (
            "versions",
            e(
                ", ".join(
                    f"{k} {v}"
                    for k, v in versions.items()
                    if k not in ("machine", "cpu_count", "platform")
                )
            ),
        ),
    ]
    settings_rows = [(e(name), e(value)) for name, value in shown_settings(settings)]
    per_class = [
        (
            row["class"],
            f"{row['precision']:.2%}",
            f"{row['recall']:.2%}",
            f"{row['f1']:.4f}",
            f"{row['support']:,}",
        )
        for row in metrics["per_class"]
    ]
    matrix = metrics["confusion_matrix"]
    largest = max(max(row) for row in matrix)

    def cell(t: int, p: int, n: int) -> str:
        colour = pictures.count_colour(n, largest)
        style = f"background: rgb{colour}; color: {pictures.ink_on(colour)}"
        return f'<span class="{"diagonal" if t == p else ""}" style="{style}">{n}</span>'

    confusion_rows = [
        [f"<b>{t}</b>"] + [cell(t, p, n) for p, n in enumerate(row)] for t, row in enumerate(matrix)
    ]
    pair_rows = [(f"{t} → {p}", f"{n}") for t, p, n in pairs]

    parts = {
        "summary": table(summary_rows, attributes=' class="kv"')
        + "<h3>Every setting</h3>"
        + table(settings_rows, attributes=' class="kv"'),
        "curves": f"<p class='muted'>{figures['curves-note']}</p>"
        + embedded_png(
            figures["curves"], "accuracy and loss: every few steps, validation at each epoch's end"
        )
        if figures["curves"]
        else "<p>No training history: this model was trained elsewhere.</p>",
        "metrics": (
            f'<p><span class="big" id="test-accuracy" data-value="{accuracy!r}">'
            f"{accuracy:.2%}</span> test accuracy · {metrics['errors']} wrong of "
            f"{metrics['test_samples']:,} · "
            f"{e(evaluation.test_loss_name(calibration.get('temperature')))} "
            f"<span id='test-loss'>{metrics['test_loss']:.4f}</span></p>"
        ),
        "confusion": "<p class='muted'>Test digits by true class (rows) and answer "
        "(columns), coloured by count on a log scale.</p>"
        + table(
            confusion_rows, ["true \\ predicted", *range(len(matrix))], ' id="confusion-table"'
        ),
        "per-class": table(per_class, ["class", "precision", "recall", "F1", "support"]),
        "confused-pairs": '<div class="side">'
        + table(pair_rows, ["true → predicted", "count"])
        + embedded_png(figures["confused-pairs"], "examples of the most-confused pairs")
        + "</div>",
        "misclassified": f"<p class='muted'>The {min(GALLERY, errors)} most confident "
        f"mistakes of {errors}, worst first: true → predicted (confidence).</p>"
        + embedded_png(figures["misclassified"], "misclassified test digits"),
        "samples": "<p class='muted'>16 test digits picked with a fixed seed; green is right, "
        "red is wrong.</p>" + embedded_png(figures["samples"], "sample predictions"),
        "calibration": (
            f"<p>Temperature {calibration.get('temperature', 1.0):.3f}, fitted on the "
            f"validation split. Test ECE before: {calibration.get('test_ece_before', 0):.2%}, "
            f"after: {calibration.get('test_ece_after', 0):.2%}.</p>"
            + embedded_png(figures["calibration"], "reliability diagram")
        ),
        "robustness": _holds_up_section(figures, table),
        "filters": embedded_png(figures["filters"], "first-layer filters")
        if "filters" in figures
        else "<p>This model has no convolutions.</p>",
        "feature-maps": "<p class='muted'>The first test digit through each convolution "
        "(up to 8 channels each).</p>" + embedded_png(figures["feature-maps"], "feature maps")
        if "feature-maps" in figures
        else "<p>This model has no convolutions.</p>",
    }
    nav = " ".join(f'<a href="#{key}">{e(title)}</a>' for key, title in SECTIONS.items())
    sections = "\n".join(
        f'<section id="{key}"><h2>{e(title)}</h2>{parts[key]}</section>'
        for key, title in SECTIONS.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}: mnist-cnn report</title><style>{STYLE}</style></head>
<body><h1>{e(title)}</h1>
<p class="muted">mnist-cnn report · {accuracy:.2%} test accuracy</p>
<nav>{nav}</nav>
{sections}
</body></html>
"""
