"""Reading SageMaker data-capture files: the request rows captured in a time window, as CSV
lines in schema order, whatever encoding capture used (CSV, JSON, BASE64)."""

from __future__ import annotations

import base64
import binascii
import csv
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_code.monitoring.features import DriftCheckError, Feature


@dataclass
class CaptureScan:
    """What reading the capture files found; counts are records (requests) unless named rows."""

    files: int = 0
    records: int = 0
    records_in_window: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    lines: list[str] = field(default_factory=list)  # one CSV line per captured row


def parse_time(value: str) -> datetime:
    """ISO-8601 timestamp as an aware UTC datetime; a value without offset is taken as UTC."""
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def capture_files(capture_dir: Path) -> list[Path]:
    """Data-capture files (*.jsonl) at any depth below `capture_dir`, in path order."""
    if not capture_dir.is_dir():
        return []
    return sorted(path for path in capture_dir.rglob("*.jsonl") if path.is_file())


def read_capture(
    capture_dir: Path, features: Sequence[Feature], start: datetime, end: datetime
) -> CaptureScan:
    """Collect the request rows captured in [start, end) as CSV lines.

    Records that are not JSON, have no endpointInput (output-only capture) or no readable
    inferenceTime are skipped and counted. A row with a column count other than the number of
    features, or a payload outside the serving contract (CSV, or JSON arrays of numbers),
    raises DriftCheckError naming the file, line and eventId.
    """
    scan = CaptureScan()
    width = len(features)
    # Category values may hold commas inside CSV quotes; numbers never do.
    quoted = any(f.type == "category" for f in features)
    for path in capture_files(capture_dir):
        scan.files += 1
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                scan.records += 1
                try:
                    record = json.loads(line)
                    endpoint_input = record["captureData"]["endpointInput"]
                    inference_time = parse_time(record["eventMetadata"]["inferenceTime"])
                except json.JSONDecodeError:
                    scan.skipped["not_json"] += 1
                    continue
                except (KeyError, TypeError):
                    scan.skipped["no_endpoint_input_or_inference_time"] += 1
                    continue
                except ValueError:
                    scan.skipped["unreadable_inference_time"] += 1
                    continue
                if not start <= inference_time < end:
                    continue
                scan.records_in_window += 1
                where = f"{path} line {number} (eventId {_event_id(record)})"
                for row in _payload_rows(endpoint_input, where):
                    columns = _width(row, quoted)
                    if columns != width:
                        raise DriftCheckError(
                            f"schema mismatch: a captured row has {columns} columns but the "
                            f"schema has {width} features ({', '.join(f.name for f in features)})"
                            f"; first seen in {where}"
                        )
                    scan.lines.append(row)
    return scan


def _width(row: str, quoted: bool) -> int:
    """The fields of a CSV line: commas outside quotes when `quoted`, every comma otherwise."""
    if not quoted or '"' not in row:
        return row.count(",") + 1
    return len(next(csv.reader([row]), []))


def _event_id(record: dict[str, Any]) -> str:
    metadata = record.get("eventMetadata")
    return str(metadata.get("eventId", "?")) if isinstance(metadata, dict) else "?"


def _payload_rows(endpoint_input: dict[str, Any], where: str) -> Iterator[str]:
    """The request's rows as CSV lines, whatever encoding data capture used."""
    encoding = str(endpoint_input.get("encoding", "")).upper()
    content_type = str(endpoint_input.get("observedContentType", "")).lower()
    data = endpoint_input.get("data")
    if not isinstance(data, str):
        raise DriftCheckError(f"captured request without a data string in {where}")
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise DriftCheckError(f"undecodable BASE64 request in {where}: {error}") from None
        encoding = "JSON" if "json" in content_type else "CSV" if "csv" in content_type else ""
    if encoding == "CSV":
        for row in data.splitlines():
            if row.strip():
                yield row.strip()
    elif encoding == "JSON":
        yield from _json_rows(data, where)
    else:
        raise DriftCheckError(
            f"captured request with encoding {endpoint_input.get('encoding')!r} and content type "
            f"{content_type!r} in {where}: the serving contract is text/csv (or JSON arrays)"
        )


def _json_rows(data: str, where: str) -> Iterator[str]:
    """Rows of a JSON request: [..], [[..], ..], {"instances": [..]} or instances of
    {"features": [..]}."""
    try:
        payload = json.loads(data)
    except json.JSONDecodeError as error:
        raise DriftCheckError(f"invalid JSON request in {where}: {error}") from None
    if isinstance(payload, dict) and "instances" in payload:
        payload = payload["instances"]
    if isinstance(payload, list) and payload and not isinstance(payload[0], list | dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise DriftCheckError(f"unsupported JSON request shape in {where}")
    for instance in payload:
        values = instance.get("features") if isinstance(instance, dict) else instance
        if not isinstance(values, list) or any(isinstance(v, list | dict) for v in values):
            raise DriftCheckError(f"unsupported JSON request shape in {where}")
        yield ",".join("" if v is None else str(v) for v in values)
