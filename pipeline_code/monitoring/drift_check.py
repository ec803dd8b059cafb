"""Scheduled drift check: captured endpoint traffic vs the training baseline, with Evidently.

One self-contained job script (it runs alone in the drift image, see the Dockerfile beside it):

1. reads SageMaker data-capture files (JSON Lines, any depth below --capture-dir) and keeps the
   request rows whose `eventMetadata.inferenceTime` falls in [--window-start, --window-end);
2. reads the reference sample `baseline.csv` (features with a header) from --baseline-dir;
3. runs Evidently's `DataDriftPreset` (current API: `Report`, `Dataset`, `DataDefinition`), one
   drift test per feature;
4. writes drift_report.html, drift_report.json (Evidently snapshot) and drift_summary.json to
   --output-dir and publishes CloudWatch metrics (unless --no-publish).

Drift methods are Evidently's defaults unless overridden with --stattest / --num-stattest /
--cat-stattest. Evidently picks them from the reference size and the number of distinct values:

    reference <= 1000 rows: numeric with > 5 values -> Kolmogorov-Smirnov (p-value < 0.05);
        numeric with 3-5 values or categorical with > 2 values -> chi-square (p < 0.05);
        two values -> Z-test for proportions (p < 0.05)
    reference  > 1000 rows: numeric with > 5 values -> normalised Wasserstein distance (>= 0.1);
        otherwise -> Jensen-Shannon distance (>= 0.1)

Schema types map to Evidently column types: float and int -> numerical, bool -> categorical.
The dataset counts as drifted when the share of drifted features is >= --drift-share-threshold.

Failures (too few captured rows in the window, a row whose column count differs from the schema,
a payload the serving contract does not allow, a baseline without the schema's features) exit
with code 1 and write the reason to stderr and to SageMaker's exit-message file
(/opt/ml/output/message, shown as ExitMessage by DescribeProcessingJob).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import io
import json
import math
import os
import sys
import traceback
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from evidently.core.report import Snapshot

# numpy, pandas and Evidently are imported where they are used: the CDK app imports this module
# for the metric names (one source of truth) and must not pay for them at synth.

DEFAULT_CAPTURE_DIR = Path("/opt/ml/processing/input/capture")
DEFAULT_BASELINE_DIR = Path("/opt/ml/processing/input/baseline")
DEFAULT_OUTPUT_DIR = Path("/opt/ml/processing/output")
DEFAULT_EXIT_MESSAGE_FILE = Path("/opt/ml/output/message")
BASELINE_FILE = "baseline.csv"
REPORT_HTML = "drift_report.html"
REPORT_JSON = "drift_report.json"
SUMMARY_JSON = "drift_summary.json"

DEFAULT_NAMESPACE = "MLOps/Drift"
DEFAULT_DRIFT_SHARE_THRESHOLD = 0.3
DEFAULT_MIN_ROWS = 100
DEFAULT_MAX_ROWS = 500_000
DEFAULT_WINDOW_HOURS = 24

# CloudWatch contract (the Monitoring stack's alarms and dashboard use these names).
METRIC_DRIFTED_FEATURE_SHARE = "DriftedFeatureShare"
METRIC_DRIFTED_FEATURE_COUNT = "DriftedFeatureCount"
METRIC_ROWS_ANALYSED = "RowsAnalysed"
METRIC_FEATURE_DRIFT_SCORE = "FeatureDriftScore"
METRIC_FEATURE_DRIFTED = "FeatureDrifted"
DIMENSION_ENDPOINT = "EndpointName"
DIMENSION_MODEL_VERSION = "ModelVersion"
DIMENSION_FEATURE = "Feature"
# put_metric_data takes at most 1000 data points (and 1 MB) per call.
_METRICS_PER_CALL = 500

FEATURE_TYPES = ("float", "int", "bool")
_BOOL_WORDS = {"true": "1", "false": "0"}
_EXIT_MESSAGE_LIMIT = 1024  # bytes DescribeProcessingJob keeps


class DriftCheckError(Exception):
    """A reason to stop the job with a clear message (exit code 1)."""


@dataclass(frozen=True)
class Feature:
    name: str
    type: str


@dataclass
class CaptureScan:
    """What reading the capture files found; counts are records (requests) unless named rows."""

    files: int = 0
    records: int = 0
    records_in_window: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    lines: list[str] = field(default_factory=list)  # one CSV line per captured row


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    method: str
    threshold: float
    score: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    drifted_count: int
    drifted_share: float
    features: tuple[FeatureDrift, ...]


# --------------------------------------------------------------------------------------------
# Inputs


def parse_schema(text: str) -> list[Feature]:
    """Features of the pipeline contract's schema JSON, in order; target and limits are unused."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        raise DriftCheckError(f"--schema is not valid JSON: {error}") from None
    features = schema.get("features") if isinstance(schema, dict) else None
    if not isinstance(features, list) or not features:
        raise DriftCheckError('--schema needs a non-empty "features" list')
    return _validated([(item.get("name"), item.get("type")) for item in features])


