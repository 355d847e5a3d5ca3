"""`train()`: one network (or an ensemble's members), fitted and written to a run directory.

The flow is the tutorial's, made reproducible: fix the seed, load and normalise the data,
hold out a validation split of the training set (never the test set), fit, then touch the
test set once at the end. Every setting and version goes into config.json. `resume`
carries an interrupted run on; `fit_member` trains one member of an ensemble anywhere.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from mnist_cnn import rundir
from mnist_cnn.atomic import atomic_write_json
from mnist_cnn.backend import import_keras, versions
from mnist_cnn.data import datasets
from mnist_cnn.models import loading
from mnist_cnn.models.ensemble import ensemble_of
from mnist_cnn.stopwatch import Stopwatch
from mnist_cnn.training import tracking
from mnist_cnn.training.callbacks import CHECKPOINTS, HistoryWriter, StopRequest, history_of
from mnist_cnn.training.config import (
    MemberRunner,
    RunResult,
    TrainConfig,
    TrainingInterrupted,
    config_from_run,
    entry_of,
    resolve_settings,
)
from mnist_cnn.training.finish import test_run
from mnist_cnn.training.fit import calibrate, fit_one, fit_split, load_data

keras = import_keras()  # quietly: TensorFlow's start-up notices muted, as for the command


log = logging.getLogger(__name__)  # the command shows its lines before waits


def train(
    config: TrainConfig,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    run_dir: str | os.PathLike | None = None,
    test: bool = True,
    member_runner: MemberRunner | None = None,
    tracked_under: str | None = None,
) -> RunResult:
    """Train one network and write its complete run directory.

    `callbacks` run after ours at every epoch (benchmarks and sweeps use them to watch).
    `run_dir`: this folder instead of a new OUT/NAME-STAMP. `test=False` stops before the
    test set (a sweep's trial): `finish()` scores the run later, if it is the one chosen.
    `member_runner` trains an ensemble's members elsewhere, side by side.
    `config.track`: log the run to this MLflow server too (`tracked_under`: as a child of
    this MLflow run, a sweep's); `RunResult.tracking` says what it did not take.
    """
    watch = Stopwatch()
    config = replace(config, dataset=datasets.dataset_name(config.dataset))  # folder: absolute
    entry = entry_of(config)
    settings = resolve_settings(config, entry)
    log.info(f"loading {config.dataset} and building {entry.name} ...")
    with watch.phase("data"):
        data, about_data = load_data(config)
    if run_dir is None:
        run_dir = rundir.new_run_dir(config.out, entry.name)
    else:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    recorded = {
        "model": entry.name,
        "settings": settings,
        "entry": entry.describe(),
        "data_dir": str(datasets.dataset_dir(config.dataset, config.data_dir)),
        "versions": versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if about_data is not None:
        recorded["data"] = about_data
    atomic_write_json(run_dir / rundir.CONFIG, recorded)
    loaded = (data, about_data)
    tracker = tracking.start_run(config.track, run_dir, entry.name, settings, tracked_under)
    callbacks = [*callbacks, *tracking.callbacks(tracker, run_dir, config.ensemble > 1)]
    try:
        result = _run(
            config, entry, settings, run_dir, loaded, callbacks, [], test, member_runner, watch
        )
    except BaseException as exc:
        tracking.finish_run(tracker, run_dir, {}, tracking.status_of(exc))
        raise
    result.tracking = tracking.finish_run(tracker, run_dir, result.metrics)
    return result


def resume(
    run_dir: str | os.PathLike,
    callbacks: Sequence = (),
    verbose="auto",
    test: bool = True,
    member_runner: MemberRunner | None = None,
) -> RunResult:
    """Continue an interrupted run from its last completed epoch, with its own settings."""
    run_dir = Path(run_dir)
    if (run_dir / rundir.MODEL).exists():
        raise rundir.RunError(f"{run_dir} has finished already (it has its {rundir.MODEL})")
    config, settings = config_from_run(run_dir)
    config.verbose = verbose
    entry = entry_of(config)
    history = history_of(run_dir)
    watch = Stopwatch()
    with watch.phase("data"):
        loaded = load_data(config)
    return _run(
        config, entry, settings, run_dir, loaded, callbacks, history, test, member_runner, watch
    )


def _member_file(state: Path, index: int, suffix: str = ".keras") -> Path:
    return state / f"member-{index + 1}{suffix}"


def _fit_members(
    config, entry, settings, fit_data, validation_data, writer, callbacks, state, stop, runner
):
    """Fit each member in turn (or, given a `runner`, elsewhere side by side); a finished
    member of an ensemble is kept on disk.

    Member i trains with seed + i: the same model a single run with that seed trains, so a
    benchmark can build the ensemble from single runs.
    """
    if runner is not None and config.ensemble > 1:
        todo = [i for i in range(config.ensemble) if not _member_file(state, i).exists()]
        runner(state.parent, todo)
        for index in todo:  # their epochs and steps, as each member's own task wrote them
            writer.member = index + 1
            steps = rundir.read_history(_member_file(state, index, ".steps.csv"))
            for row in rundir.read_history(_member_file(state, index, ".history.csv")):
                writer.put(row, [r for r in steps if r["epoch"] == row["epoch"]])
        rundir.write_history(writer.steps_path, writer.step_rows)
        rundir.write_history(writer.path, writer.rows)
        seconds = sum(r.get("seconds", 0.0) for r in writer.rows if r.get("member") - 1 in todo)
        return [loading.load_model(_member_file(state, i)) for i in range(config.ensemble)], seconds
    members, train_seconds = [], 0.0
    for index in range(config.ensemble):
        writer.member = index + 1 if config.ensemble > 1 else None
        finished = _member_file(state, index)
        if finished.exists():  # a resumed ensemble: this member was done
            members.append(loading.load_model(finished))
            continue
        keras.utils.set_random_seed(config.seed + index)
        with stop.listening():
            model, seconds = fit_one(
                entry,
                settings,
                fit_data,
                validation_data,
                [writer, *callbacks],
                config.verbose,
                _member_file(state, index, ""),
                stop,
            )
        train_seconds += seconds
        if stop.requested:
            done = sum(1 for row in writer.rows if row.get("member") == writer.member)
            raise TrainingInterrupted(state.parent, done, stop.cut_at)
        members.append(model)
        if config.ensemble > 1:
            rundir.save_model(model, finished)
    return members, train_seconds


def fit_member(run_dir: str | os.PathLike, index: int) -> None:
    """Train member `index` (0-based) of an ensemble run on its own, from what its run
    directory holds: a cluster task, on any node that sees the run directory.

    The same model the local loop trains (seed + index, the same digits and recipe). It
    resumes from the member's own checkpoints, and writes checkpoints/member-N.keras and
    member-N.history.csv, which the run then gathers.
    """
    run_dir = Path(run_dir)
    config, settings = config_from_run(run_dir)
    entry = entry_of(config)
    ((x_train, y_train), _), _ = load_data(config)
    fit_data, validation_data, _ = fit_split(settings, x_train, y_train)
    state = run_dir / CHECKPOINTS
    history_file = _member_file(state, index, ".history.csv")
    steps_file = _member_file(state, index, ".steps.csv")
    if history_file.exists():
        done = rundir.read_history(history_file)
        steps = rundir.read_history(steps_file, missing_ok=True)
    else:  # begun by a local run that was stopped, or not begun
        done = [row for row in history_of(run_dir) if row.get("member") == index + 1]
        steps = [row for row in history_of(run_dir, rundir.STEPS) if row.get("member") == index + 1]
    stop = StopRequest()
    writer = HistoryWriter(history_file, stop, done, steps_file, steps)
    writer.member = index + 1
    keras.utils.set_random_seed(config.seed + index)
    model, _ = fit_one(
        entry,
        settings,
        fit_data,
        validation_data,
        [writer],
        0,
        _member_file(state, index, ""),
        stop,
    )
    rundir.save_model(model, _member_file(state, index))


def _run(
    config,
    entry,
    settings,
    run_dir: Path,
    loaded,
    callbacks,
    history: list[dict],
    test: bool,
    runner: MemberRunner | None,
    watch: Stopwatch,
) -> RunResult:
    """Fit every member (skipping those a resumed run finished), calibrate on the
    validation split, then (`test`) evaluate on the test set and write everything.

    `loaded` is what `_load` returns: the data, and what was read of a folder dataset.
    `watch` times the phases, for timings.json."""
    ((x_train, y_train), test_set), about_data = loaded
    with watch.phase("data"):
        fit_data, validation_data, validation = fit_split(settings, x_train, y_train)
    stop = StopRequest()
    steps = history_of(run_dir, rundir.STEPS)
    writer = HistoryWriter(run_dir / rundir.HISTORY, stop, history, run_dir / rundir.STEPS, steps)
    state = run_dir / CHECKPOINTS
    # Time spent in epochs before a resume counts too.
    train_seconds = sum(row.get("seconds", 0.0) for row in history)
    fitting = time.perf_counter()
    try:
        members, seconds = _fit_members(
            config,
            entry,
            settings,
            fit_data,
            validation_data,
            writer,
            callbacks,
            state,
            stop,
            runner,
        )
        model = members[0] if len(members) == 1 else ensemble_of(members, f"{entry.name}-ensemble")
        rundir.save_model(model, run_dir / rundir.MODEL)
        rundir.record_model_hash(run_dir)
    except OSError as exc:  # disk full or a folder gone: what is saved so far can be resumed
        raise OSError(
            exc.errno,
            f"{exc.strerror or exc}; once it can be written, resume with: "
            f"mnist-cnn train --resume {run_dir}",
        ) from None
    train_seconds += seconds
    shutil.rmtree(state, ignore_errors=True)
    watch.add("fit", seconds)
    watch.add("build, compile, save", time.perf_counter() - fitting - seconds)

    with watch.phase("calibration"):
        calibration = calibrate(model, validation)
        atomic_write_json(run_dir / rundir.CALIBRATION, calibration)
    result = RunResult(
        run_dir, entry.name, settings["epochs"], {}, train_seconds, writer.rows, about_data
    )
    if test:
        test_run(
            result,
            model,
            config,
            settings,
            (x_train, y_train),
            test_set,
            calibration["temperature"],
            watch,
        )
    atomic_write_json(run_dir / rundir.TIMINGS, watch.record())
    return result
