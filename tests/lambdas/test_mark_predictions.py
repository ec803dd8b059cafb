"""The predictions marker: a Completed scoring transform job -> `_SUCCESS` under its own run's
`predictions/<dataset>/<version>/<model version>/<execution id>/` prefix; a Failed or Stopped
job, an output elsewhere (or above a run prefix) and a malformed event write nothing.

Events have EventBridge's envelope for SageMaker job state changes, and their detail is
DescribeTransformJob's answer, validated against botocore's service model, serialized as the
documented events carry it: timestamps as JSON numbers, epoch milliseconds (the SageMaker
EventBridge examples' `"CreationTime": 1583831889050`; DescribeTransformJob's JSON syntax:
`"TransformEndTime": number`). S3 PutObject goes
through botocore's Stubber (it validates the request and proves nothing else is called).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import ANY, Stubber
from botocore.validate import ParamValidator

from tests.lambda_loader import emf_documents, handler_with, lambda_context, load_lambda_module

pytestmark = pytest.mark.usefixtures("aws_credentials")

marker = load_lambda_module("mark_predictions", "predictions_marker")

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "mlops-dev-data"
JOB = "pipelines-a1b2c3d4e5f6-Score-AbC987xYz"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/{JOB.lower()}"
RUN = "a1b2c3d4e5f6"
OUTPUT = f"s3://{BUCKET}/predictions/transactions/2026-12-07 08:00+v%1/7/{RUN}/"
KEY = f"predictions/transactions/2026-12-07 08:00+v%1/7/{RUN}/_SUCCESS"  # the raw key
CONFIG = marker.MarkerConfig.from_env({"DATA_BUCKET": BUCKET})


def transform_detail(status: str = "Completed", output: str = OUTPUT) -> dict[str, Any]:
    """DescribeTransformJob's answer for a scoring job (botocore validates it below)."""
    return {
        "TransformJobName": JOB,
        "TransformJobArn": JOB_ARN,
        "TransformJobStatus": status,
        "ModelName": "pipelines-a1b2c3d4e5f6-Model-1a2b3c",
        "MaxConcurrentTransforms": 1,
        "MaxPayloadInMB": 6,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://artifacts/pipelines/mlops-dev-scoring/executions/x/Check/rows",
                }
            },
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": output, "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "CreationTime": datetime(2026, 12, 7, 8, 5, tzinfo=UTC),
        "TransformStartTime": datetime(2026, 12, 7, 8, 7, tzinfo=UTC),
        "TransformEndTime": datetime(2026, 12, 7, 8, 15, tzinfo=UTC),
        "DataProcessing": {"InputFilter": "$[1:]", "OutputFilter": "$", "JoinSource": "Input"},
    }


def event(detail: dict[str, Any]) -> dict[str, Any]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("DescribeTransformJob").output_shape
    report = ParamValidator().validate(detail, shape)
    assert not report.has_errors(), report.generate_report()
    as_json = json.loads(json.dumps(detail, default=lambda d: round(d.timestamp() * 1000)))
    return {
        "version": "0",
        "id": "2c2ab0d5-1f6d-4e4a-9d0f-6d2b7c1f0a11",
        "detail-type": "SageMaker Transform Job State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2026-12-07T08:15:02Z",
        "region": REGION,
        "resources": [JOB_ARN],
        "detail": as_json,
    }


@pytest.fixture()
def s3() -> Iterator[Any]:
    client = boto3.client("s3", region_name=REGION)
    with Stubber(client) as stubber:
        client.stubber = stubber  # type: ignore[attr-defined]
        yield client
        stubber.assert_no_pending_responses()


def expect_marker(s3: Any, key: str) -> None:
    s3.stubber.add_response(
        "put_object",
        {"ETag": '"0123"'},
        {"Bucket": BUCKET, "Key": key, "Body": ANY, "ContentType": "application/json"},
    )


def test_a_completed_scoring_job_marks_its_prefix(s3: Any) -> None:
    expect_marker(s3, KEY)
    outcome = marker.mark_completed(s3, CONFIG, marker.parse_event(event(transform_detail())))
    assert (outcome.metric, outcome.key) == ("MarkersWritten", KEY)


