"""The numbers Train records about its binary model on the validation split: log loss and AUC
(`best_validation_logloss`, `best_validation_auc` in the model's metadata) and, at the decision
threshold, accuracy, precision, recall and F1, defined as Evaluate's (scikit-learn's, 0 where a
denominator is 0); and a multi-class model's macro and weighted F1 over its K classes, as
Evaluate's `metrics_multiclass` computes them. A tuning job reads them from train.py's summary
line as its objective (mlops_config.tuning.TUNING_OBJECTIVES)."""

from __future__ import annotations

import numpy as np


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary log loss, probabilities clipped to [1e-15, 1 - 1e-15]."""
    clipped = np.clip(p.astype(np.float64), 1e-15, 1 - 1e-15)
    return float(-np.mean(np.where(y == 1, np.log(clipped), np.log(1 - clipped))))


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney AUC (ties count half)."""
    from scipy.stats import rankdata

    ranks = rankdata(p)
    positives = int(y.sum())
    negatives = y.size - positives
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1e-300), 0.0)


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    return _ratio(2.0 * precision * recall, precision + recall)


def threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of class 1 predicted where p >= `threshold`."""
    predicted = p >= threshold
    actual = y == 1
    hits = np.array(float(np.sum(predicted & actual)))
    precision = _ratio(hits, np.array(float(predicted.sum())))
    recall = _ratio(hits, np.array(float(actual.sum())))
    return {
        "accuracy": float(np.mean(predicted == actual)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(_f1(precision, recall)),
    }


def class_f1(codes: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Macro F1 (the mean over the K columns of `p`) and weighted F1 (weighted by each class's
    share of the rows) of the most probable class against the class codes 0..K-1."""
    k = p.shape[1]
    predicted = np.argmax(p, axis=1)
    actual_counts = np.bincount(codes, minlength=k).astype(np.float64)
    predicted_counts = np.bincount(predicted, minlength=k).astype(np.float64)
    hits = np.bincount(codes[predicted == codes], minlength=k).astype(np.float64)
    f1 = _f1(_ratio(hits, predicted_counts), _ratio(hits, actual_counts))
    return {
        "macro_f1": float(f1.mean()),
        "weighted_f1": float(np.sum(actual_counts / codes.size * f1)),
    }