def parse_feature_args(values: Sequence[str]) -> list[Feature]:
    """Features from repeated `--feature NAME:TYPE` arguments (for callers limited to
    256-character arguments, such as SageMaker's ContainerArguments)."""
    pairs = []
    for value in values:
        name, sep, kind = value.rpartition(":")
        if not sep:
            raise DriftCheckError(f"--feature {value!r}: expected NAME:TYPE, e.g. amount:float")
        pairs.append((name, kind))
    return _validated(pairs)


def _validated(pairs: Iterable[tuple[Any, Any]]) -> list[Feature]:
    features = []
    for name, kind in pairs:
        if not isinstance(name, str) or not name:
            raise DriftCheckError(f"schema feature name {name!r} is not a non-empty string")
        if kind not in FEATURE_TYPES:
            raise DriftCheckError(
                f"schema feature {name!r} has type {kind!r}; allowed: {', '.join(FEATURE_TYPES)}"
            )
        features.append(Feature(name, kind))
    duplicates = sorted(n for n, c in Counter(f.name for f in features).items() if c > 1)
    if duplicates:
        raise DriftCheckError(f"schema lists features more than once: {duplicates}")
    return features


def parse_time(value: str) -> datetime:
    """ISO-8601 timestamp as an aware UTC datetime; a value without offset is taken as UTC."""
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
                    columns = row.count(",") + 1
                    if columns != width:
                        raise DriftCheckError(
                            f"schema mismatch: a captured row has {columns} columns but the "
                            f"schema has {width} features ({', '.join(f.name for f in features)})"
                            f"; first seen in {where}"
                        )
                    scan.lines.append(row)
    return scan


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


