"""The run directory: where `train` writes a run and where every other command reads it.

runs/NAME-YYYYmmdd-HHMMSS/
    config.json   every setting, the seed, versions
    history.csv   one row per epoch
    steps.csv     training loss and accuracy every few steps
    model.keras   the trained model
    metrics.json  test metrics and the confusion matrix
    plots/*.png   the pictures
    report.html   all of it on one page
    timings.json  where the command's time went
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

from mnist_cnn.atomic import atomic_write, atomic_write_json, atomic_write_text
from mnist_cnn.data.datasets import sha256_of

CONFIG = "config.json"
HISTORY = "history.csv"
STEPS = "steps.csv"
TIMINGS = "timings.json"
MODEL = "model.keras"
METRICS = "metrics.json"
CALIBRATION = "calibration.json"
ROBUSTNESS = "robustness.json"
PLOTS = "plots"
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")  # .h5: Keras 2's format, as notebooks save it
MODEL_SUFFIXES = (*KERAS_SUFFIXES, ".onnx")


class RunError(Exception):
    """A run directory or model file that is missing, incomplete or unreadable."""


def new_run_dir(out: str | os.PathLike, name: str) -> Path:
    """Create and return a fresh `OUT/NAME-YYYYmmdd-HHMMSS` folder (suffixed if taken)."""
    out = Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 100):
            path = out / (f"{name}-{stamp}" if attempt == 1 else f"{name}-{stamp}-{attempt}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as exc:
        raise RunError(
            f"cannot create a run directory under {out}: {exc.strerror}; "
            f"choose a writable folder with --out"
        ) from None
    raise RunError(f"too many runs named {name}-{stamp} under {out}")


def finished_runs(out: str | os.PathLike = "runs") -> list[Path]:
    """The finished run directories under `out`, newest model first."""
    models = sorted(Path(out).glob(f"*/{MODEL}"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not models:
        raise RunError(
            f"no finished runs under {out}/; train one first ('mnist-cnn train fast') "
            f"or give a run directory or .keras file"
        )
    return [model.parent for model in models]


def newest_run(out: str | os.PathLike = "runs") -> Path:
    """The most recently finished run directory under `out` (the one whose model is newest)."""
    return finished_runs(out)[0]


def run_to_serve(out: str | os.PathLike = "runs") -> tuple[Path, str | None]:
    """The run to serve when none is named, and a warning or None: the newest run trained on
    the whole training set, so that a quick `--limit` trial is never served by surprise; if
    there are only trials, the newest, with a warning that says what it is."""
    runs = finished_runs(out)
    limits = [
        read_json(run / CONFIG).get("settings", {}).get("limit")
        if (run / CONFIG).is_file()
        else None
        for run in runs
    ]
    for run, limit in zip(runs, limits, strict=True):
        if limit is None:
            return run, None
    return runs[0], (
        f"{runs[0]} is a quick trial on {limits[0]:,} training images (--limit); "
        "train a full run ('mnist-cnn train fast') or name the run to serve"
    )


def model_path(path: str | os.PathLike, suffixes: tuple[str, ...] = KERAS_SUFFIXES) -> Path:
    """The model file behind a run directory or a model path, checked to exist.

    `suffixes` are the kinds of file the caller can run (`.onnx` too, for inference).
    """
    path = Path(path)
    if path.is_dir():
        candidate = path / MODEL
        if not candidate.is_file():
            raise RunError(f"{path} has no {MODEL}; is it a finished run directory?")
        return candidate
    kinds = ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]
    if not path.exists():
        raise RunError(f"{path} does not exist; give a run directory or a {kinds} file")
    if path.suffix not in suffixes:
        raise RunError(f"{path} is not a {kinds} model file or a run directory")
    return path


def run_dir_of(path: str | os.PathLike) -> Path | None:
    """The run directory that holds a model, if the model lives in one."""
    folder = model_path(path, MODEL_SUFFIXES).parent
    return folder if (folder / CONFIG).is_file() else None


def dataset_of(path: str | os.PathLike) -> str:
    """The dataset a model was trained on, from its run's config ("mnist" outside a run)."""
    run = run_dir_of(path)
    if run is None:
        return "mnist"
    return read_json(run / CONFIG).get("settings", {}).get("dataset", "mnist")


def temperature_of(model_file: str | os.PathLike) -> float:
    """The calibration temperature stored beside a model (1.0, no change, if there is none)."""
    path = Path(model_file).parent / CALIBRATION
    return float(read_json(path)["temperature"]) if path.is_file() else 1.0


def read_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path} is missing") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"{path} is not readable JSON ({exc}); the run is damaged") from None


WHOLE_COLUMNS = ("member", "epoch", "step")


def write_history(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write history.csv (one row per epoch) or steps.csv atomically."""
    buffer = io.StringIO()
    fields = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def read_history(path: str | os.PathLike, missing_ok: bool = False) -> list[dict]:
    """The rows of history.csv or steps.csv; with `missing_ok`, none for a file not written
    (a run from before steps.csv, or one stopped before its first epoch ended)."""
    if missing_ok and not Path(path).exists():
        return []
    with Path(path).open(newline="") as f:
        return [
            {
                key: int(value) if key in WHOLE_COLUMNS else float(value)
                for key, value in row.items()
                if value != ""
            }
            for row in csv.DictReader(f)
        ]


def save_model(model, path: str | os.PathLike) -> None:
    """Save a Keras model atomically, so a killed run never leaves half a model.keras."""
    atomic_write(path, lambda tmp: model.save(tmp))


def record_model_hash(run_dir: str | os.PathLike) -> None:
    """Add the sha256 of the run's model.keras to its config.json (rewritten atomically)."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / CONFIG)
    config["model_sha256"] = sha256_of(run_dir / MODEL)
    atomic_write_json(run_dir / CONFIG, config)


def check_model_hash(file: Path) -> None:
    """Refuse a run's model.keras whose bytes are not the ones its training recorded."""
    config_file = file.parent / CONFIG
    if file.name != MODEL or not config_file.is_file():
        return
    expected = read_json(config_file).get("model_sha256")
    if expected is not None and sha256_of(file) != expected:
        raise RunError(
            f"{file}: its sha256 does not match the one recorded in {CONFIG} at training "
            f"({expected[:12]}...); the file was changed or damaged since. Restore it or retrain"
        )
