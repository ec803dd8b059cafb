"""Prepare step (SageMaker Processing job): validate the landed data, split it, compute a baseline.

Reads every `*.csv`, `*.csv.gz` and `*.parquet` file below `--input-dir` (recursively; the
dataset markers `_SUCCESS` and `manifest.json`, and like the trigger's digest every name that
starts with `_` or `.`, are metadata, not data), keeps only the schema's columns,
checks them against the schema and writes, below `--output-dir`:

    train/train.csv, validation/validation.csv, test/test.csv
        header; target column first, then the features in schema order; bools as 0/1
    baseline/baseline.csv      the test split's features (<= 10,000 rows): the drift reference
    baseline/features.csv      the same rows and columns (schema order) without a header: the
                               Model Monitor baseline dataset (header-less CSV columns are
                               named _c0, _c1, ..., as in the endpoint's captured requests)
    baseline/statistics.json   per-feature statistics of the test split
    report/split_report.json   input files, row counts, class balance, distances between splits

With `--all-to-test` (the evaluation-only pipeline: labelled data to score the production model
on) the same checks apply, there is no split and no baseline: every labelled row goes to
test/test.csv and report/split_report.json records the input and its class balance.

Blanks around a value are ignored in CSV and Parquet alike. Bad input (no files, no rows,
missing or mistyped columns, numbers too large for the later steps to hold, one class only,
too many missing values) stops the job with exit code 1 and a message naming the column, the
problem and the limit, written to stderr and to SageMaker's exit-message file
(`/opt/ml/output/message`, shown as the job's ExitMessage; override with the
FAILURE_REASON_FILE environment variable).

Self-contained (uploaded alone to the SageMaker XGBoost 3.0-5 container: Python 3.10, numpy,
pandas, pyarrow, scikit-learn); no SageMaker SDK.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

LOG = logging.getLogger("prepare")

DEFAULT_INPUT_DIR = "/opt/ml/processing/input/data"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/output"
# A Processing job reports the first 1 KB of this file as ExitMessage (DescribeProcessingJob).
DEFAULT_FAILURE_FILE = "/opt/ml/output/message"
FAILURE_FILE_ENV = "FAILURE_REASON_FILE"
FAILURE_MESSAGE_MAX_BYTES = 1024

MARKER_FILES = frozenset({"_SUCCESS", "manifest.json"})
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")
FEATURE_TYPES = ("float", "int", "bool")
BASELINE_MAX_ROWS = 10_000
#: The header-less copy of baseline.csv that the pipeline's Model Monitor Baseline step reads.
MODEL_MONITOR_BASELINE_FILE = "features.csv"
MAX_CATEGORIES = 50
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
PSI_BINS = 10
#: Largest magnitude of an int column: float64 (how values are held) is exact up to here.
INT_EXACT_LIMIT = 2**53 - 1
#: Largest magnitude of a feature: XGBoost stores features as float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)
TRUE_VALUES = ("1", "1.0", "true", "True", "TRUE")
FALSE_VALUES = ("0", "0.0", "false", "False", "FALSE")
NULL_VALUES = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None")

SPLITS = ("train", "validation", "test")


class ValidationError(Exception):
    """The input or the arguments are not usable; the message says what and where."""


@dataclass(frozen=True)
class Schema:
    target: str
    features: tuple[tuple[str, str], ...]
    max_missing_fraction: float

    @property
    def feature_names(self) -> list[str]:
        return [name for name, _ in self.features]

    @property
    def columns(self) -> list[str]:
        return [self.target, *self.feature_names]

    def type_of(self, column: str) -> str:
        """Schema type of a column; the target is read like a bool (0/1, true/false)."""
        return "bool" if column == self.target else dict(self.features)[column]


def parse_schema(value: str) -> Schema:
    """Parse and check `--schema`: the schema JSON itself, or the path of a file holding it.

    A file is how the pipeline passes it (container arguments are limited to 256 characters).
    """
    text = value
    if not value.lstrip().startswith("{"):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as error:
            raise ValidationError(
                f"--schema {value!r} is neither a JSON object nor a readable file: {error}"
            ) from error
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationError(f"--schema is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise ValidationError("--schema must be a JSON object with target, features")
    target = raw.get("target")
    if not isinstance(target, str) or not target:
        raise ValidationError(f"--schema target = {target!r} is not allowed: a column name")
    features = raw.get("features")
    if not isinstance(features, list) or not features:
        raise ValidationError("--schema features must be a non-empty list of {name, type}")
    parsed: list[tuple[str, str]] = []
    for i, feature in enumerate(features):
        name = feature.get("name") if isinstance(feature, dict) else None
        kind = feature.get("type") if isinstance(feature, dict) else None
        if not isinstance(name, str) or not name:
            raise ValidationError(f"--schema features[{i}].name = {name!r}: a column name")
        if kind not in FEATURE_TYPES:
            raise ValidationError(
                f"--schema features[{i}].type = {kind!r} is not allowed: one of "
                f"{', '.join(FEATURE_TYPES)}"
            )
        parsed.append((name, kind))
    names = [name for name, _ in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationError(f"--schema features has duplicate names {duplicates}")
    if target in names:
        raise ValidationError(f"--schema target {target!r} is also listed as a feature")
    fraction = raw.get("max_missing_fraction", 0.0)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ValidationError(f"--schema max_missing_fraction = {fraction!r}: a number")
    if not 0.0 <= fraction < 1.0:
        raise ValidationError(
            f"--schema max_missing_fraction = {fraction!r} is not allowed: from 0 to below 1"
        )
    return Schema(target=target, features=tuple(parsed), max_missing_fraction=float(fraction))


# ----------------------------------------------------------------------------- reading


def find_input_files(input_dir: Path) -> list[Path]:
    """Data files below `input_dir`, sorted; markers and other files are skipped."""
    if not input_dir.is_dir():
        raise ValidationError(f"no input files: input directory {input_dir} does not exist")
    files: list[Path] = []
    skipped: list[str] = []
    for path in sorted(input_dir.rglob("*")):
        if not path.is_file() or path.name in MARKER_FILES or path.name.startswith(("_", ".")):
            continue
        if path.name.lower().endswith(DATA_SUFFIXES):
            files.append(path)
        else:
            skipped.append(str(path.relative_to(input_dir)))
    if skipped:
        LOG.warning("skipping %d file(s) that are not data files: %s", len(skipped), skipped[:10])
    if not files:
        raise ValidationError(
            f"no input files: no *.csv, *.csv.gz or *.parquet file below {input_dir}"
        )
    return files


def _read_csv_header(path: Path) -> list[str] | None:
    """Column names of a CSV file, or None when the file has no content at all."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise ValidationError(f"{path.name}: cannot read the file as CSV: {error}") from error
    if not first.strip():
        return None
    return next(csv.reader([first.rstrip("\r\n")]))


