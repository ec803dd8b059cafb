"""A multi-class model's metrics on the test set, in SageMaker's model-quality layout
(`multiclass_classification_metrics`), with paired-bootstrap spreads.

The predicted class is the most probable one. SageMaker's layout (Model Monitor's model quality
metrics for a multiclass problem) holds `confusion_matrix` (actual label -> predicted label ->
rows), `accuracy`, `weighted_recall`, `weighted_precision`, `weighted_f0_5`, `weighted_f1`,
`weighted_f2` and their `*_best_constant_classifier` values, each {value, standard_deviation};
this section adds `macro_f1`, `log_loss` and `recall_per_class` (label -> recall). Averages
follow scikit-learn with every class of the model as a label and 0 where a ratio is undefined.

The bootstrap computes every scalar for a whole chunk of resamples from resampling counts
(`paired_bootstrap.bootstrap_weights`) with three matrix products: the weighted rows per actual
class, per predicted class and per correct class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from paired_bootstrap import bootstrap_weights
from quality_metrics import LOG_LOSS_EPS

SECTION = "multiclass_classification_metrics"
#: The scalars the bootstrap resamples (and the gate may use: accuracy, macro_f1, weighted_f1,
#: log_loss).
SCALARS = (
    "accuracy",
    "weighted_recall",
    "weighted_precision",
    "weighted_f0_5",
    "weighted_f1",
    "weighted_f2",
    "macro_f1",
    "log_loss",
)


def _f_beta(precision: np.ndarray, recall: np.ndarray, beta: float) -> np.ndarray:
    b2 = beta * beta
    denominator = b2 * precision + recall
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (1 + b2) * precision * recall / denominator, 0.0)


def _from_counts(
    actual: np.ndarray, predicted: np.ndarray, correct: np.ndarray, loss: np.ndarray
) -> dict[str, np.ndarray]:
    """Every scalar from weighted counts (..., K) per actual/predicted/correct class and the
    weighted log-loss sum (...): shapes (K,) for one evaluation, (B, K) for B resamples."""
    total = actual.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, correct / predicted, 0.0)
        recall = np.where(actual > 0, correct / actual, 0.0)
    share = actual / total[..., None]
    metrics = {
        "accuracy": correct.sum(axis=-1) / total,
        "weighted_recall": (share * recall).sum(axis=-1),
        "weighted_precision": (share * precision).sum(axis=-1),
        "macro_f1": _f_beta(precision, recall, 1.0).mean(axis=-1),
        "log_loss": loss / total,
    }
    for name, beta in (("weighted_f0_5", 0.5), ("weighted_f1", 1.0), ("weighted_f2", 2.0)):
        metrics[name] = (share * _f_beta(precision, recall, beta)).sum(axis=-1)
    metrics["recall"] = recall
    return metrics


def _row_parts(
    y: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One-hot actual, predicted and correct classes (n, K) and each row's log loss (n,)."""
    k = p.shape[1]
    codes = y.astype(np.int64)
    predicted = np.argmax(p, axis=1)
    actual_hot = np.eye(k, dtype=np.float64)[codes]
    predicted_hot = np.eye(k, dtype=np.float64)[predicted]
    chosen = np.clip(p[np.arange(codes.size), codes], LOG_LOSS_EPS, 1.0)
    return actual_hot, predicted_hot, actual_hot * predicted_hot, -np.log(chosen)


def point_metrics(y: np.ndarray, p: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Metrics on the whole test set: y holds class codes, p (n, K) the probabilities."""
    actual, predicted, correct, loss = _row_parts(y, p)
    values = _from_counts(actual.sum(0), predicted.sum(0), correct.sum(0), loss.sum())
    point: dict[str, Any] = {name: float(values[name]) for name in SCALARS}
    point["recall_per_class"] = {
        c: float(r) for c, r in zip(classes, values["recall"], strict=True)
    }
    codes, guesses = y.astype(np.int64), np.argmax(p, axis=1)
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(matrix, (codes, guesses), 1)
    point["confusion_matrix"] = {
        a: {c: int(matrix[i, j]) for j, c in enumerate(classes)} for i, a in enumerate(classes)
    }
    # the best constant classifier: always the most frequent class
    share = actual.sum(0) / y.size
    top = int(np.argmax(share))
    point["accuracy_best_constant_classifier"] = float(share[top])
    point["weighted_recall_best_constant_classifier"] = float(share[top])
    point["weighted_precision_best_constant_classifier"] = float(share[top] ** 2)
    for name, beta in (("weighted_f0_5", 0.5), ("weighted_f1", 1.0), ("weighted_f2", 2.0)):
        f = _f_beta(np.array(share[top]), np.array(1.0), beta)
        point[f"{name}_best_constant_classifier"] = float(share[top] * f)
    return point


def bootstrap(
    y: np.ndarray, scores: list[np.ndarray], samples: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """Every model's scalars on the same `samples` resamples of the rows (paired)."""
    parts = [_row_parts(y, p) for p in scores]
    out: list[dict[str, list[np.ndarray]]] = [{m: [] for m in SCALARS} for _ in scores]
    for weights in bootstrap_weights(y.size, samples, seed):
        w = weights.astype(np.float64)
        for model, (actual, predicted, correct, loss) in enumerate(parts):
            values = _from_counts(w @ actual, w @ predicted, w @ correct, w @ loss)
            for name in SCALARS:
                out[model][name].append(values[name])
    return [{m: np.concatenate(v) for m, v in model.items()} for model in out]


def _spread(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.std(finite, ddof=1)) if finite.size > 1 else 0.0


def quality_section(point: dict[str, Any], samples: dict[str, np.ndarray] | None) -> dict:
    """The `multiclass_classification_metrics` layout."""
    section: dict[str, Any] = {"confusion_matrix": point["confusion_matrix"]}
    for name in SCALARS:
        spread = _spread(samples[name]) if samples else 0.0
        section[name] = {"value": point[name], "standard_deviation": spread}
    for name in ("accuracy", "weighted_recall", "weighted_precision", "weighted_f0_5"):
        key = f"{name}_best_constant_classifier"
        section[key] = {"value": point[key], "standard_deviation": 0.0}
    for name in ("weighted_f1", "weighted_f2"):
        key = f"{name}_best_constant_classifier"
        section[key] = {"value": point[key], "standard_deviation": 0.0}
    section["recall_per_class"] = point["recall_per_class"]
    return section
