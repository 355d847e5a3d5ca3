"""Reading people's own digits through the real `mnist-cnn predict` command.

The `fast` model is trained once for real; the inputs are files on disk, made from MNIST
test digits the way people make them: photos of paper, in a corner, at any size.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import error_lines, last_json, run_cli
from paper import photograph
from PIL import Image

PHOTOS = 1000


@pytest.fixture(scope="session")
def photos(tmp_path_factory, mnist) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(2026)
    _, (x_test, y_test) = mnist
    labels = {}
    for i, index in enumerate(rng.choice(len(x_test), PHOTOS, replace=False)):
        path = folder / f"photo-{i:04d}.jpg"
        photograph(x_test[index], rng).save(path, "JPEG", quality=int(rng.integers(60, 91)))
        labels[str(path)] = int(y_test[index])
    return folder, labels


def test_photographed_digits_are_read(fast_run, photos):
    folder, labels = photos
    result = run_cli("predict", fast_run, str(folder), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == PHOTOS
    right = sum(answer["digit"] == labels[answer["file"]] for answer in answers)
    print(f"\nphotographed digits read right: {right}/{PHOTOS}")
    assert right / PHOTOS >= 0.98


def test_a_naive_resize_of_the_same_files_reads_far_fewer(fast_run, photos):
    from mnist_cnn.inference.classifier import Classifier

    folder, labels = photos
    classifier = Classifier(fast_run)
    files = sorted(labels)
    naive = np.stack([np.asarray(Image.open(f).convert("L").resize((28, 28))) for f in files])
    right = sum(
        a.digit == labels[f] for a, f in zip(classifier.predict_arrays(naive), files, strict=True)
    )
    print(f"\nnaive resize read right: {right}/{PHOTOS}")
    assert right / PHOTOS < 0.5


# --- bad inputs: each gets its own one-line error, the others still get answers -------------


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _save(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory, mnist) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    _, (x_test, y_test) = mnist
    big = np.kron(x_test[0], np.ones((6, 6), np.uint8))  # a 7
    rgba = np.zeros((168, 168, 4), np.uint8)
    rgba[..., 3] = big  # black ink, transparent paper
    jpeg = _save(Image.fromarray(255 - big), "JPEG")
    files = {
        "not-an-image.png": b"this is text, not a picture",
        "empty.png": b"",
        "zero.png": _png_header_only(0, 0),
        "one-pixel.png": _save(Image.new("L", (1, 1), 0)),
        "white-page.png": _save(Image.new("L", (300, 200), 255)),
        "black-page.png": _save(Image.new("L", (300, 200), 0)),
        "sixteen-bit.png": _save(Image.fromarray(big.astype(np.uint16) * 257)),
        "transparent.png": _save(Image.fromarray(rgba, "RGBA")),
        "huge-declared.png": _png_header_only(30000, 30000),
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "good.png": _save(Image.fromarray(255 - big)),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


EXPECTED_ERRORS = {
    "not-an-image.png": "not an image",
    "empty.png": "not an image",
    "zero.png": "",
    "one-pixel.png": "no digit found",
    "white-page.png": "no digit found",
    "black-page.png": "no digit found",
    "huge-declared.png": "too large",
    "truncated.jpg": "damaged or truncated",
}


def test_each_bad_input_gets_its_own_error(fast_run, bad_inputs):
    result = run_cli("predict", fast_run, str(bad_inputs), "--json")
    assert result.returncode == 2  # some inputs were bad, and every input was answered
    answers = {Path(a["file"]).name: a for a in map(json.loads, result.stdout.splitlines())}
    assert set(answers) == set(EXPECTED_ERRORS) | {"good.png", "sixteen-bit.png", "transparent.png"}
    for name, fragment in EXPECTED_ERRORS.items():
        assert "error" in answers[name], name
        assert fragment in answers[name]["error"], (name, answers[name]["error"])
        assert "\n" not in answers[name]["error"]
    for name in ("good.png", "sixteen-bit.png", "transparent.png"):
        assert answers[name]["digit"] == 7, (name, answers[name])


def test_bad_inputs_in_text_mode_are_one_line_each_on_stderr(fast_run, bad_inputs):
    result = run_cli("predict", fast_run, str(bad_inputs))
    errors = error_lines(result.stderr)
    assert len(errors) == len(EXPECTED_ERRORS)
    assert all(line.startswith("mnist-cnn predict: ") and ": error: " in line for line in errors)
    assert "Traceback" not in result.stderr
    assert len(result.stdout.strip().splitlines()) == 3


def test_stdin_globs_show_and_unsure(fast_run, bad_inputs, tmp_path):
    good = (bad_inputs / "good.png").read_bytes()
    import subprocess

    from conftest import COMMAND

    piped = subprocess.run(
        [COMMAND, "predict", fast_run, "-", "--json"], input=good, capture_output=True
    )
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["digit"] == 7

    result = run_cli(
        "predict",
        fast_run,
        str(bad_inputs / "g*.png"),
        "--show",
        "--out",
        str(tmp_path),
        "--min-confidence",
        "1.0",
        "--json",
        "--top-k",
        "2",
    )
    answer = last_json(result.stdout)
    assert answer["unsure"] is True and len(answer["top_k"]) == 2
    seen = np.asarray(Image.open(answer["show"]))
    assert seen.shape == (28, 28) and seen.max() > 200 and seen[0].max() == 0


def test_predict_needs_inputs(fast_run):
    result = run_cli("predict", fast_run)
    assert result.returncode == 2 and "--index" in result.stderr


# --- several digits in one image -----------------------------------------------------------

NUMBERS = 200


@pytest.fixture(scope="session")
def numbers(tmp_path_factory, mnist) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("numbers")
    return folder, write_numbers(folder, mnist, NUMBERS)


def write_numbers(folder: Path, mnist, count: int, seed: int = 7) -> dict[str, str]:
    """Numbers of 2-6 MNIST test digits, written in a row with gaps, dark on light paper."""
    rng = np.random.default_rng(seed)
    _, (x_test, y_test) = mnist
    truth = {}
    for n in range(count):
        picks = rng.choice(len(x_test), int(rng.integers(2, 7)), replace=False)
        cell = int(28 * rng.uniform(2, 4))
        gaps = [int(cell * rng.uniform(0.0, 0.4)) for _ in picks]
        width = len(picks) * cell + sum(gaps) + 2 * cell
        canvas = np.zeros((2 * cell, width))
        left = cell
        for index, gap in zip(picks, gaps, strict=True):
            digit = np.asarray(Image.fromarray(x_test[index]).resize((cell, cell), Image.BICUBIC))
            top = int(rng.integers(0, cell // 3))
            canvas[top : top + cell, left : left + cell] = np.maximum(
                canvas[top : top + cell, left : left + cell], digit
            )
            left += cell + gap
        paper = 225 - canvas * 0.8 + rng.normal(0, 3, canvas.shape)
        path = folder / f"number-{n:03d}.png"
        Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).save(path)
        truth[str(path)] = "".join(str(y_test[i]) for i in picks)
    return truth


def test_multi_reads_whole_numbers(fast_run, numbers):
    folder, truth = numbers
    result = run_cli("predict", fast_run, str(folder), "--multi", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == NUMBERS
    right = sum(a["number"] == truth[a["file"]] for a in answers)
    wrong_length = sum(len(a["number"]) != len(truth[a["file"]]) for a in answers)
    print(f"\nnumbers read entirely right: {right}/{NUMBERS}; wrong digit count: {wrong_length}")
    assert right / NUMBERS >= 0.95
    assert all(len(a["digits"]) == len(a["number"]) for a in answers)


def test_calibration_after_temperature_scaling(fast_run):
    """The temperature fitted on the validation split makes confidence honest on the test set."""
    run = Path(fast_run)
    calibration = json.loads((run / "calibration.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())["calibration"]
    print(
        f"\ntest ECE: {metrics['test_ece_before']:.2%} before, "
        f"{metrics['test_ece_after']:.2%} after (T={calibration['temperature']:.3f})"
    )
    assert "validation" in calibration["fitted_on"]
    assert metrics["test_ece_after"] <= 0.01
    assert metrics["test_ece_after"] < metrics["test_ece_before"]