def frame_from_lines(
    lines: Sequence[str], features: Sequence[Feature]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Parse CSV lines (no header, schema order) into a numeric frame; also return, per
    feature, how many non-blank values were not numbers (they become NaN)."""
    import pandas as pd

    raw = pd.read_csv(
        io.StringIO("\n".join(lines)),
        header=None,
        names=[f.name for f in features],
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        skipinitialspace=True,
    )
    return to_numeric(raw, features)


def to_numeric(
    raw: pd.DataFrame, features: Sequence[Feature]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Numeric columns (bools as 0/1, true/false accepted) and the per-feature count of
    non-blank values that did not parse; blanks are missing values, not invalid ones."""
    import pandas as pd

    frame = pd.DataFrame(index=raw.index)
    invalid = {}
    for feature in features:
        column = raw[feature.name].astype("string").str.strip()
        if feature.type == "bool":
            column = column.str.lower().replace(_BOOL_WORDS)
        values = pd.to_numeric(column, errors="coerce").astype("float64")
        invalid[feature.name] = int((values.isna() & (column != "")).sum())
        frame[feature.name] = values
    return frame, invalid


def load_baseline(baseline_dir: Path, features: Sequence[Feature]) -> pd.DataFrame:
    """The reference sample (baseline.csv: header, features in any order, extra columns ignored)."""
    import pandas as pd

    path = baseline_dir / BASELINE_FILE
    if not path.is_file():
        raise DriftCheckError(f"no baseline: {path} does not exist")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [f.name for f in features if f.name not in raw.columns]
    if missing:
        raise DriftCheckError(
            f"schema mismatch: {path} lacks the schema features {missing} "
            f"(it has {list(raw.columns)})"
        )
    if raw.empty:
        raise DriftCheckError(f"no baseline: {path} has a header but no rows")
    return to_numeric(raw, features)[0]


# --------------------------------------------------------------------------------------------
# Drift


def _import_evidently() -> Any:
    """Import Evidently (about 4 s, so only when needed) and return the module."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's usage telemetry
    import pandas.core.dtypes.common as pandas_common

    if not hasattr(pandas_common, "infer_dtype_from_object"):
        # Evidently 0.7.23 imports this pandas-2 helper at module level for one legacy test
        # (TestColumnsType) that this job never runs; pandas 3 removed it, which breaks the
        # import of the whole package.
        def _removed_in_pandas_3(dtype: Any) -> Any:
            raise NotImplementedError("infer_dtype_from_object was removed in pandas 3")

        pandas_common.infer_dtype_from_object = _removed_in_pandas_3  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        # Deprecation notices from Evidently's dependencies (plotly, litestar) at import.
        warnings.simplefilter("ignore", DeprecationWarning)
        import evidently

    return evidently


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[Feature],
    drift_share: float,
    stattest: str | None = None,
    num_stattest: str | None = None,
    cat_stattest: str | None = None,
    stattest_threshold: float | None = None,
) -> tuple[Snapshot, DriftResult]:
    """Run Evidently's DataDriftPreset and read each feature's method, score and verdict."""
    evidently = _import_evidently()
    from evidently.presets import DataDriftPreset

    definition = evidently.DataDefinition(
        numerical_columns=[f.name for f in features if f.type in ("float", "int")],
        categorical_columns=[f.name for f in features if f.type == "bool"],
    )
    preset = DataDriftPreset(
        drift_share=drift_share,
        method=stattest,
        num_method=num_stattest,
        cat_method=cat_stattest,
        threshold=stattest_threshold,
    )
    try:
        with warnings.catch_warnings():
            # Evidently 0.7.23 uses pandas APIs that pandas 3.1 deprecates (dropna inplace=...).
            warnings.simplefilter("ignore", DeprecationWarning)
            snapshot = evidently.Report([preset], include_tests=True).run(
                current_data=evidently.Dataset.from_pandas(current, data_definition=definition),
                reference_data=evidently.Dataset.from_pandas(reference, data_definition=definition),
            )
    except (ValueError, KeyError) as error:
        raise DriftCheckError(f"Evidently could not run the drift tests: {error}") from error
    return snapshot, _read_result(snapshot, features)


def _read_result(snapshot: Snapshot, features: Sequence[Feature]) -> DriftResult:
    by_column: dict[str, FeatureDrift] = {}
    count = share = None
    for result in snapshot.metric_results.values():
        params = result.metric_value_location.metric.params
        kind = params.get("type", "")
        if kind.endswith(":DriftedColumnsCount"):
            count, share = int(result.count.value), float(result.share.value)
        elif kind.endswith(":ValueDrift"):
            # Evidently attaches one test per column: FAIL means drift was detected.
            statuses = {str(test.status.value) for test in result.tests}
            by_column[params["column"]] = FeatureDrift(
                name=params["column"],
                method=str(params["method"]),
                threshold=float(params["threshold"]),
                score=float(result.value),
                drifted="FAIL" in statuses,
            )
    absent = [f.name for f in features if f.name not in by_column]
    if count is None or share is None or absent:
        raise DriftCheckError(f"Evidently returned no drift result for {absent or 'the dataset'}")
    return DriftResult(count, share, tuple(by_column[f.name] for f in features))


# --------------------------------------------------------------------------------------------
# Outputs


def metric_data(
    result: DriftResult,
    rows: int,
    endpoint_name: str,
    model_version: str | None,
    timestamp: datetime,
) -> list[dict[str, Any]]:
    """CloudWatch data points. Each metric goes out twice: with EndpointName only (stable, for
    alarms: a new model version must not leave an alarm watching a dead series) and with
    EndpointName + ModelVersion (for dashboards comparing versions)."""
    scopes = [[{"Name": DIMENSION_ENDPOINT, "Value": endpoint_name}]]
    if model_version:
        scopes.append(scopes[0] + [{"Name": DIMENSION_MODEL_VERSION, "Value": model_version}])

    def datum(name: str, value: float, unit: str, dims: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "MetricName": name,
            "Dimensions": dims,
            "Timestamp": timestamp,
            "Value": value,
            "Unit": unit,
        }

    data = []
    for dims in scopes:
        data.append(datum(METRIC_DRIFTED_FEATURE_SHARE, result.drifted_share, "None", dims))
        data.append(datum(METRIC_DRIFTED_FEATURE_COUNT, result.drifted_count, "Count", dims))
        data.append(datum(METRIC_ROWS_ANALYSED, rows, "Count", dims))
        for feature in result.features:
            feature_dims = dims + [{"Name": DIMENSION_FEATURE, "Value": feature.name}]
            if math.isfinite(feature.score):
                data.append(datum(METRIC_FEATURE_DRIFT_SCORE, feature.score, "None", feature_dims))
            data.append(datum(METRIC_FEATURE_DRIFTED, int(feature.drifted), "None", feature_dims))
    return data


def publish_metrics(cloudwatch: Any, namespace: str, data: Sequence[dict[str, Any]]) -> int:
    """put_metric_data in batches; returns the number of data points sent."""
    for start in range(0, len(data), _METRICS_PER_CALL):
        cloudwatch.put_metric_data(
            Namespace=namespace, MetricData=list(data[start : start + _METRICS_PER_CALL])
        )
    return len(data)


def write_exit_message(path: Path | None, message: str) -> None:
    """Best effort: SageMaker keeps the first 1 KB as the job's ExitMessage."""
    if path is None or not path.parent.is_dir():
        return
    encoded = message.encode("utf-8")[:_EXIT_MESSAGE_LIMIT]
    path.write_text(encoded.decode("utf-8", errors="ignore"), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Job


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    paths = parser.add_argument_group("paths (SageMaker container defaults)")
    paths.add_argument("--capture-dir", type=Path, default=DEFAULT_CAPTURE_DIR)
    paths.add_argument("--baseline-dir", type=Path, default=DEFAULT_BASELINE_DIR)
    paths.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    paths.add_argument(
        "--exit-message-file",
        type=Path,
        default=DEFAULT_EXIT_MESSAGE_FILE,
        help="where SageMaker reads the job's ExitMessage; skipped if its folder is missing",
    )
    schema = parser.add_mutually_exclusive_group(required=True)
    schema.add_argument("--schema", help="the pipeline contract's schema as a JSON string")
    schema.add_argument(
        "--feature",
        action="append",
        metavar="NAME:TYPE",
        help="one feature (repeat, in schema order); TYPE is float, int or bool",
    )
    window = parser.add_argument_group("window (default: the 24 hours before now)")
    window.add_argument("--window-start", type=parse_time, help="ISO-8601, inclusive")
    window.add_argument("--window-end", type=parse_time, help="ISO-8601, exclusive (now)")
    drift = parser.add_argument_group("drift tests")
    drift.add_argument(
        "--drift-share-threshold",
        type=float,
        default=DEFAULT_DRIFT_SHARE_THRESHOLD,
        help="dataset drift when this share of features or more drifted (0.3)",
    )
    drift.add_argument("--stattest", help="one Evidently method for all features (auto)")
    drift.add_argument("--num-stattest", help="method for float/int features, e.g. ks, psi")
    drift.add_argument("--cat-stattest", help="method for bool features, e.g. chisquare")
    drift.add_argument("--stattest-threshold", type=float, help="threshold for all methods")
    drift.add_argument(
        "--min-rows",
        type=int,
        default=DEFAULT_MIN_ROWS,
        help="fail below this many captured rows in the window (100)",
    )
    drift.add_argument(
        "--max-rows",
        type=int,
        default=DEFAULT_MAX_ROWS,
        help="analyse a uniform random sample of at most this many rows (500000)",
    )
    drift.add_argument("--seed", type=int, default=42, help="seed of that sample (42)")
    metrics = parser.add_argument_group("CloudWatch")
    metrics.add_argument("--endpoint-name", help="EndpointName dimension (required to publish)")
    metrics.add_argument("--model-version", help="ModelVersion dimension (model package version)")
    metrics.add_argument("--model-package-arn", help="recorded in drift_summary.json")
    metrics.add_argument("--metrics-namespace", default=DEFAULT_NAMESPACE, help="(MLOps/Drift)")
    metrics.add_argument("--no-publish", action="store_true", help="local run: no CloudWatch")
    return parser


def run(args: argparse.Namespace, cloudwatch: Any = None) -> dict[str, Any]:
    """Run the check and return the summary; raises DriftCheckError on bad input.

    `cloudwatch` is a boto3 CloudWatch client (created from the environment when None and
    publishing is on).
    """
    features = parse_schema(args.schema) if args.schema else parse_feature_args(args.feature)
    end = args.window_end or datetime.now(UTC)
    start = args.window_start or end - timedelta(hours=DEFAULT_WINDOW_HOURS)
    if start >= end:
        raise DriftCheckError(f"empty window: start {iso(start)} is not before end {iso(end)}")
    if not 0 < args.drift_share_threshold <= 1:
        raise DriftCheckError(f"--drift-share-threshold {args.drift_share_threshold}: use (0, 1]")
    publish = not args.no_publish
    if publish and not args.endpoint_name:
        raise DriftCheckError("--endpoint-name is required to publish metrics (or --no-publish)")

    reference = load_baseline(args.baseline_dir, features)
    scan = read_capture(args.capture_dir, features, start, end)
    if len(scan.lines) < args.min_rows:
        skipped = ", ".join(f"{count} {why}" for why, count in sorted(scan.skipped.items()))
        raise DriftCheckError(
            f"only {len(scan.lines)} rows captured between {iso(start)} and {iso(end)}, need at "
            f"least {args.min_rows} (read {scan.files} capture files under {args.capture_dir}: "
            f"{scan.records} records, {scan.records_in_window} in the window"
            f"{'; skipped ' + skipped if skipped else ''})"
        )
    lines = scan.lines
    if len(lines) > args.max_rows:
        import numpy as np

        rng = np.random.default_rng(args.seed)
        keep = np.sort(rng.choice(len(lines), size=args.max_rows, replace=False))
        lines = [lines[i] for i in keep]
    current, invalid = frame_from_lines(lines, features)
    empty = [name for name in current.columns if current[name].notna().sum() == 0]
    if empty:
        raise DriftCheckError(
            f"features {empty} have no numeric value in the {len(current)} captured rows"
        )

    snapshot, result = run_drift(
        reference,
        current,
        features,
        args.drift_share_threshold,
        args.stattest,
        args.num_stattest,
        args.cat_stattest,
        args.stattest_threshold,
    )
    summary = _summary(args, features, start, end, scan, reference, current, invalid, result)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(args.output_dir / REPORT_HTML))
    snapshot.save_json(str(args.output_dir / REPORT_JSON))
    if publish:
        if cloudwatch is None:
            import boto3

            cloudwatch = boto3.client("cloudwatch")
        # CloudWatch rejects data points more than 2 hours in the future.
        stamp = min(end, datetime.now(UTC))
        data = metric_data(result, len(current), args.endpoint_name, args.model_version, stamp)
        summary["metrics"] = {
            "namespace": args.metrics_namespace,
            "published": publish_metrics(cloudwatch, args.metrics_namespace, data),
        }
    (args.output_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _summary(
    args: argparse.Namespace,
    features: Sequence[Feature],
    start: datetime,
    end: datetime,
    scan: CaptureScan,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    invalid: dict[str, int],
    result: DriftResult,
) -> dict[str, Any]:
    def number(value: Any) -> float | None:
        value = float(value)
        return value if math.isfinite(value) else None

    return {
        "endpoint_name": args.endpoint_name,
        "model_version": args.model_version,
        "model_package_arn": args.model_package_arn,
        "window_start": iso(start),
        "window_end": iso(end),
        "capture_files": scan.files,
        "records": scan.records,
        "records_in_window": scan.records_in_window,
        "records_skipped": dict(sorted(scan.skipped.items())),
        "rows_captured": len(scan.lines),
        "rows_analysed": len(current),
        "reference_rows": len(reference),
        "drift_share_threshold": args.drift_share_threshold,
        "drifted_feature_count": result.drifted_count,
        "drifted_feature_share": result.drifted_share,
        "dataset_drift": result.drifted_share >= args.drift_share_threshold,
        "features": [
            {
                **asdict(drift),
                "score": number(drift.score),
                "type": feature.type,
                "reference_mean": number(reference[feature.name].mean()),
                "current_mean": number(current[feature.name].mean()),
                "current_missing": int(current[feature.name].isna().sum()),
                "current_invalid": invalid[feature.name],
            }
            for feature, drift in zip(features, result.features, strict=True)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 on success (drift or not), 1 when the check could not be done."""
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except DriftCheckError as error:
        message = f"drift check failed: {error}"
        print(message, file=sys.stderr)
        write_exit_message(args.exit_message_file, message)
        return 1
    except Exception as error:  # the reason must reach ExitMessage whatever it is
        traceback.print_exc()
        write_exit_message(
            args.exit_message_file, f"drift check failed: {type(error).__name__}: {error}"
        )
        return 1
    drifted = [f["name"] for f in summary["features"] if f["drifted"]]
    message = (
        f"drift share {summary['drifted_feature_share']:.2f} "
        f"({summary['drifted_feature_count']}/{len(summary['features'])} features"
        f"{': ' + ', '.join(drifted) if drifted else ''}; threshold "
        f"{summary['drift_share_threshold']}) on {summary['rows_analysed']} rows between "
        f"{summary['window_start']} and {summary['window_end']}"
    )
    print(message)
    write_exit_message(args.exit_message_file, message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
