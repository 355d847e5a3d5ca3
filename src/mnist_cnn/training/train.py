"""`train()`: one network, trained with `model.fit`, written to a run directory.

The flow is the tutorial's, made reproducible: fix the seed, load and normalise the data,
hold out a validation split of the training set (never the test set), fit, then touch the
test set once at the end. Every setting and version goes into config.json.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import keras
import numpy as np

from mnist_cnn import evaluation, rundir
from mnist_cnn.atomic import atomic_write_json
from mnist_cnn.backend import versions
from mnist_cnn.data import NUM_CLASSES, datasets, sources
from mnist_cnn.models import architecture, catalogue, loading
from mnist_cnn.models import settings as recipe_settings
from mnist_cnn.models.augmentation import RandomAffine, RandomStrokes
from mnist_cnn.models.ensemble import ensemble_of
from mnist_cnn.reporting import pictures, plots, report
from mnist_cnn.stopwatch import Stopwatch
from mnist_cnn.training import checkpoints

PREVIEW_SAMPLES = 16
MNIST_TRAIN = 60_000
ONE_CYCLE_START_DIVISOR = 25  # one-cycle starts at peak/25 (as in Smith's and PyTorch's)


class TrainingError(Exception):
    """Settings that cannot be trained with; the message names the setting."""


@dataclass
class TrainConfig:
    """What to train and how. `None` means "as the entry's recipe says".

    What to train is one of: `model`, a catalogue name; `arch`, a pasted layer list or
    FILE.py[:FUNCTION]; `init`, a saved model to fine-tune. `name` names one of your own.
    """

    model: str | None = None
    arch: str | None = None
    init: str | None = None
    name: str | None = None
    # The recipe (settings.Recipe), field by field.
    epochs: int | None = None
    batch_size: int | None = None
    validation_split: float | None = None
    loss: str | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    schedule: str | None = None
    warmup: float | None = None
    steps_per_execution: int | None = None
    label_smoothing: float | None = None
    precision: str | None = None
    select_best: bool | None = None
    augmentation: str | dict | None = None  # "on", "off", "rotation=15,shift=0.1", or a dict
    # The run.
    seed: int = 42
    dataset: str = "mnist"
    data_dir: str | None = None
    out: str = "runs"
    limit: int | None = None  # train on the first N training images, for quick trials
    mix_mnist: int = 0  # MNIST training digits mixed into a folder dataset's training part
    ensemble: int = 1  # train this many members (seeds seed, seed+1, ...) and average them
    verbose: int | str = "auto"


@dataclass
class RunResult:
    run_dir: Path
    model: str
    epochs: int
    metrics: dict
    train_seconds: float
    history: list[dict] = field(default_factory=list)
    data: dict | None = None  # for a folder dataset: what was read and skipped

    def summary(self) -> dict:
        summary = {
            "run_dir": str(self.run_dir),
            "model": self.model,
            "epochs": self.epochs,
            "ensemble": self.metrics.get("ensemble", 1),
            "test_accuracy": self.metrics["test_accuracy"],
            "test_loss": self.metrics["test_loss"],
            "train_seconds": round(self.train_seconds, 3),
        }
        return summary if self.data is None else {**summary, "data": self.data}


def entry_of(config: TrainConfig) -> catalogue.Entry:
    """The network to train: a catalogue entry, or one of the user's (architecture.py)."""
    return architecture.entry_for(config.model, config.arch, config.init, config.name)


def resolve_settings(config: TrainConfig, entry: catalogue.Entry | None = None) -> dict:
    """The entry's recipe with the config's changes applied, and the run's own settings,
    all checked for sense."""
    entry = entry or entry_of(config)
    try:
        settings = recipe_settings.resolve(
            entry.recipe, {key: getattr(config, key) for key in recipe_settings.RECIPE_FIELDS}
        )
    except recipe_settings.SettingsError as exc:
        raise TrainingError(str(exc)) from None
    whole = recipe_settings.is_whole
    if not whole(config.seed):
        raise TrainingError(f"--seed must be a whole number, got {config.seed!r}")
    if config.limit is not None and (not whole(config.limit) or config.limit < 10):
        raise TrainingError(f"--limit must be at least 10 images, got {config.limit!r}")
    if not whole(config.ensemble) or config.ensemble < 1:
        raise TrainingError(f"--ensemble must be at least 1, got {config.ensemble!r}")
    if not isinstance(config.dataset, str) or not isinstance(config.data_dir, (str, type(None))):
        raise TrainingError("--dataset and --data-dir must be text")
    if not whole(config.mix_mnist) or not 0 <= config.mix_mnist <= MNIST_TRAIN:
        raise TrainingError(f"--mix-mnist must be 0 to {MNIST_TRAIN:,}, got {config.mix_mnist!r}")
    if config.mix_mnist and datasets.folder_of(config.dataset) is None:
        raise TrainingError("--mix-mnist mixes MNIST into --dataset folder:PATH; give one")
    settings.update(
        seed=config.seed,
        dataset=config.dataset,
        limit=config.limit,
        ensemble=config.ensemble,
        mix_mnist=config.mix_mnist,
    )
    return settings


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float):
    """Hold out the last `fraction` of the training set, as Keras's validation_split does."""
    n_val = int(round(len(x) * fraction))
    if n_val == 0:
        return (x, y), None
    return (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:])


