"""Pictures and numbers that agree (issue 26): one-epoch runs drawn as curves on compare and
sweep pages, each loss named with what it is, one name for per-class accuracy (recall), and
one name per setting (the flag's) wherever a setting is shown or swept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import run_cli

from mnist_cnn import rundir


def _curve_rows(page: str) -> dict[str, dict]:
    """The per-run rows of a page's #curve-points table: what its chart draws."""
    rows = re.findall(
        r"<tr data-run='([^']+)' data-per-step='(\w+)'><td>[^<]*</td>"
        r"<td class='training-points'>(\d+)</td><td class='validation-points'>(\d+)</td>",
        page,
    )
    return {
        name: {"per_step": per_step == "true", "training": int(t), "validation": int(v)}
        for name, per_step, t, v in rows
    }


def _settings(run: str | Path) -> dict:
    return json.loads((Path(run) / rundir.CONFIG).read_text())["settings"]


def _steps(run: str | Path) -> list[str]:
    return (Path(run) / rundir.STEPS).read_text().splitlines()[1:]


def test_compare_draws_one_epoch_runs_as_step_curves(fast_run, trained_run, tmp_path):
    """Problem 1 (and 4): a one-epoch `fast` run is a curve of every steps.csv row against
    epochs counted in steps, not a lone dot; the page names settings by their flags."""
    other = trained_run["run_dir"]
    out = tmp_path / "compare.html"
    result = run_cli("compare", fast_run, other, "--out", str(out))
    assert result.returncode == 0, result.stderr
    page = out.read_text()

    assert "training steps" in re.search(r"id='curves-note' data-axis='([^']*)'", page)[1]
    drawn = _curve_rows(page)
    assert set(drawn) == {Path(fast_run).name, Path(other).name}
    for run in (fast_run, other):
        row = drawn[Path(run).name]
        assert row["per_step"] and row["training"] == len(_steps(run)) > 1
        assert row["validation"] == _settings(run)["epochs"]
    assert _settings(fast_run)["epochs"] == 1  # the case that was a dot

    # the settings by flag name and value (fast: one-cycle at 0.01; the other: 0.001)
    settings = page.split('<section id="settings">')[1].split("</section>")[0]
    assert re.search(r"<td>learning-rate</td><td>0.01</td><td>0.001</td>", settings)
    assert "select-best no" in settings and "augment off" in settings
    for key in ("learning_rate", "select_best", "augmentation", "False", "None"):
        assert key not in settings, key
    assert "cross-entropy of the calibrated probabilities" in page  # the test loss's column
    assert "test loss: cross-entropy of the calibrated probabilities" in result.stdout


def test_sweep_page_draws_its_trials_as_step_curves(fast_run, trained_run, tmp_path):
    """Problem 1 (and 2, 4): sweep.html, written from recorded trials without Ray, draws each
    trial's steps, names its validation loss with the label smoothing it was trained with,
    and heads its columns with flag names."""
    from mnist_cnn.reporting import sweep_page
    from mnist_cnn.scale.sweep import LOG_SCALE, Plan

    trials = []
    for run, rate in ((fast_run, 0.01), (trained_run["run_dir"], 0.001)):
        last = rundir.read_history(Path(run) / rundir.HISTORY)[-1]
        trials.append(
            {
                "trial_id": Path(run).name,
                "run_dir": str(run),
                "settings": {"learning_rate": rate, "select_best": False},
                "val_accuracy": last["val_accuracy"],
                "val_loss": last["val_loss"],
                "epoch": last["epoch"],
                "epochs_done": last["epoch"],
                "status": "finished",
            }
        )
    record = {"sweep_dir": str(tmp_path), "status": "finished", "trials": trials}
    plan = Plan({"model": "fast"}, {"learning_rate": [0.01, 0.001], "select_best": [False]})
    page = sweep_page.write_page(tmp_path, record, plan, LOG_SCALE).read_text()

    drawn = _curve_rows(page)
    for trial in trials:
        row = drawn[trial["trial_id"]]
        assert row["per_step"] and row["training"] == len(_steps(trial["run_dir"])) > 1
    ranking = page.split("id='ranking'>")[1].split("</table>")[0]
    assert "<th>learning-rate</th>" in ranking and "<th>select-best</th>" in ranking
    assert "<td>no</td>" in ranking and "learning_rate" not in ranking
    smoothings = " or ".join(
        f"{s:g}" for s in sorted({_settings(t["run_dir"])["label_smoothing"] for t in trials})
    )
    assert f"validation loss (with each run's label smoothing, {smoothings}, as trained)" in (
        ranking
    )


@pytest.fixture(scope="module")
def evaluated(fast_run) -> str:
    result = run_cli("evaluate", fast_run)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_evaluate_names_its_test_loss_with_the_calibration(fast_run, evaluated):
    """Problem 2: the test loss says it is the calibrated probabilities' cross-entropy, with
    the temperature the run recorded (not the label-smoothed val_loss Keras printed)."""
    temperature = json.loads((Path(fast_run) / rundir.METRICS).read_text())["calibration"][
        "temperature"
    ]
    metrics = json.loads((Path(fast_run) / rundir.METRICS).read_text())
    expected = (
        f"test loss (cross-entropy of the calibrated probabilities, temperature "
        f"{temperature:.3g}): {metrics['test_loss']:.4f}"
    )
    assert expected in evaluated


def test_evaluate_calls_per_class_accuracy_recall(evaluated):
    """Problem 3: the per-class column is "recall", as in the report, explained once."""
    header = next(line for line in evaluated.splitlines() if line.startswith("class "))
    assert header.split() == ["class", "recall", "precision", "f1", "support"]
    assert "recall: the share of each true digit read right" in evaluated


def test_report_names_settings_by_flag_and_each_loss(fast_run):
    """Problems 2 and 4: the report's settings are the flags' names and values; its curves
    say their loss is label-smoothed as trained, its test loss that it is calibrated."""
    page = (Path(fast_run) / "report.html").read_text()
    settings = page.split("<h3>Every setting</h3>")[1].split("</table>")[0]
    for name, value in (("learning-rate", "0.01"), ("select-best", "no"), ("augment", "off")):
        assert f"<tr><td>{name}</td><td>{value}</td></tr>" in settings, name
    for key in ("learning_rate", "select_best", "augmentation", "False", "None"):
        assert key not in settings, key
    assert _settings(fast_run)["label_smoothing"] == 0.1
    assert "training and validation loss (with label smoothing 0.1, as trained)" in page
    assert "test loss (cross-entropy of the calibrated probabilities, temperature" in page


def test_sweep_set_takes_the_config_key_and_the_flag_alike():
    """Problem 4: `sweep --set learning_rate=...` is the same setting as learning-rate=...,
    and the plan it makes is one train accepts (checked without running a sweep)."""
    from mnist_cnn.cli.sweep import _sweep_values
    from mnist_cnn.scale.sweep import Plan, check_plan

    by_key = _sweep_values(
        ["learning_rate=0.01,0.001", "select_best=no", "augmentation=off"], samples=None
    )
    by_flag = _sweep_values(["learning-rate=0.01,0.001", "select-best=no", "augment=off"], None)
    assert (
        by_key
        == by_flag
        == {
            "learning_rate": [0.01, 0.001],
            "select_best": [False],
            "augmentation": ["off"],
        }
    )
    check_plan(Plan({"model": "fast"}, by_key))
