"""The charts: training curves, calibration, runs side by side, a sweep's settings.

Drawn with matplotlib, imported on first use (not on the way to `fit`); pictures of the
digits themselves are pictures.py's. Every chart uses the same small style. Each function
returns the PNG bytes (the report embeds them) and, given a path, also writes the file
atomically.
"""

from __future__ import annotations

import io
import os

from mnist_cnn.atomic import atomic_write_bytes
from mnist_cnn.models.settings import flag_name, shown_value
from mnist_cnn.reporting.curves import AXIS, loss_name
from mnist_cnn.reporting.pictures import WRONG

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _pyplot():
    """matplotlib.pyplot on its file-only backend, imported when the first chart is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_epochs(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _save(fig, path: str | os.PathLike | None = None) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    if path is not None:
        atomic_write_bytes(path, buffer.getvalue())
    return buffer.getvalue()


def training_curves(history: list[dict], path=None, steps: list[dict] = (), loss="loss") -> bytes:
    """Accuracy and loss, training against validation (one pair per ensemble member); `loss`
    titles the loss panel with what that loss is (evaluation.trained_loss_name).

    With `steps` (steps.csv): training every few steps and validation at each epoch's last
    step, so one epoch is a curve, not a dot; without (older runs), one point per epoch."""
    plt = _pyplot()
    members = sorted({row.get("member", 1) for row in [*history, *steps]})
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
            for index, member in enumerate(members):
                colour = f"C{index % 10}"
                suffix = f" (member {member})" if len(members) > 1 else ""
                rows = [row for row in history if row.get("member", 1) == member]
                trained = [row for row in steps if row.get("member", 1) == member]
                if trained:  # training every few steps; validation at each epoch's last
                    ends = {row["epoch"]: row["step"] for row in trained}
                    rows = [row for row in rows if row["epoch"] in ends]
                    x, shown, style = [r["step"] for r in trained], trained, "-"
                    at = [ends[row["epoch"]] for row in rows]
                else:  # one point per epoch
                    at = [row["epoch"] for row in rows]
                    x, shown, style = at, rows, "o-"
                values = [row[metric] for row in shown]
                ax.plot(x, values, style, color=colour, alpha=0.55, label="training" + suffix)
                if rows and f"val_{metric}" in rows[0]:
                    values = [row[f"val_{metric}"] for row in rows]
                    ax.plot(
                        at,
                        values,
                        "o-",
                        color=colour,
                        markeredgecolor="black",
                        label="validation (epoch end)" + suffix,
                    )
            if steps:
                ax.set_xlabel("training step")
            else:
                ax.set_xlabel("epoch")
                _integer_epochs(ax.xaxis)
            ax.set_title(loss if metric == "loss" else metric)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        return _save(fig, path)


def reliability_diagram(bins: list[dict], ece: float, path=None) -> bytes:
    """Accuracy against confidence per bin, beside the diagonal of perfect calibration."""
    plt = _pyplot()
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


def overlaid_curves(curves: list, path=None) -> bytes:
    """Accuracy and loss of several runs (curves.Curve) against epochs counted in steps:
    training as a thin line, validation at each epoch's end as dots, one colour per run."""
    plt = _pyplot()
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, column, title in zip(axes, (1, 2), ("accuracy", loss_name(curves)), strict=True):
            for index, curve in enumerate(curves):
                color = f"C{index % 10}"
                x = [point[0] for point in curve.training]
                style = "-" if curve.per_step else "--"
                named = None if curve.validation else curve.name
                values = [point[column] for point in curve.training]
                ax.plot(x, values, style, color=color, alpha=0.5, label=named)
                x = [point[0] for point in curve.validation]
                values = [point[column] for point in curve.validation]
                if curve.validation:
                    ax.plot(x, values, "o-", color=color, mec="black", label=curve.name)
            ax.set_xlabel(AXIS)
            ax.set_xlim(left=0)
            ax.set_title(f"{title}: training (line), validation (dots)", wrap=True)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        return _save(fig, path)


def accuracy_by_setting(points: dict[str, list[tuple]], log_scale=(), path=None) -> bytes:
    """Validation accuracy against each swept setting: one panel per setting, one dot per
    trial. `points` maps a setting to (value, accuracy) pairs; text values are categories."""
    plt = _pyplot()
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
                shown = [shown_value(setting, v) for v in values]  # as the flag takes them
                labels = sorted(set(shown))
                ax.plot([labels.index(v) for v in shown], accuracies, "o", alpha=0.8)
                ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
            ax.set_xlabel(flag_name(setting))
            ax.set_ylabel("validation accuracy (%)")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        return _save(fig, path)
