"""The two numbers Train records about its model on the validation split: log loss and AUC
(`best_validation_logloss`, `best_validation_auc` in the model's metadata)."""

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
