"""The pictures: digits, curves, predictions, confusion, calibration, filters, feature maps.

Every figure uses the same small style. Each function returns the PNG bytes (the report
embeds them) and, given a path, also writes the file atomically.
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


def _save(fig, path: str | os.PathLike | None = None) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    if path is not None:
        atomic_write_bytes(path, buffer.getvalue())
    return buffer.getvalue()


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


def sample_grid(images: np.ndarray, labels: np.ndarray, path=None, classes=None) -> bytes:
    """A 4x4 grid of digits, each titled with its label."""
    with plt.rc_context(STYLE):
        names = [str(classes[y]) if classes else str(y) for y in labels[:16]]
        return _save(_digit_grid(images[:16], [f"Label: {n}" for n in names]), path)


def training_curves(history: list[dict], path=None) -> bytes:
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
        return _save(fig, path)


def prediction_grid(images, labels, probabilities, path=None, columns: int = 4) -> bytes:
    """Digits titled with the prediction: green where right, red where wrong."""
    predicted = probabilities.argmax(axis=1)
    titles = [
        f"{p} ({probabilities[i, p]:.0%})" + ("" if p == labels[i] else f" ≠ {labels[i]}")
        for i, p in enumerate(predicted)
    ]
    colors = [RIGHT if p == y else WRONG for p, y in zip(predicted, labels, strict=True)]
    with plt.rc_context(STYLE):
        return _save(_digit_grid(images, titles, colors, columns), path)


def confusion_heatmap(matrix, path=None) -> bytes:
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
        return _save(fig, path)


def digit_prediction(
    image: np.ndarray, digit: int, probability: float, path=None, label=None
) -> bytes:
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
        return _save(fig, path)


def confused_pairs(pairs, examples: list[np.ndarray], path=None, columns: int = 6) -> bytes:
    """One row per confused pair (true -> predicted, count), with up to `columns` examples."""
    rows = max(1, len(pairs))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            rows, columns + 1, figsize=(1.2 * (columns + 1), 1.25 * rows), squeeze=False
        )
        for r, ax_row in enumerate(axes):
            for ax in ax_row:
                ax.axis("off")
            if r >= len(pairs):
                continue
            true, predicted, count = pairs[r]
            ax_row[0].text(
                0.5, 0.5, f"{true} → {predicted}\n{count}×", ha="center", va="center", fontsize=11
            )
            for c, image in enumerate(examples[r][:columns]):
                ax_row[c + 1].imshow(image, cmap="gray_r", vmin=0, vmax=255)
        fig.tight_layout()
        return _save(fig, path)


def misclassified(images, labels, probabilities, path=None, columns: int = 8) -> bytes:
    """Wrong answers, titled `true -> predicted (confidence)`, in the order given."""
    predicted = probabilities.argmax(axis=1)
    titles = [
        f"{y}→{p} ({probabilities[i, p]:.0%})"
        for i, (y, p) in enumerate(zip(labels, predicted, strict=True))
    ]
    with plt.rc_context(STYLE):
        return _save(_digit_grid(images, titles, [WRONG] * len(images), columns), path)


def reliability_diagram(bins: list[dict], ece: float, path=None) -> bytes:
    """Accuracy against confidence per bin, beside the diagonal of perfect calibration."""
    used = [b for b in bins if b["count"]]
    with plt.rc_context(STYLE):
        fig, (top, bottom) = plt.subplots(
            2, 1, figsize=(4.6, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
        width = bins[0]["high"] - bins[0]["low"]
        top.bar(
            [b["low"] for b in used],
            [b["accuracy"] for b in used],
            width=width,
            align="edge",
            edgecolor="white",
            label="accuracy",
        )
        top.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        top.plot(
            [b["confidence"] for b in used],
            [b["accuracy"] for b in used],
            "o",
            color=WRONG,
            markersize=3,
            label="mean confidence",
        )
        top.set_ylabel("accuracy")
        top.set_title(f"reliability (test set), ECE {ece:.2%}")
        top.legend(loc="upper left")
        bottom.bar(
            [b["low"] for b in used],
            [b["count"] for b in used],
            width=width,
            align="edge",
            color="grey",
        )
        bottom.set_yscale("log")
        bottom.set_xlabel("confidence")
        bottom.set_ylabel("digits")
        fig.tight_layout()
        return _save(fig, path)


def filters(kernels: np.ndarray, path=None, columns: int = 8) -> bytes:
    """First-layer convolution kernels (kh, kw, 1, n), each scaled to its own range."""
    count = kernels.shape[-1]
    rows = int(np.ceil(count / columns))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, columns, figsize=(1.0 * columns, 1.0 * rows), squeeze=False)
        for i, ax in enumerate(axes.ravel()):
            ax.axis("off")
            if i < count:
                ax.imshow(kernels[:, :, 0, i], cmap="RdBu_r")
        fig.suptitle(f"first layer: {count} filters of {kernels.shape[0]}x{kernels.shape[1]}")
        fig.tight_layout()
        return _save(fig, path)


def feature_maps(digit: np.ndarray, maps: list[tuple[str, np.ndarray]], path=None) -> bytes:
    """The digit, then up to 8 channels of each convolution's output (rows), for one digit."""
    shown = 8
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            len(maps) + 1, shown, figsize=(1.1 * shown, 1.2 * (len(maps) + 1)), squeeze=False
        )
        for ax in axes.ravel():
            ax.axis("off")
        axes[0, 0].imshow(digit, cmap="gray_r", vmin=0, vmax=255)
        axes[0, 0].set_title("input")
        for r, (name, values) in enumerate(maps, start=1):
            for c in range(min(shown, values.shape[-1])):
                axes[r, c].imshow(values[:, :, c], cmap="viridis")
            axes[r, 0].set_title(
                f"{name} {values.shape[0]}x{values.shape[1]}x{values.shape[2]}",
                loc="left",
                fontsize=8,
            )
        fig.tight_layout()
        return _save(fig, path)


