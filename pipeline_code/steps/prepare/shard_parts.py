"""Prepare on one of several processing instances (`prepare.py --shard`): this instance's
share of the version's files (ShardedByS3Key gives each instance whole objects, possibly
none), read, typed, checked and split exactly as the single-instance Prepare does it, and
every per-row output written here, file by file, for the merge (`shard_merge`):

    parts/part-<sha256 of the file's path, 20 hex>.parquet
        the file's labelled rows, train then validation then test: the schema's columns as
        Prepare holds them (float64, NaN = missing; a category feature as its canonical
        text), the split's id column as text, and `__split` (0 train, 1 validation, 2 test,
        by `common.stable_split`); the merge reads it one column at a time for the
        statistics that need every value
    parts/part-<...>.<split>.csv
        the file's rows of each split in the exact bytes the single-instance Prepare writes
        them, without the header (train as `.train-<k>.csv`, k < --train-shards, when the
        train split is written as shards: the file's train rows dealt out in turn)
    parts/summary-<instance>.json
        the instance, the job's hosts, when it was written (UTC), the split rule it applied,
        its files in order (path, rows, rows without a target, missing values per column,
        rows and positives per split, columns the schema does not use, what the single
        instance would refuse in its values: `shard_checks.file_findings`, then the file has
        no parts) and, with `--manifest-dir`, the files it verified

With a time split or a multi-class target no instance can place its rows (the cut-offs and
the class codes need the whole version): `parts/part-<...>.parquet` then holds the file's
labelled rows unplaced (`shard_targets.write_unplaced`) and the merge places them and writes
the rest (`shard_placing`). A `positive_class` target is mapped here, by the row alone.

Every name is unique to a file or an instance, so N instances can upload to one S3 prefix.
A row's split depends on the row alone, never on which instance reads it. Parsing a value
and an id present are checked here; the checks of the values (types, magnitudes, a 0/1
target, missing fractions, classes per split) are the merge's, from the summaries, so they
come in the single instance's order with its messages (`shard_checks`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common.categories import is_missing
from common.problem_types import BINARY
from common.stable_split import (
    SPLITS,
    TIME_METHOD,
    assign,
    content_hash,
    hash_rule,
    id_hash,
    unit,
)
from dataset_reading import DATA_SUFFIXES, MARKER_FILES, Dataset, find_input_files, read_dataset
from dataset_schema import Schema, ValidationError
from shard_checks import file_findings
from shard_targets import (
    deferred,
    is_positive,
    positives,
    target_values,
    write_target,
    write_unplaced,
)
from split_outputs import _key_columns, split_columns, write_csv
from splitting import SplitOptions

LOG = logging.getLogger("prepare")

PARTS_DIR = "parts"
#: The merge's own folder inside the downloaded parts (`shard_placing`), never an instance's.
PLACED_DIR = ".placed"
SUMMARY_PREFIX = "summary-"
SPLIT_COLUMN = "__split"
#: Where SageMaker tells a processing container which instance it runs on.
RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")


def instance_hosts(resource_config: Path | None = None) -> tuple[str, list[str]]:
    """This instance's host name (`algo-1`, ...) and every instance's, from SageMaker's resource
    config (default: RESOURCE_CONFIG). Without it an instance cannot know which it is, and two
    calling themselves alike would overwrite each other's summary: refused."""
    path = resource_config or RESOURCE_CONFIG
    try:
        config = json.loads(path.read_text("utf-8"))
        current, hosts = config["current_host"], config["hosts"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValidationError(
            f"--shard needs SageMaker's resource config {path} (current_host, hosts) to name "
            f"this processing instance: {error!r}"
        ) from error
    if not isinstance(hosts, list) or current not in hosts:
        raise ValidationError(
            f"resource config {path}: current_host {current!r} is not one of hosts {hosts!r}"
        )
    return str(current), [str(host) for host in hosts]


def part_name(relative: str) -> str:
    """The part file of the input file at `relative` (unique per file, any instance)."""
    return f"part-{hashlib.sha256(relative.encode('utf-8')).hexdigest()[:20]}.parquet"


def find_parts(parts_dir: Path, pattern: str = "part-*") -> dict[str, Path]:
    """The instances' parts below `parts_dir` by file name, wherever the download put them;
    never what the merge placed in `PLACED_DIR` (a retried merge reads the uploaded parts)."""
    return {
        path.name: path
        for path in parts_dir.rglob(pattern)
        if PLACED_DIR not in path.relative_to(parts_dir).parts[:-1]
    }


def csv_part_name(part: str, split: str, shard: int | None = None) -> str:
    """The file of `split`'s rows of the part `part` (train: of train shard `shard`)."""
    stem = part.removesuffix(".parquet")
    return f"{stem}.{split}.csv" if shard is None else f"{stem}.{split}-{shard}.csv"


def split_rule(options: SplitOptions, schema: Schema) -> dict[str, Any]:
    """The record of the hash split every instance and the merge apply; of a time split, what
    every instance applies (its cut-offs are the merge's, `shard_targets.place_rows`)."""
    v, t = options.validation_fraction, options.test_fraction
    if options.time_column:
        return {
            "method": TIME_METHOD,
            "time_column": options.time_column,
            "validation_fraction": float(v),
            "test_fraction": float(t),
        }
    if options.id_column:
        return hash_rule(options.seed, v, t, id_column=options.id_column)
    return hash_rule(options.seed, v, t, key_columns=schema.feature_names)


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
        ids = dataset.keys[options.id_column]
        empty = np.array([str(i).strip() == "" for i in ids], dtype=bool)
        if empty.any():
            raise ValidationError(
                f"id column {options.id_column!r} has {int(empty.sum())} missing value(s) "
                f"(file {dataset.files[0]['file']!r}): every row needs an id to be placed in "
                "a split"
            )
        hashes = id_hash(ids, options.seed)
    else:
        hashes = content_hash(dataset.columns, schema.feature_names, options.seed)
    return assign(unit(hashes), v, t)


def part_table(dataset: Dataset, schema: Schema, codes: np.ndarray) -> pa.Table:
    """A file's Parquet part: its labelled rows with their split codes, in split order (here,
    and in the merge for rows no instance could place, `shard_placing`)."""
    columns: dict[str, pa.Array] = {}
    for name in schema.columns:  # the target as its number (0/1, class code, value)
        kind = pa.string() if schema.is_text(name) and name != schema.target else pa.float64()
        columns[name] = pa.array(dataset.columns[name], type=kind)
    for name, values in dataset.keys.items():
        columns[name] = pa.array(values, type=pa.string())
    columns[SPLIT_COLUMN] = pa.array(codes, type=pa.int8())
    # Train rows first, then validation, then test (each in file order): the merge reads a
    # split's values of a part as one slice.
    return pa.table(columns).take(pa.array(np.argsort(codes, kind="stable")))


def write_split_parts(
    dataset: Dataset,
    schema: Schema,
    codes: np.ndarray,
    parts_dir: Path,
    part: str,
    rule: dict[str, Any],
    train_shards: int,
    times: np.ndarray | None = None,
) -> dict[str, dict[str, int]]:
    """The file's rows of each split as header-less CSV parts (an instance's, or the merge's
    for the rows it placed) (test with the split's id, or
    its `times`); rows and positives per split."""
    y = dataset.columns[schema.target]
    counts = {}
    for code, name in enumerate(SPLITS):
        index = np.flatnonzero(codes == code)
        positives = int(y[index].sum()) if schema.problem_type == BINARY else 0
        counts[name] = {"rows": int(index.size), "positives": positives}
        if name == "train" and train_shards > 1:
            for shard in range(train_shards):
                columns = split_columns(dataset, schema, index[shard::train_shards])
                write_csv(parts_dir / csv_part_name(part, name, shard), columns, header=False)
            continue
        columns = split_columns(dataset, schema, index)
        if name == "test":
            columns.update(_key_columns(dataset, index, rule, times))
        write_csv(parts_dir / csv_part_name(part, name), columns, header=False)
    return counts


def prepare_shard(
    input_dir: Path,
    output_dir: Path,
    schema: Schema,
    options: SplitOptions,
    instance: str,
    hosts: list[str],
    verified: list[str] | None = None,
    train_shards: int = 1,
) -> dict[str, Any]:
    """Read, check and split this instance's files one at a time, write each file's parts and
    the instance's summary; returns the summary."""
    parts_dir = output_dir / PARTS_DIR
    parts_dir.mkdir(parents=True, exist_ok=True)
    rule = split_rule(options, schema)
    entries = []
    for path in shard_files(input_dir):
        dataset = read_dataset([path], schema, input_dir, options.key_columns, raw_target=True)
        relative = dataset.files[0]["file"]
        name = part_name(relative)
        values = target_values(dataset, schema)
        missing, findings = file_findings(dataset, schema)
        labelled = dataset.subset(~is_missing(dataset.columns[schema.target]))
        if schema.positive_class is not None:  # class 1 by the row alone; checked by the merge
            labelled.columns[schema.target] = is_positive(labelled, schema)
        entry: dict[str, Any] = {
            "file": relative,
            "rows": dataset.rows,
            "dropped_missing_target": int(dataset.rows - labelled.rows),
            "part": name,
            "missing": missing,
            "ignored_columns": list(dataset.ignored),
            "positives": positives(labelled, schema),
            **({"target_values": values} if values is not None else {}),
        }
        if findings:  # the merge refuses the version with the single instance's message
            entry |= {
                "findings": findings,
                "splits": {n: {"rows": 0, "positives": 0} for n in SPLITS},
            }
            write_target(labelled, schema, parts_dir / name)
            entries.append(entry)
            continue
        if deferred(schema, options):  # placed and written as CSV by the merge
            entry |= write_unplaced(labelled, schema, options, parts_dir / name)
            entries.append(entry)
            continue
        codes = split_codes(labelled, schema, options)
        pq.write_table(part_table(labelled, schema, codes), parts_dir / name)
        entry["splits"] = write_split_parts(
            labelled, schema, codes, parts_dir, name, rule, train_shards
        )
        entries.append(entry)
    summary: dict[str, Any] = {
        "instance": instance,
        "hosts": hosts,
        "split_rule": rule,
        "train_shards": train_shards,
        "files": entries,
        # When the parts were written: a merge missing some names their age (`shard_merge`).
        "written": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if verified is not None:
        summary["verified"] = verified
    (parts_dir / f"{SUMMARY_PREFIX}{instance}.json").write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )
    LOG.info(
        "instance %s: %d file(s), %d row(s) checked, split and written as parts",
        instance,
        len(entries),
        sum(e["rows"] for e in entries),
    )
    return summary
