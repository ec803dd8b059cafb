"""The sharded Prepare's checks of the values, made in the single instance's order and with its
messages (`dataset_validation.validate`, then the splits' classes): each instance records what
it finds in a file (`file_findings`: counts and the first offending value, never a verdict),
the merge sums the files' findings in file order and refuses the version as the single instance
would (`check_version`), so whichever instance read a bad value, the message is the same. For a
binary target only (the config refuses sharding other problem types).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.categories import is_missing
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
    missing = {schema.target: int(np.isnan(target).sum())}
    findings: dict[str, Any] = {}
    known = target[~np.isnan(target)]
    not_binary = (known != 0.0) & (known != 1.0)
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


def _check_values(entries: list[dict[str, Any]], schema: Schema, rows: int) -> None:
    """`dataset_validation.validate`'s checks of the values, in its order, from the findings."""
    limit = schema.max_missing_fraction
    _check_missing(schema.target, sum(e["missing"][schema.target] for e in entries), rows, limit)
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


def check_version(entries: list[dict[str, Any]], schema: Schema, rule: dict[str, Any]) -> None:
    """The checks of the whole version, in the single-instance Prepare's order and words: rows,
    the values (`_check_values`), both classes, enough of each, each split with both."""
    rows = sum(e["rows"] for e in entries)
    if rows == 0:
        raise ValidationError(
            f"empty input: {len(entries)} file(s) contain no data rows (empty or header only)"
        )
    _check_values(entries, schema, rows)
    splits = split_counts(entries)
    positives = sum(s["positives"] for s in splits.values())
    labelled = sum(s["rows"] for s in splits.values())
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
    v, t = rule["validation_fraction"], rule["test_fraction"]
    for name, counts in splits.items():
        held = counts["positives"], counts["rows"] - counts["positives"]
        if min(held) == 0:
            only = f"only class {int(held[0] > 0)}" if counts["rows"] else "no rows"
            identical = (
                "; rows with identical feature values always share a split: an id column "
                "(split.id_column) separates them"
                if rule.get("key") == "content"
                else ""
            )
            raise ValidationError(
                f"after the split ({rule['method']}, {1 - v - t:.0%}/{v:.0%}/{t:.0%}), the "
                f"{name} split ({counts['rows']} rows) has {only}; provide more rows of the "
                f"rare class (now {fewest}) or raise its fraction{identical}"
            )


def split_counts(entries: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Rows and positives of each split over the version."""
    return {
        name: {
            "rows": sum(e["splits"][name]["rows"] for e in entries),
            "positives": sum(e["splits"][name]["positives"] for e in entries),
        }
        for name in SPLITS
    }
