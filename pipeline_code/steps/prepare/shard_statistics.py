"""The statistics the merge after a sharded Prepare (`shard_merge`) computes from the
instances' Parquet parts, which need every value of a feature: the training split's profile
(exact percentiles), the test split's statistics and how far validation and test moved from
train, one feature column at a time (train, validation and test each a slice of every part,
the part's rows being in that order), as many features at once as the merge instance has CPUs
and memory for; and the drift baseline's rows, the single instance's seeded sample of the
test split, read part by part.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common.feature_profile import profile
from common.feature_shift import compare_feature
from common.labels import label_mapping
from common.stable_split import SPLITS
from dataset_reading import Dataset
from dataset_schema import Schema, ValidationError
from shard_parts import SPLIT_COLUMN
from split_outputs import BASELINE_MAX_ROWS
from split_statistics import feature_statistics


def read_columns(path: Path, columns: list[str]) -> pa.Table:
    """`columns` of the Parquet part at `path`, on this thread (the merge runs features on
    threads of its own; pyarrow's own thread pool would only add overhead, 4x the CPU time
    measured on the build machine)."""
    return pq.ParquetFile(path).read(columns=columns, use_threads=False)


def check_parts(entries: list[dict[str, Any]], found: dict[str, Path]) -> None:
    """Each Parquet part holds its summary's rows per split, train then validation then test
    (parts of two runs mixed, or another code's, stop the merge)."""
    for entry in entries:
        codes = read_columns(found[entry["part"]], [SPLIT_COLUMN]).column(0)
        held = [entry["splits"][s]["rows"] for s in SPLITS]
        expected = np.repeat(np.arange(len(SPLITS), dtype=np.int8), held)
        if not np.array_equal(codes.to_numpy(zero_copy_only=False), expected):
            counts = np.bincount(codes.to_numpy(zero_copy_only=False), minlength=3).tolist()
            raise ValidationError(
                f"part {entry['part']} of input file {entry['file']!r} holds {counts} rows per "
                f"split ({'/'.join(SPLITS)}) in its order, its instance's summary and CSV parts "
                f"{held}: the parts are not one run's"
            )


def split_values(
    entries: list[dict[str, Any]], found: dict[str, Path], name: str, text: bool
) -> list[np.ndarray]:
    """One column's values in the train, validation and test split (each in file order)."""
    pieces: list[list[np.ndarray]] = [[] for _ in SPLITS]
    for entry in entries:
        table = read_columns(found[entry["part"]], [name])
        column = table.column(0).to_numpy(zero_copy_only=False)
        start = 0
        for code, split in enumerate(SPLITS):
            rows = entry["splits"][split]["rows"]
            pieces[code].append(column[start : start + rows])
            start += rows
    kind: Any = object if text else np.float64
    return [
        np.concatenate(chunks).astype(kind, copy=False) if chunks else np.empty(0, kind)
        for chunks in pieces
    ]


def _feature_report(
    entries: list[dict[str, Any]], found: dict[str, Path], schema: Schema, name: str, kind: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    train, validation, test = split_values(entries, found, name, schema.is_text(name))
    reference = profile(train, kind)
    del train
    distances = {
        "train_vs_validation": compare_feature(reference, validation),
        "train_vs_test": compare_feature(reference, test),
    }
    return feature_statistics(test, kind), reference, distances


#: What the merge holds per row of the version while computing one number feature (measured,
#: see the README's Processing across instances): the column by split and numpy's sorted
#: copies. Text (category) features are not budgeted here: they run one at a time, alone.
BYTES_PER_ROW_AND_WORKER = 48


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """MemAvailable in bytes, or None where the system does not say."""
    try:
        for line in meminfo.read_text("ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def merge_workers(features: int, rows: int, memory: int | None = None) -> int:
    """Features computed at once: one per CPU, as many as the available memory (`memory`,
    default the system's) holds a column's work for; at least one."""
    memory = available_memory() if memory is None else memory
    fit = features if memory is None else memory // max(1, rows * BYTES_PER_ROW_AND_WORKER)
    return max(1, min(os.cpu_count() or 1, features, fit))


def feature_reports(
    entries: list[dict[str, Any]], found: dict[str, Path], schema: Schema
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Per feature, one column each: the test split's statistics, the training split's
    profile and how far validation and test moved from it. Number features `merge_workers` at
    once (numpy and pyarrow release the GIL in the sorting and reading that dominate); text
    (category) features afterwards on this thread, one at a time: a column of Python strings
    costs far more than BYTES_PER_ROW_AND_WORKER a row and holds the GIL."""
    features = list(schema.features)
    numbers = [f for f in features if not schema.is_text(f[0])]
    texts = [f for f in features if schema.is_text(f[0])]
    rows = sum(e["rows"] for e in entries)
    results: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {}
    if numbers:
        with ThreadPoolExecutor(merge_workers(len(numbers), rows)) as pool:
            done = pool.map(lambda f: _feature_report(entries, found, schema, *f), numbers)
            results.update(zip((name for name, _ in numbers), done, strict=True))
    for name, kind in texts:
        results[name] = _feature_report(entries, found, schema, name, kind)
    statistics, reference, distances = {}, {}, {}
    for name, _ in features:
        statistics[name], reference[name], distances[name] = results[name]
    return statistics, reference, distances


def baseline_rows(
    entries: list[dict[str, Any]], found: dict[str, Path], schema: Schema, seed: int
) -> Dataset:
    """The drift baseline's rows: the single-instance sample of the test split (by position)."""
    tests = sum(e["splits"]["test"]["rows"] for e in entries)
    positions = np.arange(tests)
    if tests > BASELINE_MAX_ROWS:
        rng = np.random.default_rng(seed)
        positions = np.sort(rng.choice(tests, BASELINE_MAX_ROWS, replace=False))
    names = schema.feature_names
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    start = 0
    for entry in entries:
        count = entry["splits"]["test"]["rows"]
        local = positions[(positions >= start) & (positions < start + count)] - start
        start += count
        if not local.size:
            continue
        before = entry["splits"]["train"]["rows"] + entry["splits"]["validation"]["rows"]
        table = read_columns(found[entry["part"]], names).take(pa.array(local + before))
        for name in names:
            chunks[name].append(table.column(name).to_numpy(zero_copy_only=False))
    columns = {
        name: np.concatenate(parts).astype(object if schema.is_text(name) else np.float64)
        if parts
        else np.empty(0, object if schema.is_text(name) else np.float64)
        for name, parts in chunks.items()
    }
    return Dataset(columns, [], {}, label_mapping(np.empty(0, dtype=object), None), {})
