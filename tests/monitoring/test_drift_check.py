"""The drift job on the bundled sample data and its drifted variant, as SageMaker captures it:
value drift, the baseline folder as the source of the features, bad input, outputs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline_code.monitoring import drift_check
from pipeline_code.monitoring.capture import read_capture
from pipeline_code.monitoring.drift_metrics import metric_data
from pipeline_code.monitoring.evidently_drift import FeatureDrift
from pipeline_code.monitoring.features import (
    STATISTICS_FILE,
    DriftCheckError,
    Feature,
    baseline_features,
    frame_from_lines,
    parse_schema,
)
from pipeline_code.monitoring.missing_values import MissingShare
from pipeline_code.monitoring.verdicts import DriftResult, FeatureVerdict
from pipeline_code.sample_data import FEATURES
from tests.monitoring.capture_helpers import (
    NAMES,
    SCHEMA,
    WINDOW_END,
    WINDOW_START,
    argv,
    csv_row,
    fails_with,
    flagged,
    record,
    run,
    write_capture,
    write_statistics,
)

# Features the drifted variant shifts on purpose, and two it leaves alone.
SHIFTED = {
    "amount",
    "hour",
    "distance_from_home_km",
    "distance_from_last_txn_km",
    "online_order",
    "used_chip",
}
UNSHIFTED = {"ratio_to_median_amount", "txn_count_24h"}


# --- detection ---------------------------------------------------------------------------------


def test_drifted_traffic_is_flagged_and_published(
    job: Path, drifted: pd.DataFrame, cloudwatch: Any
) -> None:
    write_capture(job / "capture", drifted)

    summary = run(
        job, "--endpoint-name", "fraud-endpoint", "--model-version", "7", cloudwatch=cloudwatch
    )

    assert summary["rows_analysed"] == 1000
    assert summary["drifted_feature_share"] >= 0.6 > drift_check.DEFAULT_DRIFT_SHARE_THRESHOLD
    assert summary["dataset_drift"] is True
    assert flagged(summary) >= SHIFTED
    assert not UNSHIFTED & flagged(summary)
    by_name = {f["name"]: f for f in summary["features"]}
    # Default methods for a 3000-row reference: normalised Wasserstein / Jensen-Shannon at 0.1.
    assert by_name["amount"]["method"] == "Wasserstein distance (normed)"
    assert by_name["amount"]["score"] > 0.5 and by_name["amount"]["threshold"] == 0.1
    assert by_name["online_order"]["method"] == "Jensen-Shannon distance"
    assert by_name["amount"]["current_mean"] > 1.5 * by_name["amount"]["reference_mean"]

    endpoint_only = [{"Name": "EndpointName", "Value": "fraud-endpoint"}]
    with_version = endpoint_only + [{"Name": "ModelVersion", "Value": "7"}]

    def latest(name: str, dimensions: list[dict[str, str]]) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="MLOps/Drift",
            MetricName=name,
            Dimensions=dimensions,
            StartTime=WINDOW_START,
            EndTime=datetime.now(UTC) + timedelta(minutes=5),
            Period=86400,
            Statistics=["Maximum"],
        )["Datapoints"]
        assert len(points) == 1, f"{name} {dimensions}: {points}"
        return points[0]["Maximum"]

    for dims in (endpoint_only, with_version):
        assert latest("DriftedFeatureShare", dims) == pytest.approx(
            summary["drifted_feature_share"]
        )
        assert latest("DriftedFeatureCount", dims) == summary["drifted_feature_count"]
        assert latest("RowsAnalysed", dims) == 1000
        amount = dims + [{"Name": "Feature", "Value": "amount"}]
        assert latest("FeatureDriftScore", amount) == pytest.approx(by_name["amount"]["score"])
        assert latest("FeatureDrifted", amount) == 1
        ratio = dims + [{"Name": "Feature", "Value": "ratio_to_median_amount"}]
        assert latest("FeatureDrifted", ratio) == 0
    per_feature = cloudwatch.list_metrics(
        Namespace="MLOps/Drift", MetricName="FeatureDriftScore", Dimensions=with_version
    )["Metrics"]
    assert len(per_feature) == len(NAMES)
    # per scope: share, count, rows; per feature: score, verdict, missing share
    assert summary["metrics"] == {"namespace": "MLOps/Drift", "published": 2 * (3 + 3 * 10)}

    html = (job / "output" / drift_check.REPORT_HTML).read_text()
    assert "<html" in html[:200] and "distance_from_home_km" in html
    report = json.loads((job / "output" / drift_check.REPORT_JSON).read_text())
    assert any("ValueDrift" in str(m) for m in report["metrics"])
    on_disk = json.loads((job / "output" / drift_check.SUMMARY_JSON).read_text())
    assert on_disk["drifted_feature_share"] == summary["drifted_feature_share"]


def test_undrifted_traffic_stays_below_threshold(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same)

    assert drift_check.main(argv(job)) == 0

    summary = json.loads((job / "output" / drift_check.SUMMARY_JSON).read_text())
    assert summary["rows_analysed"] == 1000
    assert summary["drifted_feature_share"] <= 0.1 < drift_check.DEFAULT_DRIFT_SHARE_THRESHOLD
    assert summary["dataset_drift"] is False
    assert all(f["score"] < f["threshold"] for f in summary["features"] if not f["drifted"])
    assert (
        (job / "message")
        .read_text()
        .startswith(f"drift share {summary['drifted_feature_share']:.2f} ")
    )


def test_only_traffic_inside_the_window_counts(
    job: Path, same: pd.DataFrame, drifted: pd.DataFrame
) -> None:
    # Drifted traffic just before and at the (exclusive) end of the window must not count.
    write_capture(job / "capture", same)
    before = WINDOW_START - timedelta(hours=3)
    write_capture(job / "capture", drifted[:500], before, timedelta(hours=3), prefix="b")
    write_capture(job / "capture", drifted[500:], WINDOW_END, timedelta(hours=2), prefix="a")

    summary = run(job)

    assert summary["records"] == 2000
    assert summary["records_in_window"] == summary["rows_captured"] == 1000
    assert summary["dataset_drift"] is False


def test_large_windows_are_sampled_down(job: Path, drifted: pd.DataFrame) -> None:
    write_capture(job / "capture", drifted)

    summary = run(job, "--max-rows", "400")

    assert (summary["rows_captured"], summary["rows_analysed"]) == (1000, 400)
    assert summary["dataset_drift"] is True


@pytest.mark.parametrize("encoding", ["BASE64", "JSON"])
def test_base64_and_json_requests_read_like_csv(
    tmp_path: Path, drifted: pd.DataFrame, encoding: str
) -> None:
    features = parse_schema(SCHEMA)
    write_capture(tmp_path / "csv", drifted)
    # Batches of 4 rows per request: every row counts, not every request.
    requests = write_capture(tmp_path / encoding, drifted, encoding=encoding, rows_per_request=4)

    as_csv = read_capture(tmp_path / "csv", features, WINDOW_START, WINDOW_END)
    scan = read_capture(tmp_path / encoding, features, WINDOW_START, WINDOW_END)

    assert (requests, scan.records_in_window, len(scan.lines)) == (250, 250, 1000)
    expected, _ = frame_from_lines(as_csv.lines, features)
    actual, invalid = frame_from_lines(scan.lines, features)
    pd.testing.assert_frame_equal(actual, expected)
    assert set(invalid.values()) == {0}


def test_method_override(job: Path, drifted: pd.DataFrame) -> None:
    write_capture(job / "capture", drifted)

    summary = run(job, "--num-stattest", "ks", "--cat-stattest", "chisquare")

    by_name = {f["name"]: f for f in summary["features"]}
    assert by_name["amount"]["method"] == "ks"
    assert by_name["amount"]["threshold"] == 0.05  # a p-value: drift when the score is below
    assert by_name["amount"]["score"] < 0.05 and by_name["amount"]["drifted"]
    assert by_name["ratio_to_median_amount"]["score"] > 0.05
    assert not by_name["ratio_to_median_amount"]["drifted"]
    assert by_name["online_order"]["method"] == "chisquare"
    assert by_name["online_order"]["drifted"]


def test_unknown_method_fails_clearly(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same)

    message = fails_with(job, "--stattest", "magic")

    assert "No stattest found of name magic. Available stattests: [" in message


# --- bad input ---------------------------------------------------------------------------------


def test_empty_window_fails_clearly(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same, WINDOW_START - timedelta(days=2))

    message = fails_with(job)

    assert (
        "only 0 rows captured between 2025-03-01T00:00:00Z and 2025-03-02T00:00:00Z, "
        "need at least 100" in message
    )
    assert "1000 records, 0 in the window" in message


def test_no_capture_files_fails_clearly(job: Path) -> None:
    message = fails_with(job, "--capture-dir", str(job / "nothing-here"))

    assert "only 0 rows captured" in message
    assert f"read 0 capture files under {job / 'nothing-here'}" in message


def test_too_few_rows_fails_with_the_count(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same[:40])

    message = fails_with(job, "--min-rows", "50")

    assert "only 40 rows captured between" in message and "need at least 50" in message


def test_output_only_capture_says_why_records_were_skipped(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same[:120])
    for path in (job / "capture").rglob("*.jsonl"):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        for line in lines:
            del line["captureData"]["endpointInput"]
        path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    message = fails_with(job)

    assert "skipped 120 no_endpoint_input_or_inference_time" in message


def test_schema_mismatch_fails_clearly(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same.iloc[:, :9])

    message = fails_with(job)

    assert "schema mismatch: a captured row has 9 columns but the schema has 10 features" in message
    assert "fraud-endpoint/AllTraffic/2025/03/01/00/e-capture.jsonl line 1 (eventId e0)" in message


def test_one_wide_row_among_good_ones_fails(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same)
    path = next((job / "capture").rglob("*.jsonl"))
    late = WINDOW_START + timedelta(hours=1)
    with path.open("a") as handle:
        handle.write(json.dumps(record("1,2,3,4,5,6,7,8,9,10,11", late, "wide")) + "\n")

    message = fails_with(job)

    assert "has 11 columns but the schema has 10 features" in message and "eventId wide" in message


def test_baseline_without_schema_features_fails(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same)
    frame = pd.read_csv(job / "baseline" / "baseline.csv").drop(columns=["used_pin"])
    frame.to_csv(job / "baseline" / "baseline.csv", index=False)

    message = fails_with(job, "--schema", SCHEMA)

    assert "baseline.csv lacks the schema features ['used_pin']" in message


def test_baseline_columns_and_statistics_must_agree(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same)
    write_statistics(job / "baseline", FEATURES[:-1])

    message = fails_with(job)

    assert "baseline mismatch: the columns of baseline.csv [" in message
    assert "are not the features statistics.json describes [" in message


def test_baseline_without_statistics_fails(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same)
    (job / "baseline" / STATISTICS_FILE).unlink()

    assert "no baseline statistics: " in fails_with(job)


def test_missing_baseline_fails(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same)
    (job / "baseline" / "baseline.csv").unlink()

    assert "no baseline: " in fails_with(job)


def test_unsupported_payload_fails(job: Path) -> None:
    path = job / "capture" / "x.jsonl"
    line = record("AAAA", WINDOW_START, "npy")
    line["captureData"]["endpointInput"].update(
        encoding="BASE64", observedContentType="application/x-npy"
    )
    path.write_text(json.dumps(line) + "\n")

    message = fails_with(job)

    assert "content type 'application/x-npy'" in message and "eventId npy" in message


def test_unreadable_lines_and_values_are_counted_not_lost(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same)
    path = next((job / "capture").rglob("*.jsonl"))
    at = WINDOW_START + timedelta(minutes=1)
    junk_row = csv_row(["abc", *same.iloc[0, 1:]])
    with path.open("a") as handle:
        handle.write("{truncated\n")
        handle.write(json.dumps(record(junk_row, at, "junk")) + "\n")

    summary = run(job)

    assert summary["records_skipped"] == {"not_json": 1}
    assert summary["rows_captured"] == 1001
    by_name = {f["name"]: f for f in summary["features"]}
    assert by_name["amount"]["current_invalid"] == 1
    assert by_name["amount"]["current_missing"] == 1
    assert by_name["distance_from_last_txn_km"]["current_invalid"] == 0


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--schema", "{not json"], "--schema is not valid JSON"),
        (["--schema", '{"features": [{"name": "a", "type": "str"}]}'], "type 'str'; allowed"),
        (["--drift-share-threshold", "0"], "--drift-share-threshold 0.0: use (0, 1]"),
        (["--missing-share-threshold", "1.5"], "--missing-share-threshold 1.5: use (0, 1]"),
        (["--window-start", WINDOW_END.isoformat()], "empty window: start"),
    ],
)
def test_bad_arguments_fail_clearly(job: Path, extra: list[str], expected: str) -> None:
    assert expected in fails_with(job, *extra)


def test_an_unwritable_output_folder_fails_before_any_work(
    job: Path, same: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_capture(job / "capture", same)
    real_access = drift_check.os.access
    monkeypatch.setattr(
        drift_check.os,
        "access",
        lambda path, mode: False if Path(path) == job / "output" else real_access(path, mode),
    )

    message = fails_with(job)

    assert f"cannot write to --output-dir {job / 'output'} as uid " in message


def test_publishing_needs_an_endpoint_name(job: Path) -> None:
    assert drift_check.main(argv(job, publish=True)) == 1
    assert "--endpoint-name is required" in (job / "message").read_text()


def test_features_come_from_the_baseline_folder_in_header_order(tmp_path: Path) -> None:
    # statistics.json lists the features in another order: the CSV header decides the order.
    pd.DataFrame(columns=NAMES).to_csv(tmp_path / "baseline.csv", index=False)
    write_statistics(tmp_path, list(reversed(FEATURES)))

    assert baseline_features(tmp_path) == parse_schema(SCHEMA)


@pytest.mark.parametrize(
    ("statistics", "expected"),
    [
        ("{not json", "statistics.json is not valid JSON"),
        ('{"features": []}', 'has no "features" object'),
        ('{"features": {"a": {"type": "str"}}}', "type 'str'; allowed: float, int, bool, category"),
        ('{"features": {"a": {}}}', "type None; allowed"),
    ],
)
def test_unreadable_statistics_fail_clearly(tmp_path: Path, statistics: str, expected: str) -> None:
    (tmp_path / "baseline.csv").write_text("a\n1\n")
    (tmp_path / STATISTICS_FILE).write_text(statistics)

    with pytest.raises(DriftCheckError, match=re.escape(expected)):
        baseline_features(tmp_path)


def test_the_schema_argument_overrides_the_baseline_features(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", same)
    (job / "baseline" / STATISTICS_FILE).unlink()

    summary = run(job, "--schema", SCHEMA)

    assert [f["name"] for f in summary["features"]] == NAMES


# --- outputs -----------------------------------------------------------------------------------


def test_metric_data_without_model_version_nan_score_and_untested_feature() -> None:
    def verdict(name: str, test: FeatureDrift | None, missing: float) -> FeatureVerdict:
        share = MissingShare(name, 0.0, missing, missing > 0.1)
        return FeatureVerdict(Feature(name, "float"), test, (1000, 250), share)

    result = DriftResult(
        (
            verdict("a", FeatureDrift("a", "ks", 0.05, 0.01, True), 0.0),
            verdict("b", FeatureDrift("b", "ks", 0.05, float("nan"), False), 0.02),
            verdict("c", None, 1.0),
            verdict("d", FeatureDrift("d", "ks", 0.05, 0.5, False), 0.0),
        )
    )

    data = metric_data(result, 250, "ep", None, WINDOW_END)

    sent = [(d["MetricName"], [x["Value"] for x in d["Dimensions"]], d["Value"]) for d in data]
    assert sent == [
        ("DriftedFeatureShare", ["ep"], 0.5),  # a (value test) and c (all missing) of 4
        ("DriftedFeatureCount", ["ep"], 2),
        ("RowsAnalysed", ["ep"], 250),
        ("FeatureDriftScore", ["ep", "a"], 0.01),
        ("FeatureDrifted", ["ep", "a"], 1),
        ("FeatureMissingShare", ["ep", "a"], 0.0),
        ("FeatureDrifted", ["ep", "b"], 0),  # a NaN score is not sent, the verdict is
        ("FeatureMissingShare", ["ep", "b"], 0.02),
        ("FeatureDrifted", ["ep", "c"], 1),  # no value test: no score
        ("FeatureMissingShare", ["ep", "c"], 1.0),
        ("FeatureDriftScore", ["ep", "d"], 0.5),
        ("FeatureDrifted", ["ep", "d"], 0),
        ("FeatureMissingShare", ["ep", "d"], 0.0),
    ]
    assert {d["Timestamp"] for d in data} == {WINDOW_END}


def test_exit_message_is_cut_to_one_kilobyte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drift_check.write_exit_message(tmp_path / "message", "é" * 2000)

    assert len((tmp_path / "message").read_bytes()) <= 1024
    drift_check.write_exit_message(tmp_path / "missing-dir" / "message", "ignored")
    assert not (tmp_path / "missing-dir").exists()
    (tmp_path / "a-folder").mkdir()
    drift_check.write_exit_message(tmp_path / "a-folder", "cannot be written")  # best effort
    assert "could not write the exit message to " in capsys.readouterr().err
