"""Metrics of a classifier on a labelled set: loss, accuracy, per-class scores, confusion."""

from __future__ import annotations

import numpy as np

from mnist_cnn.data.datasets import normalise

PREDICT_BATCH = 1024
EPSILON = 1e-7  # Keras clips probabilities the same way in its cross-entropy


def predict_probabilities(model, images: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """Class probabilities (N, 10) for uint8 images (N, 28, 28), in large batches."""
    return np.asarray(model.predict(normalise(images), batch_size=batch_size, verbose=0))


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The images moved by (dy, dx) pixels, with background (zero) filling the gap."""
    moved = np.zeros_like(images)
    height, width = images.shape[1:3]
    moved[:, max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = images[
        :, max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return moved


TTA_SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


def predict_with_tta(model, images: np.ndarray, shifts=TTA_SHIFTS) -> np.ndarray:
    """Test-time augmentation: the mean probabilities over the image and its 1-pixel shifts.

    The shifts are fixed in advance (never chosen on the test set); MNIST digits are
    centred by mass, so a pixel either way is a view the model saw in training.
    """
    return np.mean([predict_probabilities(model, shifted(images, *s)) for s in shifts], axis=0)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def evaluate(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Loss, accuracy, per-class precision/recall/F1 and the confusion matrix, as plain JSON."""
    labels = np.asarray(labels, dtype=np.int64)
    classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(len(labels)), labels]
    matrix = confusion_matrix(labels, predicted, classes)
    true_positive = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)
    predicted_count = matrix.sum(axis=0)
    recall = np.divide(true_positive, support, out=np.zeros(classes), where=support > 0)
    precision = np.divide(
        true_positive, predicted_count, out=np.zeros(classes), where=predicted_count > 0
    )
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros(classes), where=denominator > 0
    )
    return {
        "test_loss": float(-np.log(np.clip(picked, EPSILON, 1.0)).mean()),
        "test_accuracy": float((predicted == labels).mean()),
        "test_samples": int(len(labels)),
        "errors": int((predicted != labels).sum()),
        "per_class": [
            {
                "class": c,
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c in range(classes)
        ],
        "confusion_matrix": matrix.tolist(),
    }


def wrong_files(probabilities: np.ndarray, labels: np.ndarray, files: list[str]) -> list[dict]:
    """The files read wrong, most confident mistake first (none when there are no files)."""
    if not files:
        return []
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")]
    return [
        {
            "file": files[i],
            "label": int(labels[i]),
            "predicted": int(predicted[i]),
            "confidence": float(probabilities[i, predicted[i]]),
        }
        for i in wrong
    ]


def most_confused_pairs(matrix, top: int = 10) -> list[tuple[int, int, int]]:
    """The off-diagonal cells with the most errors: (true, predicted, count), largest first."""
    matrix = np.asarray(matrix)
    pairs = [
        (int(t), int(p), int(matrix[t, p]))
        for t, p in zip(*np.nonzero(matrix), strict=True)
        if t != p
    ]
    return sorted(pairs, key=lambda pair: (-pair[2], pair[0], pair[1]))[:top]


# --- what each loss is --------------------------------------------------------------------
# Keras's val_loss (history.csv) is the loss trained on: with the recipe's label smoothing,
# before calibration. The test loss (metrics.json) is the plain cross-entropy of the
# probabilities `predict` gives: after the temperature. They are different numbers (0.55 and
# 0.03 for `fast`), so each is named with what it is wherever it is shown.

TEST_LOSS = "test loss (cross-entropy of the calibrated probabilities)"
PER_CLASS_HEAD = "recall: the share of each true digit read right (its accuracy)"


def test_loss_name(temperature: float | None = None) -> str:
    """The test loss's name; without calibration (temperature 1 or none) plain cross-entropy."""
    if temperature is None or temperature == 1.0:
        return "test loss (cross-entropy)"
    return f"{TEST_LOSS[:-1]}, temperature {temperature:.3g})"


def trained_loss_name(label_smoothing, what: str = "validation loss") -> str:
    """Keras's loss (val_loss, loss) named with what it is: "validation loss (with label
    smoothing 0.1, as trained)". `label_smoothing`: config.json's, or a list of several runs'."""
    several = isinstance(label_smoothing, (list, tuple, set))
    given = label_smoothing if several else [label_smoothing]
    known = sorted({value for value in given if value is not None})
    if len(known) > 1:
        each = " or ".join(f"{value:g}" for value in known)
        return f"{what} (with each run's label smoothing, {each}, as trained)"
    if not known:
        return f"{what} (as trained, before calibration)"
    if not known[0]:
        return f"{what} (cross-entropy as trained, before calibration)"
    return f"{what} (with label smoothing {known[0]:g}, as trained)"


def format_metrics(metrics: dict, temperature: float | None = None) -> str:
    """The metrics as a short text report: headline numbers, per-class table, confusion matrix."""
    lines = [
        f"test accuracy: {metrics['test_accuracy']:.2%}  "
        f"({metrics['errors']} wrong of {metrics['test_samples']})",
        f"{test_loss_name(temperature)}: {metrics['test_loss']:.4f}",
        "",
        PER_CLASS_HEAD,
        "class  recall  precision  f1      support",
    ]
    for row in metrics["per_class"]:
        lines.append(
            f"{row['class']:>5}  {row['recall']:>6.2%}  {row['precision']:>9.2%}  "
            f"{row['f1']:.4f}  {row['support']:>7}"
        )
    matrix = metrics["confusion_matrix"]
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    lines.append("      " + "".join(f"{c:>6}" for c in range(len(matrix))))
    for c, row in enumerate(matrix):
        lines.append(f"{c:>6}" + "".join(f"{n:>6}" for n in row))
    return "\n".join(lines)


# --- calibration ---------------------------------------------------------------------------

CALIBRATION_BINS = 15


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax(log p / T): T > 1 softens over-confident answers, T < 1 sharpens timid ones."""
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(probabilities, EPSILON, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood (Guo et al. 2017)."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels, dtype=np.int64)

    def nll(log_t: float) -> float:
        scaled = apply_temperature(probabilities, float(np.exp(log_t)))
        return float(-np.log(np.clip(scaled[np.arange(len(labels)), labels], EPSILON, 1)).mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


def reliability_bins(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[dict]:
    """Equal-width confidence bins: each bin's count, mean confidence and accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": int(inside.sum()),
                "confidence": float(confidence[inside].mean()) if inside.any() else None,
                "accuracy": float(correct[inside].mean()) if inside.any() else None,
            }
        )
    return rows


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """The mean gap between confidence and accuracy, over equal-width confidence bins."""
    total = len(labels)
    return float(
        sum(
            row["count"] / total * abs(row["confidence"] - row["accuracy"])
            for row in reliability_bins(probabilities, labels, bins)
            if row["count"]
        )
    )
