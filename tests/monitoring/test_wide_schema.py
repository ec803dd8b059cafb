"""200 features end to end, offline: the real Prepare writes the baseline folder, the starter
builds the job's request for the served package (checked against every limit of SageMaker's
CreateProcessingJob model), and the job, given exactly those arguments, checks 200-feature
captured traffic with value drift and missing values in it.

Before the features came from the baseline folder, this schema was two ContainerArguments per
feature (416 items where SageMaker takes 100) and the starter refused more than 41 features.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.stub import Stubber

from pipeline_code.monitoring import drift_check
from pipeline_code.steps import load
from tests.lambdas.test_start_drift_job import CONFIG, REGION, WINDOW, package, serve, starter
from tests.monitoring.capture_helpers import write_capture
from tests.monitoring.service_model import violations

pytestmark = pytest.mark.usefixtures("aws_credentials")

TYPES = ["float"] * 120 + ["int"] * 50 + ["bool"] * 30
FEATURES = [(f"feature_{i:03d}", kind) for i, kind in enumerate(TYPES)]
NAMES = [name for name, _ in FEATURES]
# What the window does to some features: value shifts, and values that stop arriving.
SHIFTED = {*NAMES[0:10], *NAMES[120:125], *NAMES[170:173]}
GONE = {"feature_050": 0.92, "feature_130": 1.0, "feature_175": 0.95}
STATISTICS = "s3://mlops-loop-dev-artifacts/pipelines/exec-1/prepare/baseline/statistics.json"


def features_frame(rows: int, seed: int, drift: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for name, kind in FEATURES:
        shift = drift and name in SHIFTED
        if kind == "float":
            values = rng.normal(1.5 if shift else 0.0, 1.0, rows)
        elif kind == "int":
            values = rng.integers(5 if shift else 0, 20, rows).astype(float)
        else:
            values = (rng.random(rows) < (0.8 if shift else 0.3)).astype(float)
        columns[name] = values
    frame = pd.DataFrame(columns)
    frame.loc[rng.random(rows) < 0.02, "feature_011"] = np.nan  # gaps the baseline has too
    if drift:
        for name, share in GONE.items():
            frame.loc[frame.index[: round(share * rows)], name] = np.nan
    return frame


@pytest.fixture(scope="module")
def baseline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepare's output for a 200-feature dataset; its baseline/ is what the package registers."""
    root = tmp_path_factory.mktemp("prepare")
    data = features_frame(8000, seed=1)
    data.insert(0, "label", (data["feature_000"] + data["feature_001"] > 1.5).astype(int))
    (root / "input").mkdir()
    data.to_csv(root / "input" / "part-0.csv", index=False)
    schema = {
        "target": "label",
        "features": [{"name": n, "type": t} for n, t in FEATURES],
        "max_missing_fraction": 0.05,
    }
    argv = ["--input-dir", str(root / "input"), "--output-dir", str(root / "output")]
    assert load("prepare").main([*argv, "--schema", json.dumps(schema)]) == 0
    return root / "output" / "baseline"


def started_request() -> dict[str, Any]:
    """The CreateProcessingJob request the starter sends for the served package."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sent: dict[str, Any] = {}
    sagemaker.meta.events.register(
        "before-parameter-build.sagemaker.CreateProcessingJob",
        lambda params, **_: sent.update(params),
    )
    with Stubber(sagemaker) as stubber:
        sagemaker.stubber = stubber  # type: ignore[attr-defined]
        serve(sagemaker, package=package(STATISTICS))
        stubber.add_response("create_processing_job", {"ProcessingJobArn": "arn:x"})
        assert starter.start_drift_job(sagemaker, CONFIG, WINDOW, REGION).status == "started"
        stubber.assert_no_pending_responses()
    return sent


def test_200_features_end_to_end(baseline_dir: Path, tmp_path: Path, cloudwatch: Any) -> None:
    with (baseline_dir / "baseline.csv").open() as handle:
        assert next(csv.reader(handle)) == NAMES  # Prepare keeps the schema's order
    request = started_request()
    arguments = request["AppSpecification"]["ContainerArguments"]
    assert violations("sagemaker", "CreateProcessingJob", request) == []
    assert len(arguments) <= 20
    assert request["ProcessingInputs"][1]["S3Input"]["S3Uri"] == STATISTICS.rsplit("/", 1)[0] + "/"

    traffic = features_frame(1000, seed=2, drift=True)
    start = pd.Timestamp(WINDOW.start).to_pydatetime()
    write_capture(tmp_path / "capture", traffic, start=start)
    local = [
        *("--capture-dir", str(tmp_path / "capture"), "--baseline-dir", str(baseline_dir)),
        *("--output-dir", str(tmp_path / "output"), "--exit-message-file", str(tmp_path / "msg")),
    ]
    args = drift_check.build_parser().parse_args([*arguments, *local])

    summary = drift_check.run(args, cloudwatch=cloudwatch)

    features = summary["features"]
    assert [(f["name"], f["type"]) for f in features] == FEATURES
    drifted = {f["name"] for f in features if f["drifted"]}
    assert SHIFTED | set(GONE) <= drifted
    # Value tests on 1000 rows flag a few untouched features by chance (Wasserstein / Jensen-
    # Shannon at 0.1): a share of features is what the alarm watches, not any single verdict.
    by_chance = drifted - SHIFTED - set(GONE)
    assert len(by_chance) <= 10, by_chance
    assert summary["drifted_feature_share"] == len(drifted) / 200
    by_name = {f["name"]: f for f in features}
    for name, share in GONE.items():
        assert by_name[name]["current_missing_share"] == share
        assert by_name[name]["missing_drifted"] and by_name[name]["score"] is None
    assert by_name["feature_011"]["missing_drifted"] is False
    assert not any(by_name[name]["missing_drifted"] for name in by_chance)
    assert summary["rows_analysed"] == 1000
    # 3 dataset metrics + 3 per feature (no score for the 3 untested), with and without version
    assert summary["metrics"]["published"] == 2 * (3 + 3 * 200 - 3)
