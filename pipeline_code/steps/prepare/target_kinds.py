"""What Prepare does with the target for each problem type: its numbers, its checks, its
balance in each split.

    binary      0/1 (common.labels.binary_labels); both classes in every split
    multiclass  class codes 0..K-1 of the sorted labels (common.labels.multiclass_labels);
                every class in the train split, at least two in each split
    regression  finite numbers (float32 range: XGBoost's labels); at least two distinct values

The binary checks and balance are the ones Prepare always had (`dataset_validation`,
`split_statistics.class_balance`); this module adds the other two types beside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.feature_profile import profile
from common.labels import LabelError, multiclass_labels, multiclass_mapping
from common.problem_types import BINARY, MULTICLASS, REGRESSION
from dataset_schema import Schema, ValidationError
from split_statistics import class_balance

#: Split CSV column type of the target (split_outputs): 0/1, class codes, numbers.
TARGET_COLUMN_KIND = {BINARY: "bool", MULTICLASS: "int", REGRESSION: "float"}
#: The largest finite float32: a larger target becomes infinite in XGBoost.
FLOAT32_MAX = float(np.finfo(np.float32).max)
REGRESSION_SOURCE = "the target's numbers"


def target_codes(
    columns: dict[str, np.ndarray], schema: Schema, classes: list[str] | None = None
) -> dict[str, Any]:
    """Turn a non-binary target into the trainer's numbers in place (multi-class: class codes
    of `classes`, or of the values seen); return what they stand for."""
    if schema.problem_type == REGRESSION:
        return {"problem_type": REGRESSION, "source": REGRESSION_SOURCE}
    text = columns[schema.target]
    try:
        codes, found = multiclass_labels(text, schema.target, classes)
    except LabelError as error:
        raise ValidationError(str(error)) from error
    columns[schema.target] = codes
    return multiclass_mapping(found)


def check_target(schema: Schema, known: np.ndarray, labels: dict[str, Any], split: bool) -> None:
    """Checks of a non-binary target's known values (`known`: missing ones removed)."""
    target = schema.target
    if schema.problem_type == REGRESSION:
        infinite = np.isinf(known)
        if infinite.any():
            raise ValidationError(
                f"target column {target!r} (regression) has {int(infinite.sum())} infinite "
                f"value(s), e.g. {known[infinite][0]:g}: a regression target must be finite"
            )
        beyond = np.abs(known) > FLOAT32_MAX
        if beyond.any():
            raise ValidationError(
                f"target column {target!r} (regression) has {int(beyond.sum())} value(s) beyond "
                f"{FLOAT32_MAX:.7g} (float32, XGBoost's label type), e.g. {known[beyond][0]:g}"
            )
        if split and np.unique(known).size < 2:
            value = f"{known[0]:g}" if known.size else "none"
            raise ValidationError(
                f"target column {target!r} (regression) has a single value ({value}) in all "
                f"{known.size} labelled rows: there is nothing to learn"
            )
        return
    classes = labels.get("classes") or []
    counts = np.bincount(known.astype(np.int64), minlength=len(classes))
    if split and int((counts > 0).sum()) < 2:
        raise ValidationError(
            f"target column {target!r} has a single class: all {known.size} labelled rows are "
            f"{classes[int(np.argmax(counts))]!r}; a multi-class model needs at least two"
        )
    if split and counts.min() < 3:
        rare = int(np.argmin(counts))
        raise ValidationError(
            f"target column {target!r} has only {int(counts[rare])} row(s) of class "
            f"{classes[rare]!r}; at least 3 are needed (one per split: train, validation, test)"
        )


def target_balance(schema: Schema, y: np.ndarray, labels: dict[str, Any]) -> dict[str, Any]:
    """A split's target summary: the class balance (binary), rows per class (multi-class) or
    the target's spread (regression)."""
    if schema.problem_type == BINARY:
        return class_balance(y)
    if schema.problem_type == MULTICLASS:
        classes = labels.get("classes") or []
        counts = np.bincount(y.astype(np.int64), minlength=len(classes))
        return {
            "rows": int(y.size),
            "classes": {label: int(n) for label, n in zip(classes, counts, strict=False)},
        }
    return {
        "rows": int(y.size),
        "mean": float(y.mean()) if y.size else None,
        "std": float(y.std()) if y.size else None,
        "min": float(y.min()) if y.size else None,
        "max": float(y.max()) if y.size else None,
    }


def target_profile(schema: Schema, y: np.ndarray, labels: dict[str, Any]) -> dict[str, Any]:
    """A multi-class or regression split's target as a feature profile (`common.feature_profile`):
    the count per class label, or the target's percentiles. Stored in the training split's
    reference, so Evaluate can test a later version's class shares or target distribution
    against the champion's (`common.feature_shift.compare_feature`)."""
    if schema.problem_type == MULTICLASS:
        classes = np.array(labels.get("classes") or [], dtype=object)
        return profile(classes[y.astype(np.int64)], "category")
    return profile(y.astype(np.float64), "float")


def split_problem(schema: Schema, y: np.ndarray, labels: dict[str, Any]) -> str | None:
    """Why a split's rows cannot train or judge a model (None: they can)."""
    if y.size == 0:
        return "no rows"
    if schema.problem_type == MULTICLASS and np.unique(y).size < 2:
        classes = labels.get("classes") or []
        return f"only class {classes[int(y[0])]!r}"
    if schema.problem_type == REGRESSION and y.size < 2:
        return f"{y.size} row"
    return None
