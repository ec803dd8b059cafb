"""The drift check's summary (drift_summary.json): the dataset's verdict, what was read and,
per feature, its tests, missing shares and means; and the summary of a batch check skipped for
too few scored rows."""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline_code.monitoring.capture import CaptureScan
from pipeline_code.monitoring.verdicts import DriftResult, FeatureVerdict

if TYPE_CHECKING:
    import pandas as pd

SKIPPED_METRIC = "DriftCheckSkipped"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def skipped_summary(args: argparse.Namespace, rows: int) -> dict[str, Any]:
    """A scored version with fewer than --min-rows rows: nothing to test, not a failure."""
    return {
        "endpoint_name": args.endpoint_name,
        "model_version": args.model_version,
        "model_package_arn": args.model_package_arn,
        "scored_rows_dir": str(args.scored_rows_dir),
        "rows_scored": rows,
        "min_rows": args.min_rows,
        "skipped": f"too few rows: {rows} scored in {args.scored_rows_dir}, the check needs at "
        f"least {args.min_rows}",
        "dataset_drift": None,
    }


def skipped_metric(
    endpoint_name: str, model_version: str | None, timestamp: datetime
) -> list[dict[str, Any]]:
    """`DriftCheckSkipped` = 1, with EndpointName (and EndpointName + ModelVersion)."""
    scopes = [[{"Name": "EndpointName", "Value": endpoint_name}]]
    if model_version:
        scopes.append(scopes[0] + [{"Name": "ModelVersion", "Value": model_version}])
    return [
        {
            "MetricName": SKIPPED_METRIC,
            "Dimensions": dims,
            "Timestamp": timestamp,
            "Value": 1.0,
            "Unit": "Count",
        }
        for dims in scopes
    ]


def summary_of(
    args: argparse.Namespace,
    start: datetime | None,
    end: datetime | None,
    scan: CaptureScan,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    invalid: dict[str, int],
    result: DriftResult,
) -> dict[str, Any]:
    return {
        "endpoint_name": args.endpoint_name,
        "model_version": args.model_version,
        "model_package_arn": args.model_package_arn,
        # a scored version (batch serving) has no time window
        "window_start": None if start is None else iso(start),
        "window_end": None if end is None else iso(end),
        "capture_files": scan.files,
        "records": scan.records,
        "records_in_window": scan.records_in_window,
        "records_skipped": dict(sorted(scan.skipped.items())),
        "rows_captured": len(scan.lines),
        "rows_analysed": len(current),
        "reference_rows": len(reference),
        "drift_share_threshold": args.drift_share_threshold,
        "missing_share_threshold": args.missing_share_threshold,
        "drifted_feature_count": result.drifted_count,
        "drifted_feature_share": result.drifted_share,
        "dataset_drift": result.drifted_share >= args.drift_share_threshold,
        "features": [
            feature_summary(verdict, reference, current, invalid, args.min_rows)
            for verdict in result.features
        ],
    }


def feature_summary(
    verdict: FeatureVerdict,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    invalid: dict[str, int],
    min_values: int,
) -> dict[str, Any]:
    def number(value: Any) -> float | None:
        value = float(value)
        return value if math.isfinite(value) else None

    name, test, missing = verdict.feature.name, verdict.value_test, verdict.missing
    categorical = verdict.feature.type == "category"
    reference_values, current_values = verdict.values
    skipped = (
        f"{reference_values} values in the reference and {current_values} in the window; the "
        f"value test needs {min_values} in each"
    )
    return {
        "name": name,
        "type": verdict.feature.type,
        "drifted": verdict.drifted,
        "value_drifted": None if test is None else test.drifted,
        "method": None if test is None else test.method,
        "threshold": None if test is None else test.threshold,
        "score": None if test is None else number(test.score),
        "value_test_skipped": None if test is not None else skipped,
        "missing_drifted": missing.drifted,
        "reference_missing_share": missing.reference,
        "current_missing_share": missing.current,
        "missing_share_rise": missing.rise,
        # A category feature's values are text: no mean.
        "reference_mean": None if categorical else number(reference[name].mean()),
        "current_mean": None if categorical else number(current[name].mean()),
        "current_values": current_values,
        "current_missing": int(current[name].isna().sum()),
        "current_invalid": invalid[name],
    }
