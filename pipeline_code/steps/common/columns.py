"""CSV files read as numbers XGBoost can hold: shared by train's channels and evaluate's test
set, which refuse the same things with the same messages (naming where the value came from)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv


@dataclass(frozen=True)
class Source:
    """Where values come from, for the messages, and the error a step raises for bad input.

    Attributes:
        what: Starts each message, e.g. "channel 'train'" or "test set".
        error: The exception class to raise.
        file: The file name said after the column (default: not said).
    """

    what: str
    error: type[Exception]
    file: str | None = None

    @property
    def in_file(self) -> str:
        return f" in {self.file}" if self.file else ""


def read_csv_table(file: Path, source: Source, text: tuple[str, ...] = ()) -> pa.Table:
    """One CSV file (gzip-compressed if it ends in .gz), refusing duplicate column names.

    The columns `text` (category features) are read as the text written, never typed: pyarrow
    would otherwise read `True` as a bool, `1.50` as 1.5 and `2024-01-05 10:00` as a timestamp,
    and their canonical text would differ from what the endpoint sees in a request (skew).
    An empty field is "" (canonical text: missing)."""
    convert = pa_csv.ConvertOptions(
        column_types={column: pa.string() for column in text}, strings_can_be_null=False
    )
    try:
        table = pa_csv.read_csv(file, convert_options=convert)
        # pyarrow decodes the column names only when asked: a non-UTF-8 header fails here.
        names = table.column_names
    except UnicodeDecodeError as error:
        raise source.error(
            f"{source.what}: cannot read {file.name}: not UTF-8 text ({error})"
        ) from error
    except (pa.ArrowInvalid, OSError, EOFError) as error:
        raise source.error(f"{source.what}: cannot read {file.name}: {error}") from error
    duplicates = sorted({c for c in names if names.count(c) > 1})
    if duplicates:
        raise source.error(f"{source.what}: {file.name} has column(s) {duplicates} more than once")
    return table


def read_csv_tables(
    files: list[Path], source: Source, text: tuple[str, ...] = ()
) -> tuple[list[pa.Table], list[str]]:
    """Every file read (see `read_csv_table`, `text` columns as text) and the column names they
    all have, in order; a file with other columns is refused, naming it and the first file."""
    tables = [read_csv_table(file, source, text) for file in files]
    columns = tables[0].column_names
    for file, table in zip(files, tables, strict=True):
        if table.column_names != columns:
            raise source.error(
                f"{source.what}: {file.name} has columns {table.column_names}, "
                f"{files[0].name} has {columns}"
            )
    return tables, columns


def numbers(table: pa.Table, column: str, kind: pa.DataType, source: Source) -> np.ndarray:
    """A column as numbers of `kind`, NaN where missing; text is refused naming the column."""
    try:
        # Unchecked: an int beyond 2**24 rounds to the nearest float32 (as XGBoost would
        # store it) instead of failing; a float beyond float32 becomes inf, refused later.
        return table.column(column).cast(kind, safe=False).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise source.error(
            f"{source.what}: column {column!r}{source.in_file} must hold numbers: {error}"
        ) from error


def finite_feature(table: pa.Table, column: str, source: Source) -> np.ndarray:
    """A feature column as float32; infinite values (XGBoost refuses them) are refused here."""
    values = numbers(table, column, pa.float32(), source)
    infinite = np.isinf(values)
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        raise source.error(
            f"{source.what}: column {column!r} has {int(infinite.sum())} value(s)"
            f"{source.in_file} that are infinite or beyond the float32 range XGBoost stores "
            f"features in (magnitude at most {np.finfo(np.float32).max:.7g}), e.g. "
            f"{table.column(column)[first].as_py()!r} in row {first + 1}"
        )
    return values
