"""Scoring input: check a scoring version against the schema and write it as the transform job
reads it (batch serving, `serving.mode = batch`).

A producer lands CSV files with a header (optionally `.csv.gz`) or Parquet under
`score/<dataset>/<version>/`: the row id column (`serving.batch.id_column`) and every feature of
the schema, in any order, other columns ignored. A transform job cannot skip a header or pick
columns by name, so this step writes each file as header-less CSV with the id first and the
features in schema order (booleans as 0/1, a category as its canonical text as Prepare
writes it, `common.categories`; missing values empty) under `rows/`, and `report/scoring.json`
with the rows, the files and where the predictions go:
`<bucket>/predictions/<dataset>/<version>/<model version>/<run id>/` (the version of
ModelPackageArn; the run id is the pipeline execution's id, so no two runs ever share a prefix
and a `_SUCCESS` can only vouch for the outputs of its own run).

Bad data fails the run here, before any model runs, with one reason naming the file and the
column (SageMaker shows it as the job's ExitMessage, the pipeline as its FailureReason): a
version without data files or rows, a missing id or feature column, a feature that is not a
number (or 0/1, true/false for a bool), an infinite number, a missing or repeated row id, a
row id or a category value with a comma, a double quote or a line break (the transform job
splits fields by comma; the served model's inference script maps the category text with the
encoding fitted on the training split, an unseen value as missing), a missing value of a
schema's only feature (its record would be empty: no prediction, every later one misjoined).

    python3 score.py --input-dir DIR --output-dir DIR --schema schema.json --id-column id \
        --input-data-uri s3://b/score/d/v/ --model-package-arn arn:...:model-package/g/7 \
        --run-id 0a1b2c3d4e5f
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from common.categories import canonical_array
from common.columns import Source, finite_feature, read_csv_table
from common.failure import PROCESSING_FAILURE_FILE
from common.runner import configure_logging, run_step

STEP = "Score input"
ROWS_OUTPUT = "rows"
REPORT_OUTPUT = "report"
SCORING_FILE = "scoring.json"
SCORE_PREFIX = "score/"
PREDICTIONS_PREFIX = "predictions/"
_PACKAGE_VERSION = re.compile(r":model-package/[^/]+/(\d+)$")
_TRUE, _FALSE = ("1", "true", "True", "TRUE"), ("0", "false", "False", "FALSE")
# The completion rules' markers (a version closed by a manifest carries manifest.json).
MARKER_FILES = frozenset({"_SUCCESS", "manifest.json"})
# A row id travels through the transform job as the first CSV field of a line (SplitType Line,
# InputFilter $[1:], JoinSource Input): AWS documents no CSV quoting there, so an id must not
# need any.
_UNSAFE_ID = re.compile(r'[,"\r\n]')
# A pipeline execution id (or a local run id): one S3 key segment.
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

log = logging.getLogger("score")


class ScoringDataError(ValueError):
    """The scoring version cannot be scored; the message says which file and column."""


def predictions_uri(input_data_uri: str, model_package_arn: str, run_id: str) -> tuple[str, str]:
    """(`s3://<bucket>/predictions/<dataset>/<version>/<model version>/<run id>/`, model version)
    of a scoring version `s3://<bucket>/score/<dataset>/<version>/` scored by `model_package_arn`
    in the run `run_id` (the pipeline execution's id)."""
    if not _RUN_ID.match(run_id):
        raise ScoringDataError(
            f"--run-id {run_id!r} is not a run id (letters, digits, '.', '_' or '-', no '/')"
        )
    match = _PACKAGE_VERSION.search(model_package_arn)
    if not match:
        raise ScoringDataError(
            f"ModelPackageArn {model_package_arn!r} is not a model package version: nothing is "
            "served yet (approve a package first)"
        )
    bucket, _, key = input_data_uri.removeprefix("s3://").partition("/")
    if not input_data_uri.startswith("s3://") or not key.startswith(SCORE_PREFIX):
        raise ScoringDataError(f"InputDataUri {input_data_uri!r} is not under s3://<bucket>/score/")
    version_path = key.removeprefix(SCORE_PREFIX).rstrip("/")
    if version_path.count("/") != 1:
        raise ScoringDataError(f"InputDataUri {input_data_uri!r} is not score/<dataset>/<version>/")
    model_version = match.group(1)
    return (
        f"s3://{bucket}/{PREDICTIONS_PREFIX}{version_path}/{model_version}/{run_id}/",
        model_version,
    )


def data_files(input_dir: Path) -> list[Path]:
    """The version's data files: the completion markers (`_SUCCESS`, `manifest.json`) and
    objects whose name starts with `_` or `.` are metadata, as for Prepare."""
    files = sorted(
        path
        for path in input_dir.rglob("*")
        if path.is_file() and path.name not in MARKER_FILES and not path.name.startswith(("_", "."))
    )
    if not files:
        raise ScoringDataError("the scoring version has no data files (an empty version)")
    return files


def read_table(path: Path) -> pa.Table:
    source = Source(what="scoring data", error=ScoringDataError)
    if path.suffix == ".parquet":
        try:
            return pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as error:
            raise ScoringDataError(f"scoring data: cannot read {path.name}: {error}") from error
    return read_csv_table(path, source)


def _bool_column(table: pa.Table, column: str, source: Source) -> np.ndarray:
    values = table.column(column)
    if pa.types.is_boolean(values.type):
        return values.cast(pa.float32()).to_numpy(zero_copy_only=False)
    text = pc.cast(values, pa.string())
    allowed = pc.or_kleene(pc.is_in(text, pa.array(_TRUE + _FALSE)), pc.is_null(text))
    refused = pc.filter(text, pc.invert(allowed))
    if len(refused):
        bad = refused[0].as_py()
        raise ScoringDataError(
            f"scoring data: column {column!r}{source.in_file} is a bool feature and must hold "
            f"0/1 or true/false, e.g. not {bad!r}"
        )
    ones = pc.is_in(text, pa.array(_TRUE))
    return np.where(
        pc.is_null(text).to_numpy(zero_copy_only=False), np.nan, ones.to_numpy(zero_copy_only=False)
    ).astype(np.float32)


def score_input(
    table: pa.Table, file: str, features: list[tuple[str, str]], id_column: str
) -> tuple[list[Any], list[np.ndarray]]:
    """The id column and the features (schema order) of one file, checked."""
    source = Source(what="scoring data", error=ScoringDataError, file=file)
    missing = [
        c for c in (id_column, *(name for name, _ in features)) if c not in table.column_names
    ]
    if missing:
        raise ScoringDataError(
            f"scoring data: {file} has no column(s) {missing} (it needs the id column "
            f"{id_column!r} and every feature of the schema)"
        )
    ids = table.column(id_column).cast(pa.string()).to_pylist()
    if any(value is None or value == "" for value in ids):
        raise ScoringDataError(f"scoring data: {file} has rows without a {id_column!r}")
    unsafe = next((value for value in ids if _UNSAFE_ID.search(value)), None)
    if unsafe is not None:
        raise ScoringDataError(
            f"scoring data: {file} has the row id {unsafe!r} in {id_column!r}: ids must not hold "
            "a comma, a double quote or a line break (the transform job splits rows by line and "
            "fields by comma)"
        )
    columns = [
        _category_column(table, name, file)
        if kind == "category"
        else _bool_column(table, name, source)
        if kind == "bool"
        else finite_feature(table, name, source)
        for name, kind in features
    ]
    if len(columns) == 1:
        # One feature, missing: the transform job's record ($[1:] of `id,`) would be an empty
        # line, which the served model's CSV reader skips (no answer, so every later
        # prediction would join the wrong id): refused rather than misjoined.
        missing_at = pa.array(columns[0], from_pandas=True).is_null().to_numpy(False)
        if missing_at.any():
            raise ScoringDataError(
                f"scoring data: {file} row id {ids[int(np.argmax(missing_at))]!r} has no "
                f"{features[0][0]!r}, the schema's only feature: its record would be empty and "
                "get no prediction (fill the value, or leave the row out)"
            )
    return ids, columns


def _category_column(table: pa.Table, column: str, file: str) -> np.ndarray:
    """Canonical category text (None: missing), refused where the transform job's comma split
    would cut it."""
    values = canonical_array(table.column(column))
    unsafe = next((v for v in values if v is not None and _UNSAFE_ID.search(v)), None)
    if unsafe is not None:
        raise ScoringDataError(
            f"scoring data: {file} has the category value {unsafe!r} in {column!r}: batch "
            "serving's category values must not hold a comma, a double quote or a line break "
            "(the transform job splits rows by line and fields by comma)"
        )
    return values


def write_rows(path: Path, ids: list[Any], columns: list[np.ndarray]) -> None:
    """Header-less CSV: the id, then the features (empty where missing)."""
    arrays = [pa.array(ids, pa.string())] + [pa.array(c, from_pandas=True) for c in columns]
    names = ["id", *(f"f{i}" for i in range(len(columns)))]
    # "needed" quotes every text value (the id, a category) and leaves numbers and missing
    # values (empty) bare: `"r1","Biscoe",3.5,`. No text holds a comma, a quote or a line break
    # (refused above), so the transform job's comma split keeps each field whole, and the
    # served model reads its record with csv.reader, which takes the quotes off.
    pa_csv.write_csv(
        pa.table(arrays, names=names),
        path,
        write_options=pa_csv.WriteOptions(include_header=False, quoting_style="needed"),
    )


def prepare_scoring(
    input_dir: Path,
    output_dir: Path,
    schema: dict[str, Any],
    id_column: str,
    input_data_uri: str,
    model_package_arn: str,
    run_id: str,
) -> dict[str, Any]:
    """Check every file and write it for the transform job; return (and write) scoring.json."""
    output_uri, model_version = predictions_uri(input_data_uri, model_package_arn, run_id)
    features = [(f["name"], f["type"]) for f in schema["features"]]
    rows_dir = output_dir / ROWS_OUTPUT
    rows_dir.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    files, total = [], 0
    for index, path in enumerate(data_files(input_dir)):
        name = str(path.relative_to(input_dir))
        ids, columns = score_input(read_table(path), name, features, id_column)
        for row_id in ids:
            if row_id in seen:
                raise ScoringDataError(
                    f"scoring data: row id {row_id!r} of {name} appears more than once in the "
                    f"version: {id_column!r} must identify each row"
                )
            seen.add(row_id)
        if ids:
            write_rows(rows_dir / f"part-{index:05d}.csv", ids, columns)
        files.append({"file": name, "rows": len(ids)})
        total += len(ids)
    if total == 0:
        raise ScoringDataError("the scoring version has no rows (its files hold a header only)")
    summary = {
        "rows": total,
        "files": files,
        "id_column": id_column,
        "features": [name for name, _ in features],
        "model_package_arn": model_package_arn,
        "model_version": model_version,
        "run_id": run_id,
        "output_uri": output_uri,
    }
    report = output_dir / REPORT_OUTPUT / SCORING_FILE
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input/data"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument(
        "--schema",
        default="/opt/ml/processing/input/schema/schema.json",
        help="the schema JSON itself, or the path of a file holding it",
    )
    parser.add_argument("--id-column", required=True)
    parser.add_argument("--input-data-uri", required=True)
    parser.add_argument("--model-package-arn", required=True)
    parser.add_argument(
        "--run-id", required=True, help="the pipeline execution's id: the output prefix's last part"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    configure_logging(log)
    args = parse_args(argv)

    def work() -> None:
        text = args.schema
        if not text.lstrip().startswith("{"):
            text = Path(text).read_text(encoding="utf-8")
        schema = json.loads(text)
        summary = prepare_scoring(
            args.input_dir,
            args.output_dir,
            schema,
            args.id_column,
            args.input_data_uri,
            args.model_package_arn,
            args.run_id,
        )
        log.info("%d rows to score into %s", summary["rows"], summary["output_uri"])

    return run_step(
        STEP,
        log,
        work,
        failure_file=PROCESSING_FAILURE_FILE,
        expected=(ScoringDataError, OSError, json.JSONDecodeError),
    )


if __name__ == "__main__":
    sys.exit(main())
