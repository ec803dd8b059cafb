"""The train/validation/test split: each row placed by itself (a stable hash of its id or of its
feature values, or its time), so a row never changes split between dataset versions; and the
record of the rule, which travels with the model (see `common.stable_split`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from common.problem_types import BINARY, MULTICLASS
from common.stable_split import (
    SPLITS,
    assign,
    assign_by_time,
    content_hash,
    hash_rule,
    id_hash,
    time_cutoffs,
    time_rule,
    unit,
)
from dataset_reading import Dataset
from dataset_schema import Schema, ValidationError
from target_kinds import split_problem


@dataclass(frozen=True)
class SplitOptions:
    """How to split: fractions, the hash seed, and an id or time column (at most one)."""

    validation_fraction: float
    test_fraction: float
    seed: int
    id_column: str | None = None
    time_column: str | None = None

    def check(self, schema: Schema) -> None:
        """Refuse fractions that leave no training rows and key columns the schema uses."""
        v, t = self.validation_fraction, self.test_fraction
        if not (0.0 < v < 1.0 and 0.0 < t < 1.0):
            raise ValidationError(
                f"--validation-fraction {v} and --test-fraction {t} must each be between 0 and 1"
            )
        if v + t >= 1.0:
            raise ValidationError(
                f"--validation-fraction {v} + --test-fraction {t} must leave rows for training "
                "(sum below 1)"
            )
        if self.id_column and self.time_column:
            raise ValidationError(
                f"--id-column {self.id_column!r} and --time-column {self.time_column!r}: give "
                "at most one (a split is by row identity or by time)"
            )
        for flag, column in (("--id-column", self.id_column), ("--time-column", self.time_column)):
            if column in schema.columns:
                raise ValidationError(
                    f"{flag} {column!r} is the target or a feature: the split key must be a "
                    "column of its own"
                )

    @property
    def key_columns(self) -> list[str]:
        """The columns besides the schema's that the split reads."""
        return [c for c in (self.id_column, self.time_column) if c]


def time_problem(texts: np.ndarray) -> tuple[np.ndarray, str, dict[str, Any] | None]:
    """Times as numbers: the values themselves if all are numbers (kind `number`), else ISO 8601
    date-times as seconds since 1970-01-01 UTC (kind `datetime`; no zone means UTC); or what
    stops them (`missing` or `neither`: the count, the first `row` from 0 and its `value`)."""
    import pandas as pd

    stripped = pd.Series(texts, dtype="object").astype("string").str.strip()
    missing = (stripped.isna() | (stripped == "")).to_numpy()
    if missing.any():
        return np.empty(0), "", {"missing": int(missing.sum()), "row": _first(missing)}
    numbers = pd.to_numeric(stripped, errors="coerce")
    if not numbers.isna().any():
        return numbers.to_numpy(np.float64), "number", None
    times = pd.to_datetime(stripped, utc=True, errors="coerce", format="ISO8601")
    bad = times.isna().to_numpy()
    if bad.any():
        first = _first(bad)
        return (
            np.empty(0),
            "",
            {"neither": int(bad.sum()), "row": first, "value": stripped.iloc[first]},
        )
    seconds = times.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9
    return seconds.astype(np.float64), "datetime", None


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def time_message(column: str, problem: dict[str, Any]) -> str:
    """The refusal of a time column with `problem` (`time_problem`'s; its row from 0)."""
    if "missing" in problem:
        return (
            f"time column {column!r} has {problem['missing']} missing value(s) (row "
            f"{problem['row'] + 1}): every row needs a time to be placed in a split"
        )
    return (
        f"time column {column!r} must hold numbers or ISO 8601 date-times, but "
        f"{problem['neither']} value(s) are neither, e.g. {problem['value']!r} in row "
        f"{problem['row'] + 1}"
    )


def parse_times(texts: np.ndarray, column: str) -> tuple[np.ndarray, str]:
    """`time_problem`'s times and kind; ValidationError naming the column when they stop."""
    times, kind, problem = time_problem(texts)
    if problem is not None:
        raise ValidationError(time_message(column, problem))
    return times, kind


def split_rows(
    dataset: Dataset, schema: Schema, options: SplitOptions
) -> tuple[dict[str, np.ndarray], dict[str, Any], np.ndarray | None]:
    """Row indices per split, the rule's record, and the parsed times (time splits only)."""
    v, t = options.validation_fraction, options.test_fraction
    times = None
    if options.time_column:
        times, kind = parse_times(dataset.keys[options.time_column], options.time_column)
        validation_from, test_from = time_cutoffs(times, v, t)
        split = assign_by_time(times, validation_from, test_from)
        rule = time_rule(options.time_column, v, t, validation_from, test_from, kind)
    elif options.id_column:
        ids = dataset.keys[options.id_column]
        empty = np.array([str(i).strip() == "" for i in ids], dtype=bool)
        if empty.any():
            raise ValidationError(
                f"id column {options.id_column!r} has {int(empty.sum())} missing value(s) (row "
                f"{int(np.flatnonzero(empty)[0]) + 1}): every row needs an id to be placed in "
                "a split"
            )
        split = assign(unit(id_hash(ids, options.seed)), v, t)
        rule = hash_rule(options.seed, v, t, id_column=options.id_column)
    else:
        features = schema.feature_names
        split = assign(unit(content_hash(dataset.columns, features, options.seed)), v, t)
        rule = hash_rule(options.seed, v, t, key_columns=features)
    y = dataset.columns[schema.target]
    splits = {name: np.flatnonzero(split == code) for code, name in enumerate(SPLITS)}
    check_splits(schema, rule, {name: y[index] for name, index in splits.items()}, dataset.labels)
    return splits, rule, times


def check_splits(
    schema: Schema, rule: dict[str, Any], targets: dict[str, np.ndarray], labels: dict[str, Any]
) -> None:
    """Refuse a split whose targets (`targets`: each split's) cannot train or judge a model."""
    v, t = rule["validation_fraction"], rule["test_fraction"]
    y = np.concatenate(list(targets.values()))
    for name, held_y in targets.items():
        held = _held(schema, held_y, labels)
        if held is not None:
            identical = (
                "; rows with identical feature values always share a split: an id column "
                "(split.id_column) separates them"
                if rule.get("key") == "content"
                else ""
            )
            raise ValidationError(
                f"after the split ({rule['method']}, {1 - v - t:.0%}/{v:.0%}/{t:.0%}), the "
                f"{name} split ({held_y.size} rows) has {held}; {_remedy(schema, y)} or raise "
                "its fraction"
                f"{identical}"
            )


def _held(schema: Schema, y: np.ndarray, labels: dict[str, Any]) -> str | None:
    """What a split holds that cannot train or judge a model (None: it can)."""
    if schema.problem_type != BINARY:
        return split_problem(schema, y, labels)
    classes = np.unique(y)
    if classes.size >= 2:
        return None
    return f"only class {int(classes[0])}" if classes.size else "no rows"


def _remedy(schema: Schema, y: np.ndarray) -> str:
    if schema.problem_type == BINARY:
        return f"provide more rows of the rare class (now {int(min(y.sum(), y.size - y.sum()))})"
    if schema.problem_type == MULTICLASS:
        rarest = int(np.bincount(y.astype(np.int64)).min())
        return f"provide more rows of the rare classes (the rarest has {rarest})"
    return f"provide more rows (now {y.size})"