def test_a_late_event_of_an_older_run_marks_only_that_runs_prefix(s3: Any) -> None:
    """Two runs of the same version and model: the older job's (late, re-driven) Completed
    event writes into the older run's prefix, never the newer run's."""
    older = OUTPUT.replace(RUN, "0ldrun000001")
    expect_marker(s3, KEY.replace(RUN, "0ldrun000001"))
    outcome = marker.mark_completed(
        s3, CONFIG, marker.parse_event(event(transform_detail(output=older)))
    )
    assert outcome.key == KEY.replace(RUN, "0ldrun000001") != KEY


def test_a_redelivered_event_writes_the_same_marker(s3: Any, monkeypatch: Any) -> None:
    bodies: list[bytes] = []
    s3.meta.events.register(
        "before-parameter-build.s3.PutObject", lambda params, **_: bodies.append(params["Body"])
    )
    job = marker.parse_event(event(transform_detail()))
    for _ in range(2):
        expect_marker(s3, KEY)
        marker.mark_completed(s3, CONFIG, job)
    assert bodies[0] == bodies[1]
    assert json.loads(bodies[0]) == {
        "transform_job": JOB_ARN,
        "model": "pipelines-a1b2c3d4e5f6-Model-1a2b3c",
        "created_at": "2026-12-07T08:05:00.000+00:00",
        "completed_at": "2026-12-07T08:15:00.000+00:00",
    }


@pytest.mark.parametrize("status", ["Failed", "Stopped", "InProgress", "Stopping"])
def test_a_job_that_did_not_complete_publishes_nothing(s3: Any, status: str) -> None:
    outcome = marker.mark_completed(s3, CONFIG, marker.parse_event(event(transform_detail(status))))
    assert outcome.metric == "NotCompleted"  # the Stubber proves no PutObject was made


@pytest.mark.parametrize(
    "output",
    [
        "s3://someone-elses-bucket/predictions/d/v/7/",
        f"s3://{BUCKET}/score/d/v/",
        f"s3://{BUCKET}/predictions/",
        f"s3://{BUCKET}/predictionsX/d/v/7/r/",
        # above a run prefix: a marker there would vouch for every run below it
        f"s3://{BUCKET}/predictions/d/v/7/",
        f"s3://{BUCKET}/predictions/d/v/",
        f"s3://{BUCKET}/predictions/d//7/r/",
        f"s3://{BUCKET}/predictions/d/v/7/r/deeper/",
    ],
)
def test_an_output_outside_predictions_of_the_data_bucket_is_skipped(s3: Any, output: str) -> None:
    job = marker.parse_event(event(transform_detail(output=output)))
    assert marker.mark_completed(s3, CONFIG, job).metric == "Skipped"


def test_the_event_timestamp_is_the_documented_json_number(s3: Any) -> None:
    sent = event(transform_detail())
    assert sent["detail"]["TransformEndTime"] == 1796631300000  # 2026-12-07T08:15:00Z in ms
    assert marker.parse_event(sent).end_time == "2026-12-07T08:15:00.000+00:00"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1796631300, "2026-12-07T08:15:00.000+00:00"),  # epoch seconds
        (1796631300123, "2026-12-07T08:15:00.123+00:00"),
        ("2026-12-07T08:15:00Z", "2026-12-07T08:15:00Z"),  # an ISO string is kept as sent
        (None, None),
        ({"not": "a time"}, None),
    ],
)
def test_event_timestamps_are_written_as_iso_8601(value: Any, expected: str | None) -> None:
    assert marker.timestamp(value) == expected


@pytest.mark.parametrize(
    "bad",
    [
        {"detail-type": "SageMaker Training Job State Change"},
        {"source": "my.app"},
        {"detail": {"TransformJobName": JOB}},
        {"detail": None},
    ],
)
def test_a_malformed_event_is_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(marker.InvalidEventError):
        marker.parse_event({**event(transform_detail()), **bad})


def test_the_handler_writes_the_marker_and_counts_it(
    s3: Any, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = handler_with("mark_predictions", monkeypatch, {"DATA_BUCKET": BUCKET}, s3=s3)
    expect_marker(s3, KEY)
    context = lambda_context("mark-predictions", REGION, ACCOUNT)
    result = handler.lambda_handler(event(transform_detail()), context)
    assert result["outcome"] == "MarkersWritten"
    (document,) = emf_documents(capsys.readouterr().out)
    assert document["MarkersWritten"] == [1.0] or document["MarkersWritten"] == 1.0
    invalid = handler.lambda_handler({"detail-type": "nope"}, context)
    assert invalid["outcome"] == "InvalidEvents"
