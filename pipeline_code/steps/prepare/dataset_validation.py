"""Checking the values against the schema: missing values within the limit, types, magnitudes
the later steps can hold, a binary target with enough rows of each class."""

from __future__ import annotations

import numpy as np

from common.categories import is_missing
from common.problem_types import BINARY
from dataset_reading import Dataset
from dataset_schema import CATEGORY, Schema, ValidationError
from splitting import SPLITS
from target_kinds import check_target

#: Largest magnitude of an int column: float64 (how values are held) is exact up to here.
INT_EXACT_LIMIT = 2**53 - 1
#: Largest magnitude of a feature: XGBoost stores features as float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def validate(dataset: Dataset, schema: Schema, split: bool = True) -> np.ndarray:
    """Check the values against the schema; return the mask of rows to keep (target known).

    `split` (default True) also requires enough rows of each class for three stratified
    splits; without it (evaluation only) one row of each class is enough.
    """
    rows = dataset.rows
    if rows == 0:
        raise ValidationError(
            f"empty input: {len(dataset.files)} file(s) contain no data rows (empty or header only)"
        )
    limit = schema.max_missing_fraction
    target = dataset.columns[schema.target]
    target_missing = np.isnan(target)
    _check_missing(schema.target, int(target_missing.sum()), rows, limit)
    known = target[~target_missing]
    binary = schema.problem_type == BINARY
    if not binary:
        check_target(schema, known, dataset.labels, split)
    not_binary = (known != 0.0) & (known != 1.0) if binary else np.zeros(0, dtype=bool)
    if not_binary.any():
        seen = ", ".join(f"{v:g}" for v in np.unique(known)[:10])
        raise ValidationError(
            f"target column {schema.target!r} must be 0 or 1 (true/false), but "
            f"{int(not_binary.sum())} row(s) are not, e.g. {known[not_binary][0]:g} (values "
            f"seen: {seen}): set schema.positive_class to the value that counts as class 1"
        )
    for name, kind in schema.features:
        values = dataset.columns[name]
        if kind == CATEGORY:
            _check_missing(name, int(is_missing(values).sum()), rows, limit)
            continue
        missing = np.isnan(values)
        _check_missing(name, int(missing.sum()), rows, limit)
        present = values[~missing]
        if np.isinf(present).any():
            raise ValidationError(
                f"column {name!r} ({kind}) has {int(np.isinf(present).sum())} infinite value(s)"
            )
        if kind in ("float", "int"):
            _check_magnitude(name, kind, present)
        if kind == "int":
            fractional = present != np.floor(present)
            if fractional.any():
                raise ValidationError(
                    f"column {name!r} (int) must contain whole numbers, but "
                    f"{int(fractional.sum())} value(s) are not, e.g. {present[fractional][0]:g}"
                )
        elif kind == "bool":
            other = (present != 0.0) & (present != 1.0)
            if other.any():
                raise ValidationError(
                    f"column {name!r} (bool) must contain 0/1 or true/false, but "
                    f"{int(other.sum())} value(s) are not, e.g. {present[other][0]:g}"
                )
    if not binary:
        return ~target_missing
    positives = int(known.sum())
    negatives = known.size - positives
    if positives == 0 or negatives == 0:
        only = 1 if positives else 0
        need = (
            "a classifier needs rows of both classes 0 and 1"
            if split
            else "evaluating a model needs rows of both classes 0 and 1 (AUC is undefined "
            "with one class)"
        )
        raise ValidationError(
            f"target column {schema.target!r} has a single class: all {known.size} labelled "
            f"rows are {only}; {need}"
        )
    fewest = min(positives, negatives)
    if split and fewest < len(SPLITS):
        rare = 1 if positives < negatives else 0
        raise ValidationError(
            f"target column {schema.target!r} has only {fewest} row(s) of class {rare}; "
            f"at least {len(SPLITS)} are needed (one per split: {', '.join(SPLITS)})"
        )
    return ~target_missing


def _check_magnitude(name: str, kind: str, present: np.ndarray) -> None:
    """Refuse numbers the later steps cannot hold.

    An int column is written as int64 from float64 values, which hold whole numbers exactly
    only up to 2**53 - 1; beyond it another number would be written. A float column must fit
    float32, the type XGBoost stores features in (a larger value becomes infinite there).
    """
    if kind == "int":
        limit: float = INT_EXACT_LIMIT
        meaning = f"{INT_EXACT_LIMIT} (2**53 - 1, the largest whole number held exactly)"
    else:
        limit = FLOAT32_MAX
        meaning = f"{FLOAT32_MAX:.7g} (float32, the type XGBoost stores features in)"
    beyond = np.abs(present) > limit
    if beyond.any():
        raise ValidationError(
            f"column {name!r} ({kind}) must contain numbers of magnitude at most {meaning}, "
            f"but {int(beyond.sum())} value(s) are not, e.g. {present[beyond][0]:g}"
        )


def _check_missing(column: str, missing: int, rows: int, limit: float) -> None:
    fraction = missing / rows
    if fraction > limit:
        raise ValidationError(
            f"column {column!r} has {fraction:.1%} missing values ({missing} of {rows} rows), "
            f"more than the allowed {limit:.1%} (max_missing_fraction)"
        )
