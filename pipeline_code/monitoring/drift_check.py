"""Scheduled drift check: captured endpoint traffic vs the training baseline, with Evidently.

The drift image's entry point: `python -m pipeline_code.monitoring.drift_check` (see the
Dockerfile beside it, which copies this folder's modules under the same import path). It

1. reads SageMaker data-capture files (JSON Lines, any depth below --capture-dir) and keeps the
   request rows whose `eventMetadata.inferenceTime` falls in [--window-start, --window-end)
   (`capture`), or, for batch serving, every row a scoring run scored (--scored-rows-dir: the
   Check step's rows, `scored_rows`);
2. reads the served model's baseline folder --baseline-dir (Prepare's output): the features
   in schema order with their types (baseline.csv's header, statistics.json) and the reference
   sample baseline.csv (`features`; --schema overrides the features for local runs);
3. per feature, compares the missing share in the window with the reference's
   (`missing_values`) and runs Evidently's value test (current API: `Report`, `Dataset`,
   `DataDefinition`, `ValueDrift` with `DataDriftPreset`'s choice of method) on the features
   with enough values (`evidently_drift`); a feature drifted by either rule (`verdicts`);
4. writes drift_report.html, drift_report.json (Evidently snapshot) and drift_summary.json to
   --output-dir and publishes CloudWatch metrics (`drift_metrics`) unless --no-publish.

Drift methods are Evidently's defaults unless overridden with --stattest / --num-stattest /
--cat-stattest. Evidently picks them from the reference size and the number of distinct values:

    reference <= 1000 rows: numeric with > 5 values -> Kolmogorov-Smirnov (p-value < 0.05);
        numeric with 3-5 values or categorical with > 2 values -> chi-square (p < 0.05);
        two values -> Z-test for proportions (p < 0.05)
    reference  > 1000 rows: numeric with > 5 values -> normalised Wasserstein distance (>= 0.1);
        otherwise -> Jensen-Shannon distance (>= 0.1)

Schema types map to Evidently column types: float and int -> numerical, bool and category ->
categorical (category values compared as text, in the step scripts' canonical form).
Missing values are not part of the value test (Evidently drops them); a feature whose missing
share in the window exceeds the reference's by more than --missing-share-threshold (0.1) drifted,
and a feature with fewer than --min-rows values in the window or the reference gets no value
test (too few values to say anything), only that rule. The dataset counts as drifted when the
share of drifted features (of all the schema's features) is >= --drift-share-threshold.

A scored version (batch serving) with fewer than --min-rows rows is not a failure: the job
ends well, drift_summary.json and the exit message say "skipped: too few rows", and the metric
DriftCheckSkipped counts it (`drift_summary`); a scored version's summary has no time window.

Failures (too few captured rows in the window, a row whose column count differs from the schema,
a payload the serving contract does not allow, a baseline folder without its features) exit
with code 1 and write the reason to stderr and to SageMaker's exit-message file
(/opt/ml/output/message, shown as ExitMessage by DescribeProcessingJob).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline_code.monitoring.capture import parse_time, read_capture
from pipeline_code.monitoring.drift_metrics import DEFAULT_NAMESPACE, metric_data, publish_metrics
from pipeline_code.monitoring.drift_summary import (
    iso,
    skipped_metric,
    skipped_summary,
    summary_of,
)
from pipeline_code.monitoring.evidently_drift import DriftOptions, run_drift
from pipeline_code.monitoring.features import (
    DriftCheckError,
    baseline_features,
    frame_from_lines,
    load_baseline,
    parse_schema,
)
from pipeline_code.monitoring.missing_values import (
    DEFAULT_MISSING_SHARE_THRESHOLD,
    missing_shares,
)
from pipeline_code.monitoring.scored_rows import read_scored_rows
from pipeline_code.monitoring.verdicts import combine, testable, value_counts

# numpy (the row sample) is imported where it is used, as pandas and Evidently are.

DEFAULT_CAPTURE_DIR = Path("/opt/ml/processing/input/capture")
DEFAULT_BASELINE_DIR = Path("/opt/ml/processing/input/baseline")
DEFAULT_OUTPUT_DIR = Path("/opt/ml/processing/output")
DEFAULT_EXIT_MESSAGE_FILE = Path("/opt/ml/output/message")
REPORT_HTML = "drift_report.html"
REPORT_JSON = "drift_report.json"
SUMMARY_JSON = "drift_summary.json"

DEFAULT_DRIFT_SHARE_THRESHOLD = 0.3
DEFAULT_MIN_ROWS = 100
DEFAULT_MAX_ROWS = 500_000
DEFAULT_WINDOW_HOURS = 24
_EXIT_MESSAGE_LIMIT = 1024  # bytes DescribeProcessingJob keeps


def write_exit_message(path: Path | None, message: str) -> None:
    """Best effort: SageMaker keeps the first 1 KB as the job's ExitMessage."""
    if path is None or not path.parent.is_dir():
        return
    encoded = message.encode("utf-8")[:_EXIT_MESSAGE_LIMIT]
    try:
        path.write_text(encoded.decode("utf-8", errors="ignore"), encoding="utf-8")
    except OSError as error:  # the reason is on stderr (the job's log) all the same
        print(f"could not write the exit message to {path}: {error}", file=sys.stderr)


