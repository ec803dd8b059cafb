"""Drift in batch serving: a Completed scoring transform job -> the drift check of that run's rows
against the baseline of the package version that scored them, under the EndpointName the
Monitoring stack's drift alarm watches.

Events carry EventBridge's envelope with DescribeTransformJob's answer as detail, validated
against botocore's service model and serialized as AWS's documented SageMaker events are
(timestamps as epoch milliseconds): the helpers of test_mark_predictions, the other consumer of
the same event. SageMaker calls go through botocore's Stubber (request and response validated
against the service model; nothing else may be called), and the processing request is checked
against every maximum and pattern of the model (tests/monitoring/service_model.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from pipeline_code.monitoring import drift_check
from tests.lambda_loader import emf_documents, handler_with
from tests.lambdas import test_mark_predictions as transform_events
from tests.lambdas.test_start_drift_job import (
    ACCOUNT,
    CONTEXT,
    GROUP,
    IMAGE,
    KEY_ARN,
    REGION,
    ROLE_ARN,
    VALID_ENV,
    package,
    starter,
)
from tests.monitoring.service_model import violations

pytestmark = pytest.mark.usefixtures("aws_credentials")

WATCHED = "mlops-loop-dev-scoring"  # the EndpointName dimension of batch mode's drift metrics
BATCH_ENV = {**VALID_ENV, "ENDPOINT_NAME": WATCHED, "MODEL_PACKAGE_GROUP": GROUP}
CONFIG = starter.StarterConfig.from_env(BATCH_ENV)
TRANSFORM_JOB = transform_events.JOB
PACKAGE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/7"
ROWS = transform_events.transform_detail()["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
JOB_NAME = f"drift-{TRANSFORM_JOB}"
BASELINE = "s3://mlops-loop-dev-artifacts/pipelines/exec-1/prepare/baseline/"


def scoring_event(status: str = "Completed", output: str | None = None) -> dict[str, Any]:
    detail = transform_events.transform_detail(
        status=status, output=output or transform_events.OUTPUT
    )
    if status == "Failed":
        detail["FailureReason"] = "ClientError: see the job's logs"
    return transform_events.event(detail)


@pytest.fixture()
def sagemaker() -> Any:
    import boto3

    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        client.stubber = stubber  # type: ignore[attr-defined]
        yield client
        stubber.assert_no_pending_responses()


def expect_package(client: Any, **extra: Any) -> None:
    client.stubber.add_response(
        "describe_model_package", package(**extra), {"ModelPackageName": PACKAGE_ARN}
    )


def test_a_scoring_run_names_its_rows_version_and_package() -> None:
    scored = starter.parse_transform_event(scoring_event(), GROUP)

    assert scored.transform_job_name == TRANSFORM_JOB
    assert scored.rows_s3_uri == ROWS  # the Check step's rows: what the model scored
    assert scored.dataset_version == "transactions/2026-12-07 08:00+v%1"  # keys as they are
    assert (scored.model_version, scored.model_package_arn) == ("7", PACKAGE_ARN)


def test_starts_the_check_of_the_scored_rows_against_the_scoring_package(sagemaker: Any) -> None:
    expect_package(sagemaker)
    sagemaker.stubber.add_response(
        "create_processing_job",
        {"ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{JOB_NAME}"},
        {
            "ProcessingJobName": JOB_NAME,
            "ProcessingInputs": [
                {
                    "InputName": "scored",
                    "S3Input": {
                        "S3Uri": ROWS,
                        "LocalPath": "/opt/ml/processing/input/scored",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                        "S3DataDistributionType": "FullyReplicated",
                    },
                },
                {
                    "InputName": "baseline",
                    "S3Input": {
                        "S3Uri": BASELINE,
                        "LocalPath": "/opt/ml/processing/input/baseline",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                        "S3DataDistributionType": "FullyReplicated",
                    },
                },
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "report",
                        "S3Output": {
                            "S3Uri": f"s3://mlops-loop-dev-artifacts/monitoring/{WATCHED}/"
                            f"{TRANSFORM_JOB}/",
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ],
                "KmsKeyId": KEY_ARN,
            },
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "VolumeSizeInGB": 20,
                    "VolumeKmsKeyId": KEY_ARN,
                }
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "AppSpecification": {
                "ImageUri": IMAGE,
                "ContainerArguments": [
                    "--scored-rows-dir",
                    "/opt/ml/processing/input/scored",
                    "--endpoint-name",
                    WATCHED,
                    "--model-version",
                    "7",
                    "--model-package-arn",
                    PACKAGE_ARN,
                    "--drift-share-threshold",
                    "0.3",
                    "--missing-share-threshold",
                    "0.1",
                    "--min-rows",
                    "100",
                    "--metrics-namespace",
                    "MLOps/Drift",
                ],  # fmt: skip
            },
            "NetworkConfig": {
                "EnableNetworkIsolation": False,
                "EnableInterContainerTrafficEncryption": True,
            },
            "Environment": {"AWS_DEFAULT_REGION": REGION, "DO_NOT_TRACK": "1"},
            "RoleArn": ROLE_ARN,
            "Tags": [
                {"Key": "project", "Value": "mlops-loop"},
                {"Key": "environment", "Value": "dev"},
                {"Key": "transform-job", "Value": TRANSFORM_JOB},
                {"Key": "model-package-version", "Value": "7"},
            ],
        },
    )
    scored = starter.parse_transform_event(scoring_event(), GROUP)

    result = starter.start_scored_drift_job(sagemaker, CONFIG, scored, REGION)

    assert (result.status, result.metric, result.job_name) == (
        "started",
        "DriftJobsStarted",
        JOB_NAME,
    )
    assert result.model_package_arn == PACKAGE_ARN


def test_the_job_takes_the_arguments_and_the_request_fits_the_service_model() -> None:
    scored = starter.parse_transform_event(scoring_event(), GROUP)
    request = starter.scored_rows_request(CONFIG, scored, BASELINE, JOB_NAME, REGION)

    args = drift_check.build_parser().parse_args(request["AppSpecification"]["ContainerArguments"])

    assert str(args.scored_rows_dir) == request["ProcessingInputs"][0]["S3Input"]["LocalPath"]
    assert str(args.baseline_dir) == request["ProcessingInputs"][1]["S3Input"]["LocalPath"]
    # the same metric series the Monitoring stack's drift alarm and dashboard read
    assert (args.endpoint_name, args.model_version) == (WATCHED, "7")
    assert args.no_publish is False
    assert violations("sagemaker", "CreateProcessingJob", request) == []


def test_a_redelivered_event_finds_the_check_it_started(sagemaker: Any) -> None:
    expect_package(sagemaker)
    sagemaker.stubber.add_client_error(
        "create_processing_job",
        service_error_code="ValidationException",
        service_message="Job name must be unique within an AWS account and region",
    )
    sagemaker.stubber.add_response(
        "describe_processing_job",
        {
            "ProcessingJobName": JOB_NAME,
            "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{JOB_NAME}",
            "ProcessingJobStatus": "InProgress",
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "VolumeSizeInGB": 20,
                }
            },
            "AppSpecification": {"ImageUri": IMAGE},
            "CreationTime": datetime(2026, 12, 7, 8, 16, tzinfo=UTC),
        },
        {"ProcessingJobName": JOB_NAME},
    )
    scored = starter.parse_transform_event(scoring_event(), GROUP)

    result = starter.start_scored_drift_job(sagemaker, CONFIG, scored, REGION)

    assert (result.status, result.metric) == ("already_started", "DriftJobsAlreadyStarted")


def test_a_package_without_baseline_raises_for_the_retries_and_dead_letters(
    sagemaker: Any,
) -> None:
    expect_package(sagemaker, statistics=None)
    scored = starter.parse_transform_event(scoring_event(), GROUP)

    with pytest.raises(starter.ServedModelError, match="no drift baseline"):
        starter.start_scored_drift_job(sagemaker, CONFIG, scored, REGION)


def test_long_transform_job_names_give_unique_valid_job_names() -> None:
    first, second = "pipelines-" + "a" * 50 + "-Score-1", "pipelines-" + "a" * 50 + "-Score-2"
    names = {starter.scored_job_name(first), starter.scored_job_name(second)}
    assert len(names) == 2
    assert all(len(n) <= 63 and n.startswith("drift-") for n in names)


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        (scoring_event(status="Failed"), "is Failed, not Completed"),
        (scoring_event(status="Stopped"), "is Stopped, not Completed"),
        (
            scoring_event(output="s3://mlops-dev-data/predictions/transactions/v1/7/"),
            "not a scoring",
        ),
        (
            scoring_event(output="s3://mlops-dev-data/predictions/transactions/v1/latest/run/"),
            "not a scoring",
        ),
        (scoring_event(output="s3://mlops-dev-data/elsewhere/a/b/7/run/"), "not a scoring"),
        ({**scoring_event(), "source": "my.app"}, "from aws.sagemaker"),
        ({**scoring_event(), "detail": None}, "no detail"),
    ],
)
def test_anything_but_a_completed_scoring_run_is_rejected(event: Any, needle: str) -> None:
    with pytest.raises(starter.InvalidEventError, match=needle):
        starter.parse_transform_event(event, GROUP)


def test_without_the_package_group_a_scoring_run_cannot_be_checked(sagemaker: Any) -> None:
    config = starter.StarterConfig.from_env(VALID_ENV)
    scored = starter.parse_transform_event(scoring_event(), GROUP)

    with pytest.raises(starter.ConfigError, match="MODEL_PACKAGE_GROUP"):
        starter.start_scored_drift_job(sagemaker, config, scored, REGION)


def test_a_bad_package_group_names_the_variable() -> None:
    with pytest.raises(starter.ConfigError, match="MODEL_PACKAGE_GROUP='my group'"):
        starter.StarterConfig.from_env({**BATCH_ENV, "MODEL_PACKAGE_GROUP": "my group"})


@pytest.fixture()
def handler(sagemaker: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return handler_with("start_drift_job", monkeypatch, BATCH_ENV, sagemaker=sagemaker)


def test_the_handler_starts_the_check_of_a_scoring_run(
    handler: Any, sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    expect_package(sagemaker)
    sagemaker.stubber.add_response(
        "create_processing_job",
        {"ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{JOB_NAME}"},
    )

    result = handler.lambda_handler(scoring_event(), CONTEXT)

    assert (result["status"], result["job_name"]) == ("started", JOB_NAME)
    documents = emf_documents(capsys.readouterr().out)
    assert [doc.get("DriftJobsStarted") for doc in documents] == [[1.0]]


def test_the_handler_rejects_a_failed_run_without_calling_aws(
    handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    result = handler.lambda_handler(scoring_event(status="Failed"), CONTEXT)

    assert result["status"] == "rejected"
    assert [doc.get("InvalidEvents") for doc in emf_documents(capsys.readouterr().out)] == [[1.0]]
