"""TensorBoard: every run's curves as event files under RUN_DIR/tensorboard/, so that
`tensorboard --logdir runs` shows every run side by side.

RUN_DIR/tensorboard/[NAME/][member-N/]
    train/        epoch_loss, epoch_accuracy, epoch_learning_rate (per epoch), batch_loss,
                  batch_accuracy, batch_learning_rate (at steps.csv's steps: each the mean
                  over the steps since the point before)
    validation/   epoch_loss, epoch_accuracy
    test/         epoch_loss, epoch_accuracy: the test figures of metrics.json, one point
                  at the epoch of the model that was tested (beside the curves, in their chart)

The folders and tags are those of Keras's own TensorBoard callback, but the points are
written with TensorBoard's pure-Python writer (`tensorboard.summary.Writer`): Keras's
callback writes through TensorFlow's summary ops, which cost `train fast` 0.28 s against a
budget of 0.2 s (benchmarks/tensorboard_cost.py), and are not there on other backends.

NAME (`run.txt`) is a sweep trial's settings, learning-rate=0.001,batch-size=32; member-N
an ensemble's members, each a run of its own. Epochs are written whole, once each: an
epoch cut short by Ctrl-C or a kill is not written, and the resumed run writes it when it
runs again, at the same steps (epoch x steps per epoch + step), never twice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_cnn.atomic import atomic_write_text
from mnist_cnn.backend import import_keras
from mnist_cnn.training.callbacks import HistoryWriter, StopRequest, selected_epoch

keras = import_keras()  # quietly: TensorFlow's start-up notices muted, as for the command

FOLDER = "tensorboard"
NAME_FILE = "run.txt"  # a sweep trial's name in TensorBoard, its settings


def name_run(run_dir: Path, name: str) -> None:
    """Show this run's curves in TensorBoard under `name` (a sweep trial's settings)."""
    name = name.replace("/", "_").replace("\\", "_")[:200] or "run"
    atomic_write_text(Path(run_dir) / FOLDER / NAME_FILE, name + "\n")


def log_dir(run_dir: Path, member: int | None = None) -> Path:
    """Where a run's (or an ensemble member's) train/ and validation/ event files go."""
    folder = Path(run_dir) / FOLDER
    named = folder / NAME_FILE
    if named.is_file():
        folder = folder / named.read_text().strip()
    return folder if member is None else folder / f"member-{member}"


def _writer(folder: Path):
    from tensorboard.summary import Writer

    return Writer(str(folder))


class EpochBoard(keras.callbacks.Callback):
    """Writes each epoch once it has ended whole: its figures, and the per-step points that
    the history writer kept for it (steps.csv's rows), at their global step, so that a
    resumed run neither restarts the step count nor doubles an epoch."""

    def __init__(self, folder: Path, history: HistoryWriter, stop: StopRequest):
        super().__init__()
        self.folder, self.history, self.stop = folder, history, stop
        self._writers: dict = {}

    def _write(self, part: str, tag: str, value, step: int) -> None:
        if part not in self._writers:
            self._writers[part] = _writer(self.folder / part)
        self._writers[part].add_scalar(tag, float(value), int(step))

    def _rates(self, steps: list[int]) -> list[float]:
        """The learning rate the optimizer uses after each of `steps` steps."""
        optimizer = self.model.optimizer  # its rate: a float, a variable or a schedule
        rate = getattr(optimizer, "_learning_rate", None)
        if isinstance(rate, keras.optimizers.schedules.CosineDecay):
            return list(cosine_decay(rate, np.array(steps)))
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            return [float(keras.ops.convert_to_numpy(rate(step))) for step in steps]
        rate = optimizer.learning_rate
        return [float(keras.ops.convert_to_numpy(rate))] * len(steps)

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.cut_at is not None or not logs:  # cut short: it runs again after resume
            return
        rows = self.history.epoch_steps
        for row, rate in zip(rows, self._rates([row["step"] for row in rows]), strict=True):
            for name in ("loss", "accuracy"):
                if name in row:
                    self._write("train", f"batch_{name}", row[name], row["step"])
            self._write("train", "batch_learning_rate", rate, row["step"])
        for name in ("loss", "accuracy"):
            if name in logs:
                self._write("train", f"epoch_{name}", logs[name], epoch)
            if f"val_{name}" in logs:
                self._write("validation", f"epoch_{name}", logs[f"val_{name}"], epoch)
        iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self._write("train", "epoch_learning_rate", self._rates([iterations])[0], epoch)
        for writer in self._writers.values():
            writer.flush()  # a run killed later keeps this epoch's curves

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def cosine_decay(schedule, steps: np.ndarray) -> np.ndarray:
    """Keras's CosineDecay (the one-cycle schedule) at many steps at once, by its own
    formula on its own settings: calling it costs ~1 ms of eager ops a step, 0.05 s of
    `train fast` (tests/test_tensorboard.py holds the two to the same values)."""
    warmup, decay = schedule.warmup_steps, schedule.decay_steps
    start, top = schedule.initial_learning_rate, schedule.warmup_target
    if top is None:
        warmup, top = 0, start
    steps = np.minimum(steps.astype(np.float64), warmup + decay)
    cosine = 0.5 * (1 + np.cos(np.pi * (steps - warmup) / decay))
    decayed = top * ((1 - schedule.alpha) * cosine + schedule.alpha)
    rising = start + (top - start) * steps / max(warmup, 1)
    return np.where(steps < warmup, rising, decayed).astype(np.float32)


def board(run_dir: Path, history: HistoryWriter, stop: StopRequest) -> EpochBoard:
    """The TensorBoard callback of a run, or of an ensemble's member (history.member)."""
    return EpochBoard(log_dir(run_dir, history.member), history, stop)


def write_test(run_dir: Path, metrics: dict, settings: dict, history: list[dict]) -> None:
    """The test figures, as one point at the epoch of the model tested: the epoch model
    selection kept (a single network with select_best), else the last."""
    kept = None
    if settings.get("select_best") and not any("member" in row for row in history):
        kept = selected_epoch(history)
    epoch = int(kept["epoch"] if kept else settings["epochs"]) - 1
    writer = _writer(log_dir(run_dir) / "test")
    writer.add_scalar("epoch_accuracy", metrics["test_accuracy"], epoch)
    writer.add_scalar("epoch_loss", metrics["test_loss"], epoch)
    writer.close()
