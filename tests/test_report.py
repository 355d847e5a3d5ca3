"""report.html and compare.html, opened in Debian's Chromium through Playwright."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import error_lines, last_json, run_cli

from mnist_cnn.reporting.report import REPORT, SECTIONS

ALL_IMAGES_LOADED = """() => Array.from(document.images).map(
    (img) => ({alt: img.alt, width: img.naturalWidth, done: img.complete}))"""


@pytest.fixture
def open_page(browser):
    pages = []

    def open_file(path: Path):
        page = browser.new_page()
        page.goto(Path(path).resolve().as_uri())
        pages.append(page)
        return page

    yield open_file
    for page in pages:
        page.close()


def test_train_writes_a_complete_report(trained_run, open_page):
    run = Path(trained_run["run_dir"])
    metrics = json.loads((run / "metrics.json").read_text())
    page = open_page(run / REPORT)

    images = page.evaluate(ALL_IMAGES_LOADED)
    # curves, pairs, mistakes, samples, reliability, robustness chart and its mistakes,
    # 2 inside the network
    assert len(images) == 9
    assert all(img["done"] and img["width"] > 0 for img in images), images

    for key, title in SECTIONS.items():
        section = page.locator(f"section#{key}")
        assert section.count() == 1, key
        assert section.locator("h2").text_content() == title

    shown = page.locator("#test-accuracy")
    assert float(shown.get_attribute("data-value")) == metrics["test_accuracy"]
    assert shown.text_content() == f"{metrics['test_accuracy']:.2%}"

    # the curves are drawn from steps.csv: every row of it a point
    steps = (run / "steps.csv").read_text().splitlines()[1:]
    assert page.locator("section#curves #curve-points").text_content() == str(len(steps))
    assert len(steps) >= 20

    cells = page.locator("#confusion-table td span").all_text_contents()
    assert len(cells) == 100
    assert sum(int(c) for c in cells) == 10_000
    diagonal = page.locator("#confusion-table .diagonal").all_text_contents()
    assert sum(int(c) for c in diagonal) == 10_000 - metrics["errors"]
    # coloured by count: the largest dark blue, none white
    colour = "(el) => getComputedStyle(el).backgroundColor"
    largest = max(map(max, metrics["confusion_matrix"]))
    cell = page.locator("#confusion-table td span", has_text=re.compile(f"^{largest}$")).first
    assert cell.evaluate(colour) == "rgb(8, 48, 107)"
    none = page.locator("#confusion-table td span", has_text=re.compile("^0$")).first
    assert none.evaluate(colour) == "rgb(247, 251, 255)"

    # How it holds up: the figures are those `mnist-cnn robustness RUN --json` measures anew
    result = run_cli("robustness", str(run), "--json")
    assert result.returncode == 0, result.stderr
    measured = last_json(result.stdout)
    assert measured["per_change"] == 100
    other_sources = {"box-filled", "coarse-binary", "clipped", "blunt"}  # other collections'
    assert other_sources <= {row["change"] for row in measured["rows"]}
    assert json.loads((run / "robustness.json").read_text())["rows"] == measured["rows"]
    section = page.locator("section#robustness")
    baseline = section.locator("#robustness-baseline")
    assert float(baseline.get_attribute("data-value")) == measured["baseline"]
    assert float(section.locator("#robustness-mean").get_attribute("data-value")) == pytest.approx(
        measured["mean"], abs=1e-12
    )
    shown = section.locator("#robustness-table span[data-value]")
    assert shown.count() == len(measured["rows"]) - 1  # every change at every strength
    for row in measured["rows"][1:]:
        cell = section.locator(
            f'span[data-change="{row["change"]}"][data-strength="{row["strength"]:g}"]'
        )
        assert float(cell.get_attribute("data-value")) == row["accuracy"], row
        assert cell.text_content() == f"{row['accuracy']:.1%}"
    assert "worst" in section.text_content()
    assert measured["mean"] < measured["baseline"]  # the changes do cost something
    refused = run_cli("robustness", str(run), "--per-change", "0")
    assert refused.returncode == 2 and refused.stdout == ""
    assert len(error_lines(refused.stderr)) == 1 and "--per-change 0" in refused.stderr

    per_class = page.locator("section#per-class tr")
    assert per_class.count() == 11  # a header and ten digits
    summary = page.locator("section#summary").text_content()
    for fact in ("conv32-conv64-dense128", "seed", "keras", "CPU cores", "6000"):
        assert fact in summary, fact


def test_report_command_rewrites_it(trained_run, tmp_path):
    run = Path(trained_run["run_dir"])
    before = (run / REPORT).stat().st_mtime_ns
    result = run_cli("report", str(run), "--json")
    assert result.returncode == 0, result.stderr
    assert last_json(result.stdout)["report"] == str(run / REPORT)
    assert (run / REPORT).stat().st_mtime_ns > before
    missing = run_cli("report", str(tmp_path))
    assert missing.returncode == 2 and "run directory" in missing.stderr


def test_compare_two_runs(trained_run, fast_run, tmp_path, open_page):
    out = tmp_path / "compare.html"
    runs = [trained_run["run_dir"], fast_run]
    result = run_cli("compare", *runs, "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    accuracies = [json.loads((Path(r) / "metrics.json").read_text())["test_accuracy"] for r in runs]
    assert [row["test_accuracy"] for row in summary["runs"]] == accuracies
    assert summary["disagreements"] > 0
    for example in summary["examples"]:
        assert len(set(example["answers"].values())) > 1

    page = open_page(out)
    images = page.evaluate(ALL_IMAGES_LOADED)
    assert len(images) == 2 and all(img["width"] > 0 for img in images)
    assert page.locator("section#runs tr").count() == 3
    assert str(summary["disagreements"]) in page.locator("section#disagreements").text_content()

    table = run_cli("compare", *runs, "--out", str(out))
    assert f"disagree: {summary['disagreements']}" in table.stdout


def test_the_changed_mistakes_labels_fit_before_the_digits():
    """A long change's name ("coarse-binary") is not cut by the first digit drawn after it:
    the labels' column is as wide as the longest one."""
    import io

    import numpy as np
    from PIL import Image

    from mnist_cnn.reporting import pictures

    digit = np.zeros((28, 28), np.uint8)
    digit[8:20, 12:16] = 255
    short = [("rotation", np.stack([digit] * 3), ["1"] * 3)]
    long = [("coarse-binary", np.stack([digit] * 3), ["1"] * 3)]
    width = lambda rows: Image.open(io.BytesIO(pictures.changed_mistakes(rows))).width  # noqa: E731
    text = pictures._font(13).getlength("coarse-binary")
    assert width(long) - width(short) >= text + 2 * pictures.PAD - 90  # widened past 90 px
    assert width(short) == 90 + 3 * (28 * pictures.SCALE + pictures.PAD) + pictures.PAD
