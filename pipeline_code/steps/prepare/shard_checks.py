"""The sharded Prepare's checks of the values, made in the single instance's order and with its
messages (`dataset_validation.validate`; the splits' own checks are `splitting.check_splits`,
run by the merge on the splits' targets): each instance records what
it finds in a file (`file_findings`: counts and the first offending value, never a verdict),
the merge sums the files' findings in file order and refuses the version as the single instance
would (`check_version`), so whichever instance read a bad value, the message is the same. For a
text target (`positive_class`, multi-class) the instances record its values per file instead
(`shard_targets`), a multi-class or regression target is checked by the merge.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from common.categories import is_missing
from common.problem_types import BINARY
from common.stable_split import SPLITS
from dataset_reading import Dataset
from dataset_schema import CATEGORY, Schema, ValidationError
from dataset_validation import FLOAT32_MAX, INT_EXACT_LIMIT, _check_missing

#: How many distinct target values a message lists (as `dataset_validation.validate`).
VALUES_SEEN = 10


def file_findings(dataset: Dataset, schema: Schema) -> tuple[dict[str, int], dict[str, Any]]:
    """One file's missing values per column and what the single instance would refuse in it:
    `target` (rows not 0/1, the first, the file's smallest distinct values) and per feature
    `infinite`, `beyond` (magnitude) and `wrong` (not whole / not 0-1) as [count, first]."""
    target = dataset.columns[schema.target]
    absent_target = is_missing(target)
    missing = {schema.target: int(absent_target.sum())}
    findings: dict[str, Any] = {}
    known = target[~absent_target]
    # A text target is mapped by the merge, a multi-class or regression one checked there.
    zero_one = schema.problem_type == BINARY and not schema.is_text(schema.target)
    not_binary = (known != 0.0) & (known != 1.0) if zero_one else np.zeros(0, dtype=bool)
    if not_binary.any():
        findings["target"] = {
            "rows": int(not_binary.sum()),
            "first": float(known[not_binary][0]),
            "values": [float(v) for v in np.unique(known)[:VALUES_SEEN]],
        }
    columns: dict[str, dict[str, Any]] = {}
    for name, kind in schema.features:
        values = dataset.columns[name]
        if kind == CATEGORY:
            missing[name] = int(is_missing(values).sum())
            continue
        absent = np.isnan(values)
        missing[name] = int(absent.sum())
        present = values[~absent]
        found: dict[str, Any] = {}
        if np.isinf(present).any():
            found["infinite"] = int(np.isinf(present).sum())
        if kind in ("float", "int"):
            beyond = np.abs(present) > (INT_EXACT_LIMIT if kind == "int" else FLOAT32_MAX)
            if beyond.any():
                found["beyond"] = [int(beyond.sum()), float(present[beyond][0])]
        wrong = (
            present != np.floor(present)
            if kind == "int"
            else ((present != 0.0) & (present != 1.0) if kind == "bool" else None)
        )
        if wrong is not None and wrong.any():
            found["wrong"] = [int(wrong.sum()), float(present[wrong][0])]
        if found:
            columns[name] = found
    if columns:
        findings["columns"] = columns
    return missing, findings


def _found(entries: list[dict[str, Any]], name: str, key: str) -> tuple[int, float]:
    """The version's count of a finding and its first value (in file order)."""
    hits = [
        e["findings"]["columns"][name][key]
        for e in entries
        if key in e.get("findings", {}).get("columns", {}).get(name, {})
    ]
    if key == "infinite":
        return sum(hits), 0.0
    return sum(h[0] for h in hits), (hits[0][1] if hits else 0.0)


def _check_values(
    entries: list[dict[str, Any]], schema: Schema, rows: int, target_check: Callable[[], None]
) -> None:
    """`dataset_validation.validate`'s checks of the values, in its order, from the findings."""
    limit = schema.max_missing_fraction
    _check_missing(schema.target, sum(e["missing"][schema.target] for e in entries), rows, limit)
    target_check()
    targets = [e["findings"]["target"] for e in entries if "target" in e.get("findings", {})]
    if targets:
        distinct = sorted({v for t in targets for v in t["values"]})[:VALUES_SEEN]
        seen = ", ".join(f"{v:g}" for v in distinct)
        raise ValidationError(
            f"target column {schema.target!r} must be 0 or 1 (true/false), but "
            f"{sum(t['rows'] for t in targets)} row(s) are not, e.g. {targets[0]['first']:g} "
            f"(values seen: {seen}): set schema.positive_class to the value that counts as "
            "class 1"
        )
    for name, kind in schema.features:
        _check_missing(name, sum(e["missing"][name] for e in entries), rows, limit)
        infinite, _ = _found(entries, name, "infinite")
        if infinite:
            raise ValidationError(f"column {name!r} ({kind}) has {infinite} infinite value(s)")
        count, first = _found(entries, name, "beyond")
        if count:
            meaning = (
                f"{INT_EXACT_LIMIT} (2**53 - 1, the largest whole number held exactly)"
                if kind == "int"
                else f"{FLOAT32_MAX:.7g} (float32, the type XGBoost stores features in)"
            )
            raise ValidationError(
                f"column {name!r} ({kind}) must contain numbers of magnitude at most {meaning}, "
                f"but {count} value(s) are not, e.g. {first:g}"
            )
        count, first = _found(entries, name, "wrong")
        if count:
            expected = "whole numbers" if kind == "int" else "0/1 or true/false"
            raise ValidationError(
                f"column {name!r} ({kind}) must contain {expected}, but {count} value(s) are "
                f"not, e.g. {first:g}"
            )


def check_version(
    entries: list[dict[str, Any]], schema: Schema, target_check: Callable[[], None]
) -> None:
    """The checks of the whole version, in the single-instance Prepare's order and words: rows,
    the values (`_check_values`; `target_check` a multi-class or regression target's, in
    `target_kinds.check_target`'s place), both classes of a binary target and enough of each.
    The splits' own checks follow once every row is placed (`splitting.check_splits`)."""
    rows = sum(e["rows"] for e in entries)
    if rows == 0:
        raise ValidationError(
            f"empty input: {len(entries)} file(s) contain no data rows (empty or header only)"
        )
    _check_values(entries, schema, rows, target_check)
    if schema.problem_type != BINARY:
        return
    positives = sum(e["positives"] for e in entries)
    labelled = sum(e["rows"] - e["dropped_missing_target"] for e in entries)
    negatives = labelled - positives
    if positives == 0 or negatives == 0:
        raise ValidationError(
            f"target column {schema.target!r} has a single class: all {labelled} labelled "
            f"rows are {1 if positives else 0}; a classifier needs rows of both classes 0 and 1"
        )
    fewest = min(positives, negatives)
    if fewest < len(SPLITS):
        raise ValidationError(
            f"target column {schema.target!r} has only {fewest} row(s) of class "
            f"{1 if positives < negatives else 0}; at least {len(SPLITS)} are needed (one per "
            f"split: {', '.join(SPLITS)})"
        )