class HistoryWriter(keras.callbacks.Callback):
    """Rewrites history.csv after every epoch, with the epoch's wall time, and steps.csv:
    training loss and accuracy every few steps, so that a run of one epoch has curves too.

    Rows are keyed by (member, epoch): an epoch run again after a resume replaces its rows,
    so the files always hold every epoch exactly once. An interrupted epoch is not written.
    """

    STEP_ROWS = 200  # steps.csv keeps about this many rows per member, however long the run

    def __init__(
        self,
        path: Path,
        stop: checkpoints.StopRequest,
        rows: list[dict] = (),
        steps_path: Path | None = None,
        step_rows: list[dict] = (),
    ):
        super().__init__()
        self.path = path
        self.stop = stop
        self.rows: list[dict] = list(rows)
        self.steps_path = steps_path
        done = {(r.get("member"), r["epoch"]) for r in self.rows}
        self.step_rows = [r for r in step_rows if (r.get("member"), r["epoch"]) in done]
        self.member: int | None = None  # set while training an ensemble's members

    def on_train_begin(self, logs=None):
        steps, epochs = self.params.get("steps") or 1, self.params.get("epochs") or 1
        self._every = max(1, steps * epochs // self.STEP_ROWS)

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        self._epoch = epoch
        self._epoch_steps: list[dict] = []
        self._seen = (0, {})  # steps so far this epoch, and their metrics' running totals

    def on_train_batch_end(self, batch, logs=None):
        """Keras's logs are this epoch's running means: their totals' difference since the
        last row is the mean over just those steps."""
        done, (before, totals) = batch + 1, self._seen
        steps = self.params.get("steps") or done
        if done - before < self._every and done < steps or not logs:
            return
        now = {k: float(logs[k]) * done for k in ("loss", "accuracy") if k in logs}
        row = {"step": self._epoch * steps + done, "epoch": self._epoch + 1}
        row.update({k: (v - totals.get(k, 0.0)) / (done - before) for k, v in now.items()})
        self._epoch_steps.append(row if self.member is None else {"member": self.member, **row})
        self._seen = (done, now)

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.requested:
            return
        row = {} if self.member is None else {"member": self.member}
        row["epoch"] = epoch + 1
        row.update({k: float(v) for k, v in (logs or {}).items()})
        row["seconds"] = time.perf_counter() - self._started
        self.put(row, self._epoch_steps)
        if self.steps_path is not None:
            rundir.write_history(self.steps_path, self.step_rows)
        rundir.write_history(self.path, self.rows)

    def put(self, row: dict, steps: list[dict] = ()) -> None:
        """Add an epoch's row (and its steps), replacing those of the same (member, epoch)."""
        row = dict(row) if self.member is None else {**row, "member": self.member}
        key = (row.get("member"), row["epoch"])
        self.rows = [r for r in self.rows if (r.get("member"), r["epoch"]) != key] + [row]
        self.rows.sort(key=lambda r: (r.get("member", 0), r["epoch"]))
        kept = [r for r in self.step_rows if (r.get("member"), r["epoch"]) != key]
        self.step_rows = sorted(
            kept + [dict(r) for r in steps], key=lambda r: (r.get("member", 0), r["step"])
        )

    def member_rows(self, member: int | None) -> list[dict]:
        return [r for r in self.rows if r.get("member") == member]


def _labels_for(loss: str, y: np.ndarray, classes: int) -> np.ndarray:
    return keras.utils.to_categorical(y, classes) if loss == "categorical" else y


def build(entry: catalogue.Entry, settings: dict) -> keras.Model:
    """Build an entry under the recipe's dtype policy (e.g. mixed bf16), with the recipe's
    augmentation in front; the global policy is restored."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(settings["precision"])
    try:
        strengths = dict(settings["augmentation"] or {})
        # Made before the network's own layers, as when it was `best`'s first: same seeds.
        pens = {key: strengths.pop(key, 0.0) for key in ("stroke", "erase")}
        front = [RandomAffine(**strengths)] if any(strengths.values()) else []
        if any(pens.values()):
            front.append(RandomStrokes(**pens))
        return entry.build(*front)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def learning_rate(settings: dict, steps_per_epoch: int):
    """A constant rate, or Keras's CosineDecay with a linear warm-up (a one-cycle schedule)."""
    if settings["schedule"] == "constant":
        return settings["learning_rate"]
    total = settings["epochs"] * steps_per_epoch
    warmup = int(total * settings["warmup"])
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=settings["learning_rate"] / ONE_CYCLE_START_DIVISOR,
        decay_steps=max(1, total - warmup),
        warmup_target=settings["learning_rate"],
        warmup_steps=warmup,
    )


