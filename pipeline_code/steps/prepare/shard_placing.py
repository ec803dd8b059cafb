"""The merge's placing of the rows no instance could place alone (`shard_targets.deferred`):
a time split's cut-offs from every labelled row's time (the quantiles the single instance cuts
at, `common.stable_split.time_cutoffs`, which do not depend on the rows' order), a multi-class
target as codes of the version's class list; then, one input file's part at a time (what an
instance holds), what an instance writes for a hash split (`shard_parts`): the part in split
order and its CSV parts, in a folder of its own inside the downloaded parts
(`shard_parts.PLACED_DIR`: on the job's ML storage volume, skipped by `find_parts`), so the
rest of the merge runs as for a hash split and a retried merge reads only the instances' parts.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from common.problem_types import MULTICLASS
from common.stable_split import assign_by_time, time_cutoffs, time_rule
from dataset_reading import Dataset
from dataset_schema import Schema, ValidationError
from shard_parts import find_parts, part_table, split_codes, split_rule, write_split_parts
from shard_targets import part_path
from splitting import SplitOptions


def time_split(
    entries: list[dict[str, Any]], parts: dict[str, Path], options: SplitOptions
) -> dict[str, Any]:
    """The time rule with the version's cut-offs; files whose times are of two kinds (numbers
    in one, ISO 8601 date-times in another) are refused, naming one of each."""
    column = options.time_column
    kinds = {e["time_kind"]: e["file"] for e in entries if "time_kind" in e}
    if len(kinds) > 1:
        raise ValidationError(
            f"time column {column!r} holds numbers in {kinds['number']!r} but ISO 8601 "
            f"date-times in {kinds['datetime']!r}: every file's times must be of one kind"
        )
    times = np.concatenate(
        [np.empty(0)]
        + [
            pq.read_table(part_path(parts, e), columns=[column]).column(0).to_numpy()
            for e in entries
        ]
    )
    v, t = options.validation_fraction, options.test_fraction
    validation_from, test_from = time_cutoffs(times, v, t)
    kind = next(iter(kinds), "number")
    return time_rule(str(column), v, t, validation_from, test_from, kind)


def _dataset(
    table: Any, entry: dict[str, Any], schema: Schema, options: SplitOptions, labels: dict
) -> Dataset:
    """An unplaced part as the rows an instance holds (a multi-class target as its codes)."""
    columns = {name: table.column(name).to_numpy(zero_copy_only=False) for name in schema.columns}
    for name in schema.feature_names:
        if schema.is_text(name):
            columns[name] = columns[name].astype(object)
    if schema.problem_type == MULTICLASS:
        code = {label: float(i) for i, label in enumerate(labels["classes"])}
        columns[schema.target] = np.array([code[v] for v in columns[schema.target]], np.float64)
    keys = {}
    if options.id_column:
        keys[options.id_column] = (
            table.column(options.id_column).to_numpy(zero_copy_only=False).astype(object)
        )
    return Dataset(columns, [{"file": entry["file"], "rows": table.num_rows}], keys, labels, {})


def place_rows(
    entries: list[dict[str, Any]],
    parts_dir: Path,
    schema: Schema,
    options: SplitOptions,
    labels: dict[str, Any],
    train_shards: int,
    placed: Path,
) -> dict[str, Any]:
    """Place every unplaced part's rows and write it in split order with its CSV parts below
    `placed` (each entry gets its rows and positives per split; the instances' parts stay as
    they were, so a merge can run again); returns the split rule."""
    parts = find_parts(parts_dir, "part-*.parquet")
    rule = (
        time_split(entries, parts, options) if options.time_column else split_rule(options, schema)
    )
    if placed.exists():
        shutil.rmtree(placed)
    placed.mkdir(parents=True)
    for entry in entries:
        table = pq.read_table(part_path(parts, entry))
        path = placed / entry["part"]
        dataset = _dataset(table, entry, schema, options, labels)
        times = None
        if options.time_column:
            times = table.column(options.time_column).to_numpy()
            codes = assign_by_time(times, rule["validation_from"], rule["test_from"])
        else:
            codes = split_codes(dataset, schema, options)
        del table
        pq.write_table(part_table(dataset, schema, codes), path)
        entry["splits"] = write_split_parts(
            dataset, schema, codes, path.parent, entry["part"], rule, train_shards, times
        )
    return rule