def overlaid_curves(histories: dict[str, list[dict]], path=None) -> bytes:
    """Validation accuracy and loss per epoch, one line per run (training dashed)."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
            for index, (name, history) in enumerate(histories.items()):
                color = f"C{index % 10}"
                epochs = [row["epoch"] for row in history]
                ax.plot(epochs, [row[metric] for row in history], "--", color=color, alpha=0.6)
                if history and f"val_{metric}" in history[0]:
                    values = [row[f"val_{metric}"] for row in history]
                    ax.plot(epochs, values, "o-", color=color, label=name)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"{metric} (validation solid, training dashed)")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        return _save(fig, path)


def disagreements(images, titles: list[str], path=None, columns: int = 6) -> bytes:
    """Digits on which runs disagree, each titled with every run's answer."""
    with plt.rc_context({**STYLE, "axes.titlesize": 8}):
        return _save(_digit_grid(images, titles, columns=columns), path)


def accuracy_by_setting(points: dict[str, list[tuple]], log_scale=(), path=None) -> bytes:
    """Validation accuracy against each swept setting: one panel per setting, one dot per
    trial. `points` maps a setting to (value, accuracy) pairs; text values are categories."""
    with plt.rc_context(STYLE):
        count = max(1, len(points))
        fig, axes = plt.subplots(1, count, figsize=(3.6 * count, 3.2), squeeze=False)
        for ax, (setting, pairs) in zip(axes[0], points.items(), strict=False):
            values = [value for value, _ in pairs]
            accuracies = [100 * accuracy for _, accuracy in pairs]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                ax.plot(values, accuracies, "o", alpha=0.8)
                if setting in log_scale:
                    ax.set_xscale("log")
                swept = sorted(set(values))
                if len(swept) <= 8:  # a grid: label its values, as they were written
                    ax.set_xticks(swept, [f"{v:g}" for v in swept])
                    ax.minorticks_off()
            else:
                labels = sorted({str(v) for v in values})
                ax.plot([labels.index(str(v)) for v in values], accuracies, "o", alpha=0.8)
                ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
            ax.set_xlabel(setting.replace("_", "-"))
            ax.set_ylabel("validation accuracy (%)")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        return _save(fig, path)