def _compile(model, settings: dict, steps_per_epoch: int) -> None:
    optimizer = getattr(keras.optimizers, recipe_settings.OPTIMIZERS[settings["optimizer"]])
    losses = {
        "sparse": keras.losses.SparseCategoricalCrossentropy(),
        "categorical": keras.losses.CategoricalCrossentropy(
            label_smoothing=settings["label_smoothing"]
        ),
    }
    model.compile(
        optimizer=optimizer(learning_rate(settings, steps_per_epoch)),
        loss=losses[settings["loss"]],
        metrics=["accuracy"],
        steps_per_execution=settings["steps_per_execution"],
    )


def fit_one(entry, settings, fit_data, validation_data, callbacks, verbose, state: Path, stop):
    """Build, compile and fit one model, checkpointed in `state`; return it and the fit seconds.

    If `state` holds a checkpoint (a resumed run), training continues after its last epoch.
    """
    model = build(entry, settings)
    steps_per_epoch = -(-len(fit_data[0]) // settings["batch_size"])
    _compile(model, settings, steps_per_epoch)
    history = next(c for c in callbacks if isinstance(c, HistoryWriter))
    done = history.member_rows(history.member)
    best = None
    ours = [checkpoints.StopOnRequest(stop)]
    if settings["select_best"] and validation_data is not None:
        best = checkpoints.BestWeights(state / "best.weights.h5", stop, done)
        ours.append(best)
    # The history is written before the checkpoint: killed in between, the epoch runs again
    # after the resume and its row is replaced, never doubled.
    ordered = [history, *ours, checkpoints.EpochCheckpoint(state, stop)]
    ordered += [c for c in callbacks if c is not history]
    started = time.perf_counter()
    model.fit(
        *fit_data,
        batch_size=settings["batch_size"],
        epochs=settings["epochs"],
        validation_data=validation_data,
        callbacks=ordered,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    if best is not None and not stop.requested:
        best.restore()
    return model, seconds


def calibrate(model: keras.Model, validation) -> dict:
    """Fit temperature scaling on the validation split (never the test set)."""
    if validation is None:
        return {"temperature": 1.0, "fitted_on": "nothing (no validation split)"}
    x_val, y_val = validation
    probabilities = evaluation.predict_probabilities(model, x_val)
    temperature = evaluation.fit_temperature(probabilities, y_val)
    return {
        "temperature": temperature,
        "fitted_on": f"validation split ({len(y_val)} digits)",
        "validation_ece_before": evaluation.expected_calibration_error(probabilities, y_val),
        "validation_ece_after": evaluation.expected_calibration_error(
            evaluation.apply_temperature(probabilities, temperature), y_val
        ),
    }


class TrainingInterrupted(Exception):
    """Ctrl-C stopped training; the run directory can be resumed."""

    def __init__(self, run_dir: Path, epochs_done: int):
        super().__init__(
            f"interrupted after {epochs_done} complete epoch(s); resume with: "
            f"mnist-cnn train --resume {run_dir}"
        )
        self.run_dir = run_dir


# Trains members of an ensemble elsewhere (cluster.py): given the run directory and the
# 0-based indices of the members still to train, it returns once each has written
# checkpoints/member-N.keras and member-N.history.csv (fit_member).
MemberRunner = Callable[[Path, list[int]], None]


def train(
    config: TrainConfig,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    run_dir: str | os.PathLike | None = None,
    test: bool = True,
    member_runner: MemberRunner | None = None,
) -> RunResult:
    """Train one network and write its complete run directory.

    `callbacks` run after ours at every epoch (benchmarks and sweeps use them to watch).
    `run_dir`: this folder instead of a new OUT/NAME-STAMP. `test=False` stops before the
    test set (a sweep's trial): `finish()` scores the run later, if it is the one chosen.
    `member_runner` trains an ensemble's members elsewhere, side by side.
    """
    watch = Stopwatch()
    config = replace(config, dataset=datasets.dataset_name(config.dataset))  # folder: absolute
    entry = entry_of(config)
    settings = resolve_settings(config, entry)
    with watch.phase("data"):
        data, about_data = _load(config)
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
    return _run(config, entry, settings, run_dir, loaded, callbacks, [], test, member_runner, watch)


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
    history = _history_of(run_dir)
    watch = Stopwatch()
    with watch.phase("data"):
        loaded = _load(config)
    return _run(
        config, entry, settings, run_dir, loaded, callbacks, history, test, member_runner, watch
    )


def finish(run_dir: str | os.PathLike) -> RunResult:
    """Score a run fitted with `test=False` (a sweep's chosen trial): the test set, read
    once, then metrics, pictures and report, as `train` writes them."""
    run_dir = Path(run_dir)
    if (run_dir / rundir.METRICS).exists():
        raise rundir.RunError(f"{run_dir} has been tested already (it has its {rundir.METRICS})")
    config, settings = config_from_run(run_dir)
    model = loading.load_model(rundir.model_path(run_dir))
    (train_set, test_set), about_data = _load(config)
    history = _history_of(run_dir)
    seconds = sum(row.get("seconds", 0.0) for row in history)
    name = rundir.read_json(run_dir / rundir.CONFIG)["model"]
    result = RunResult(run_dir, name, settings["epochs"], {}, seconds, history, about_data)
    temperature = float(rundir.read_json(run_dir / rundir.CALIBRATION)["temperature"])
    watch = Stopwatch()
    _test(result, model, config, settings, train_set, test_set, temperature, watch)
    atomic_write_json(run_dir / rundir.TIMINGS, watch.record())
    return result


def _history_of(run_dir: Path, name: str = rundir.HISTORY) -> list[dict]:
    """The rows of history.csv (or steps.csv: `name`), if it was written."""
    return rundir.read_history(run_dir / name, missing_ok=True)


def config_from_run(run_dir: Path) -> tuple[TrainConfig, dict]:
    """The TrainConfig a run was started with, from its config.json, checked for sense.

    The recorded recipe is the one resumed, field by field, whatever the catalogue says now;
    a network of the user's is rebuilt from its recorded layer list, file or model.
    """
    recorded = rundir.read_json(run_dir / rundir.CONFIG)
    settings = recorded.get("settings") if isinstance(recorded, dict) else None
    if not isinstance(settings, dict) or not isinstance(recorded.get("model"), str):
        raise rundir.RunError(f"{run_dir / rundir.CONFIG} has no model and settings to resume")
    entry = recorded.get("entry")
    origin = entry.get("origin") if isinstance(entry, dict) else None
    try:
        recipe = {key: settings[key] for key in recipe_settings.RECIPE_FIELDS}
        if recipe["augmentation"] is None:
            recipe["augmentation"] = recipe_settings.AUGMENT_OFF  # None: "as the recipe says"
        network = (
            {"model": recorded["model"]}
            if origin is None
            else {**architecture.request_of(origin), "name": recorded["model"]}
        )
        config = TrainConfig(
            **network,
            **recipe,
            seed=settings["seed"],
            dataset=settings["dataset"],
            data_dir=recorded.get("data_dir"),
            out=str(run_dir.parent),
            limit=settings["limit"],
            mix_mnist=settings["mix_mnist"],
            ensemble=settings["ensemble"],
        )
        now = resolve_settings(config)
    except (KeyError, TypeError, ValueError, TrainingError, catalogue.UnknownModelError) as exc:
        reason = f"no {exc} setting" if isinstance(exc, KeyError) else str(exc)
        raise rundir.RunError(
            f"{run_dir / rundir.CONFIG}: cannot resume from these settings ({reason})"
        ) from None
    changed = sorted(k for k in settings if now.get(k) != settings[k])
    if changed:
        raise rundir.RunError(
            f"{run_dir}: the settings in {rundir.CONFIG} ({', '.join(changed)}) cannot be "
            f"trained the same way now; train it again"
        )
    return config, settings


def _load(config: TrainConfig):
    """The data to train on, and for a folder dataset what was read (else None)."""
    parts, folder = sources.load_parts(config.dataset, config.data_dir)
    if folder is not None and not (len(folder.train.labels) and len(folder.test.labels)):
        raise TrainingError(
            f"{config.dataset}: {len(folder.train.labels)} training and "
            f"{len(folder.test.labels)} test images; training needs some of both"
        )
    (x_train, y_train), test = ((p.images, p.labels) for p in (parts["train"], parts["test"]))
    about = None if folder is None else folder.describe()
    if config.limit is not None:
        x_train, y_train = x_train[: config.limit], y_train[: config.limit]
    if config.mix_mnist:
        (x_mnist, y_mnist), _ = sources.load_dataset("mnist", config.data_dir)
        rng = np.random.default_rng(config.seed)
        picks = rng.permutation(len(x_mnist))[: config.mix_mnist]
        x_train = np.concatenate([x_train, x_mnist[picks]])
        y_train = np.concatenate([y_train, y_mnist[picks]])
        order = rng.permutation(len(x_train))  # mixed, so the validation split holds both
        x_train, y_train = x_train[order], y_train[order]
    return ((x_train, y_train), test), about


def _fit_split(settings: dict, x_train, y_train):
    """The digits to fit on, and the validation split held out of them (or None)."""
    (x_fit, y_fit), validation = split_validation(x_train, y_train, settings["validation_split"])
    labels = lambda y: _labels_for(settings["loss"], y, NUM_CLASSES)  # noqa: E731
    fit_data = (datasets.normalise(x_fit), labels(y_fit))
    validation_data = (
        None if validation is None else (datasets.normalise(validation[0]), labels(validation[1]))
    )
    return fit_data, validation_data, validation


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
            raise TrainingInterrupted(state.parent, len(writer.rows))
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
    ((x_train, y_train), _), _ = _load(config)
    fit_data, validation_data, _ = _fit_split(settings, x_train, y_train)
    state = run_dir / checkpoints.CHECKPOINTS
    history_file = _member_file(state, index, ".history.csv")
    steps_file = _member_file(state, index, ".steps.csv")
    if history_file.exists():
        done = rundir.read_history(history_file)
        steps = rundir.read_history(steps_file, missing_ok=True)
    else:  # begun by a local run that was stopped, or not begun
        done = [row for row in _history_of(run_dir) if row.get("member") == index + 1]
        steps = [
            row for row in _history_of(run_dir, rundir.STEPS) if row.get("member") == index + 1
        ]
    stop = checkpoints.StopRequest()
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
        fit_data, validation_data, validation = _fit_split(settings, x_train, y_train)
    stop = checkpoints.StopRequest()
    steps = _history_of(run_dir, rundir.STEPS)
    writer = HistoryWriter(run_dir / rundir.HISTORY, stop, history, run_dir / rundir.STEPS, steps)
    state = run_dir / checkpoints.CHECKPOINTS
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
        _test(
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


def _test(result, model, config, settings, train_set, test_set, temperature, watch) -> None:
    """The test set, read once for this finished model: metrics.json, pictures, report."""
    x_test, y_test = test_set
    evaluating = time.perf_counter()
    raw = evaluation.predict_probabilities(model, x_test)
    probabilities = evaluation.apply_temperature(raw, temperature)
    metrics = evaluation.evaluate(probabilities, y_test)
    metrics["calibration"] = {
        "temperature": temperature,
        "test_ece_before": evaluation.expected_calibration_error(raw, y_test),
        "test_ece_after": evaluation.expected_calibration_error(probabilities, y_test),
    }
    metrics.update(
        train_seconds=result.train_seconds,
        epochs=settings["epochs"],
        ensemble=config.ensemble,
        parameters=int(model.count_params()),
    )
    atomic_write_json(result.run_dir / rundir.METRICS, metrics)
    watch.add("evaluation", time.perf_counter() - evaluating)
    with watch.phase("pictures"):
        write_plots(
            result.run_dir,
            train_set,
            test_set,
            probabilities,
            metrics,
            result.history,
            datasets.class_names(config.dataset),
        )
    with watch.phase("report"):
        report.write_report_of(result.run_dir, model, test_set, probabilities)
    result.metrics = metrics


def write_plots(run_dir: Path, train_set, test_set, probabilities, metrics, history, classes):
    """The run's pictures: samples, curves, a grid of test predictions, the confusion matrix."""
    (x_train, y_train), (x_test, y_test) = train_set, test_set
    folder = run_dir / rundir.PLOTS
    pictures.sample_grid(x_train, y_train, folder / "samples.png", classes)
    steps = _history_of(run_dir, rundir.STEPS)
    plots.training_curves(history, folder / "training_curves.png", steps)
    shown = min(PREVIEW_SAMPLES, len(x_test))
    picks = np.random.default_rng(0).choice(len(x_test), shown, replace=False)
    pictures.prediction_grid(
        x_test[picks], y_test[picks], probabilities[picks], folder / "predictions.png"
    )
    pictures.confusion_matrix(metrics["confusion_matrix"], folder / "confusion_matrix.png")
