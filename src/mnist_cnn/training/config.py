"""What to train and how: `TrainConfig`, checked into settings, and read back from a run.

`None` in a config means "as the entry's recipe says"; `resolve_settings` applies the
config's changes to the recipe and checks every value before anything is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mnist_cnn import rundir
from mnist_cnn.models import architecture, catalogue
from mnist_cnn.models import settings as recipe_settings


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
    batch_norm_refresh: int | None = None
    # The run.
    seed: int = 42
    dataset: str = "mnist"
    data_dir: str | None = None
    out: str = "runs"
    limit: int | None = None  # train on the first N training images, for quick trials
    mix_mnist: int = 0  # MNIST training digits mixed into a folder dataset's training part
    ensemble: int = 1  # train this many members (seeds seed, seed+1, ...) and average them
    verbose: int | str = "auto"
    track: str | None = None  # an MLflow tracking URI: the run is logged there too


@dataclass
class RunResult:
    run_dir: Path
    model: str
    epochs: int
    metrics: dict
    train_seconds: float
    history: list[dict] = field(default_factory=list)
    data: dict | None = None  # for a folder dataset: what was read and skipped
    tracking: str | None = None  # what MLflow did not log (a server that stopped answering)

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


class TrainingInterrupted(Exception):
    """Ctrl-C stopped training; the run directory can be resumed."""

    def __init__(self, run_dir: Path, epochs_done: int, cut_at: str | None = None):
        """`cut_at`: where Ctrl-C stopped the next epoch ("step 120 of 422"), if it did."""
        cut = f" (epoch {epochs_done + 1} stopped at {cut_at}; it runs again)" if cut_at else ""
        super().__init__(
            f"interrupted after {epochs_done} complete epoch(s){cut}; resume with: "
            f"mnist-cnn train --resume {run_dir}"
        )
        self.run_dir = run_dir


# Trains members of an ensemble elsewhere (cluster.py): given the run directory and the
# 0-based indices of the members still to train, it returns once each has written
# checkpoints/member-N.keras and member-N.history.csv (fit_member).
MemberRunner = Callable[[Path, list[int]], None]


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
    try:
        recipe_settings.check_run(
            config.seed,
            config.limit,
            config.ensemble,
            config.mix_mnist,
            config.dataset,
            config.data_dir,
        )
    except recipe_settings.SettingsError as exc:
        raise TrainingError(str(exc)) from None
    settings.update(
        seed=config.seed,
        dataset=config.dataset,
        limit=config.limit,
        ensemble=config.ensemble,
        mix_mnist=config.mix_mnist,
    )
    return settings


def comparable(key: str, value):
    """A strength of 0 trains as a strength not recorded: a run recorded before a strength
    existed (`clip`) resumes the same, and counts as the same recipe in the benchmarks."""
    if key == "augmentation" and isinstance(value, dict):
        return {name: strength for name, strength in value.items() if strength}
    return value


def config_from_run(run_dir: Path) -> tuple[TrainConfig, dict]:
    """The TrainConfig a run was started with, from its config.json, checked for sense.

    The recorded recipe is the one resumed, field by field, whatever the catalogue says now;
    a network of the user's is rebuilt from its recorded layer list, file or model.
    """
    recorded = rundir.read_json(run_dir / rundir.CONFIG)
    settings = recorded.get("settings") if isinstance(recorded, dict) else None
    if not isinstance(settings, dict) or not isinstance(recorded.get("model"), str):
        raise rundir.RunError(f"{run_dir / rundir.CONFIG} has no model and settings to resume")
    settings = {**settings, **recipe_settings.added_later(settings)}
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
    changed = sorted(k for k in settings if comparable(k, now.get(k)) != comparable(k, settings[k]))
    if changed:
        raise rundir.RunError(
            f"{run_dir}: the settings in {rundir.CONFIG} ({', '.join(changed)}) cannot be "
            f"trained the same way now; train it again"
        )
    return config, settings
