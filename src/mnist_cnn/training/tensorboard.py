"""TensorBoard: every run's curves as event files under RUN_DIR/tensorboard/, so that
`tensorboard --logdir runs` shows every run side by side.

RUN_DIR/tensorboard/[NAME/][member-N/]
    train/        epoch_loss, epoch_accuracy, epoch_learning_rate (per epoch: Keras's own
                  TensorBoard callback), batch_loss, batch_accuracy, batch_learning_rate
                  (every few steps: each the mean over the steps since the point before)
    validation/   epoch_loss, epoch_accuracy
    test/         epoch_loss, epoch_accuracy: the test figures of metrics.json, one point
                  at the epoch of the model that was tested (beside the curves, in their chart)

NAME (`run.txt`) is a sweep trial's settings, learning-rate=0.001,batch-size=32; member-N
an ensemble's members, each a run of its own. Epochs are written whole, once each: an
epoch cut short by Ctrl-C or a kill is not written, and the resumed run writes it when it
runs again, at the same steps (epoch x steps per epoch + step), never twice.
"""

from __future__ import annotations

from pathlib import Path

from mnist_cnn.atomic import atomic_write_text
from mnist_cnn.backend import import_keras
from mnist_cnn.training.callbacks import StopRequest, selected_epoch

keras = import_keras()  # quietly: TensorFlow's start-up notices muted, as for the command

FOLDER = "tensorboard"
NAME_FILE = "run.txt"  # a sweep trial's name in TensorBoard, its settings
STEP_POINTS = 1000  # per-step points per member, at most (TensorBoard keeps 1000 per chart)


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


class EpochBoard(keras.callbacks.TensorBoard):
    """Keras's TensorBoard for the epochs (scalars only: no graph, histograms or profile),
    with per-step points kept until their epoch ends whole, then written at their global
    step, so that a resumed run neither restarts the step count nor doubles an epoch."""

    def __init__(self, folder: Path, stop: StopRequest):
        super().__init__(
            str(folder), histogram_freq=0, write_graph=False, update_freq="epoch", profile_batch=0
        )
        self.stop = stop

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        steps, epochs = self.params.get("steps") or 1, self.params.get("epochs") or 1
        self._every = max(1, steps * epochs // STEP_POINTS)

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._first = epoch * (self.params.get("steps") or 0)
        self._points: list[tuple[int, dict]] = []
        self._seen = (0, {})  # steps so far this epoch, and their metrics' running totals

    def on_train_batch_end(self, batch, logs=None):
        """Keras's logs are the epoch's running means: the difference of their totals since
        the last point is the mean over just those steps (as steps.csv has them)."""
        steps = self.params.get("steps") or batch + 1
        done, (before, totals) = min(batch + 1, steps), self._seen
        if done - before < self._every and done < steps or not logs:
            return
        now = {k: float(logs[k]) * done for k in ("loss", "accuracy") if k in logs}
        point = {k: (v - totals.get(k, 0.0)) / (done - before) for k, v in now.items()}
        self._points.append((self._first + done, self._collect_learning_rate(point)))
        self._seen = (done, now)

    def on_test_end(self, logs=None):
        """Nothing: the validation figures are written once, with their epoch."""

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.cut_at is not None:  # cut short: it runs again after the resume
            return
        with self._train_writer.as_default():
            for step, point in self._points:
                for name, value in point.items():
                    self.summary.scalar(f"batch_{name}", value, step=step)
        super().on_epoch_end(epoch, logs)
        for writer in self._writers.values():
            writer.flush()  # a run killed later keeps this epoch's curves


def board(run_dir: Path, member: int | None, stop: StopRequest) -> EpochBoard:
    """The TensorBoard callback of a run, or of an ensemble's member."""
    return EpochBoard(log_dir(run_dir, member), stop)


def write_test(run_dir: Path, metrics: dict, settings: dict, history: list[dict]) -> None:
    """The test figures, as one point at the epoch of the model tested: the epoch model
    selection kept (a single network with select_best), else the last."""
    import tensorflow as tf

    kept = None
    if settings.get("select_best") and not any("member" in row for row in history):
        kept = selected_epoch(history)
    epoch = kept["epoch"] if kept else settings["epochs"]
    writer = tf.summary.create_file_writer(str(log_dir(run_dir) / "test"))
    with writer.as_default():
        tf.summary.scalar("epoch_accuracy", metrics["test_accuracy"], step=int(epoch) - 1)
        tf.summary.scalar("epoch_loss", metrics["test_loss"], step=int(epoch) - 1)
    writer.close()
