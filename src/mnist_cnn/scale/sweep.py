"""`sweep`: the tutorials' "experiment with the settings", as many runs from one line, on Ray Tune.

Each trial is the run `train` makes (`training.train`, in SWEEP_DIR/trials/TRIAL_ID),
stopped before the test set: trials are ranked on their validation split only, and the
one chosen is then scored on the test set, once. Ray Tune does the rest: the grid or the
samples, the scheduling across the cluster, ASHA's early stopping, restarting the trials
of a lost node (they carry on from their run directory's last epoch) and taking up a
sweep whose driver died (`Tuner.restore`).

SWEEP_DIR/
    sweep.json   the plan, then every trial's settings, validation result and status,
                 and the selected trial with its single test figure
    sweep.html   the page: ranking, accuracy against each setting, curves, the selection
    trials/      one run directory per trial
    tune/        Ray Tune's own state (what `sweep --resume` restores)
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mnist_cnn import rundir
from mnist_cnn.atomic import atomic_write_json
from mnist_cnn.backend import versions
from mnist_cnn.models import layer_list
from mnist_cnn.models.settings import flag, shown_value
from mnist_cnn.reporting import sweep_page
from mnist_cnn.scale import cluster

SWEEP_FILE = "sweep.json"
TRIALS = "trials"
TUNE = "tune"
METRIC = "val_accuracy"
SELECTED_BY = "highest val_accuracy (ties: lowest val_loss), among finished trials"
LOG_SCALE = {"learning_rate", "batch_size"}  # sampled log-uniformly between LOW and HIGH
MAX_FAILURES = 3  # a trial whose node dies is started again, this many times at most
FINISHED, STOPPED, ERROR, UNFINISHED = "finished", "stopped early", "error", "unfinished"


class SweepError(Exception):
    """A sweep that cannot be run or resumed as asked; the message says why."""


@dataclass(frozen=True)
class Range:
    """FLAG=LOW:HIGH, sampled with --samples (log-uniform for rates and batch sizes)."""

    low: float
    high: float

    def to_json(self) -> dict:
        return {"low": self.low, "high": self.high}


def search_space(values: dict[str, list | Range], samples: int | None) -> dict:
    """Tune's param_space: a grid over lists, or (with `samples`) random choices and ranges."""
    from ray import tune

    space = {}
    for field, given in values.items():
        if isinstance(given, Range):
            if samples is None:
                raise SweepError(f"{field}={given.low}:{given.high} is a range; add --samples N")
            whole = isinstance(given.low, int) and isinstance(given.high, int)
            log = field in LOG_SCALE
            if whole:
                sample = tune.lograndint if log else tune.randint
                space[field] = sample(given.low, given.high + 1)
            else:
                space[field] = (tune.loguniform if log else tune.uniform)(given.low, given.high)
        else:
            space[field] = tune.choice(given) if samples else tune.grid_search(given)
    return space


def trial_dir_name(trial) -> str:
    """Tune's folder for a trial, and ours: its id, stable across restarts."""
    return trial.trial_id


def _trial(params: dict, base: dict, trials_dir: str, parent: str | None = None) -> None:
    """One trial on some node: `train` with these settings, or its run carried on; logged
    to MLflow as a child of `parent` (the sweep's MLflow run), if given."""
    from ray import tune

    from mnist_cnn import training
    from mnist_cnn.backend import import_keras
    from mnist_cnn.training import tensorboard

    keras = import_keras()

    class Report(keras.callbacks.Callback):
        """Each epoch's validation result to Tune (what ASHA decides on), but the last:
        that one is reported once the run is written, since Tune may stop a trial the
        moment it reports its last epoch."""

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 < self.params["epochs"]:
                tune.report({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}})

    run_dir = Path(trials_dir) / tune.get_context().get_trial_id()
    tensorboard.name_run(run_dir, _tensorboard_name(params))
    if (run_dir / rundir.CONFIG).exists():  # started before its node or the driver died
        if not (run_dir / rundir.MODEL).exists():  # (else it finished: just say so again)
            training.resume(run_dir, [Report()], verbose=0, test=False)
    else:
        track = base.get("track") if parent else None
        config = training.TrainConfig(**{**base, **params, "verbose": 0, "track": track})
        result = training.train(config, [Report()], run_dir, False, tracked_under=parent)
        if result.tracking:  # on the worker's stderr, which Ray shows the driver's
            print(f"mnist-cnn sweep: warning: {run_dir.name}: {result.tracking}", file=sys.stderr)
    history = rundir.read_history(run_dir / rundir.HISTORY)
    tune.report({**history[-1], **_chosen(history, run_dir), "epoch": history[-1]["epoch"]})