def _check_columns(columns: list[str], schema: Schema, path: Path) -> None:
    duplicates = sorted({c for c in columns if columns.count(c) > 1 and c in schema.columns})
    if duplicates:
        raise ValidationError(f"{path.name}: column(s) {duplicates} appear more than once")
    missing = [c for c in schema.columns if c not in columns]
    if missing:
        what = "target column" if missing == [schema.target] else "column(s)"
        raise ValidationError(
            f"{path.name}: missing {what} {', '.join(repr(c) for c in missing)} "
            f"(the file has {', '.join(repr(c) for c in columns[:20])}"
            f"{', ...' if len(columns) > 20 else ''})"
        )


def _preview(value: Any, limit: int = 40) -> str:
    """repr() of a cell, shortened: one huge cell must not fill the 1 KB failure reason."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def _parse_text(
    array: pa.ChunkedArray, schema: Schema, column: str, path: Path, where: str
) -> pa.Array:
    """Parse a text column as its schema type: float64, bools as 0/1, NaN where missing.

    Blanks around a value are ignored (pyarrow's CSV reader does the same for numbers), so
    ' true' reads alike from CSV and Parquet. A value that does not parse is refused, naming
    the column and the first such value; `where` is "line" (CSV, counting the header) or
    "row" (Parquet, from 1).
    """
    import pandas as pd

    kind = schema.type_of(column)
    stripped = pc.utf8_trim_whitespace(array)
    missing = pc.or_(pc.is_null(stripped), pc.is_in(stripped, value_set=pa.array(NULL_VALUES)))
    missing_mask = missing.to_numpy(zero_copy_only=False)
    if kind == "bool":
        is_true = pc.is_in(stripped, value_set=pa.array(TRUE_VALUES)).to_numpy(zero_copy_only=False)
        is_false = pc.is_in(stripped, value_set=pa.array(FALSE_VALUES)).to_numpy(
            zero_copy_only=False
        )
        values = np.where(is_true, 1.0, np.where(is_false, 0.0, np.nan))
        bad = ~missing_mask & ~is_true & ~is_false
        expected = "0/1 or true/false"
    else:
        text = stripped.to_numpy(zero_copy_only=False)
        # pandas may return uint64 or objects for integers beyond int64: always float64.
        values = np.asarray(
            pd.to_numeric(np.where(missing_mask, None, text), errors="coerce"), dtype=np.float64
        )
        bad = ~missing_mask & np.isnan(values)
        expected = "numbers"
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        position = first + 2 if where == "line" else first + 1
        raise ValidationError(
            f"column {column!r} ({_role(schema, column)}) must contain {expected}, but "
            f"{path.name} has {int(bad.sum())} value(s) that are not, e.g. "
            f"{_preview(array[first].as_py())} in {where} {position}"
        )
    return pa.array(values, type=pa.float64())


def _read_csv(path: Path, schema: Schema) -> pa.Table | None:
    header = _read_csv_header(path)
    if header is None:
        LOG.warning("%s is empty (no header, no rows): skipped", path.name)
        return None
    _check_columns(header, schema, path)
    types = {
        column: pa.bool_() if schema.type_of(column) == "bool" else pa.float64()
        for column in schema.columns
    }
    convert = pa_csv.ConvertOptions(
        column_types=types,
        include_columns=schema.columns,
        true_values=list(TRUE_VALUES),
        false_values=list(FALSE_VALUES),
        null_values=list(NULL_VALUES),
        strings_can_be_null=True,
    )
    try:
        return pa_csv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as error:
        # The fast typed read refuses a bad value, but also a blank-padded bool: read the
        # columns as text and parse them like Parquet text columns, which names the column.
        as_text = pa_csv.ConvertOptions(
            column_types={column: pa.string() for column in schema.columns},
            include_columns=schema.columns,
        )
        try:
            text = pa_csv.read_csv(path, convert_options=as_text)
        except pa.ArrowInvalid:
            raise ValidationError(f"{path.name}: not a readable CSV file: {error}") from error
        return pa.table(
            {
                column: _parse_text(text.column(column), schema, column, path, "line")
                for column in schema.columns
            }
        )


def _role(schema: Schema, column: str) -> str:
    return "target" if column == schema.target else schema.type_of(column)


def _read_parquet(path: Path, schema: Schema) -> pa.Table:
    try:
        file_schema = pq.read_schema(path)
        _check_columns(list(file_schema.names), schema, path)
        table = pq.read_table(path, columns=schema.columns)
    except (pa.ArrowInvalid, OSError) as error:
        raise ValidationError(f"{path.name}: not a readable Parquet file: {error}") from error
    columns = {}
    for column in schema.columns:
        array = table.column(column)
        kind = schema.type_of(column)
        if pa.types.is_boolean(array.type) or _is_numeric(array.type):
            columns[column] = array
        elif pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            columns[column] = _parse_text(array, schema, column, path, "row")
        else:
            raise ValidationError(
                f"column {column!r} must be {kind}, but {path.name} stores it as {array.type}"
            )
    return pa.table(columns)


def _is_numeric(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
    )


def _as_float64(array: pa.ChunkedArray, column: str, path: Path) -> np.ndarray:
    """A column as float64 values, NaN where missing."""
    if array.type != pa.float64():
        try:
            # Integers beyond 2**53 round here instead of failing; validate() refuses an int
            # column holding them by range, naming the column.
            array = array.cast(pa.float64(), safe=not pa.types.is_integer(array.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise ValidationError(
                f"column {column!r}: {path.name} stores it as {array.type}, which cannot be "
                f"read as numbers: {error}"
            ) from error
    return array.to_numpy()


@dataclass
class Dataset:
    """All input rows as float64 columns (NaN = missing), plus where they came from."""

    columns: dict[str, np.ndarray]
    files: list[dict[str, Any]]

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values())))


def read_dataset(files: list[Path], schema: Schema, input_dir: Path) -> Dataset:
    """Read the schema's columns of every file (columnar, nothing else is loaded)."""
    parts: dict[str, list[np.ndarray]] = {column: [] for column in schema.columns}
    inventory = []
    for path in files:
        if path.name.lower().endswith(".parquet"):
            table = _read_parquet(path, schema)
        else:
            table = _read_csv(path, schema)
        rows = 0 if table is None else table.num_rows
        inventory.append({"file": str(path.relative_to(input_dir)), "rows": rows})
        if table is None or rows == 0:
            continue
        for column in schema.columns:
            parts[column].append(_as_float64(table.column(column), column, path))
    columns = {
        column: np.concatenate(chunks) if chunks else np.empty(0)
        for column, chunks in parts.items()
    }
    return Dataset(columns=columns, files=inventory)


# -------------------------------------------------------------------------- validation


def validate(dataset: Dataset, schema: Schema, split: bool = True) -> np.ndarray:
    """Check the values against the schema; return the mask of rows to keep (target known).

    `split` (default True) also requires enough rows of each class for three stratified
    splits; without it (evaluation only) one row of each class is enough.
    """
    rows = dataset.rows
    if rows == 0:
        raise ValidationError(
            f"empty input: {len(dataset.files)} file(s) contain no data rows (empty or header only)"
        )
    limit = schema.max_missing_fraction
    target = dataset.columns[schema.target]
    target_missing = np.isnan(target)
    _check_missing(schema.target, int(target_missing.sum()), rows, limit)
    known = target[~target_missing]
    not_binary = (known != 0.0) & (known != 1.0)
    if not_binary.any():
        raise ValidationError(
            f"target column {schema.target!r} must be 0 or 1 (true/false), but "
            f"{int(not_binary.sum())} row(s) are not, e.g. {known[not_binary][0]:g}"
        )
    for name, kind in schema.features:
        values = dataset.columns[name]
        missing = np.isnan(values)
        _check_missing(name, int(missing.sum()), rows, limit)
        present = values[~missing]
        if np.isinf(present).any():
            raise ValidationError(
                f"column {name!r} ({kind}) has {int(np.isinf(present).sum())} infinite value(s)"
            )
        if kind in ("float", "int"):
            _check_magnitude(name, kind, present)
        if kind == "int":
            fractional = present != np.floor(present)
            if fractional.any():
                raise ValidationError(
                    f"column {name!r} (int) must contain whole numbers, but "
                    f"{int(fractional.sum())} value(s) are not, e.g. {present[fractional][0]:g}"
                )
        elif kind == "bool":
            other = (present != 0.0) & (present != 1.0)
            if other.any():
                raise ValidationError(
                    f"column {name!r} (bool) must contain 0/1 or true/false, but "
                    f"{int(other.sum())} value(s) are not, e.g. {present[other][0]:g}"
                )
    positives = int(known.sum())
    negatives = known.size - positives
    if positives == 0 or negatives == 0:
        only = 1 if positives else 0
        need = (
            "a classifier needs rows of both classes 0 and 1"
            if split
            else "evaluating a model needs rows of both classes 0 and 1 (AUC is undefined "
            "with one class)"
        )
        raise ValidationError(
            f"target column {schema.target!r} has a single class: all {known.size} labelled "
            f"rows are {only}; {need}"
        )
    fewest = min(positives, negatives)
    if split and fewest < len(SPLITS):
        rare = 1 if positives < negatives else 0
        raise ValidationError(
            f"target column {schema.target!r} has only {fewest} row(s) of class {rare}; "
            f"at least {len(SPLITS)} are needed (one per split: {', '.join(SPLITS)})"
        )
    return ~target_missing


def _check_magnitude(name: str, kind: str, present: np.ndarray) -> None:
    """Refuse numbers the later steps cannot hold.

    An int column is written as int64 from float64 values, which hold whole numbers exactly
    only up to 2**53 - 1; beyond it another number would be written. A float column must fit
    float32, the type XGBoost stores features in (a larger value becomes infinite there).
    """
    if kind == "int":
        limit: float = INT_EXACT_LIMIT
        meaning = f"{INT_EXACT_LIMIT} (2**53 - 1, the largest whole number held exactly)"
    else:
        limit = FLOAT32_MAX
        meaning = f"{FLOAT32_MAX:.7g} (float32, the type XGBoost stores features in)"
    beyond = np.abs(present) > limit
    if beyond.any():
        raise ValidationError(
            f"column {name!r} ({kind}) must contain numbers of magnitude at most {meaning}, "
            f"but {int(beyond.sum())} value(s) are not, e.g. {present[beyond][0]:g}"
        )


def _check_missing(column: str, missing: int, rows: int, limit: float) -> None:
    fraction = missing / rows
    if fraction > limit:
        raise ValidationError(
            f"column {column!r} has {fraction:.1%} missing values ({missing} of {rows} rows), "
            f"more than the allowed {limit:.1%} (max_missing_fraction)"
        )


# ------------------------------------------------------------------------------ split


def split_indices(
    y: np.ndarray, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Stratified train/validation/test row indices (each sorted), reproducible for `seed`."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(y.size)
    try:
        rest, test = train_test_split(rows, test_size=test_fraction, stratify=y, random_state=seed)
        train, validation = train_test_split(
            rest,
            test_size=validation_fraction / (1.0 - test_fraction),
            stratify=y[rest],
            random_state=seed,
        )
    except ValueError as error:
        raise ValidationError(
            f"cannot split {y.size} rows into train/validation/test "
            f"({1 - validation_fraction - test_fraction:.0%}/{validation_fraction:.0%}/"
            f"{test_fraction:.0%}) with both classes in each: {error}"
        ) from error
    splits = {"train": train, "validation": validation, "test": test}
    for name, index in splits.items():
        classes = np.unique(y[index])
        if classes.size < 2:
            raise ValidationError(
                f"after the split, the {name} split ({index.size} rows) has only class "
                f"{int(classes[0])}; provide more rows of the rare class "
                f"(now {int(min(y.sum(), y.size - y.sum()))})"
            )
    return {name: np.sort(index) for name, index in splits.items()}


# ----------------------------------------------------------------------------- output


def _arrow_column(values: np.ndarray, kind: str) -> pa.Array:
    missing = np.isnan(values)
    if kind == "float":
        return pa.array(values, mask=missing if missing.any() else None)
    dtype = np.int8 if kind == "bool" else np.int64
    whole = np.where(missing, 0, values).astype(dtype)
    return pa.array(whole, mask=missing if missing.any() else None)


def write_csv(path: Path, columns: dict[str, pa.Array], header: bool = True) -> None:
    """CSV with a plain header line (pyarrow would quote the names), or none; missing values
    empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(columns)
    with pa.OSFile(str(path), "wb") as sink:
        if header:
            sink.write((",".join(columns) + "\n").encode())
        pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))


def _split_columns(
    dataset: Dataset, schema: Schema, index: np.ndarray, with_target: bool = True
) -> dict[str, pa.Array]:
    columns: dict[str, pa.Array] = {}
    if with_target:
        columns[schema.target] = _arrow_column(dataset.columns[schema.target][index], "bool")
    for name, kind in schema.features:
        columns[name] = _arrow_column(dataset.columns[name][index], kind)
    return columns


def feature_statistics(values: np.ndarray, kind: str) -> dict[str, Any]:
    """count, missing, mean, std, min, max, quantiles; category counts for bool/small int."""
    present = values[~np.isnan(values)]
    stats: dict[str, Any] = {
        "type": kind,
        "count": int(present.size),
        "missing": int(values.size - present.size),
    }
    if present.size == 0:
        return stats
    stats.update(
        mean=float(present.mean()),
        std=float(present.std(ddof=1)) if present.size > 1 else 0.0,
        min=float(present.min()),
        max=float(present.max()),
        quantiles={
            f"{q:g}": float(v)
            for q, v in zip(QUANTILES, np.quantile(present, QUANTILES), strict=True)
        },
    )
    if kind in ("bool", "int"):
        categories, counts = np.unique(present, return_counts=True)
        if categories.size <= MAX_CATEGORIES:
            stats["categories"] = {
                f"{int(c)}": int(n) for c, n in zip(categories, counts, strict=True)
            }
    return stats


def ks_statistic(sorted_reference: np.ndarray, other: np.ndarray) -> float | None:
    """Two-sample Kolmogorov-Smirnov statistic; `sorted_reference` is sorted, NaNs removed."""
    other = np.sort(other[~np.isnan(other)])
    if sorted_reference.size == 0 or other.size == 0:
        return None
    grid = np.concatenate([sorted_reference, other])
    cdf_reference = np.searchsorted(sorted_reference, grid, side="right") / sorted_reference.size
    cdf_other = np.searchsorted(other, grid, side="right") / other.size
    return float(np.max(np.abs(cdf_reference - cdf_other)))


def psi(sorted_reference: np.ndarray, other: np.ndarray, bins: int = PSI_BINS) -> float | None:
    """Population stability index over the reference's quantile bins (missing values ignored)."""
    other = other[~np.isnan(other)]
    if sorted_reference.size == 0 or other.size == 0:
        return None
    edges = np.unique(np.quantile(sorted_reference, np.linspace(0.0, 1.0, bins + 1)))[1:-1]
    expected = np.bincount(
        np.searchsorted(edges, sorted_reference, side="right"), minlength=edges.size + 1
    )
    actual = np.bincount(np.searchsorted(edges, other, side="right"), minlength=edges.size + 1)
    p = np.clip(expected / sorted_reference.size, 1e-6, None)
    q = np.clip(actual / other.size, 1e-6, None)
    return float(np.sum((q - p) * np.log(q / p)))


def _class_balance(y: np.ndarray) -> dict[str, Any]:
    positives = int(y.sum())
    return {
        "rows": int(y.size),
        "positives": positives,
        "negatives": int(y.size - positives),
        "positive_fraction": positives / y.size,
    }


def write_outputs(
    dataset: Dataset,
    schema: Schema,
    splits: dict[str, np.ndarray],
    output_dir: Path,
    seed: int,
    extra_report: dict[str, Any],
) -> dict[str, Any]:
    for name, index in splits.items():
        write_csv(output_dir / name / f"{name}.csv", _split_columns(dataset, schema, index))

    test = splits["test"]
    baseline = test
    if baseline.size > BASELINE_MAX_ROWS:
        rng = np.random.default_rng(seed)
        baseline = np.sort(rng.choice(test, BASELINE_MAX_ROWS, replace=False))
    baseline_columns = _split_columns(dataset, schema, baseline, with_target=False)
    write_csv(output_dir / "baseline" / "baseline.csv", baseline_columns)
    write_csv(output_dir / "baseline" / MODEL_MONITOR_BASELINE_FILE, baseline_columns, header=False)
    statistics = {
        "source": "test split",
        "rows": int(test.size),
        "features": {
            name: feature_statistics(dataset.columns[name][test], kind)
            for name, kind in schema.features
        },
    }
    _write_json(output_dir / "baseline" / "statistics.json", statistics)

    y = dataset.columns[schema.target]
    distances: dict[str, Any] = {}
    for name, _ in schema.features:
        values = dataset.columns[name]
        reference = values[splits["train"]]
        reference = np.sort(reference[~np.isnan(reference)])
        distances[name] = {
            f"train_vs_{other}": {
                "ks": ks_statistic(reference, values[splits[other]]),
                "psi": psi(reference, values[splits[other]]),
            }
            for other in ("validation", "test")
        }
    report = {
        **extra_report,
        "schema": _schema_report(schema),
        "seed": seed,
        "splits": {name: _class_balance(y[index]) for name, index in splits.items()},
        "baseline_rows": int(baseline.size),
        "feature_distance": distances,
    }
    _write_json(output_dir / "report" / "split_report.json", report)
    return report


def _schema_report(schema: Schema) -> dict[str, Any]:
    return {
        "target": schema.target,
        "features": [{"name": n, "type": t} for n, t in schema.features],
        "max_missing_fraction": schema.max_missing_fraction,
    }


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------- main


def _read_and_validate(
    args: argparse.Namespace, schema: Schema, split: bool
) -> tuple[Dataset, int, float]:
    """Read and check the input; returns the labelled rows, rows dropped, start time."""
    started = time.perf_counter()
    input_dir = Path(args.input_dir)
    files = find_input_files(input_dir)
    dataset = read_dataset(files, schema, input_dir)
    LOG.info(
        "read %d rows from %d file(s) in %.1f s",
        dataset.rows,
        len(files),
        time.perf_counter() - started,
    )
    keep = validate(dataset, schema, split=split)
    dropped = int((~keep).sum())
    if dropped:
        LOG.warning("dropping %d row(s) without a target value", dropped)
        dataset = Dataset({c: v[keep] for c, v in dataset.columns.items()}, dataset.files)
    return dataset, dropped, started


def _input_report(dataset: Dataset, dropped: int, data_digest: str | None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "files": dataset.files,
        "rows": dataset.rows + dropped,
        "dropped_missing_target": dropped,
    }
    if data_digest:
        report["data_digest"] = data_digest
    return report


def run_all_to_test(args: argparse.Namespace, schema: Schema) -> dict[str, Any]:
    """Evaluation only: validate, write every labelled row to test/test.csv and a report."""
    dataset, dropped, started = _read_and_validate(args, schema, split=False)
    output_dir = Path(args.output_dir)
    everything = np.arange(dataset.rows)
    write_csv(output_dir / "test" / "test.csv", _split_columns(dataset, schema, everything))
    y = dataset.columns[schema.target]
    report = {
        "mode": "all-to-test",
        "input": _input_report(dataset, dropped, args.data_digest),
        "schema": _schema_report(schema),
        "splits": {"test": _class_balance(y)},
    }
    _write_json(output_dir / "report" / "split_report.json", report)
    LOG.info(
        "wrote all %d labelled rows to test/ in %.1f s",
        dataset.rows,
        time.perf_counter() - started,
    )
    return report


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Validate, split (or, with `--all-to-test`, keep together) and write; returns the report."""
    schema = parse_schema(args.schema)
    if args.all_to_test:
        return run_all_to_test(args, schema)
    if not (0.0 < args.validation_fraction < 1.0 and 0.0 < args.test_fraction < 1.0):
        raise ValidationError(
            f"--validation-fraction {args.validation_fraction} and --test-fraction "
            f"{args.test_fraction} must each be between 0 and 1"
        )
    if args.validation_fraction + args.test_fraction >= 1.0:
        raise ValidationError(
            f"--validation-fraction {args.validation_fraction} + --test-fraction "
            f"{args.test_fraction} must leave rows for training (sum below 1)"
        )
    dataset, dropped, started = _read_and_validate(args, schema, split=True)
    y = dataset.columns[schema.target].astype(np.int8)
    splits = split_indices(y, args.validation_fraction, args.test_fraction, args.seed)
    report = write_outputs(
        dataset,
        schema,
        splits,
        Path(args.output_dir),
        args.seed,
        {
            "input": _input_report(dataset, dropped, args.data_digest),
            "fractions": {
                "train": 1.0 - args.validation_fraction - args.test_fraction,
                "validation": args.validation_fraction,
                "test": args.test_fraction,
            },
        },
    )
    LOG.info(
        "wrote train/validation/test = %s rows in %.1f s",
        "/".join(str(report["splits"][s]["rows"]) for s in SPLITS),
        time.perf_counter() - started,
    )
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Validate and split the landed dataset.")
    parser.add_argument("--input-dir", default=DEFAULT_INPUT_DIR, help="data files, recursive")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help="split outputs")
    parser.add_argument("--schema", required=True, help="feature schema: JSON, or a JSON file")
    parser.add_argument("--validation-fraction", type=float, default=0.15, help="(0.15)")
    parser.add_argument("--test-fraction", type=float, default=0.15, help="(0.15)")
    parser.add_argument("--seed", type=int, default=42, help="split and sampling seed (42)")
    parser.add_argument(
        "--all-to-test",
        action="store_true",
        help="evaluation only: validate, then write every labelled row to test/ (no split, "
        "no baseline; the fractions and seed are not used)",
    )
    parser.add_argument(
        "--data-digest",
        default=None,
        help="digest of the dataset version, recorded in the report (default: none)",
    )
    return parser.parse_args(argv)


def report_failure(step: str, message: str, default_file: str) -> None:
    """Write the reason to stderr and to the file SageMaker shows as the job's message."""
    print(f"{step} failed: {message}", file=sys.stderr, flush=True)
    path = Path(os.environ.get(FAILURE_FILE_ENV, default_file))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = message.encode("utf-8")[:FAILURE_MESSAGE_MAX_BYTES]
        path.write_text(encoded.decode("utf-8", errors="ignore"), encoding="utf-8")
    except OSError as error:
        print(f"{step}: could not write the failure reason to {path}: {error}", file=sys.stderr)


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    LOG.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Run the step; 0 on success, 1 on bad input (reason in the failure file and stderr)."""
    _configure_logging()
    args = parse_args(argv)
    try:
        run(args)
    except ValidationError as error:
        report_failure("prepare", str(error), DEFAULT_FAILURE_FILE)
        return 1
    except Exception as error:  # a crash must still leave a reason where the user looks
        LOG.exception("unexpected error")
        message = f"unexpected {type(error).__name__}: {error}"
        report_failure("prepare", message, DEFAULT_FAILURE_FILE)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
