"""Reading the landed dataset version: every CSV (optionally gzip-compressed) and Parquet file
below the input directory, the schema's columns only, as float64 columns (NaN = missing);
category features as their canonical text (`common.categories`, None = missing). A target with
`positive_class` is read as text and mapped to 0/1 over the whole version (`common.labels`).

Blanks around a value are ignored in CSV and Parquet alike; a value that does not parse as its
schema type is refused naming the column, the file and the first such value.
"""

from __future__ import annotations

import csv
import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from common.categories import canonical_array
from common.labels import LabelError, binary_labels, label_mapping
from common.problem_types import BINARY
from dataset_schema import Schema, ValidationError
from target_kinds import target_codes

LOG = logging.getLogger("prepare")

MARKER_FILES = frozenset({"_SUCCESS", "manifest.json"})
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")
TRUE_VALUES = ("1", "1.0", "true", "True", "TRUE")
FALSE_VALUES = ("0", "0.0", "false", "False", "FALSE")
NULL_VALUES = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None")


def file_order(relative: str | PurePath) -> tuple[str, ...]:
    """The order every Prepare reads a version's files in: by path part by part (so `a.csv`
    and `a-b/c.csv` come after `a/b.csv` whatever '.' and '-' sort as); the single instance
    and the sharded merge both sort by it, so they concatenate the rows alike."""
    return PurePosixPath(relative).parts


def find_input_files(input_dir: Path) -> list[Path]:
    """Data files below `input_dir`, in `file_order`; markers and other files are skipped."""
    if not input_dir.is_dir():
        raise ValidationError(f"no input files: input directory {input_dir} does not exist")
    files: list[Path] = []
    skipped: list[str] = []
    for path in sorted(input_dir.rglob("*"), key=lambda p: file_order(p.relative_to(input_dir))):
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
    if schema.is_text(column):
        return array
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
        text = stripped.to_numpy(zero_copy_only=False).astype(object)
        text[missing_mask] = None
        # pandas may return uint64 or objects for integers beyond int64: always float64.
        values = np.asarray(pd.to_numeric(text, errors="coerce"), dtype=np.float64)
        bad = ~missing_mask & np.isnan(values)
        expected = "numbers"
    if bad.any() and column == schema.target and schema.problem_type == BINARY:
        try:
            binary_labels(canonical_array(stripped), column, schema.positive_class)
        except LabelError as error:
            raise ValidationError(f"{path.name}: {error}") from error
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        position = first + 2 if where == "line" else first + 1
        raise ValidationError(
            f"column {column!r} ({_role(schema, column)}) must contain {expected}, but "
            f"{path.name} has {int(bad.sum())} value(s) that are not, e.g. "
            f"{_preview(array[first].as_py())} in {where} {position}"
        )
    return pa.array(values, type=pa.float64())


def _check_key_columns(columns: list[str], keys: list[str], path: Path) -> None:
    missing = [c for c in keys if c not in columns]
    if missing:
        raise ValidationError(
            f"{path.name}: missing the split's key column(s) {', '.join(map(repr, missing))}"
        )


def _read_csv(path: Path, schema: Schema, keys: list[str]) -> pa.Table | None:
    header = _read_csv_header(path)
    if header is None:
        LOG.warning("%s is empty (no header, no rows): skipped", path.name)
        return None
    _check_columns(header, schema, path)
    _check_key_columns(header, keys, path)
    types: dict[str, pa.DataType] = {
        column: pa.string()
        if schema.is_text(column)
        else pa.bool_()
        if schema.type_of(column) == "bool"
        else pa.float64()
        for column in schema.columns
    }
    # Keys are text as written: an id "007" must not become the number 7 by type inference.
    types.update({column: pa.string() for column in keys})
    convert = pa_csv.ConvertOptions(
        column_types=types,
        include_columns=[*schema.columns, *keys],
        true_values=list(TRUE_VALUES),
        false_values=list(FALSE_VALUES),
        null_values=list(NULL_VALUES),
        strings_can_be_null=True,
    )
    try:
        table = pa_csv.read_csv(path, convert_options=convert)
        return _keys_as_read(table, keys)
    except pa.ArrowInvalid as error:
        # The fast typed read refuses a bad value, but also a blank-padded bool: read the
        # columns as text and parse them like Parquet text columns, which names the column.
        as_text = pa_csv.ConvertOptions(
            column_types={column: pa.string() for column in [*schema.columns, *keys]},
            include_columns=[*schema.columns, *keys],
        )
        try:
            text = pa_csv.read_csv(path, convert_options=as_text)
        except pa.ArrowInvalid:
            raise ValidationError(f"{path.name}: not a readable CSV file: {error}") from error
        parsed = {
            column: _parse_text(text.column(column), schema, column, path, "line")
            for column in schema.columns
        }
        return _keys_as_read(pa.table({**parsed, **{c: text.column(c) for c in keys}}), keys)


def _keys_as_read(table: pa.Table, keys: list[str]) -> pa.Table:
    """Key columns as strings, blanks (read as missing) as empty strings."""
    for column in keys:
        values = pc.fill_null(table.column(column).cast(pa.string()), "")
        table = table.set_column(table.column_names.index(column), column, values)
    return table


