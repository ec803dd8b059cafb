"""Drift for batch serving: the rows a scoring run scored (written by the scoring pipeline's own
Check step, score.py, from bundled sample data with an id column) against the served model's
baseline, with the same Evidently check, verdicts and summary as captured traffic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline_code.monitoring import drift_check
from pipeline_code.sample_data import sample_schema
from pipeline_code.steps import load
from tests.monitoring.capture_helpers import flagged

score = load("score")
ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-loop-dev-models/4"


def scored_rows(job: Path, frame: pd.DataFrame) -> Path:
    """What the Check step of a scoring run writes for `frame` (with a row id column)."""
    landed = frame.copy()
    landed.insert(0, "id", [f"r{i}" for i in range(len(landed))])
    (job / "landed").mkdir()
    landed.to_csv(job / "landed" / "part-0.csv", index=False)
    score.prepare_scoring(
        job / "landed",
        job / "checked",
        sample_schema(),
        "id",
        "s3://data/score/transactions/v1/",
        ARN,
        "exec0001",
    )
    return job / "checked" / score.ROWS_OUTPUT


def run_on_rows(job: Path, rows: Path, *extra: str) -> dict[str, Any]:
    args = drift_check.build_parser().parse_args(
        [
            "--scored-rows-dir", str(rows),
            "--baseline-dir", str(job / "baseline"),
            "--output-dir", str(job / "output"),
            "--exit-message-file", str(job / "message"),
            "--no-publish",
            *extra,
        ]
    )  # fmt: skip
    return drift_check.run(args)


def test_a_drifted_scored_version_is_flagged(job: Path, drifted: pd.DataFrame) -> None:
    summary = run_on_rows(job, scored_rows(job, drifted))
    assert summary["dataset_drift"] is True
    assert {"amount", "distance_from_home_km", "online_order"} <= flagged(summary)
    assert summary["rows_analysed"] == len(drifted)
    assert (job / "output" / drift_check.REPORT_HTML).exists()


def test_a_scored_version_like_the_baseline_is_not(job: Path, same: pd.DataFrame) -> None:
    summary = run_on_rows(job, scored_rows(job, same))
    assert summary["dataset_drift"] is False


def test_too_few_scored_rows_are_a_recorded_skip_not_a_failure(
    job: Path, same: pd.DataFrame
) -> None:
    """A small scoring run must not fail its drift job (and notify) every time: the job ends
    well, its summary and exit message say why nothing was tested, and a metric counts it."""
    rows = scored_rows(job, same.head(20))
    sent: list[dict[str, Any]] = []

    class CloudWatch:
        def put_metric_data(self, **request: Any) -> None:
            sent.append(request)

    argv = [
        "--scored-rows-dir", str(rows),
        "--baseline-dir", str(job / "baseline"),
        "--output-dir", str(job / "output"),
        "--exit-message-file", str(job / "message"),
        "--endpoint-name", "mlops-loop-dev-scoring",
        "--model-version", "4",
    ]  # fmt: skip
    summary = drift_check.run(drift_check.build_parser().parse_args(argv), CloudWatch())

    assert summary["skipped"].startswith("too few rows: 20 scored")
    assert summary["dataset_drift"] is None
    assert "window_start" not in summary
    assert not (job / "output" / drift_check.REPORT_HTML).exists()
    assert json.loads((job / "output" / drift_check.SUMMARY_JSON).read_text()) == summary
    (request,) = sent
    assert {d["MetricName"] for d in request["MetricData"]} == {"DriftCheckSkipped"}
    assert all(d["Value"] == 1.0 for d in request["MetricData"])
    _validate("cloudwatch", "PutMetricData", request)

    assert drift_check.main(argv[:-4] + ["--no-publish"]) == 0
    message = (job / "message").read_text()
    assert message.startswith("drift check skipped: too few rows: 20 scored")


def _validate(service: str, operation: str, request: dict[str, Any]) -> None:
    """The request against botocore's model of the operation."""
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model(service)
    validate_parameters(request, model.operation_model(operation).input_shape)


def test_a_scored_versions_summary_has_no_time_window(job: Path, same: pd.DataFrame) -> None:
    """A scoring run's rows are not a time window: no meaningless now-24h in its report."""
    summary = run_on_rows(job, scored_rows(job, same))
    assert (summary["window_start"], summary["window_end"]) == (None, None)


def test_a_row_that_is_not_id_and_features_fails(job: Path) -> None:
    rows = job / "rows"
    rows.mkdir()
    (rows / "part-00000.csv").write_text("r1,1.0,2\n")
    with pytest.raises(drift_check.DriftCheckError, match="part-00000.csv row 1 has 3 columns"):
        run_on_rows(job, rows)


def test_a_category_feature_reaches_the_drift_check_as_its_text(tmp_path: Path) -> None:
    """Batch serving with a category feature: the rows score.py writes (island as quoted text)
    are read back by the drift job as the category's canonical text, missing stays missing."""
    from pipeline_code.monitoring.features import Feature, frame_from_lines
    from pipeline_code.monitoring.scored_rows import read_scored_rows

    (tmp_path / "landed").mkdir()
    (tmp_path / "landed" / "part-0.csv").write_text(
        "id,island,bill\nr0, Biscoe ,39.5\nr1,,40.1\nr2,2,41.0\n"
    )
    schema = {"target": "sex", "features": [{"name": "island", "type": "category"},
                                            {"name": "bill", "type": "float"}]}  # fmt: skip
    score.prepare_scoring(
        tmp_path / "landed", tmp_path / "checked", schema, "id",
        "s3://data/score/penguins/v1/", ARN, "exec0001",
    )  # fmt: skip
    scan = read_scored_rows(tmp_path / "checked" / score.ROWS_OUTPUT, 2)
    frame, invalid = frame_from_lines(
        scan.lines, [Feature("island", "category"), Feature("bill", "float")]
    )
    assert frame["island"].tolist()[0::2] == ["Biscoe", "2"]
    assert pd.isna(frame["island"].tolist()[1])
    assert frame["bill"].tolist() == [39.5, 40.1, 41.0]
    assert invalid == {"island": 0, "bill": 0}
