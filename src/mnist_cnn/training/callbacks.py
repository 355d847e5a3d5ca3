"""Runs that survive: per-epoch checkpoints, the best epoch kept on disk, and Ctrl-C.

A run killed at any moment (even `kill -9`) resumes from its last completed epoch: after
every epoch the whole training state (weights and optimizer) is written atomically by a
Keras `BackupAndRestore`. Ctrl-C lets the current step finish, then stops without
recording the unfinished epoch, so the resumed run repeats exactly that epoch.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from mnist_cnn import rundir
from mnist_cnn.atomic import atomic_write, atomic_write_json
from mnist_cnn.backend import import_keras

keras = import_keras()  # quietly: TensorFlow's start-up notices muted, as for the command

CHECKPOINTS = "checkpoints"  # in the run directory, until the run finishes


class StopRequest:
    """Set by the first Ctrl-C while training; a second Ctrl-C aborts at once."""

    def __init__(self):
        self.requested = False
        # Where Ctrl-C cut an epoch's training short ("step 120 of 422"), or None: an epoch
        # whose every step ran (Ctrl-C came during its validation) is complete, and is kept.
        self.cut_at: str | None = None

    @contextlib.contextmanager
    def listening(self):
        """Catch SIGINT for the duration (main thread only; elsewhere, do nothing)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


class StopOnRequest(keras.callbacks.Callback):
    """Ends `fit` after the step that is running when Ctrl-C arrives; an epoch cut short
    there is marked so, and the others keep it out of the checkpoints and history."""

    def __init__(self, stop: StopRequest):
        super().__init__()
        self.stop = stop

    def on_train_batch_end(self, batch, logs=None):
        if self.stop.requested and not self.model.stop_training:
            self.model.stop_training = True
            steps = self.params.get("steps")
            if steps is None or batch + 1 < steps:
                self.stop.cut_at = f"step {batch + 1}" + (f" of {steps}" if steps else "")

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.requested:  # Ctrl-C during validation: this epoch is whole, the next waits
            self.model.stop_training = True


class EpochCheckpoint(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore, writing atomically, and skipping an interrupted epoch."""

    def __init__(self, folder: Path, stop: StopRequest):
        super().__init__(str(folder), save_freq="epoch", delete_checkpoint=False)
        self.stop = stop

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.cut_at is None:
            super().on_epoch_end(epoch, logs)

    def _save_model(self):
        atomic_write(self._weights_path, lambda tmp: self.model.save_weights(tmp))
        atomic_write_json(self._training_metadata_path, {"epoch": self._current_epoch, "batch": 0})


SELECTED_BY = "val_loss"  # model selection keeps the epoch where this is lowest


def selected_epoch(history: list[dict]) -> dict | None:
    """The history row of the epoch that model selection keeps, or None without validation."""
    scored = [row for row in history if SELECTED_BY in row]
    return min(scored, key=lambda row: row[SELECTED_BY], default=None)


class BestWeights(keras.callbacks.Callback):
    """Keep the weights of the epoch with the lowest validation loss, on disk.

    Model selection on the validation split only. By loss, not accuracy: on a few thousand
    digits accuracy moves in steps of one or two digits, so its maximum over many epochs is
    mostly luck (it once kept epoch 20 of 40, still at a high learning rate). On disk (not
    in memory, as EarlyStopping keeps them) so that a resumed run still knows its best epoch.
    """

    def __init__(self, path: Path, stop: StopRequest, done: Sequence[dict] = ()):
        """`done`: the history rows of the epochs already trained (a resumed run)."""
        super().__init__()
        self.path = path
        self.stop = stop
        kept = selected_epoch(done) if path.exists() else None
        self.best = kept[SELECTED_BY] if kept else math.inf

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get(SELECTED_BY)
        if self.stop.cut_at is not None or loss is None or loss >= self.best:
            return
        self.best = float(loss)
        atomic_write(self.path, lambda tmp: self.model.save_weights(tmp))

    def restore(self) -> None:
        if self.path.exists():
            self.model.load_weights(self.path)


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
        stop: StopRequest,
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
        self.epoch_steps: list[dict] = []
        self._seen = (0, {})  # steps so far this epoch, and their metrics' running totals

    def on_train_batch_end(self, batch, logs=None):
        """Keras's logs are this epoch's running means: their totals' difference since the
        last row is the mean over just those steps."""
        steps = self.params.get("steps") or batch + 1
        # Run 8 at a time, the last batch of an epoch is numbered past its end.
        done, (before, totals) = min(batch + 1, steps), self._seen
        if done - before < self._every and done < steps or not logs:
            return
        now = {k: float(logs[k]) * done for k in ("loss", "accuracy") if k in logs}
        row = {"step": self._epoch * steps + done, "epoch": self._epoch + 1}
        row.update({k: (v - totals.get(k, 0.0)) / (done - before) for k, v in now.items()})
        self.epoch_steps.append(row if self.member is None else {"member": self.member, **row})
        self._seen = (done, now)

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.cut_at is not None:
            return
        row = {} if self.member is None else {"member": self.member}
        row["epoch"] = epoch + 1
        row.update({k: float(v) for k, v in (logs or {}).items()})
        row["seconds"] = time.perf_counter() - self._started
        self.put(row, self.epoch_steps)
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


def history_of(run_dir: Path, name: str = rundir.HISTORY) -> list[dict]:
    """The rows of history.csv (or steps.csv: `name`), if it was written."""
    return rundir.read_history(run_dir / name, missing_ok=True)
