"""The target as the trainer's numbers: a binary target as 0/1, a multi-class target as class
codes 0..K-1, and what those numbers stand for, recorded with the model.

A target of 0/1 or true/false needs nothing. Any other pair of values (`female`/`male`,
`yes`/`no`, `2`/`4`) needs `schema.positive_class`, the value that counts as 1; every other
value counts as 0. Prepare maps the target with it (the later steps only ever see 0/1) and
records the mapping (`label_mapping`) with the training data, so it reaches the model's
metadata and the registry, and Evaluate can refuse to compare two models whose class 1 means
different things. Values are compared as their canonical text (`categories.canonical`), so
`2`, `2.0` and ` 2 ` are one label.

A multi-class target (`problem_type` multiclass) holds text or integer labels; its classes are
the distinct values sorted (numerically when every one is an integer, else as text), class k
is the k-th, and the list (`classes`) is recorded the same way: with the training data, the
model's metadata and beside the test split, so a code always reads back to its label.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common.categories import canonical

#: Written beside the test split's CSV: what its 0/1 labels stand for (Evaluate checks it
#: against each model's own mapping).
LABELS_FILE = "labels.json"
#: Values a target may hold without positive_class (as canonical text), and what they mean.
BOOLEAN_LABELS = {"1": 1.0, "0": 0.0, "true": 1.0, "false": 0.0}
MAX_SHOWN = 10
#: A multi-class target with more classes is refused (each class is one output per row and
#: one column of the confusion matrix).
MAX_CLASSES = 100
MULTICLASS_SOURCE = "the target's values, sorted"


class LabelError(ValueError):
    """The target's values cannot be read as two classes; the message lists what was seen."""


def seen_values(values: np.ndarray) -> list[str]:
    """Distinct present label values (canonical text), sorted."""
    return sorted({v for v in values if v is not None})


def _shown(values: Sequence[str]) -> str:
    listed = ", ".join(repr(v) for v in values[:MAX_SHOWN])
    more = f" and {len(values) - MAX_SHOWN} more" if len(values) > MAX_SHOWN else ""
    return f"[{listed}{more}]"


def is_boolean(values: Sequence[str]) -> bool:
    """True when every value is 0/1 or true/false (any case)."""
    return all(v.lower() in BOOLEAN_LABELS for v in values)


def binary_labels(
    values: np.ndarray, target: str, positive_class: str | None, one_class: bool = False
) -> np.ndarray:
    """0.0/1.0 per row (NaN where missing) from canonical label text.

    Without `positive_class` the values must be 0/1 or true/false; with it, there must be at
    most two values and one of them must be `positive_class`. Otherwise LabelError, naming
    the target and listing the values seen. With `one_class` (labelled data to evaluate a
    model on, not to train one) a single value other than `positive_class` is accepted as all
    class 0: a batch may hold negatives only. Whether that value is the model's class 0 (and
    not a misspelt class 1) is Evaluate's check against the model's recorded mapping.
    """
    seen = seen_values(values)
    if positive_class is None:
        if not is_boolean(seen):
            raise LabelError(
                f"target column {target!r} has values {_shown(seen)}, not 0/1 or true/false: "
                "set schema.positive_class to the value that counts as class 1 (local run: "
                "POSITIVE=value)"
            )
        table = {key: code for key, code in BOOLEAN_LABELS.items()}
        return np.array(
            [np.nan if v is None else table[v.lower()] for v in values], dtype=np.float64
        )
    positive = canonical(positive_class)
    if positive not in seen and not (one_class and len(seen) == 1):
        raise LabelError(
            f"schema.positive_class = {positive_class!r} is not a value of target column "
            f"{target!r}; values seen: {_shown(seen)}"
        )
    if len(seen) > 2:
        raise LabelError(
            f"target column {target!r} has {len(seen)} values {_shown(seen)}: a binary target "
            "has two (multi-class targets are not supported yet)"
        )
    return np.array(
        [np.nan if v is None else float(v == positive) for v in values], dtype=np.float64
    )


def label_mapping(values: np.ndarray, positive_class: str | None) -> dict[str, Any]:
    """What 1 and 0 stand for, as recorded with the model."""
    if positive_class is None:
        return {"positive_class": "1", "negative_class": "0", "source": "0/1 or true/false"}
    positive = canonical(positive_class)
    others = [v for v in seen_values(values) if v != positive]
    return {
        "positive_class": positive,
        "negative_class": others[0] if others else None,
        "source": "schema.positive_class",
    }


def write_labels(directory: Path, mapping: dict[str, Any]) -> None:
    """The label mapping beside a split's CSV file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / LABELS_FILE).write_text(json.dumps(mapping, indent=2) + "\n", encoding="utf-8")


def read_positive_class(directory: Path) -> str | None:
    """The class 1 of the labels in `directory` (None when no mapping was written)."""
    return read_classes(directory)[0]


def read_classes(directory: Path) -> tuple[str | None, str | None]:
    """The class 1 and class 0 of the labels in `directory` (None when not recorded)."""
    path = directory / LABELS_FILE
    if not path.is_file():
        return None, None
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LabelError(f"{LABELS_FILE} is not readable JSON: {error}") from error
    if not isinstance(mapping, dict):
        return None, None
    positive, negative = mapping.get("positive_class"), mapping.get("negative_class")
    return (
        positive if isinstance(positive, str) else None,
        negative if isinstance(negative, str) else None,
    )


def class_order(values: Sequence[str]) -> list[str]:
    """The classes in code order: numerically when every label is an integer, else as text."""
    distinct = sorted(set(values))
    if distinct and all(_is_integer(v) for v in distinct):
        return sorted(distinct, key=int)
    return distinct


def _is_integer(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def multiclass_labels(
    values: np.ndarray, target: str, classes: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Class codes per row (float, NaN where missing) and the class list, from canonical label
    text. Without `classes` they are the values seen (at least 2, at most MAX_CLASSES); with
    them (a model's classes) a value outside the list is a LabelError naming it."""
    seen = seen_values(values)
    if classes is None:
        if len(seen) < 2:
            raise LabelError(
                f"target column {target!r} has a single value {_shown(seen)}: a multi-class "
                "model needs at least two classes"
            )
        if len(seen) > MAX_CLASSES:
            raise LabelError(
                f"target column {target!r} has {len(seen)} values {_shown(seen)}: a "
                f"multi-class target may have at most {MAX_CLASSES} (is it a number? use "
                "problem_type regression)"
            )
        classes = class_order(seen)
    unknown = [v for v in seen if v not in set(classes)]
    if unknown:
        raise LabelError(
            f"target column {target!r} has values {_shown(unknown)} that are not among the "
            f"classes {_shown(list(classes))}"
        )
    code = {label: float(i) for i, label in enumerate(classes)}
    coded = np.array([np.nan if v is None else code[v] for v in values], dtype=np.float64)
    return coded, list(classes)


def multiclass_mapping(classes: Sequence[str]) -> dict[str, Any]:
    """What each class code stands for, as recorded with the model: class k is classes[k]."""
    return {"problem_type": "multiclass", "classes": list(classes), "source": MULTICLASS_SOURCE}


def read_class_list(directory: Path) -> list[str] | None:
    """The multi-class list recorded beside a split (None when not recorded: not multi-class)."""
    path = directory / LABELS_FILE
    if not path.is_file():
        return None
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LabelError(f"{LABELS_FILE} is not readable JSON: {error}") from error
    classes = mapping.get("classes") if isinstance(mapping, dict) else None
    if isinstance(classes, list) and all(isinstance(c, str) for c in classes):
        return classes
    return None
