"""The merge after a sharded Prepare (`prepare.py --parts-dir`): the parts every instance
wrote (`shard_parts`) put back together, in the order the single-instance Prepare reads the
files (sorted by path), as the same Dataset it would have read. prepare.py then makes the
version-wide checks, splits and writes exactly what the single-instance Prepare writes, so
Train, Evaluate and the baseline steps read the same files.

The merge holds the version's typed columns (8 bytes a cell, a category's text as Python
strings); the instances did the parsing, the type checks and the hashing. A file two
instances both read, or a summary that names a missing part, stops the merge.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from common.labels import label_mapping
from dataset_reading import Dataset
from dataset_schema import Schema, ValidationError
from shard_parts import SPLIT_COLUMN, SUMMARY_PREFIX

IGNORED_REASON = "not in the schema (neither the target nor a feature)"


def read_summaries(parts_dir: Path) -> list[dict[str, Any]]:
    """Every instance's summary below `parts_dir` (wherever the download put them)."""
    paths = sorted(parts_dir.rglob(f"{SUMMARY_PREFIX}*.json"))
    if not paths:
        raise ValidationError(
            f"no instance summaries ({SUMMARY_PREFIX}<instance>.json) below {parts_dir}: "
            "the sharded Prepare wrote none"
        )
    return [json.loads(path.read_text("utf-8")) for path in paths]


def file_entries(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every instance's files, sorted by path; a file read twice stops the merge."""
    entries = sorted(
        (entry for summary in summaries for entry in summary["files"]), key=lambda e: e["file"]
    )
    counts = Counter(e["file"] for e in entries)
    doubled = sorted(name for name, count in counts.items() if count > 1)
    if doubled:
        raise ValidationError(
            f"{len(doubled)} input file(s) were read by more than one processing instance, "
            f"e.g. {doubled[0]!r}: the input must be distributed ShardedByS3Key"
        )
    return entries


def merge_parts(
    parts_dir: Path, schema: Schema, keys: list[str]
) -> tuple[Dataset, np.ndarray, list[str]]:
    """The Dataset the single-instance Prepare would have read, each row's split code as the
    instances computed it, and the files the instances verified against the manifest."""
    summaries = read_summaries(parts_dir)
    entries = file_entries(summaries)
    if not entries:
        raise ValidationError(
            f"no input files: none of the {len(summaries)} processing instance(s) received a "
            "*.csv, *.csv.gz or *.parquet file"
        )
    found = {path.name: path for path in parts_dir.rglob("part-*.parquet")}
    wanted = [*schema.columns, *keys, SPLIT_COLUMN]
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    ignored: list[str] = []
    for entry in entries:
        if entry["part"] not in found:
            raise ValidationError(
                f"part {entry['part']} of input file {entry['file']!r} is missing below "
                f"{parts_dir}: an instance's output was not uploaded"
            )
        table = pq.read_table(found[entry["part"]], columns=wanted)
        for name in wanted:
            chunks[name].append(table.column(name).to_numpy(zero_copy_only=False))
        ignored += [c for c in entry["ignored_columns"] if c not in ignored]

    def joined(name: str, dtype: Any) -> np.ndarray:
        arrays = [a for a in chunks[name] if a.size]
        return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.empty(0, dtype)

    columns = {
        name: joined(name, object if schema.is_text(name) else np.float64)
        for name in schema.columns
    }
    dataset = Dataset(
        columns=columns,
        files=[{"file": e["file"], "rows": e["rows"]} for e in entries],
        keys={name: joined(name, object) for name in keys},
        labels=label_mapping(np.empty(0, dtype=object), None),
        ignored={name: IGNORED_REASON for name in ignored},
    )
    verified = [key for summary in summaries for key in summary.get("verified", [])]
    return dataset, joined(SPLIT_COLUMN, np.int8), verified
