"""Statistics of the splits: per-feature statistics (the drift baseline's statistics.json) and
the distances between the train split and the others (Kolmogorov-Smirnov, PSI)."""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_CATEGORIES = 50
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
PSI_BINS = 10


def feature_statistics(values: np.ndarray, kind: str) -> dict[str, Any]:
    """count, missing, mean, std, min, max, quantiles; category counts for bool/small int."""
    present = values[~np.isnan(values)]
    stats: dict[str, Any] = {
        "type": kind,
        "count": int(present.size),
        "missing": int(values.size - present.size),
    }
    if present.size == 0:
        return stats
    stats.update(
        mean=float(present.mean()),
        std=float(present.std(ddof=1)) if present.size > 1 else 0.0,
        min=float(present.min()),
        max=float(present.max()),
        quantiles={
            f"{q:g}": float(v)
            for q, v in zip(QUANTILES, np.quantile(present, QUANTILES), strict=True)
        },
    )
    if kind in ("bool", "int"):
        categories, counts = np.unique(present, return_counts=True)
        if categories.size <= MAX_CATEGORIES:
            stats["categories"] = {
                f"{int(c)}": int(n) for c, n in zip(categories, counts, strict=True)
            }
    return stats


def ks_statistic(sorted_reference: np.ndarray, other: np.ndarray) -> float | None:
    """Two-sample Kolmogorov-Smirnov statistic; `sorted_reference` is sorted, NaNs removed."""
    other = np.sort(other[~np.isnan(other)])
    if sorted_reference.size == 0 or other.size == 0:
        return None
    grid = np.concatenate([sorted_reference, other])
    cdf_reference = np.searchsorted(sorted_reference, grid, side="right") / sorted_reference.size
    cdf_other = np.searchsorted(other, grid, side="right") / other.size
    return float(np.max(np.abs(cdf_reference - cdf_other)))


def psi(sorted_reference: np.ndarray, other: np.ndarray, bins: int = PSI_BINS) -> float | None:
    """Population stability index over the reference's quantile bins (missing values ignored)."""
    other = other[~np.isnan(other)]
    if sorted_reference.size == 0 or other.size == 0:
        return None
    edges = np.unique(np.quantile(sorted_reference, np.linspace(0.0, 1.0, bins + 1)))[1:-1]
    expected = np.bincount(
        np.searchsorted(edges, sorted_reference, side="right"), minlength=edges.size + 1
    )
    actual = np.bincount(np.searchsorted(edges, other, side="right"), minlength=edges.size + 1)
    p = np.clip(expected / sorted_reference.size, 1e-6, None)
    q = np.clip(actual / other.size, 1e-6, None)
    return float(np.sum((q - p) * np.log(q / p)))


def class_balance(y: np.ndarray) -> dict[str, Any]:
    positives = int(y.sum())
    return {
        "rows": int(y.size),
        "positives": positives,
        "negatives": int(y.size - positives),
        "positive_fraction": positives / y.size,
    }
