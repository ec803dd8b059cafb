"""Writing what the drift job reads, as SageMaker and Prepare lay it out, and running the job on
it: data-capture files, the baseline folder, the job's arguments."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline_code.monitoring import drift_check
from pipeline_code.monitoring.features import STATISTICS_FILE
from pipeline_code.sample_data import FEATURES, sample_schema

NAMES = [name for name, _ in FEATURES]
SCHEMA = json.dumps(sample_schema())
WINDOW_START = datetime(2025, 3, 1, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(hours=24)


def csv_row(values: Sequence[Any]) -> str:
    return ",".join("" if isinstance(v, float) and math.isnan(v) else str(v) for v in values)


def record(data: str, at: datetime, event_id: str, encoding: str = "CSV") -> dict[str, Any]:
    """One data-capture line as SageMaker writes it (input and output captured)."""
    content_type = "application/json" if encoding == "JSON" else "text/csv"
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": content_type,
                "mode": "INPUT",
                "data": data,
                "encoding": encoding,
            },
            "endpointOutput": {
                "observedContentType": "text/csv; charset=utf-8",
                "mode": "OUTPUT",
                "data": "0.0254",
                "encoding": "CSV",
            },
        },
        "eventMetadata": {
            "eventId": event_id,
            "inferenceTime": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        },
        "eventVersion": "0",
    }


def write_capture(
    capture_dir: Path,
    frame: pd.DataFrame,
    start: datetime = WINDOW_START,
    span: timedelta = timedelta(hours=23),
    encoding: str = "CSV",
    rows_per_request: int = 1,
    prefix: str = "e",
) -> int:
    """Write `frame` as captured requests spread evenly over [start, start + span), one file per
    hour in SageMaker's layout <endpoint>/<variant>/YYYY/MM/DD/HH/. Returns the request count."""
    rows = [csv_row(values) for values in frame.itertuples(index=False)]
    requests = [rows[i : i + rows_per_request] for i in range(0, len(rows), rows_per_request)]
    step = span / max(len(requests), 1)
    files: dict[Path, list[str]] = {}
    for index, request_rows in enumerate(requests):
        at = start + index * step
        if encoding == "BASE64":
            data = base64.b64encode("\n".join(request_rows).encode()).decode()
        elif encoding == "JSON":
            instances = [[float(v) if v else None for v in r.split(",")] for r in request_rows]
            data = json.dumps({"instances": instances})
        else:
            data = "\n".join(request_rows) + "\n"
        folder = capture_dir / "fraud-endpoint" / "AllTraffic" / at.strftime("%Y/%m/%d/%H")
        line = json.dumps(record(data, at, f"{prefix}{index}", encoding))
        files.setdefault(folder / f"{prefix}-capture.jsonl", []).append(line)
    for path, lines in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write("\n".join(lines) + "\n")
    return len(requests)


def write_statistics(baseline_dir: Path, features: Sequence[tuple[str, str]]) -> None:
    """statistics.json as Prepare writes it (the parts the job reads: each feature's type);
    tests/monitoring/test_wide_schema.py runs the real Prepare."""
    described = {name: {"type": kind} for name, kind in features}
    payload = {"source": "test split", "features": described}
    (baseline_dir / STATISTICS_FILE).write_text(json.dumps(payload))


def argv(job: Path, *extra: str, publish: bool = False) -> list[str]:
    return [
        "--capture-dir",
        str(job / "capture"),
        "--baseline-dir",
        str(job / "baseline"),
        "--output-dir",
        str(job / "output"),
        "--exit-message-file",
        str(job / "message"),
        "--window-start",
        WINDOW_START.isoformat(),
        "--window-end",
        WINDOW_END.isoformat(),
        *([] if publish else ["--no-publish"]),
        *extra,
    ]


def run(job: Path, *extra: str, cloudwatch: Any = None) -> dict[str, Any]:
    args = drift_check.build_parser().parse_args(argv(job, *extra, publish=cloudwatch is not None))
    return drift_check.run(args, cloudwatch=cloudwatch)


def flagged(summary: dict[str, Any]) -> set[str]:
    return {f["name"] for f in summary["features"] if f["drifted"]}


def fails_with(job: Path, *extra: str) -> str:
    """Run main(), expect exit code 1 and return the exit message (also checked on stderr)."""
    assert drift_check.main(argv(job, *extra)) == 1
    message = (job / "message").read_text()
    assert message.startswith("drift check failed: ")
    assert not (job / "output" / drift_check.SUMMARY_JSON).exists()
    return message
