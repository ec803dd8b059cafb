"""A compact profile of a feature's values, enough to measure later how far other data moved
from it without reading the original rows again (`feature_shift` does).

The kind decides what is kept:

    binary       (schema bool)                         counts of 0 and 1
    categorical  (schema int, <= 50 distinct values)   count per value
                 (schema category, values as text)     count per value, most frequent first
    numeric      (everything else)                     the 1st..99th percentiles and the exact
                                                       share of values at or below each
Every profile keeps the rows and the missing count. Prepare stores the profile of the training
split in statistics.json and, through the model's metadata, with the model, so Evaluate can
compare a new version with the data the champion was trained on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.categories import category_counts

MAX_CATEGORIES = 50
PERCENTILES = np.arange(1, 100) / 100
BINARY, CATEGORICAL, NUMERIC = "binary", "categorical", "numeric"


def feature_kind(values: np.ndarray, schema_type: str) -> str:
    """binary for bools, categorical for ints with few distinct values, numeric otherwise."""
    if schema_type == "bool":
        return BINARY
    if schema_type == "int":
        present = values[~np.isnan(values)]
        if np.unique(present).size <= MAX_CATEGORIES:
            return CATEGORICAL
    return NUMERIC


def profile(values: np.ndarray, schema_type: str) -> dict[str, Any]:
    """The profile of one feature's values (float64, NaN = missing; a category feature's
    canonical text, None = missing)."""
    if schema_type == "category":
        counts = category_counts(values)
        return {
            "kind": CATEGORICAL,
            "rows": int(values.size),
            "missing": int(values.size - sum(counts.values())),
            "categories": counts,
        }
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    kind = feature_kind(values, schema_type)
    result: dict[str, Any] = {
        "kind": kind,
        "rows": int(values.size),
        "missing": int(values.size - present.size),
    }
    if kind in (BINARY, CATEGORICAL):
        categories, counts = np.unique(present, return_counts=True)
        result["categories"] = {
            _category_name(c): int(n) for c, n in zip(categories, counts, strict=True)
        }
    elif present.size:
        grid = np.quantile(present, PERCENTILES)
        ordered = np.sort(present)
        at_or_below = np.searchsorted(ordered, grid, side="right") / present.size
        result["percentiles"] = [float(v) for v in grid]
        result["share_at_or_below"] = [float(v) for v in at_or_below]
    return result


def _category_name(value: float) -> str:
    return f"{int(value)}" if value == int(value) else repr(float(value))


def profiles(
    columns: dict[str, np.ndarray], features: list[tuple[str, str]], index: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Profiles of the rows `index` of every (name, schema type) feature."""
    return {name: profile(columns[name][index], kind) for name, kind in features}
