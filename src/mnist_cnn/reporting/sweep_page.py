"""sweep.html: a sweep on one page, ranked by validation, with the selected trial's test figure."""

from __future__ import annotations

import html
from pathlib import Path

from mnist_cnn.atomic import atomic_write_text
from mnist_cnn.models.settings import flag_name, shown_value
from mnist_cnn.reporting import curves, plots
from mnist_cnn.reporting.report import STYLE, embedded_png

PAGE = "sweep.html"


def write_page(sweep_dir: Path, record: dict, plan, log_scale=frozenset()) -> Path:
    """Write SWEEP_DIR/sweep.html from what sweep.json holds and the trials' histories;
    the settings in `log_scale` (rates) are drawn on a log axis."""

    e = html.escape
    trials = record["trials"]
    fields = list(plan.values)
    selected = record.get("selected") or {}
    drawn = [curves.curve_of_run(t["trial_id"], t["run_dir"]) for t in trials]
    drawn = [curve for curve in drawn if curve is not None]
    head = ["rank", "trial", *[flag_name(f) for f in fields]]
    head += ["validation accuracy", curves.loss_name(drawn, "validation loss")]
    head += ["epochs", "status", "test accuracy"]
    rows = []
    for rank, trial in enumerate(trials, 1):
        chosen = trial["trial_id"] == selected.get("trial_id")
        cells = [rank, e(trial["trial_id"])]
        cells += [e(_value(f, trial["settings"].get(f))) for f in fields]
        cells += [
            "—" if trial["val_accuracy"] is None else f"{trial['val_accuracy']:.2%}",
            "—" if trial["val_loss"] is None else f"{trial['val_loss']:.4f}",
            trial["epochs_done"],
            e(trial["status"]),
            f"{selected['test_accuracy']:.2%}" if chosen else "",
        ]
        mark = ' class="selected"' if chosen else ""
        rows.append(f"<tr{mark}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = (
        "<table id='ranking'><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )
    scored = [t for t in trials if t["val_accuracy"] is not None]
    points = {
        f: [(t["settings"][f], t["val_accuracy"]) for t in scored if f in t["settings"]]
        for f in fields
    }
    by_setting = embedded_png(
        plots.accuracy_by_setting(points, log_scale), "validation accuracy against each setting"
    )
    chart = curves.note(drawn) + embedded_png(
        plots.overlaid_curves(drawn), "every trial's training and validation curves, overlaid"
    )
    if selected:
        report = Path(selected["run_dir"]) / "report.html"
        link = report.relative_to(sweep_dir) if report.is_relative_to(sweep_dir) else report
        chosen = (
            f"<p>Trial <b>{e(selected['trial_id'])}</b> ({e(_settings(selected['settings']))}), "
            f"chosen by {e(record['selected_by'])}: validation accuracy "
            f"{selected['val_accuracy']:.2%}.</p>"
            f"<p>Its test accuracy, read once after the choice: "
            f"<span class='big' id='test-accuracy'>{selected['test_accuracy']:.2%}</span></p>"
            f"<p><a href='{e(str(link))}'>Its report</a> · run directory "
            f"<code>{e(selected['run_dir'])}</code></p>"
        )
    else:
        chosen = f"<p>No trial was selected: the sweep is {e(record['status'])}.</p>"
    title = f"Sweep of {len(trials)} trials"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mnist-cnn: {e(title)}</title><style>{STYLE} tr.selected td {{ font-weight: 700; }}</style>
</head><body><h1>{e(title)}</h1>
<p class="muted">{e(record["sweep_dir"])} · {e(record["status"])} · ranked on the validation
split only; the test set is read once, for the selected trial.</p>
<section id="selected"><h2>Selected trial</h2>{chosen}</section>
<section id="ranking-section"><h2>Trials, ranked by validation</h2>{table}</section>
<section id="by-setting"><h2>Validation accuracy against each setting</h2>{by_setting}</section>
<section id="curves"><h2>Every trial's curves</h2>{chart}</section>
</body></html>
"""
    path = sweep_dir / PAGE
    atomic_write_text(path, page)
    return path


def _value(key: str, value) -> str:
    """A swept value as its flag takes it (rates to 4 digits)."""
    return f"{value:.4g}" if isinstance(value, float) else shown_value(key, value)


def _settings(settings: dict) -> str:
    return ", ".join(f"{flag_name(k)}={_value(k, v)}" for k, v in settings.items())
