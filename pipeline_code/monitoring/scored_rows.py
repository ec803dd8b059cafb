"""Batch serving's drift input: the rows a scoring run scored, read like captured traffic.

The scoring pipeline's Check step writes each scored version as header-less CSV, the row id
first and then the features in schema order (pipeline_code/steps/score/score.py); the transform
job scores exactly those rows. `read_scored_rows` turns them into the feature lines the drift
check compares with the served model's baseline (`drift_check --scored-rows-dir`): the whole
version, no time window.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pipeline_code.monitoring.capture import CaptureScan
from pipeline_code.monitoring.features import DriftCheckError


def read_scored_rows(rows_dir: Path, feature_count: int) -> CaptureScan:
    """Every row under `rows_dir` as a CSV line of its features (the id dropped); a row with
    another number of columns fails, naming the file and the row."""
    if not rows_dir.is_dir():
        raise DriftCheckError(f"--scored-rows-dir {rows_dir} is not a folder")
    files = sorted(p for p in rows_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    scan = CaptureScan(files=len(files))
    lines: list[str] = []
    for path in files:
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                scan.records += 1
                if len(row) != feature_count + 1:
                    raise DriftCheckError(
                        f"{path.name} row {number} has {len(row)} columns; a scored row has the "
                        f"id and {feature_count} features"
                    )
                lines.append(",".join(row[1:]))
    scan.records_in_window = scan.records
    scan.lines = lines
    return scan
