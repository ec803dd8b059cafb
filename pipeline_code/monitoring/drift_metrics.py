"""The drift job's CloudWatch metrics: names and dimensions (the Monitoring stack's alarms and
dashboard use them), the data points of one result, and publishing them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pipeline_code.monitoring.verdicts import DriftResult

DEFAULT_NAMESPACE = "MLOps/Drift"
# CloudWatch contract (the Monitoring stack's alarms and dashboard use these names).
METRIC_DRIFTED_FEATURE_SHARE = "DriftedFeatureShare"
METRIC_DRIFTED_FEATURE_COUNT = "DriftedFeatureCount"
METRIC_ROWS_ANALYSED = "RowsAnalysed"
METRIC_FEATURE_DRIFT_SCORE = "FeatureDriftScore"
METRIC_FEATURE_DRIFTED = "FeatureDrifted"
METRIC_FEATURE_MISSING_SHARE = "FeatureMissingShare"
DIMENSION_ENDPOINT = "EndpointName"
DIMENSION_MODEL_VERSION = "ModelVersion"
DIMENSION_FEATURE = "Feature"
# put_metric_data takes at most 1000 data points (and 1 MB) per call.
_METRICS_PER_CALL = 500


def metric_data(
    result: DriftResult,
    rows: int,
    endpoint_name: str,
    model_version: str | None,
    timestamp: datetime,
) -> list[dict[str, Any]]:
    """CloudWatch data points: the dataset's drifted share and count, the rows analysed, and per
    feature its value test's score (when it ran), its verdict (1 = drifted, by either rule) and
    its missing share in the window. Each metric goes out twice: with EndpointName only (stable, for
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
        for verdict in result.features:
            feature_dims = dims + [{"Name": DIMENSION_FEATURE, "Value": verdict.feature.name}]
            test = verdict.value_test
            if test is not None and math.isfinite(test.score):
                data.append(datum(METRIC_FEATURE_DRIFT_SCORE, test.score, "None", feature_dims))
            data.append(datum(METRIC_FEATURE_DRIFTED, int(verdict.drifted), "None", feature_dims))
            share = verdict.missing.current
            data.append(datum(METRIC_FEATURE_MISSING_SHARE, share, "None", feature_dims))
    return data


def publish_metrics(cloudwatch: Any, namespace: str, data: Sequence[dict[str, Any]]) -> int:
    """put_metric_data in batches; returns the number of data points sent."""
    for start in range(0, len(data), _METRICS_PER_CALL):
        cloudwatch.put_metric_data(
            Namespace=namespace, MetricData=list(data[start : start + _METRICS_PER_CALL])
        )
    return len(data)
