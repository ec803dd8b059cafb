"""How well the predicted probabilities match observed frequencies: the Brier score, the
expected calibration error over equal-count bins, and the reliability curve behind both.

Equal-count bins (sort by p, cut into groups of equal size) rather than equal-width ones: with
rare positives almost every row falls into [0, 0.1) and the width bins above say nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ECE_BINS = 10
ECE_SCHEME = "equal-count"
RELIABILITY_BINS = 20


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean of (p - y)^2."""
    return float(np.mean((np.asarray(p, np.float64) - np.asarray(y, np.float64)) ** 2))


def equal_count_bins(p: np.ndarray, bins: int) -> np.ndarray:
    """Bin index per row: rows sorted by p (stable), cut into `bins` groups of equal size."""
    order = np.argsort(p, kind="stable")
    index = np.empty(p.size, dtype=np.int64)
    index[order] = (np.arange(p.size) * bins) // p.size
    return index


def reliability(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per equal-count bin: mean predicted probability, observed positive rate, rows."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    index = equal_count_bins(p, min(bins, p.size))
    rows = np.bincount(index)
    mean_p = np.bincount(index, weights=p) / rows
    rate = np.bincount(index, weights=y) / rows
    return [
        {"mean_predicted": float(a), "observed_rate": float(b), "rows": int(c)}
        for a, b, c in zip(mean_p, rate, rows, strict=True)
    ]


def ece(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over bins of (rows in bin / rows) * |mean p - observed rate|."""
    curve = reliability(y, p, bins)
    total = sum(b["rows"] for b in curve)
    return float(
        sum(b["rows"] / total * abs(b["mean_predicted"] - b["observed_rate"]) for b in curve)
    )


def calibration_section(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """Brier (and the base rate's, the score of always predicting the positive rate), ECE over
    10 equal-count bins, mean prediction against the positive rate, and the 20-bin curve."""
    rate = float(np.mean(y))
    return {
        "brier_score": brier(y, p),
        "brier_score_base_rate": rate * (1 - rate),
        "expected_calibration_error": ece(y, p),
        "ece_bins": ECE_BINS,
        "ece_scheme": ECE_SCHEME,
        "mean_predicted": float(np.mean(p)),
        "positive_rate": rate,
        "reliability": reliability(y, p, RELIABILITY_BINS),
    }
