"""A feature schema inferred from the user's own CSV or Parquet file (`make local-run DATA=...
TARGET=...`): numeric columns besides the target are the features, typed by their values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline_code.steps import load

#: The data files prepare.py reads.
DATA_SUFFIXES: tuple[str, ...] = load("prepare", "dataset_reading").DATA_SUFFIXES
INFERENCE_SAMPLE_ROWS = 100_000
BOOL_TEXT = {"true", "false", "0", "1"}


class SchemaInferenceError(Exception):
    """The file cannot give a schema; the message names the problem (and the option)."""


def first_data_file(path: Path) -> Path:
    """`path` itself, or the first data file (by name) below it."""
    if path.is_file():
        return path
    if path.is_dir():
        for candidate in sorted(path.rglob("*")):
            if candidate.is_file() and candidate.name.lower().endswith(DATA_SUFFIXES):
                return candidate
        raise SchemaInferenceError(f"--data {path}: no .csv, .csv.gz or .parquet file in it")
    raise SchemaInferenceError(f"--data {path}: no such file or directory")


def infer_schema(data: Path, target: str) -> dict[str, Any]:
    """A schema for `data`: numeric columns other than `target` are the features.

    Columns with only 0/1 (or true/false) values are bool, whole numbers int, other numbers
    float; text columns are left out. Reads at most the first 100,000 rows.
    """
    import pandas as pd

    path = first_data_file(data)
    try:
        if path.name.lower().endswith(".parquet"):
            import pyarrow.parquet as pq

            batches = pq.ParquetFile(path).iter_batches(batch_size=INFERENCE_SAMPLE_ROWS)
            first = next(batches, None)
            frame = first.to_pandas() if first is not None else pd.DataFrame()
        else:
            frame = pd.read_csv(path, nrows=INFERENCE_SAMPLE_ROWS, low_memory=False)
    except Exception as error:  # pandas/pyarrow raise many kinds for a file they can't parse
        raise SchemaInferenceError(
            f"--data {path}: cannot read it as CSV or Parquet: {error}"
        ) from error
    if frame.empty:
        raise SchemaInferenceError(f"--data {path}: no data rows")
    if target not in frame.columns:
        raise SchemaInferenceError(
            f"--target {target!r} is not a column of {path.name}; columns: "
            + ", ".join(repr(str(c)) for c in frame.columns)
        )
    if not _is_bool_like(frame[target]):
        values = sorted(map(str, frame[target].dropna().unique()[:8]))
        raise SchemaInferenceError(
            f"--target {target!r} must be binary (0/1 or true/false); {path.name} has values "
            f"{values}"
        )
    features = []
    for column in frame.columns:
        if column == target:
            continue
        values = frame[column]
        if _is_bool_like(values):
            kind = "bool"
        elif pd.api.types.is_numeric_dtype(values):
            present = values.dropna()
            kind = "int" if bool((present == present.round()).all()) else "float"
        else:
            continue
        features.append({"name": str(column), "type": kind})
    if not features:
        raise SchemaInferenceError(f"--data {path.name}: no numeric column besides the target")
    return {"target": target, "features": features, "max_missing_fraction": 0.05}


def _is_bool_like(values: Any) -> bool:
    import pandas as pd

    present = values.dropna()
    if present.empty:
        return False
    if pd.api.types.is_bool_dtype(present):
        return True
    if pd.api.types.is_numeric_dtype(present):
        return bool(present.isin([0, 1]).all())
    return bool(present.astype(str).str.strip().str.lower().isin(BOOL_TEXT).all())
