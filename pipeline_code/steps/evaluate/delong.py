"""DeLong's covariance of AUCs measured on the same rows (the fast midrank algorithm of Sun and
Xu, 2014): the standard error of the gate's AUC difference, exact and deterministic, in
O(models * rows * log rows).

AUC = the share of (positive, negative) pairs a model ranks right, ties counting half (what
scikit-learn's roc_auc_score computes). Per model, each positive's share of negatives ranked
below it (V10) and each negative's share of positives ranked above it (V01) are the structural
components; cov = S10 / m + S01 / n, with S10 and S01 their sample covariance matrices across
models, m positives and n negatives. The variance of a paired difference is
cov[0, 0] + cov[1, 1] - 2 cov[0, 1].
"""

from __future__ import annotations

import math

import numpy as np


def midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of `x`, tied values sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], x.size]
    ranks = np.empty(x.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def delong(y: np.ndarray, scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The AUC of each model's `scores` on labels `y` and their covariance matrix.

    Raises:
        ValueError: fewer than 2 positives or 2 negatives (no variance to estimate).
    """
    labels = np.asarray(y).astype(bool)
    m, n = int(labels.sum()), int((~labels).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 positives and 2 negatives (got {m} and {n})")
    aucs, v10, v01 = [], [], []
    for score in scores:
        s = np.asarray(score, dtype=np.float64)
        positive, negative = s[labels], s[~labels]
        within_positive, within_negative = midranks(positive), midranks(negative)
        overall = midranks(np.r_[positive, negative])
        aucs.append((overall[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((overall[:m] - within_positive) / n)
        v01.append(1.0 - (overall[m:] - within_negative) / m)
    s10 = np.atleast_2d(np.cov(np.array(v10)))
    s01 = np.atleast_2d(np.cov(np.array(v01)))
    return np.array(aucs), s10 / m + s01 / n


def auc_difference(
    y: np.ndarray, challenger: np.ndarray, champion: np.ndarray
) -> tuple[float, float, float, float]:
    """(delta, standard error, challenger AUC, champion AUC) with delta = challenger - champion."""
    aucs, cov = delong(y, [challenger, champion])
    variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return (
        float(aucs[0] - aucs[1]),
        math.sqrt(max(float(variance), 0.0)),
        float(aucs[0]),
        float(aucs[1]),
    )
