"""The problem type of a user's target column (`make local-run DATA=... TARGET=...`), and why:

    binary      POSITIVE names class 1, or the values are 0/1 or true/false
    multiclass  text with 3 to 100 distinct values, or whole numbers with 3 to 20 distinct values
    regression  other numbers (fractional, or whole with more than 20 distinct values)

A target of two other values is binary and needs POSITIVE (the error says so). `PROBLEM=...`
overrides the inference, and is checked against the values. A run whose type is not the one
of the configured gate metric gets the type's local gate (`LOCAL_GATE`), with a note.
"""

from __future__ import annotations

from typing import Any

from pipeline_code.steps import load

_TYPES = load("common", "problem_types")
_LABELS = load("common", "labels")
PROBLEM_TYPES: tuple[str, ...] = _TYPES.PROBLEM_TYPES
floor_range = _TYPES.floor_range
#: Most distinct whole numbers read as class labels rather than a quantity.
MAX_INTEGER_CLASSES = 20
MAX_CLASSES: int = _LABELS.MAX_CLASSES
#: The local run's gate when the configured metric is another type's: (metric, floor, champion
#: tolerance). All unit-free, so the configured tolerance (in the other metric's units, e.g.
#: 20 for an RMSE) is not carried over: macro F1 above 0.5, R² above 0 (better than predicting
#: the mean), AUC above 0.8; each may be 0.01 worse than the champion.
LOCAL_GATE = {"multiclass": ("macro_f1", 0.5, 0.01), "regression": ("r2", 0.0, 0.01)}
BINARY_GATE = ("auc", 0.8, 0.01)
SHOWN = 10


class ProblemInferenceError(ValueError):
    """The target cannot be the problem type asked for, or none fits; the message says why."""


def local_gate(problem: str, metric: str) -> tuple[str, float, float] | None:
    """The local run's (metric, floor, tolerance) for `problem` when the configured `metric` is
    another type's (None: keep the configuration's)."""
    if metric in _TYPES.METRICS[problem]:
        return None
    return LOCAL_GATE.get(problem, BINARY_GATE)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def infer_problem(
    values: Any, target: str, positive_class: str | None, problem: str | None, bool_like: bool
) -> tuple[str, str]:
    """(problem type, the reason) for the target `values` (a pandas Series)."""
    import pandas as pd

    present = values.dropna()
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    distinct = sorted({_text(v) for v in present})
    shown = distinct[:SHOWN] + (["..."] if len(distinct) > SHOWN else [])
    if problem is not None:
        if problem not in PROBLEM_TYPES:
            raise ProblemInferenceError(
                f"PROBLEM={problem!r} is not allowed: one of {', '.join(PROBLEM_TYPES)}"
            )
        if problem == "regression" and not numeric:
            raise ProblemInferenceError(
                f"PROBLEM=regression needs numbers in --target {target!r}; it has values {shown}"
            )
        if problem == "multiclass" and not 2 <= len(distinct) <= MAX_CLASSES:
            raise ProblemInferenceError(
                f"PROBLEM=multiclass needs 2 to {MAX_CLASSES} values in --target {target!r}; "
                f"it has {len(distinct)}"
            )
        if positive_class is not None and problem != "binary":
            raise ProblemInferenceError(
                f"POSITIVE goes with a binary target, not PROBLEM={problem}"
            )
        return problem, "PROBLEM says so"
    if positive_class is not None:
        return "binary", f"POSITIVE={positive_class!r} names class 1"
    if bool_like:
        return "binary", "its values are 0/1 or true/false"
    if len(distinct) == 2:
        raise ProblemInferenceError(
            f"--target {target!r} is not 0/1 or true/false; it has values {shown}: give the "
            "value that counts as class 1 with POSITIVE=value (--positive-class; in cdk.json "
            "schema.positive_class)"
        )
    whole = numeric and bool((present == present.round()).all())
    if numeric and not (whole and len(distinct) <= MAX_INTEGER_CLASSES):
        kind = "whole numbers" if whole else "numbers"
        return "regression", f"{kind} with {len(distinct)} distinct values"
    if len(distinct) > MAX_CLASSES:
        raise ProblemInferenceError(
            f"--target {target!r} has {len(distinct)} text values (at most {MAX_CLASSES} classes): "
            "not a label column"
        )
    kind = "whole numbers" if numeric else "text"
    return "multiclass", f"{kind} with {len(distinct)} values {shown}"
