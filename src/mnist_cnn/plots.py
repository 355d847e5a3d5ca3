"""The pictures the tutorials show, as PNG files: digits, curves, predictions, confusion.

Every figure uses the same small style and is written atomically.
"""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .atomic import atomic_write_bytes  # noqa: E402

RIGHT = "#1a7f37"
WRONG = "#cf222e"
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _save(fig, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _digit_grid(images, titles, colors=None, columns: int = 4):
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255)
            ax.set_title(titles[i], color=colors[i] if colors else "black")
    fig.tight_layout()
    return fig


def sample_grid(images: np.ndarray, labels: np.ndarray, path, classes=None) -> None:
    """A 4x4 grid of digits, each titled with its label."""
    with plt.rc_context(STYLE):
        names = [str(classes[y]) if classes else str(y) for y in labels[:16]]
        _save(_digit_grid(images[:16], [f"Label: {n}" for n in names]), path)


def training_curves(history: list[dict], path) -> None:
    """Accuracy and loss per epoch, training against validation (one pair per ensemble member)."""
    members = sorted({row.get("member", 1) for row in history})
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
            for member in members:
                rows = [row for row in history if row.get("member", 1) == member]
                epochs = [row["epoch"] for row in rows]
                suffix = f" (member {member})" if len(members) > 1 else ""
                ax.plot(epochs, [row[metric] for row in rows], "o-", label="training" + suffix)
                if rows and f"val_{metric}" in rows[0]:
                    values = [row[f"val_{metric}"] for row in rows]
                    ax.plot(epochs, values, "o-", label="validation" + suffix)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(metric)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        _save(fig, path)


def prediction_grid(images, labels, probabilities, path) -> None:
    """Digits titled with the prediction: green where right, red where wrong."""
    predicted = probabilities.argmax(axis=1)
    titles = [
        f"{p} ({probabilities[i, p]:.0%})" + ("" if p == labels[i] else f" ≠ {labels[i]}")
        for i, p in enumerate(predicted)
    ]
    colors = [RIGHT if p == y else WRONG for p, y in zip(predicted, labels, strict=True)]
    with plt.rc_context(STYLE):
        _save(_digit_grid(images, titles, colors), path)


def confusion_heatmap(matrix, path) -> None:
    """The confusion matrix as a heatmap with counts, true classes as rows."""
    matrix = np.asarray(matrix)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6, 5.2))
        shown = np.log1p(matrix)
        ax.imshow(shown, cmap="Blues")
        for (r, c), n in np.ndenumerate(matrix):
            if n:
                dark = shown[r, c] > shown.max() * 0.6
                ax.text(
                    c,
                    r,
                    str(n),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
        ax.set_xticks(range(len(matrix)))
        ax.set_yticks(range(len(matrix)))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("confusion matrix (test set)")
        fig.tight_layout()
        _save(fig, path)


def digit_prediction(image: np.ndarray, digit: int, probability: float, path, label=None) -> None:
    """One digit titled `Predicted: N (p=0.99)`, as the tutorials show it."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(2.8, 3.0))
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
        ax.axis("off")
        title = f"Predicted: {digit} (p={probability:.2f})"
        if label is not None:
            ax.set_title(title, color=RIGHT if label == digit else WRONG)
        else:
            ax.set_title(title)
        _save(fig, path)