def _chosen(history: list[dict], run_dir: Path) -> dict:
    """The validation result of the epoch the trial's model is (its selected or last)."""
    from mnist_cnn.training.callbacks import selected_epoch

    if not history:
        return {}
    settings = rundir.read_json(run_dir / rundir.CONFIG)["settings"]
    row = (selected_epoch(history) if settings.get("select_best") else None) or history[-1]
    return {key: row[key] for key in ("val_accuracy", "val_loss", "epoch") if key in row}


def _trainable(base: dict, trials_dir: Path, cpus: int, parent: str | None = None):
    from ray import tune

    bound = tune.with_parameters(_trial, base=base, trials_dir=str(trials_dir), parent=parent)
    return tune.with_resources(bound, {"cpu": cpus})


def _progress(say: Callable[[str], None]):
    """A Tune callback that tells the user each trial's end, as it happens."""
    from ray import tune

    class Progress(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            accuracy = (trial.last_result or {}).get(METRIC)
            shown = "-" if accuracy is None else f"{accuracy:.2%}"
            say(f"trial {trial.trial_id}: validation accuracy {shown}  {_shown(trial.config)}")

        def on_trial_error(self, iteration, trials, trial, **info):
            say(f"trial {trial.trial_id}: failed  {_shown(trial.config)}")

    return Progress()


def _shown(settings: dict) -> str:
    """Settings as the flags that set them: --learning-rate 0.001 --batch-size 32."""
    return " ".join(
        f"{flag(k)} {v:.3g}" if isinstance(v, float) else f"{flag(k)} {shown_value(k, v)}"
        for k, v in settings.items()
    )


def _tensorboard_name(settings: dict) -> str:
    """A trial's name in TensorBoard: its settings, learning-rate=0.001,batch-size=32."""
    return ",".join(
        f"{flag(k)[2:]}={v:.3g}" if isinstance(v, float) else f"{flag(k)[2:]}={shown_value(k, v)}"
        for k, v in settings.items()
    )


@dataclass
class Plan:
    """What a sweep trains: the fixed train settings, and the swept ones."""

    base: dict  # TrainConfig fields, fixed for every trial
    values: dict  # field -> list of values, or Range
    samples: int | None = None
    scheduler: str | None = None  # "asha"
    cpus: int = 1  # per trial

    def to_json(self) -> dict:
        return {
            "base": self.base,
            "values": {
                k: v.to_json() if isinstance(v, Range) else v for k, v in self.values.items()
            },
            "samples": self.samples,
            "scheduler": self.scheduler,
            "cpus_per_trial": self.cpus,
        }

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        values = {
            k: Range(v["low"], v["high"]) if isinstance(v, dict) else v
            for k, v in data["values"].items()
        }
        return cls(data["base"], values, data["samples"], data["scheduler"], data["cpus_per_trial"])

    def max_epochs(self) -> int:
        from mnist_cnn import training

        epochs = self.values.get("epochs")
        if isinstance(epochs, Range):
            return int(epochs.high)
        if epochs:
            return max(epochs)
        config = training.TrainConfig(
            **{**self.base, **{k: _first(v) for k, v in self.values.items()}}
        )
        return training.resolve_settings(config)["epochs"]


def _first(value):
    return value.low if isinstance(value, Range) else value[0]


def absolute_paths(fields: dict) -> dict:
    """Paths in train settings made absolute: trials run elsewhere, in other folders."""
    fields = dict(fields)
    for key in ("data_dir", "init", "out"):
        if fields.get(key):
            fields[key] = str(Path(fields[key]).expanduser().resolve())
    python = fields.get("arch") and layer_list.python_file(fields["arch"])
    if python:
        fields["arch"] = f"{Path(python[0]).expanduser().resolve()}:{python[1]}"
    return fields


def check_plan(plan: Plan) -> None:
    """Every value of every swept setting, with the fixed ones, is one `train` would take,
    and every trial keeps a validation split to be ranked on: checked before any trial."""
    from mnist_cnn import training

    firsts = {k: _first(v) for k, v in plan.values.items()}
    for field, given in plan.values.items():
        for value in [given.low, given.high] if isinstance(given, Range) else given:
            config = training.TrainConfig(**{**plan.base, **firsts, field: value})
            settings = training.resolve_settings(config)
            if not settings["validation_split"]:
                raise SweepError(
                    "a sweep ranks its trials on the validation split; give --validation-split "
                    "above 0 (it is 0 for "
                    + ", ".join(f"{k}={v}" for k, v in {**firsts, field: value}.items())
                    + ")"
                )


def run_sweep(
    plan: Plan,
    out: str | Path,
    address: str | None,
    name: str,
    say: Callable[[str], None] = print,
) -> dict:
    """Run a new sweep; return what sweep.json holds at the end."""
    check_plan(plan)
    out = Path(out).resolve()
    with cluster.connected(address, plan.cpus) as ray_cluster:
        cluster.check_nodes(plan.base["dataset"], plan.base.get("data_dir"), out)
        sweep_dir = rundir.new_run_dir(out, f"sweep-{name}")
        record = {
            "sweep_dir": str(sweep_dir),
            "plan": plan.to_json(),
            "address": cluster.address_or_default(address),
            "versions": versions(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "status": "running",
        }
        atomic_write_json(sweep_dir / SWEEP_FILE, record)
        say(f"sweep: {sweep_dir} on {ray_cluster.describe()}")
        from mnist_cnn.training import tracking

        parent = tracking.start_sweep(plan.base.get("track"), sweep_dir, plan.base, plan.values)
        try:
            record = _run(_tuner(plan, sweep_dir, say, parent.run_id), plan, sweep_dir, record, say)
        except BaseException as exc:
            tracking.finish_sweep(parent, sweep_dir, None, tracking.status_of(exc))
            raise
        return {**record, "tracking": tracking.finish_sweep(parent, sweep_dir, record)}


def resume_sweep(
    sweep_dir: str | Path, address: str | None, say: Callable[[str], None] = print
) -> dict:
    """Take up a sweep whose driver died or was stopped: finished trials are not run again."""
    from ray import tune

    sweep_dir = Path(sweep_dir).resolve()
    record = rundir.read_json(sweep_dir / SWEEP_FILE)
    try:
        plan = Plan.from_json(record["plan"])
    except (KeyError, TypeError) as exc:
        raise rundir.RunError(f"{sweep_dir / SWEEP_FILE} has no sweep plan ({exc})") from None
    address = address or record.get("address")
    with cluster.connected(address, plan.cpus) as ray_cluster:
        if not tune.Tuner.can_restore(str(sweep_dir / TUNE)):
            raise rundir.RunError(f"{sweep_dir} holds no Ray Tune state to resume; run it again")
        say(f"sweep: resuming {sweep_dir} on {ray_cluster.describe()}")
        tuner = tune.Tuner.restore(
            str(sweep_dir / TUNE),
            _trainable(plan.base, sweep_dir / TRIALS, plan.cpus),
            resume_unfinished=True,
            restart_errored=True,
        )
        return _run(tuner, plan, sweep_dir, {**record, "status": "running"}, say)


def _tuner(plan: Plan, sweep_dir: Path, say, parent: str | None = None):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    scheduler = None
    if plan.scheduler == "asha":
        scheduler = ASHAScheduler(
            time_attr="epoch",
            metric=METRIC,
            mode="max",
            max_t=max(1, plan.max_epochs()),
            grace_period=1,
            reduction_factor=2,
        )
    return tune.Tuner(
        _trainable(plan.base, sweep_dir / TRIALS, plan.cpus, parent),
        param_space=search_space(plan.values, plan.samples),
        tune_config=tune.TuneConfig(
            num_samples=plan.samples or 1,
            search_alg=BasicVariantGenerator(random_state=plan.base.get("seed", 42)),
            scheduler=scheduler,
            reuse_actors=True,  # a trial after another on the same node skips importing Keras
            trial_name_creator=trial_dir_name,
            trial_dirname_creator=trial_dir_name,
        ),
        run_config=tune.RunConfig(
            name=TUNE,
            storage_path=str(sweep_dir),
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
            callbacks=[_progress(say)],
            verbose=0,
        ),
    )


def _run(tuner, plan: Plan, sweep_dir: Path, record: dict, say) -> dict:
    """Fit, rank on validation, test the selected trial once, and write sweep.json and page."""
    from mnist_cnn import training

    interrupted = False
    try:
        grid = tuner.fit()
    except KeyboardInterrupt:
        interrupted = True
        grid = None
    trials = _trials(grid, plan, sweep_dir, interrupted)
    interrupted = interrupted or any(t["status"] == UNFINISHED for t in trials)
    record = {**record, "trials": trials, "selected_by": SELECTED_BY, "selected": None}
    finished = [t for t in trials if t["status"] == FINISHED and t["val_accuracy"] is not None]
    if finished and not interrupted:
        best = finished[0]  # trials are ranked
        run_dir = Path(best["run_dir"])
        if (run_dir / rundir.METRICS).exists():  # tested before a resume
            metrics = rundir.read_json(run_dir / rundir.METRICS)
        else:
            metrics = training.finish(run_dir).metrics
        record["selected"] = {
            "trial_id": best["trial_id"],
            "run_dir": best["run_dir"],
            "settings": best["settings"],
            "val_accuracy": best["val_accuracy"],
            "test_accuracy": metrics["test_accuracy"],
            "test_loss": metrics["test_loss"],
        }
    record["status"] = "interrupted" if interrupted else "finished"
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    atomic_write_json(sweep_dir / SWEEP_FILE, record)

    sweep_page.write_page(sweep_dir, record, plan, LOG_SCALE)
    if interrupted:
        raise SweepInterrupted(sweep_dir)
    if record["selected"] is None:
        errors = [t["error"] for t in trials if t.get("error")]
        raise SweepError(
            f"no trial of {sweep_dir} finished"
            + (f"; the first error: {errors[0]}" if errors else "")
        )
    return record


class SweepInterrupted(Exception):
    """Stopped before every trial finished; sweep.json says so, and it can be resumed."""

    def __init__(self, sweep_dir: Path):
        super().__init__(f"interrupted; resume with: mnist-cnn sweep --resume {sweep_dir}")
        self.sweep_dir = sweep_dir


def _trials(grid, plan: Plan, sweep_dir: Path, interrupted: bool) -> list[dict]:
    """Every trial Tune knows of, ranked: finished ones by validation, then the rest."""
    from ray import tune

    if grid is None:  # Ctrl-C: what Tune saved of the sweep so far
        grid = tune.Tuner.restore(
            str(sweep_dir / TUNE), _trainable(plan.base, sweep_dir / TRIALS, plan.cpus)
        ).get_results()
    trials = []
    for result in grid:
        trial_id = Path(result.path).name
        run_dir = sweep_dir / TRIALS / trial_id
        history_file = run_dir / rundir.HISTORY
        history = rundir.read_history(history_file) if history_file.exists() else []
        chosen = _chosen(history, run_dir)
        if result.error is not None:
            status = ERROR
        elif (run_dir / rundir.MODEL).exists():
            status = FINISHED
        else:
            status = STOPPED if plan.scheduler and not interrupted else UNFINISHED
        trial = {
            "trial_id": trial_id,
            "run_dir": str(run_dir),
            "settings": {k: result.config[k] for k in plan.values if k in (result.config or {})},
            "val_accuracy": chosen.get("val_accuracy"),
            "val_loss": chosen.get("val_loss"),
            "epoch": chosen.get("epoch"),
            "epochs_done": len(history),
            "status": status,
        }
        if result.error is not None:
            text = str(result.error).strip()
            trial["error"] = text.splitlines()[-1] if text else type(result.error).__name__
        trials.append(trial)
    trials.sort(key=_rank)
    return trials


def _rank(trial: dict):
    """Finished trials first, best validation accuracy first, lower loss breaking ties."""
    accuracy = trial["val_accuracy"]
    loss = trial["val_loss"]
    return (
        trial["status"] != FINISHED,
        -(accuracy if accuracy is not None else -math.inf),
        loss if loss is not None else math.inf,
        trial["trial_id"],
    )
