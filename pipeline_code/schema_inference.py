"""A feature schema inferred from the user's own CSV or Parquet file (`make local-run DATA=...
TARGET=... [POSITIVE=...]`): every column besides the target is either a feature, typed by its
values, or listed as ignored with the reason; none is dropped without a word.

    bool       only 0/1 or true/false
    int/float  numbers (whole or not)
    category   text with at most 50 distinct values, repeated (fewer distinct values than half
               the rows read)
    ignored    no value at all; text with more distinct values (an identifier or free text)

The problem type is inferred from the target's values, or given (PROBLEM): see
`problem_inference`. A binary target must be 0/1 or true/false, or two values of which
`positive_class` (POSITIVE) is class 1; otherwise the error says so and lists the values seen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline_code.problem_inference import ProblemInferenceError, infer_problem
from pipeline_code.steps import load

#: The data files prepare.py reads.
DATA_SUFFIXES: tuple[str, ...] = load("prepare", "dataset_reading").DATA_SUFFIXES
INFERENCE_SAMPLE_ROWS = 100_000
BOOL_TEXT = {"true", "false", "0", "1"}
#: Most distinct values a text column may have to be inferred a category.
MAX_INFERRED_CATEGORIES = 50
SHOWN_VALUES = 10


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


def infer_schema(data: Path, target: str, positive_class: str | None = None) -> dict[str, Any]:
    """The inferred schema of `data` (see :func:`infer`), without the ignored columns."""
    return infer(data, target, positive_class)[0]


def infer(
    data: Path, target: str, positive_class: str | None = None, problem: str | None = None
) -> tuple[dict[str, Any], dict[str, str], str]:
    """(schema, ignored columns with the reason each is not a feature, why the problem type is
    what it is) for `data`; `problem` (PROBLEM) overrides the inferred type.

    Reads at most the first 100,000 rows.
    """
    import pandas as pd

    path = first_data_file(data)
    frame = _read(path)
    if target not in frame.columns:
        raise SchemaInferenceError(
            f"--target {target!r} is not a column of {path.name}; columns: "
            + ", ".join(repr(str(c)) for c in frame.columns)
        )
    try:
        problem, why = infer_problem(
            frame[target], target, positive_class, problem, _is_bool_like(frame[target])
        )
    except ProblemInferenceError as error:
        raise SchemaInferenceError(str(error)) from error
    if problem == "binary":
        _check_target(frame[target], target, positive_class, path.name)
    features: list[dict[str, str]] = []
    ignored: dict[str, str] = {}
    for column in frame.columns:
        if column == target:
            continue
        values = frame[column]
        present = values.dropna()
        if present.empty:
            ignored[str(column)] = "no value in the rows read"
            continue
        if _is_bool_like(values):
            kind = "bool"
        elif pd.api.types.is_numeric_dtype(values):
            kind = "int" if bool((present == present.round()).all()) else "float"
        else:
            distinct = present.astype(str).str.strip().nunique()
            if distinct > MAX_INFERRED_CATEGORIES or distinct * 2 > present.size:
                ignored[str(column)] = (
                    f"text with {distinct} distinct values in {present.size} rows: an "
                    "identifier or free text, not a category (at most "
                    f"{MAX_INFERRED_CATEGORIES}, repeated)"
                )
                continue
            kind = "category"
        features.append({"name": str(column), "type": kind})
    if not features:
        raise SchemaInferenceError(
            f"--data {path.name}: no usable feature besides the target; ignored: "
            + "; ".join(f"{name} ({why})" for name, why in ignored.items())
        )
    schema: dict[str, Any] = {"target": target, "features": features, "max_missing_fraction": 0.05}
    if positive_class is not None:
        schema["positive_class"] = positive_class
    if problem != "binary":
        schema["problem_type"] = problem
    return schema, ignored, why


def describe(schema: dict[str, Any], ignored: dict[str, str], why: str | None = None) -> str:
    """One line for the run's notes: the target (and class 1), features and ignored columns."""
    positive = schema.get("positive_class")
    problem = schema.get("problem_type", "binary")
    line = f"target {schema['target']!r}" + (f" (class 1: {positive!r})" if positive else "")
    line += f", problem {problem}" + (f" ({why})" if why else "")
    line += ", features " + ", ".join(f"{f['name']} ({f['type']})" for f in schema["features"])
    if ignored:
        line += "; ignored: " + "; ".join(f"{name} ({why})" for name, why in ignored.items())
    return line


def _read(path: Path) -> Any:
    import pandas as pd

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
    return frame


def _label_text(value: Any) -> str:
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value).strip()


def _check_target(values: Any, target: str, positive_class: str | None, file: str) -> None:
    """A binary target: 0/1 or true/false, or two values with positive_class among them."""
    seen = sorted({_label_text(v) for v in values.dropna()})
    shown = seen[:SHOWN_VALUES] + (["..."] if len(seen) > SHOWN_VALUES else [])
    if positive_class is None:
        if not _is_bool_like(values):
            raise SchemaInferenceError(
                f"--target {target!r} is not 0/1 or true/false; {file} has values {shown}: "
                "give the value that counts as class 1 with POSITIVE=value (--positive-class; "
                "in cdk.json schema.positive_class)"
            )
        return
    if positive_class.strip() not in seen:
        raise SchemaInferenceError(
            f"POSITIVE={positive_class!r} is not a value of --target {target!r}; {file} has "
            f"values {shown}"
        )
    if len(seen) > 2:
        raise SchemaInferenceError(
            f"--target {target!r} has {len(seen)} values {shown}: a binary target has two "
            "(multi-class targets are not supported yet)"
        )


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
