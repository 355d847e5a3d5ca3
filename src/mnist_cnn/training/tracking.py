"""MLflow, when asked (`--track URI`): a run's settings, epochs, test figures and files
logged to a tracking server as well as to its run directory; a sweep as a parent run with
one child run per trial.

The run directory stays the record: MLflow gets a copy. `mlflow` is imported only here,
only when a URI is given, and every call to it is short (one retry, seconds of timeout,
set around our calls only). A server that stops answering is left alone for the rest of
the run, which finishes as ever; `Tracker.warning` then says in one line what was not
logged.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from mnist_cnn import rundir
from mnist_cnn.backend import import_keras

keras = import_keras()  # quietly: TensorFlow's start-up notices muted, as for the command

EXPERIMENT = "mnist-cnn"  # unless MLFLOW_EXPERIMENT_NAME names another
PARENT_TAG = "mlflow.parentRunId"  # what MLflow nests child runs (a sweep's trials) by
RUN_DIR_TAG = "mnist_cnn.run_dir"
ARTIFACTS = (rundir.CONFIG, rundir.METRICS, rundir.HISTORY, "report.html", rundir.MODEL)
# Short calls: a server that is down costs seconds, not MLflow's default minutes of retries.
# Set around our calls only (never for the user's own MLflow code); values the user set win.
QUICK = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # stdout is the command's (--json)
}
PARAM_CHARS = 6000  # MLflow's limit on a parameter's value


@contextlib.contextmanager
def _quick() -> Iterator[None]:
    added = {key: value for key, value in QUICK.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def params_of(settings: dict, **more) -> dict[str, str]:
    """Settings as MLflow params: strings, nested values as JSON, None as "None"."""
    params = {}
    for key, value in {**more, **settings}.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        params[key] = text[:PARAM_CHARS]
    return params


def _ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 7] -> "3-5, 7"."""
    spans: list[list[int]] = []
    for n in sorted(set(numbers)):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


class Tracker:
    """One MLflow run, or nothing at all when `uri` is None (every method then does nothing).

    After the first call that fails, no other call is tried: what it would have logged is
    noted, for `warning`."""

    def __init__(self, uri: str | None):
        self.uri = uri or None
        self.run_id: str | None = None
        self.failed = False
        self.logged_epochs: list[tuple] = []  # (member, epoch) of the rows logged
        self.missed_epochs: list[tuple] = []
        self.missed: list[str] = []  # what else was not logged: "the test figures", ...
        self._client = None

    def _call(self, what: str | None, method: str, *args, **kwargs):
        """client.METHOD(...), or None (and `what` noted) if MLflow does not answer."""
        if self.uri is None:
            return None
        if not self.failed:
            try:
                with _quick():
                    if self._client is None:
                        from mlflow.tracking import MlflowClient

                        self._client = MlflowClient(tracking_uri=self.uri)
                    return getattr(self._client, method)(*args, **kwargs)
            except ImportError:  # no MLflow here: say so, as the command does up front
                raise
            except Exception:  # any failure of the server, the network or the store
                self.failed = True
        if what is not None and what not in self.missed:
            self.missed.append(what)
        return None

    def start(self, name: str, params: dict, run_dir: Path, parent: str | None = None) -> None:
        """Open the run (under `parent`, a sweep's run, if given) and log its params."""
        if self.uri is None:
            return
        experiment = self._experiment(parent)
        tags = {RUN_DIR_TAG: str(run_dir), **({PARENT_TAG: parent} if parent else {})}
        run = None
        if experiment is not None:
            run = self._call("the run", "create_run", experiment, run_name=name, tags=tags)
        if run is None:
            self.missed = ["the run"]
            return
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in params.items()]
        for first in range(0, len(items), 100):  # MLflow takes 100 params a call
            self._call("the settings", "log_batch", self.run_id, params=items[first : first + 100])

    def _experiment(self, parent: str | None) -> str | None:
        """The parent's experiment, or MLFLOW_EXPERIMENT_NAME's (default mnist-cnn), made
        if it is new (another process may make it at the same moment)."""
        if parent:
            run = self._call("the run", "get_run", parent)
            return None if run is None else run.info.experiment_id
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        found = self._call("the run", "get_experiment_by_name", name)
        if found is None and not self.failed:
            made = self._call(None, "create_experiment", name)
            if made is not None:
                return made
            self.failed = False  # it was made meanwhile: look it up again
            found = self._call("the run", "get_experiment_by_name", name)
        return None if found is None else found.experiment_id

    def log_history(self, rows: list[dict], members: bool = False) -> None:
        """History rows not logged yet, as metrics at step = epoch (an ensemble's members:
        member2/loss, ...)."""
        if self.run_id is None:
            return
        from mlflow.entities import Metric

        for row in rows:
            key = (row.get("member"), int(row["epoch"]))
            if key in self.logged_epochs or key in self.missed_epochs:
                continue
            prefix = f"member{row['member']}/" if members and row.get("member") else ""
            stamp = _millis()
            metrics = [
                Metric(prefix + name, float(value), stamp, key[1])
                for name, value in row.items()
                if name not in ("epoch", "member") and isinstance(value, int | float)
            ]
            self._call(None, "log_batch", self.run_id, metrics=metrics)
            (self.missed_epochs if self.failed else self.logged_epochs).append(key)

    def log_figures(self, figures: dict, what: str = "the test figures") -> None:
        """Numbers logged once (step 0): the test figures, a sweep's selection."""
        if self.run_id is None or not figures:
            return
        from mlflow.entities import Metric

        stamp = _millis()
        metrics = [Metric(key, float(value), stamp, 0) for key, value in figures.items()]
        self._call(what, "log_batch", self.run_id, metrics=metrics)

    def log_files(self, folder: Path, names=ARTIFACTS) -> None:
        """The files of `names` that `folder` holds, as the run's artifacts."""
        if self.run_id is None:
            return
        for name in names:
            if (folder / name).is_file():
                self._call("the artifacts", "log_artifact", self.run_id, str(folder / name))

    def end(self, status: str = "FINISHED") -> None:
        """Close the run: FINISHED, FAILED or KILLED."""
        if self.run_id is not None:
            self._call("its end", "set_terminated", self.run_id, status)

    def warning(self) -> str | None:
        """One line on what was not logged, or None if everything was."""
        if self.uri is None or not (self.missed or self.missed_epochs):
            return None
        if self.missed == ["the run"]:
            return f"MLflow at {self.uri} did not answer; not logged: the run"
        missed = []
        if self.missed_epochs:
            members = sorted({m for m, _ in self.missed_epochs if m is not None})
            for member in members or [None]:
                epochs = [e for m, e in self.missed_epochs if m == member]
                noun = "epoch" if len(epochs) == 1 else "epochs"
                where = f"member {member} " if member is not None else ""
                missed.append(f"{where}{noun} {_ranges(epochs)}")
        missed += self.missed
        if len(missed) > 1 and "its end" in missed:  # said by the rest: the run is left open
            missed.remove("its end")
        if self.logged_epochs:
            member, epoch = self.logged_epochs[-1]
            when = f"after {'' if member is None else f'member {member} '}epoch {epoch}"
        else:
            when = "before the first epoch"
        return f"MLflow at {self.uri} stopped answering {when}; not logged: {', '.join(missed)}"


