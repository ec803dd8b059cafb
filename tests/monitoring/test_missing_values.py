"""Missing values as drift: a feature production stops sending is reported per feature, counts
towards the drifted share and is published; an all-missing feature is a verdict, not a crash."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline_code.monitoring import drift_check
from pipeline_code.monitoring.features import Feature
from pipeline_code.monitoring.missing_values import missing_shares
from tests.monitoring.capture_helpers import WINDOW_START, argv, run, write_capture


def blanked(frame: pd.DataFrame, shares: dict[str, float], seed: int = 5) -> pd.DataFrame:
    """`frame` with the given share of each column's rows blanked (rows drawn at random)."""
    out = frame.copy()
    rng = np.random.default_rng(seed)
    for column, share in shares.items():
        rows = rng.choice(len(out), size=round(share * len(out)), replace=False)
        out.loc[out.index[rows], column] = np.nan
    return out


def missing_share(values: pd.Series) -> float:
    """Expected share, counted in plain Python over what was written (NaN = written blank)."""
    blanks = sum(1 for v in values.tolist() if isinstance(v, float) and math.isnan(v))
    return blanks / len(values)


def by_name(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in summary["features"]}


def test_a_feature_production_stops_sending_drifts_and_is_published(
    job: Path, baseline: pd.DataFrame, same: pd.DataFrame, cloudwatch: Any
) -> None:
    # Undrifted traffic in which three features lose values: 92 % (80 values left, below
    # --min-rows), 50 % (500 values left) and 5 % (within the 0.1 threshold).
    traffic = blanked(same, {"amount": 0.92, "hour": 0.5, "merchant_category": 0.05})
    write_capture(job / "capture", traffic)

    summary = run(job, "--endpoint-name", "ep", cloudwatch=cloudwatch)

    features = by_name(summary)
    for name in features:
        assert features[name]["reference_missing_share"] == pytest.approx(
            missing_share(baseline[name])
        ), name
        assert features[name]["current_missing_share"] == pytest.approx(
            missing_share(traffic[name])
        ), name
    amount, hour, category = features["amount"], features["hour"], features["merchant_category"]
    assert amount["current_missing_share"] == pytest.approx(0.92)
    assert (amount["drifted"], amount["missing_drifted"], amount["value_drifted"]) == (
        True,
        True,
        None,
    )
    assert (amount["method"], amount["score"], amount["current_values"]) == (None, None, 80)
    assert amount["value_test_skipped"] == (
        "3000 values in the reference and 80 in the window; the value test needs 100 in each"
    )
    # Half missing: the rule flags it, and the values still present are tested as usual.
    assert (hour["missing_drifted"], hour["value_drifted"]) == (True, False)
    assert hour["method"] == "Wasserstein distance (normed)"
    assert category["missing_drifted"] is False and category["missing_share_rise"] == 0.05
    # The sample's own gaps (about 0.4 % of distance_from_last_txn_km) are no drift.
    assert 0 < features["distance_from_last_txn_km"]["reference_missing_share"] < 0.01
    assert features["distance_from_last_txn_km"]["missing_drifted"] is False

    drifted = {name for name, f in features.items() if f["drifted"]}
    assert {"amount", "hour"} <= drifted and "merchant_category" not in drifted
    assert summary["drifted_feature_count"] == len(drifted)
    assert summary["drifted_feature_share"] == len(drifted) / 10

    def latest(metric: str, feature: str) -> list[float]:
        points = cloudwatch.get_metric_statistics(
            Namespace="MLOps/Drift",
            MetricName=metric,
            Dimensions=[
                {"Name": "EndpointName", "Value": "ep"},
                {"Name": "Feature", "Value": feature},
            ],
            StartTime=WINDOW_START,
            EndTime=datetime.now(UTC) + timedelta(minutes=5),
            Period=86400,
            Statistics=["Maximum"],
        )["Datapoints"]
        return [point["Maximum"] for point in points]

    assert latest("FeatureMissingShare", "amount") == [pytest.approx(0.92)]
    assert latest("FeatureMissingShare", "merchant_category") == [pytest.approx(0.05)]
    assert latest("FeatureDrifted", "amount") == [1]
    assert latest("FeatureDriftScore", "amount") == []  # no value test, no score
    assert len(latest("FeatureDriftScore", "hour")) == 1

    # The Evidently report shows every feature's missing values beside the value tests.
    report = json.loads((job / "output" / drift_check.REPORT_JSON).read_text())
    assert sum("MissingValueCount" in json.dumps(m) for m in report["metrics"]) == 10


def test_an_all_missing_feature_is_reported_not_a_crash(job: Path, same: pd.DataFrame) -> None:
    write_capture(job / "capture", blanked(same, {"used_pin": 1.0}))

    assert drift_check.main(argv(job)) == 0

    summary = json.loads((job / "output" / drift_check.SUMMARY_JSON).read_text())
    used_pin = by_name(summary)["used_pin"]
    assert used_pin["current_missing_share"] == 1.0 and used_pin["current_values"] == 0
    assert (used_pin["drifted"], used_pin["missing_drifted"], used_pin["score"]) == (
        True,
        True,
        None,
    )
    assert "0 in the window" in used_pin["value_test_skipped"]
    assert all(f["method"] for f in summary["features"] if f["name"] != "used_pin")
    assert "used_pin (missing 100%)" in (job / "message").read_text()


@pytest.mark.parametrize(("threshold", "drifted"), [("0.2", False), ("0.1", True)])
def test_the_threshold_argument_decides(
    job: Path, same: pd.DataFrame, threshold: str, drifted: bool
) -> None:
    write_capture(job / "capture", blanked(same, {"txn_count_24h": 0.15}))

    summary = run(job, "--missing-share-threshold", threshold)

    assert by_name(summary)["txn_count_24h"]["missing_drifted"] is drifted
    assert summary["missing_share_threshold"] == float(threshold)


def test_only_a_rise_beyond_the_threshold_counts() -> None:
    nan = float("nan")
    features = [Feature("rises", "float"), Feature("falls", "float"), Feature("gone", "bool")]
    reference = pd.DataFrame(
        {"rises": [1, nan, 3, 4], "falls": [nan, nan, 1, 2], "gone": [1, 0, 1, 0]}
    )
    current = pd.DataFrame(
        {"rises": [nan, nan, nan, 1], "falls": [1, 2, 3, 4], "gone": [nan, nan, nan, nan]}
    )

    exactly = {s.name: s for s in missing_shares(reference, current, features, 0.5)}
    below = {s.name: s for s in missing_shares(reference, current, features, 0.49)}

    assert (exactly["rises"].reference, exactly["rises"].current) == (0.25, 0.75)
    assert exactly["rises"].drifted is False  # a rise of exactly the threshold is not more
    assert below["rises"].drifted is True
    assert (exactly["falls"].rise, exactly["falls"].drifted) == (-0.5, False)
    assert (exactly["gone"].current, exactly["gone"].drifted) == (1.0, True)
