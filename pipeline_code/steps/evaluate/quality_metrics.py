"""Metrics of one model's scores on the test set, and SageMaker's model-quality layout
(`binary_classification_metrics`) with the bootstrap's standard deviations.

Threshold metrics (accuracy, precision, recall, F1, the confusion matrix) label a row 1 when its
probability is at least the model's decision threshold, chosen on the validation split by the
train step and recorded in the model's metadata; a model without one gets THRESHOLD."""

from __future__ import annotations

from typing import Any

import numpy as np

#: The decision threshold of a model that records none (trained before thresholds were chosen).
THRESHOLD = 0.5
ROC_MAX_POINTS = 201
LOG_LOSS_EPS = 1e-15


def point_metrics(y: np.ndarray, p: np.ndarray, threshold: float = THRESHOLD) -> dict[str, Any]:
    """Metrics on the whole test set (scikit-learn), label 1 at probability >= `threshold`."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
        roc_curve,
    )

    predicted = (p >= threshold).astype(np.int8)
    fpr, tpr, _ = roc_curve(y, p)
    if fpr.size > ROC_MAX_POINTS:
        grid = np.linspace(0.0, 1.0, ROC_MAX_POINTS)
        fpr, tpr = grid, np.interp(grid, fpr, tpr)
    matrix = confusion_matrix(y, predicted, labels=[0, 1])
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS))),
        "confusion_matrix": {
            str(actual): {str(pred): int(matrix[actual, pred]) for pred in (0, 1)}
            for actual in (0, 1)
        },
        "roc": {"false_positive_rates": fpr.tolist(), "true_positive_rates": tpr.tolist()},
    }


SCALAR_METRICS = ("accuracy", "precision", "recall", "f1", "auc", "log_loss")


def majority_baseline(y: np.ndarray) -> dict[str, Any]:
    """The accuracy of always predicting the majority class: what accuracy must beat to mean
    anything on imbalanced data."""
    positives = int(np.sum(y))
    majority = 1 if positives * 2 > y.size else 0
    return {
        "majority_class": majority,
        "always_majority_accuracy": max(positives, y.size - positives) / y.size,
    }


def _spread(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.std(finite, ddof=1)) if finite.size > 1 else 0.0


def quality_section(point: dict[str, Any], samples: dict[str, np.ndarray] | None) -> dict:
    """The SageMaker model-quality `binary_classification_metrics` layout."""
    section: dict[str, Any] = {
        metric: {
            "value": point[metric],
            "standard_deviation": _spread(samples[metric]) if samples else 0.0,
        }
        for metric in SCALAR_METRICS
    }
    section["confusion_matrix"] = point["confusion_matrix"]
    section["receiver_operating_characteristic_curve"] = point["roc"]
    return section