def _millis() -> int:
    import time

    return int(time.time() * 1000)


class LogEpochs(keras.callbacks.Callback):
    """After each epoch, the rows history.csv has that MLflow has not, as the run's
    metrics: the epoch as recorded (an epoch cut short by Ctrl-C is not)."""

    def __init__(self, tracker: Tracker, run_dir: Path, members: bool):
        super().__init__()
        self.tracker, self.run_dir, self.members = tracker, run_dir, members

    def on_epoch_end(self, epoch, logs=None):
        history = rundir.read_history(self.run_dir / rundir.HISTORY, missing_ok=True)
        self.tracker.log_history(history, self.members)


def callbacks(tracker: Tracker, run_dir: Path, members: bool = False) -> list:
    """The callback that logs each epoch, if the run is tracked."""
    return [] if tracker.run_id is None else [LogEpochs(tracker, run_dir, members)]


def finish_run(tracker: Tracker, run_dir: Path, metrics: dict, status: str = "FINISHED"):
    """A run's end: any epochs not logged yet (an ensemble's members trained elsewhere),
    the test figures, its files, its status. Returns the warning, or None."""
    history = rundir.read_history(run_dir / rundir.HISTORY, missing_ok=True)
    tracker.log_history(history, any(row.get("member") for row in history))
    figures = {k: v for k, v in metrics.items() if k in ("test_accuracy", "test_loss")}
    tracker.log_figures(figures)
    tracker.log_files(run_dir)
    tracker.end(status)
    return tracker.warning()


def start_run(uri: str | None, run_dir: Path, model: str, settings: dict, parent=None) -> Tracker:
    """A run's MLflow run, named as its folder, with its settings as params (`uri` None:
    an inert Tracker, and MLflow is never imported)."""
    tracker = Tracker(uri)
    tracker.start(run_dir.name, params_of(settings, model=model), run_dir, parent)
    return tracker


def status_of(exc: BaseException) -> str:
    """The MLflow status of a run that ended with `exc`: KILLED if stopped (Ctrl-C, or the
    TrainingInterrupted and SweepInterrupted it becomes), else FAILED."""
    stopped = isinstance(exc, KeyboardInterrupt) or type(exc).__name__.endswith("Interrupted")
    return "KILLED" if stopped else "FAILED"


def start_sweep(uri: str | None, sweep_dir: Path, base: dict, values: dict) -> Tracker:
    """A sweep's parent run: the fixed settings and the swept values as params. Its trials'
    runs are its children (`train(..., tracked_under=tracker.run_id)`)."""
    tracker = Tracker(uri)
    fixed = {k: v for k, v in base.items() if k not in ("track", "out") and v is not None}
    swept = {f"swept.{k}": getattr(v, "to_json", lambda v=v: v)() for k, v in values.items()}
    tracker.start(sweep_dir.name, params_of({**fixed, **swept}), sweep_dir)
    return tracker


def finish_sweep(tracker: Tracker, sweep_dir: Path, record: dict | None, status="FINISHED"):
    """The sweep's selection (trial, settings, validation) and the chosen trial's test
    figures, sweep.json and sweep.html, its status. Returns the warning, or None."""
    selected = (record or {}).get("selected")
    if selected and tracker.run_id is not None:
        chosen = {"selected.trial": selected["trial_id"]}
        chosen.update((f"selected.{k}", v) for k, v in selected["settings"].items())
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in params_of(chosen).items()]
        tracker._call("the selection", "log_batch", tracker.run_id, params=params)
        keys = ("val_accuracy", "test_accuracy", "test_loss")
        tracker.log_figures({k: selected[k] for k in keys}, "the selection's figures")
    tracker.log_files(sweep_dir, ("sweep.json", "sweep.html"))
    tracker.end(status)
    return tracker.warning()