def _role(schema: Schema, column: str) -> str:
    return "target" if column == schema.target else schema.type_of(column)


def _read_parquet(path: Path, schema: Schema, keys: list[str]) -> pa.Table:
    try:
        file_schema = pq.read_schema(path)
        _check_columns(list(file_schema.names), schema, path)
        _check_key_columns(list(file_schema.names), keys, path)
        table = pq.read_table(path, columns=[*schema.columns, *keys])
    except (pa.ArrowInvalid, OSError) as error:
        raise ValidationError(f"{path.name}: not a readable Parquet file: {error}") from error
    columns = {}
    for column in schema.columns:
        array = table.column(column)
        kind = schema.type_of(column)
        text = pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
        if (
            pa.types.is_boolean(array.type)
            or _is_numeric(array.type)
            or (schema.is_text(column) and (text or pa.types.is_dictionary(array.type)))
        ):
            columns[column] = array
        elif text:
            columns[column] = _parse_text(array, schema, column, path, "row")
        else:
            raise ValidationError(
                f"column {column!r} must be {kind}, but {path.name} stores it as {array.type}"
            )
    for column in keys:
        try:
            columns[column] = table.column(column).cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise ValidationError(
                f"key column {column!r}: {path.name} stores it as {table.column(column).type}, "
                f"which cannot be read as text: {error}"
            ) from error
    return _keys_as_read(pa.table(columns), keys)


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
    """All input rows as float64 columns (NaN = missing), the split's key columns as text
    (`keys`), and where the rows came from."""

    columns: dict[str, np.ndarray]
    files: list[dict[str, Any]]
    keys: dict[str, np.ndarray] = field(default_factory=dict)
    #: What the target's 1 and 0 stand for (`common.labels.label_mapping`).
    labels: dict[str, Any] = field(default_factory=dict)
    #: Columns of the files that the schema does not use, each with the reason.
    ignored: dict[str, str] = field(default_factory=dict)

    def subset(self, keep: np.ndarray) -> Dataset:
        """The rows where `keep` is True."""
        return Dataset(
            {c: v[keep] for c, v in self.columns.items()},
            self.files,
            {c: v[keep] for c, v in self.keys.items()},
            self.labels,
            self.ignored,
        )

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values())))


def read_dataset(
    files: list[Path],
    schema: Schema,
    input_dir: Path,
    keys: list[str] | None = None,
    one_class: bool = False,
    classes: list[str] | None = None,
    raw_target: bool = False,
) -> Dataset:
    """Read the schema's columns (and the split's `keys`, as text) of every file (columnar,
    nothing else is loaded). With `one_class` (data to evaluate on) a text target may hold a
    single value other than schema.positive_class (see `common.labels.binary_labels`). A
    multi-class target becomes class codes (of `classes` when given, else of the values seen),
    a regression target stays numbers (`target_codes`). With `raw_target` (one file of a
    sharded Prepare) a text target stays its canonical text: its mapping needs every file's."""
    keys = keys or []
    parts: dict[str, list[np.ndarray]] = {column: [] for column in schema.columns}
    key_parts: dict[str, list[np.ndarray]] = {column: [] for column in keys}
    inventory = []
    file_columns: list[str] = []
    for path in files:
        if path.name.lower().endswith(".parquet"):
            table = _read_parquet(path, schema, keys)
            names = list(pq.read_schema(path).names)
        else:
            table = _read_csv(path, schema, keys)
            names = _read_csv_header(path) or []
        file_columns += [c for c in names if c not in file_columns]
        rows = 0 if table is None else table.num_rows
        inventory.append({"file": str(path.relative_to(input_dir)), "rows": rows})
        if table is None or rows == 0:
            continue
        for column in schema.columns:
            if schema.is_text(column):
                parts[column].append(canonical_array(table.column(column)))
            else:
                parts[column].append(_as_float64(table.column(column), column, path))
        for column in keys:
            key_parts[column].append(table.column(column).to_numpy(zero_copy_only=False))
    columns = {
        column: np.concatenate(chunks)
        if chunks
        else np.empty(0, dtype=object if schema.is_text(column) else np.float64)
        for column, chunks in parts.items()
    }
    labels = label_mapping(np.empty(0, dtype=object), None)
    coded = not (raw_target and schema.is_text(schema.target))
    if coded and schema.problem_type != BINARY:
        labels = target_codes(columns, schema, classes)
    elif coded and schema.positive_class is not None and columns[schema.target].size:
        text = columns[schema.target]
        try:
            columns[schema.target] = binary_labels(
                text, schema.target, schema.positive_class, one_class
            )
        except LabelError as error:
            raise ValidationError(str(error)) from error
        labels = label_mapping(text, schema.positive_class)
    key_columns = {
        column: np.concatenate(chunks) if chunks else np.empty(0, dtype=object)
        for column, chunks in key_parts.items()
    }
    ignored = {
        column: "not in the schema (neither the target nor a feature)"
        for column in file_columns
        if column not in schema.columns and column not in keys
    }
    if ignored:
        LOG.info("columns not used (not in the schema): %s", ", ".join(ignored))
    return Dataset(
        columns=columns, files=inventory, keys=key_columns, labels=labels, ignored=ignored
    )
