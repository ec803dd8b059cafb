"""Statistics of the splits: per-feature statistics (the drift baseline's statistics.json) and
class balance. Distances between distributions are `common.feature_shift`'s."""

from __future__ import annotations

from typing import Any

import numpy as np

from common.categories import category_counts

MAX_CATEGORIES = 50
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def feature_statistics(values: np.ndarray, kind: str) -> dict[str, Any]:
    """count, missing, mean, std, min, max, quantiles; category counts for bool/small int;
    a category feature (text): count, missing and the rows of its 50 most frequent values."""
    if kind == "category":
        counts = category_counts(values)
        return {
            "type": kind,
            "count": sum(counts.values()),
            "missing": int(values.size - sum(counts.values())),
            "distinct": len(counts),
            "categories": dict(list(counts.items())[:MAX_CATEGORIES]),
        }
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


def class_balance(y: np.ndarray) -> dict[str, Any]:
    positives = int(y.sum())
    return {
        "rows": int(y.size),
        "positives": positives,
        "negatives": int(y.size - positives),
        "positive_fraction": positives / y.size,
    }
