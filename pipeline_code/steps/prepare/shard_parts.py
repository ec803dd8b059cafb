"""Prepare on one of several processing instances (`prepare.py --shard`): this instance's
share of the version's files (ShardedByS3Key gives each instance whole objects, possibly
none), read and typed exactly as the single-instance Prepare reads them, each row's split
computed, and everything written below `--output-dir` for the merge (`shard_merge`):

    parts/part-<sha256 of the file's path, 20 hex>.parquet
        one per input file: the schema's columns as Prepare holds them (float64, NaN =
        missing; a category feature or text target as its canonical text), the split's id
        column as text, and `__split` (0 train, 1 validation, 2 test, by `common.stable_split`)
    parts/summary-<instance>.json
        the instance, its files in order (path, rows, part, columns the schema does not use)
        and, with `--manifest-dir`, the files it verified against the version manifest

Every name is unique to a file or an instance, so N instances can upload to one S3 prefix.
A row's split depends on the row alone, never on which instance reads it: the merge
recomputes it over the whole version and stops if any instance disagreed. The checks that
need the whole version (missing fractions, classes per split, enough rows) are the merge's.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common.stable_split import assign, content_hash, id_hash, unit
from dataset_reading import DATA_SUFFIXES, MARKER_FILES, Dataset, find_input_files, read_dataset
from dataset_schema import Schema
from splitting import SplitOptions

LOG = logging.getLogger("prepare")

PARTS_DIR = "parts"
SUMMARY_PREFIX = "summary-"
SPLIT_COLUMN = "__split"
#: Where SageMaker tells a processing container which instance it runs on.
RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")


def instance_name(resource_config: Path | None = None) -> str:
    """This instance's host name (`algo-1`, `algo-2`, ...) from SageMaker's resource config
    (default: RESOURCE_CONFIG); `algo-1` when there is none."""
    try:
        path = resource_config or RESOURCE_CONFIG
        return str(json.loads(path.read_text("utf-8"))["current_host"])
    except (OSError, ValueError, KeyError, TypeError):
        return "algo-1"


def part_name(relative: str) -> str:
    """The part file of the input file at `relative` (unique per file, any instance)."""
    return f"part-{hashlib.sha256(relative.encode('utf-8')).hexdigest()[:20]}.parquet"


def shard_files(input_dir: Path) -> list[Path]:
    """This instance's data files, sorted; none when it received no object (more instances
    than files), which is not an error for one instance of several."""
    if not input_dir.is_dir():
        return []
    for path in input_dir.rglob("*"):
        name = path.name
        if (
            path.is_file()
            and name not in MARKER_FILES
            and not name.startswith(("_", "."))
            and name.lower().endswith(DATA_SUFFIXES)
        ):
            return find_input_files(input_dir)
    return []


def split_codes(dataset: Dataset, schema: Schema, options: SplitOptions) -> np.ndarray:
    """Each row's split code by the hash rule (0 train, 1 validation, 2 test)."""
    v, t = options.validation_fraction, options.test_fraction
    if options.id_column:
        hashes = id_hash(dataset.keys[options.id_column], options.seed)
    else:
        hashes = content_hash(dataset.columns, schema.feature_names, options.seed)
    return assign(unit(hashes), v, t)


def _table(dataset: Dataset, schema: Schema, codes: np.ndarray) -> pa.Table:
    columns: dict[str, pa.Array] = {}
    for name in schema.columns:
        kind = pa.string() if schema.is_text(name) else pa.float64()
        columns[name] = pa.array(dataset.columns[name], type=kind)
    for name, values in dataset.keys.items():
        columns[name] = pa.array(values, type=pa.string())
    columns[SPLIT_COLUMN] = pa.array(codes, type=pa.int8())
    return pa.table(columns)


def prepare_shard(
    input_dir: Path,
    output_dir: Path,
    schema: Schema,
    options: SplitOptions,
    instance: str,
    verified: list[str] | None = None,
) -> dict[str, Any]:
    """Read, type and split this instance's files one at a time, write a part per file and
    the instance's summary; returns the summary."""
    parts_dir = output_dir / PARTS_DIR
    parts_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in shard_files(input_dir):
        dataset = read_dataset([path], schema, input_dir, options.key_columns)
        relative = dataset.files[0]["file"]
        name = part_name(relative)
        codes = split_codes(dataset, schema, options)
        pq.write_table(_table(dataset, schema, codes), parts_dir / name)
        entries.append(
            {
                "file": relative,
                "rows": dataset.rows,
                "part": name,
                "ignored_columns": list(dataset.ignored),
            }
        )
    summary: dict[str, Any] = {"instance": instance, "files": entries}
    if verified is not None:
        summary["verified"] = verified
    (parts_dir / f"{SUMMARY_PREFIX}{instance}.json").write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )
    LOG.info(
        "instance %s: %d file(s), %d row(s) written as parts",
        instance,
        len(entries),
        sum(e["rows"] for e in entries),
    )
    return summary