def ensure_writable(folder: Path) -> None:
    """Fail before any work when the job's user cannot write its reports (the image runs as an
    unprivileged user; SageMaker creates the output folder)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DriftCheckError(f"cannot create --output-dir {folder}: {error}") from None
    if not os.access(folder, os.W_OK):
        raise DriftCheckError(
            f"cannot write to --output-dir {folder} as uid {os.getuid()}: the image runs the job "
            "as this user (see the Dockerfile)"
        )


# --------------------------------------------------------------------------------------------
# Job


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    paths = parser.add_argument_group("paths (SageMaker container defaults)")
    paths.add_argument("--capture-dir", type=Path, default=DEFAULT_CAPTURE_DIR)
    paths.add_argument("--baseline-dir", type=Path, default=DEFAULT_BASELINE_DIR)
    paths.add_argument(
        "--scored-rows-dir",
        type=Path,
        default=None,
        help="batch serving: a scored version's rows (id, features) instead of --capture-dir",
    )
    paths.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    paths.add_argument(
        "--exit-message-file",
        type=Path,
        default=DEFAULT_EXIT_MESSAGE_FILE,
        help="where SageMaker reads the job's ExitMessage; skipped if its folder is missing",
    )
    parser.add_argument(
        "--schema",
        help="the pipeline contract's schema as a JSON string (default: the baseline folder's "
        "features, baseline.csv's header with the types in statistics.json)",
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
    drift.add_argument(
        "--missing-share-threshold",
        type=float,
        default=DEFAULT_MISSING_SHARE_THRESHOLD,
        help="a feature drifted when its missing share in the window exceeds the reference's "
        "by more than this (0.1)",
    )
    drift.add_argument("--stattest", help="one Evidently method for all features (auto)")
    drift.add_argument("--num-stattest", help="method for float/int features, e.g. ks, psi")
    drift.add_argument("--cat-stattest", help="method for bool features, e.g. chisquare")
    drift.add_argument("--stattest-threshold", type=float, help="threshold for all methods")
    drift.add_argument(
        "--min-rows",
        type=int,
        default=DEFAULT_MIN_ROWS,
        help="fail below this many captured rows in the window; a feature with fewer values in "
        "the window or the reference gets no value test (100)",
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
    end = args.window_end or datetime.now(UTC)
    start = args.window_start or end - timedelta(hours=DEFAULT_WINDOW_HOURS)
    if start >= end:
        raise DriftCheckError(f"empty window: start {iso(start)} is not before end {iso(end)}")
    if not 0 < args.drift_share_threshold <= 1:
        raise DriftCheckError(f"--drift-share-threshold {args.drift_share_threshold}: use (0, 1]")
    if not 0 < args.missing_share_threshold <= 1:
        raise DriftCheckError(
            f"--missing-share-threshold {args.missing_share_threshold}: use (0, 1]"
        )
    publish = not args.no_publish
    if publish and not args.endpoint_name:
        raise DriftCheckError("--endpoint-name is required to publish metrics (or --no-publish)")
    ensure_writable(args.output_dir)
    features = parse_schema(args.schema) if args.schema else baseline_features(args.baseline_dir)

    reference = load_baseline(args.baseline_dir, features)
    if args.scored_rows_dir is not None:  # batch serving: one scored version, no window
        scan = read_scored_rows(args.scored_rows_dir, len(features))
        if len(scan.lines) < args.min_rows:  # a small run: recorded, not a failure
            return _skip(args, len(scan.lines), publish, cloudwatch)
    else:
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

    missing = missing_shares(reference, current, features, args.missing_share_threshold)
    reference_values = value_counts(reference, features)
    current_values = value_counts(current, features)
    options = DriftOptions(
        missing_share_threshold=args.missing_share_threshold,
        stattest=args.stattest,
        num_stattest=args.num_stattest,
        cat_stattest=args.cat_stattest,
        stattest_threshold=args.stattest_threshold,
    )
    tested = testable(reference_values, current_values, args.min_rows)
    snapshot, value_tests = run_drift(reference, current, features, tested, missing, options)
    result = combine(features, value_tests, missing, reference_values, current_values)
    scored = args.scored_rows_dir is not None
    summary = summary_of(
        args,
        None if scored else start,
        None if scored else end,
        scan,
        reference,
        current,
        invalid,
        result,
    )

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


def _skip(args: argparse.Namespace, rows: int, publish: bool, cloudwatch: Any) -> dict[str, Any]:
    summary = skipped_summary(args, rows)
    if publish:
        if cloudwatch is None:
            import boto3

            cloudwatch = boto3.client("cloudwatch")
        data = skipped_metric(args.endpoint_name, args.model_version, datetime.now(UTC))
        summary["metrics"] = {
            "namespace": args.metrics_namespace,
            "published": publish_metrics(cloudwatch, args.metrics_namespace, data),
        }
    (args.output_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


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
    if summary.get("skipped"):
        message = f"drift check skipped: {summary['skipped']}"
        print(message)
        write_exit_message(args.exit_message_file, message)
        return 0
    drifted = [
        f"{f['name']} (missing {f['current_missing_share']:.0%})"
        if f["missing_drifted"]
        else f["name"]
        for f in summary["features"]
        if f["drifted"]
    ]
    message = (
        f"drift share {summary['drifted_feature_share']:.2f} "
        f"({summary['drifted_feature_count']}/{len(summary['features'])} features"
        f"{': ' + ', '.join(drifted) if drifted else ''}; threshold "
        f"{summary['drift_share_threshold']}) on {summary['rows_analysed']} rows "
        + (
            f"scored in {args.scored_rows_dir}"
            if summary["window_start"] is None
            else f"between {summary['window_start']} and {summary['window_end']}"
        )
    )
    print(message)
    write_exit_message(args.exit_message_file, message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
