"""`--for handwriting`: predict, serve and the page choose the same run (the one that read the
robustness suite best when it was trained, not the newest) and give the same answers.

Two real runs side by side: `fast`, and a 2-epoch trial on 6,000 digits made the newer one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from importlib import resources

import httpx
import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli, running_server
from paper import on_a_desk, on_lined_paper
from playwright.sync_api import expect

ROBUSTNESS = "robustness.json"


@pytest.fixture
def runs(tmp_path, fast_run, trained_run):
    """runs/fast (older) and runs/trial (newest), copies of the two real runs."""
    folder = tmp_path / "runs"
    shutil.copytree(fast_run, folder / "fast")
    shutil.copytree(trained_run["run_dir"], folder / "trial")
    now = time.time()
    os.utime(folder / "fast" / "model.keras", (now - 600, now - 600))
    os.utime(folder / "trial" / "model.keras", (now, now))
    return folder


@pytest.fixture
def photos(tmp_path, mnist):
    """The sample photo, and two MNIST test digits photographed on a desk and on lined paper."""
    _, (x_test, _) = mnist
    rng = np.random.default_rng(3)
    files = [str(resources.files("mnist_cnn.samples") / "photo-of-a-9.jpg")]
    for name, render, index in (("desk.jpg", on_a_desk, 11), ("lined.jpg", on_lined_paper, 12)):
        render(x_test[index], rng).convert("RGB").save(tmp_path / name, quality=90)
        files.append(str(tmp_path / name))
    return files


def suite_means(*runs) -> tuple[list[float], int]:
    """Each run's mean over the suite rows (changed pages) that every run has."""
    rows = []
    for run in runs:
        figures = json.loads((run / ROBUSTNESS).read_text())["rows"]
        rows.append({(r["change"], r["strength"]): r["accuracy"] for r in figures})
    shared = set.intersection(*(set(r) for r in rows)) - {("none", 0)}
    return [sum(r[key] for key in shared) / len(shared) for r in rows], len(shared)


def same(probabilities: list[float]):
    """Equal to the printed probabilities, but for float noise between processes (~1e-10)."""
    return pytest.approx(probabilities, abs=1e-6)


def answers(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_predict_serve_and_page_choose_the_best_measured_run_and_agree(runs, photos, browser):
    # An older run, measured before `clipped` joined the suite: compared on the rows shared.
    older = json.loads((runs / "trial" / ROBUSTNESS).read_text())
    older["rows"] = [row for row in older["rows"] if row["change"] != "clipped"]
    (runs / "trial" / ROBUSTNESS).write_text(json.dumps(older))
    (fast_mean, trial_mean), shared = suite_means(runs / "fast", runs / "trial")
    assert fast_mean > trial_mean  # so the newest run is not the one to choose

    chosen = run_cli("predict", "--for", "handwriting", "--runs", str(runs), "--json", *photos)
    assert chosen.returncode == 0, chosen.stderr
    assert f"for handwriting: {runs / 'fast'} (fast; robustness suite {fast_mean:.1%}" in (
        chosen.stderr
    )
    assert f"over {shared} changes and strengths, the best of 2 measured runs" in chosen.stderr
    assert "each digit also read turned +20/-20 degrees" in chosen.stderr
    # The chosen run, read as it is and turned either way (the mean): the library's answers.
    from mnist_cnn.inference.classifier import Classifier
    from mnist_cnn.inference.handwriting import TURNS

    read = Classifier(runs / "fast", turns=TURNS).predict_images(photos)
    by_file = dict(zip(photos, answers(chosen.stdout), strict=True))
    for photo, (_, answer) in zip(photos, read, strict=True):
        assert by_file[photo]["probabilities"] == same(answer.probabilities)
    named = answers(run_cli("predict", str(runs / "fast"), "--json", *photos).stdout)
    assert [a["probabilities"] for a in named] != [by_file[p]["probabilities"] for p in photos]
    assert by_file[photos[0]]["digit"] == 9

    with running_server("--for=handwriting", "--runs", str(runs)) as url:
        model = httpx.get(f"{url}/api/model").json()
        assert model["name"] == "fast"
        assert model["chosen"]["run"] == str(runs / "fast")
        assert model["chosen"]["suite_mean"] == pytest.approx(fast_mean, abs=1e-4)
        assert model["chosen"]["turns"] == [20.0, -20.0]
        for photo in photos:
            with open(photo, "rb") as f:
                served = httpx.post(f"{url}/api/predict", files={"file": f}).json()
            assert served["digit"] == by_file[photo]["digit"]
            assert served["probabilities"] == same(by_file[photo]["probabilities"])
        page = browser.new_page()
        page.goto(url)
        expect(page.locator("#model-line")).to_contain_text("chosen for handwriting")
        for photo in photos:
            with page.expect_response("**/api/predict") as response:
                page.get_by_label("Or upload a photo of a digit").set_input_files(photo)
            shown = response.value.json()
            expect(page.locator("#digit")).to_have_text(str(by_file[photo]["digit"]))
            assert shown["probabilities"] == same(by_file[photo]["probabilities"])
        page.close()


def test_for_handwriting_says_what_is_wrong(runs, photos):
    both = run_cli("predict", "--for", "handwriting", str(runs / "fast"), photos[0])
    assert_one_line_error(both, "give a model", "or --for handwriting, not both")
    served = run_cli("serve", str(runs / "fast"), "--for", "handwriting")
    assert_one_line_error(served, "give a model", "or --for handwriting, not both")
    for run in ("fast", "trial"):
        (runs / run / ROBUSTNESS).unlink()
    unmeasured = run_cli("predict", "--for", "handwriting", "--runs", str(runs), photos[0])
    assert_one_line_error(unmeasured, "has robustness figures", "mnist-cnn train robust")
    nothing = run_cli("predict", photos[0])
    assert nothing.returncode == 2


def test_reading_turned_views_too_reads_turned_digits_better(fast_run, mnist):
    """The turns `--for handwriting` adds: digits turned by 40 degrees read better, upright
    ones as well as before, and each answer is the mean of the views read one by one."""
    from mnist_cnn.inference.classifier import Classifier, turned
    from mnist_cnn.inference.handwriting import TURNS

    _, (x_test, y_test) = mnist
    digits, labels = x_test[:500], y_test[:500]
    leaning = np.concatenate([turned(digits[:250], 40), turned(digits[250:], -40)])
    plain, turning = Classifier(fast_run), Classifier(fast_run, turns=TURNS)

    def accuracy(classifier, images):
        return float(np.mean(classifier.probabilities(images).argmax(axis=1) == labels))

    assert accuracy(turning, leaning) > accuracy(plain, leaning) + 0.05
    assert accuracy(turning, digits) >= accuracy(plain, digits) - 0.004
    views = [digits[:20], turned(digits[:20], TURNS[0]), turned(digits[:20], TURNS[1])]
    one_by_one = np.mean([plain.probabilities(view) for view in views], axis=0)
    assert turning.probabilities(digits[:20]) == pytest.approx(one_by_one, abs=1e-6)
    assert np.array_equal(turned(digits[:5], 0), digits[:5])
