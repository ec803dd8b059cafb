"""The target across a sharded Prepare's instances, where one file cannot decide alone: each
instance records a text target's values per file (`target_values`), maps a `positive_class`
target by the row alone (`is_positive`), and leaves a multi-class target (its codes need the
version's class list) or a time split (its cut-offs need every row's time) unplaced
(`write_unplaced`, placed by `shard_placing`); the merge decides the label mapping or class
list over the version (`version_labels`) and checks a multi-class or regression target as the
single instance does (`target_check`), with its messages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common.categories import canonical
from common.labels import LabelError, binary_labels, label_mapping
from common.problem_types import BINARY, MULTICLASS, REGRESSION
from dataset_reading import Dataset
from dataset_schema import Schema, ValidationError
from splitting import SplitOptions, time_message, time_problem
from target_kinds import check_target, target_codes


class MissingParts(ValidationError):
    """An instance's summary or part is not below the merge's parts folder."""


def target_values(dataset: Dataset, schema: Schema) -> dict[str, int] | None:
    """A text target's present values and their rows in one file (None: not a text target)."""
    if not schema.is_text(schema.target):
        return None
    counts = Counter(v for v in dataset.columns[schema.target] if v is not None)
    return dict(sorted(counts.items()))


def is_positive(dataset: Dataset, schema: Schema) -> np.ndarray:
    """1.0 where the (labelled) row's target is schema.positive_class, else 0.0, as
    `common.labels.binary_labels` maps it once the version's values are known good."""
    positive = canonical(schema.positive_class)
    return np.array([float(v == positive) for v in dataset.columns[schema.target]], np.float64)


def positives(labelled: Dataset, schema: Schema) -> int:
    """Class-1 rows of a binary target (0 for other problem types)."""
    if schema.problem_type != BINARY:
        return 0
    return int(np.nansum(labelled.columns[schema.target]))


def deferred(schema: Schema, options: SplitOptions) -> bool:
    """True when no instance can place or write its rows alone: a time split or a multi-class
    target."""
    return options.time_column is not None or schema.problem_type == MULTICLASS


def write_target(labelled: Dataset, schema: Schema, path: Path) -> None:
    """For a file the merge refuses: a regression target alone (the merge checks the target
    before the features, as the single instance does)."""
    if schema.problem_type == REGRESSION:
        target = pa.array(labelled.columns[schema.target], type=pa.float64())
        pq.write_table(pa.table({schema.target: target}), path)


def write_unplaced(
    labelled: Dataset, schema: Schema, options: SplitOptions, path: Path
) -> dict[str, Any]:
    """The file's labelled rows in file order, unplaced: the schema's columns (a multi-class
    target as its text), the id as text, the time as the number the rule compares; returns
    the time's kind (`number` or `datetime`) for the merge to check every file agrees, or
    what stops its times (`splitting.time_problem`, for the merge to refuse)."""
    columns: dict[str, pa.Array] = {}
    for name in schema.columns:
        kind = pa.string() if schema.is_text(name) and name != schema.target else pa.float64()
        if name == schema.target and schema.problem_type == MULTICLASS:
            kind = pa.string()
        columns[name] = pa.array(labelled.columns[name], type=kind)
    found: dict[str, Any] = {}
    if options.id_column:
        columns[options.id_column] = pa.array(labelled.keys[options.id_column], type=pa.string())
    if options.time_column:
        times, kind_of_time, problem = time_problem(labelled.keys[options.time_column])
        if problem is not None:  # refused by the merge after the values (`check_times`)
            found["time_problem"] = problem
        else:
            columns[options.time_column] = pa.array(times, type=pa.float64())
            if labelled.rows:
                found["time_kind"] = kind_of_time
    pq.write_table(pa.table(columns), path)
    return found


def check_times(entries: list[dict[str, Any]], column: str) -> None:
    """The single instance's refusal of the version's times from the files' problems (in file
    order; a row counted over the labelled rows of the version): missing times first, then
    values that are neither numbers nor ISO 8601 date-times. Exact unless some file's times
    are all numbers: the single instance then also counts those numbers (no ISO 8601
    date-times), the instances do not parse them twice."""
    before, totals = 0, {"missing": 0, "neither": 0}
    first: dict[str, dict[str, Any]] = {}
    for entry in entries:
        problem: dict[str, Any] = entry.get("time_problem") or {}
        for kind in (k for k in totals if k in problem):
            totals[kind] += problem[kind]
            first.setdefault(kind, {**problem, "row": before + problem["row"]})
        before += entry["rows"] - entry["dropped_missing_target"]
    for kind, count in totals.items():
        if count:
            raise ValidationError(time_message(column, {**first[kind], kind: count}))


def version_labels(entries: list[dict[str, Any]], schema: Schema) -> dict[str, Any]:
    """What the target's numbers stand for over the version, from every file's values, refused
    as the single instance refuses them on reading (`common.labels`)."""
    if schema.problem_type == REGRESSION:
        return target_codes({}, schema)
    if not schema.is_text(schema.target):
        return label_mapping(np.empty(0, dtype=object), None)
    seen = np.array(sorted({v for e in entries for v in e.get("target_values", {})}), object)
    if schema.problem_type == MULTICLASS:
        return target_codes({schema.target: seen}, schema)
    if sum(e["rows"] for e in entries) == 0:
        return label_mapping(np.empty(0, dtype=object), None)
    try:
        binary_labels(seen, schema.target, schema.positive_class)
    except LabelError as error:
        raise ValidationError(str(error)) from error
    return label_mapping(seen, schema.positive_class)


def target_check(
    entries: list[dict[str, Any]], parts: dict[str, Path], schema: Schema, labels: dict[str, Any]
) -> Callable[[], None]:
    """`target_kinds.check_target` over the version's labelled targets: a multi-class one from
    the files' class counts (the check counts rows per class only), a regression one from
    every part's target column (8 bytes a row)."""

    def check() -> None:
        if schema.problem_type == MULTICLASS:
            totals: Counter[str] = Counter()
            for entry in entries:
                totals.update(entry.get("target_values", {}))
            counts = [totals[label] for label in labels["classes"]]
            known = np.repeat(np.arange(len(counts), dtype=np.float64), counts)
            check_target(schema, known, labels, True)
        elif schema.problem_type == REGRESSION:
            known = np.concatenate(
                [np.empty(0)]
                + [
                    pq.read_table(part_path(parts, e), columns=[schema.target])
                    .column(0)
                    .to_numpy(zero_copy_only=False)
                    for e in entries
                    if e["rows"] > e["dropped_missing_target"]
                ]
            )
            check_target(schema, known.astype(np.float64), labels, True)

    return check


def part_path(parts: dict[str, Path], entry: dict[str, Any]) -> Path:
    """The Parquet part of an input file; a missing one stops the merge."""
    if entry["part"] not in parts:
        raise MissingParts(
            f"part {entry['part']} of input file {entry['file']!r} is missing: an instance's "
            "output was not uploaded"
        )
    return parts[entry["part"]]
