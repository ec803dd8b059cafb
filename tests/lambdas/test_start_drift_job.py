"""Drift-job starter: scheduler input -> served model -> CreateProcessingJob.

Every SageMaker call goes through botocore's Stubber, which validates requests and responses
against the real service model; an activated Stubber with nothing queued fails on any further
call, which is how "nothing else was called" is proven. botocore checks only minimums, so the
job's request is also checked against every maximum and pattern of the model
(tests/monitoring/service_model.py); tests/monitoring/test_wide_schema.py runs the starter and
the job end to end on 200 features.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from pipeline_code.monitoring import drift_check
from tests.lambda_loader import emf_documents, handler_with, lambda_context, load_lambda_module
from tests.monitoring.service_model import violations

pytestmark = pytest.mark.usefixtures("aws_credentials")

starter = load_lambda_module("start_drift_job", "drift_job_starter")

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ENDPOINT = "mlops-loop-dev-endpoint"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
GROUP = "mlops-loop-dev-models"
PACKAGE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/7"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlops-loop-dev-drift-job"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/cdk-hnb659fds-container-assets:abc123"
STATISTICS = "s3://mlops-loop-dev-artifacts/pipelines/exec-1/prepare/baseline/statistics.json"
CREATED = datetime(2025, 11, 20, 9, 30, tzinfo=UTC)
SCHEDULED = datetime(2025, 11, 21, 6, 0, tzinfo=UTC)

VALID_ENV = {
    "ENDPOINT_NAME": ENDPOINT,
    "DRIFT_IMAGE_URI": IMAGE,
    "JOB_ROLE_ARN": ROLE_ARN,
    "ARTIFACT_BUCKET": "mlops-loop-dev-artifacts",
    "KMS_KEY_ARN": KEY_ARN,
    "PROJECT_NAME": "mlops-loop",
    "ENVIRONMENT_NAME": "dev",
}
CONFIG = starter.StarterConfig.from_env(VALID_ENV)
WINDOW = starter.parse_event(
    {"window_hours": 24, "scheduled_time": "2025-11-21T06:00:00Z"}, CREATED
)


@pytest.fixture()
def sagemaker() -> Iterator[Any]:
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        client.stubber = stubber  # type: ignore[attr-defined]
        yield client
        stubber.assert_no_pending_responses()


def endpoint(
    status: str = "InService", capture: bool = True, weights: dict[str, float] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "EndpointName": ENDPOINT,
        "EndpointArn": ENDPOINT_ARN,
        "EndpointConfigName": "Config-abc",
        "EndpointStatus": status,
        "CreationTime": CREATED,
        "LastModifiedTime": CREATED,
        "ProductionVariants": [
            {"VariantName": name, "CurrentWeight": weight}
            for name, weight in (weights or {"AllTraffic": 1.0}).items()
        ],
    }
    if capture:
        response["DataCaptureConfig"] = {
            "EnableCapture": True,
            "CaptureStatus": "Started",
            "CurrentSamplingPercentage": 20,
            "DestinationS3Uri": "s3://mlops-loop-dev-data/capture",
            "KmsKeyId": KEY_ARN,
        }
    return response


def endpoint_config(models: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "EndpointConfigName": "Config-abc",
        "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/config-abc",
        "ProductionVariants": [
            {"VariantName": variant, "ModelName": model, "InitialVariantWeight": 1.0}
            for variant, model in (models or {"AllTraffic": "Model-7"}).items()
        ],
        "CreationTime": CREATED,
    }


def model(name: str = "Model-7", package: str | None = PACKAGE_ARN) -> dict[str, Any]:
    container = {"ModelPackageName": package} if package else {"Image": IMAGE}
    return {
        "ModelName": name,
        "ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{name.lower()}",
        "CreationTime": CREATED,
        "PrimaryContainer": container,
    }


def package(statistics: str | None = STATISTICS, **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = {
        "ModelPackageName": GROUP,
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": 7,
        "ModelPackageArn": PACKAGE_ARN,
        "CreationTime": CREATED,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "Approved",
        **extra,
    }
    if statistics:
        response["DriftCheckBaselines"] = {
            "ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": statistics}
            }
        }
    return response


def serve(client: Any, **overrides: Any) -> None:
    """Queue the four describe calls that lead from the endpoint to its model package."""
    stub = client.stubber
    stub.add_response(
        "describe_endpoint", overrides.get("endpoint", endpoint()), {"EndpointName": ENDPOINT}
    )
    stub.add_response(
        "describe_endpoint_config", endpoint_config(), {"EndpointConfigName": "Config-abc"}
    )
    stub.add_response("describe_model", overrides.get("model", model()), {"ModelName": "Model-7"})
    stub.add_response(
        "describe_model_package",
        overrides.get("package", package()),
        {"ModelPackageName": PACKAGE_ARN},
    )


def expected_request(
    baseline: str = "s3://mlops-loop-dev-artifacts/pipelines/exec-1/prepare/baseline/",
) -> dict[str, Any]:
    return {
        "ProcessingJobName": "drift-mlops-loop-dev-endpoint-20251121060000",
        "ProcessingInputs": [
            {
                "InputName": "capture",
                "S3Input": {
                    "S3Uri": f"s3://mlops-loop-dev-data/capture/{ENDPOINT}/",
                    "LocalPath": "/opt/ml/processing/input/capture",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            },
            {
                "InputName": "baseline",
                "S3Input": {
                    "S3Uri": baseline,
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
                        "S3Uri": (
                            f"s3://mlops-loop-dev-artifacts/monitoring/{ENDPOINT}/20251121T060000Z/"
                        ),
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
                "--window-start",
                "2025-11-20T06:00:00Z",
                "--window-end",
                "2025-11-21T06:00:00Z",
                "--endpoint-name",
                ENDPOINT,
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
            {"Key": "endpoint", "Value": ENDPOINT},
            {"Key": "model-package-version", "Value": "7"},
        ],
    }


JOB_NAME = "drift-mlops-loop-dev-endpoint-20251121060000"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{JOB_NAME}"


# --- starting ----------------------------------------------------------------------------------


def test_starts_the_job_for_the_served_model(sagemaker: Any) -> None:
    serve(sagemaker)
    sagemaker.stubber.add_response(
        "create_processing_job", {"ProcessingJobArn": JOB_ARN}, expected_request()
    )

    result = starter.start_drift_job(sagemaker, CONFIG, WINDOW, REGION)

    assert result.status == "started" and result.metric == "DriftJobsStarted"
    assert result.job_name == JOB_NAME
    assert (result.window_start, result.window_end) == (
        "2025-11-20T06:00:00Z",
        "2025-11-21T06:00:00Z",
    )
    assert result.model_package_arn == PACKAGE_ARN


def test_the_job_accepts_the_arguments_it_is_given() -> None:
    # The contract between the starter and drift_check.py: its parser takes every argument.
    served = starter.ServedModel(
        ENDPOINT, "s3://d/capture/e/", "Model-7", PACKAGE_ARN, "7", "s3://a/baseline/"
    )
    config = starter.StarterConfig.from_env(
        {**VALID_ENV, "STATTEST": "psi", "MIN_ROWS": "500", "MISSING_SHARE_THRESHOLD": "0.25"}
    )
    request = starter.processing_job_request(config, served, WINDOW, "drift-x", REGION)

    args = drift_check.build_parser().parse_args(request["AppSpecification"]["ContainerArguments"])

    assert args.schema is None  # the job reads the features from the baseline folder
    assert (args.window_start, args.window_end) == (WINDOW.start, WINDOW.end)
    assert (args.endpoint_name, args.model_version, args.min_rows) == (ENDPOINT, "7", 500)
    assert (args.drift_share_threshold, args.missing_share_threshold) == (0.3, 0.25)
    assert (args.stattest, args.metrics_namespace, args.no_publish) == ("psi", "MLOps/Drift", False)
    assert args.capture_dir == drift_check.DEFAULT_CAPTURE_DIR
    assert str(args.capture_dir) == request["ProcessingInputs"][0]["S3Input"]["LocalPath"]
    assert str(args.baseline_dir) == request["ProcessingInputs"][1]["S3Input"]["LocalPath"]
    assert (
        str(args.output_dir)
        == (request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"])
    )
    assert violations("sagemaker", "CreateProcessingJob", request) == []


def test_in_vpc_mode_the_job_runs_in_the_subnets(sagemaker: Any) -> None:
    subnets, groups = ["subnet-0a1b2c3d", "subnet-0e1f2a3b"], ["sg-0a1b2c3d4e5f60718"]
    config = starter.StarterConfig.from_env(
        {**VALID_ENV, "VPC_SUBNETS": ",".join(subnets), "VPC_SECURITY_GROUP_IDS": groups[0]}
    )
    serve(sagemaker)
    request = expected_request()
    request["NetworkConfig"] = {
        **request["NetworkConfig"],
        "VpcConfig": {"Subnets": subnets, "SecurityGroupIds": groups},
    }
    # the Stubber validates the request against botocore's CreateProcessingJob input shape
    sagemaker.stubber.add_response("create_processing_job", {"ProcessingJobArn": JOB_ARN}, request)

    result = starter.start_drift_job(sagemaker, config, WINDOW, REGION)

    assert result.status == "started"
    assert violations("sagemaker", "CreateProcessingJob", request) == []
    assert request["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True


def test_baseline_from_customer_metadata_wins(sagemaker: Any) -> None:
    explicit = "s3://mlops-loop-dev-artifacts/baselines/v7"
    serve(
        sagemaker,
        package=package(CustomerMetadataProperties={"baseline_s3_uri": explicit}),
    )
    sagemaker.stubber.add_response(
        "create_processing_job", {"ProcessingJobArn": JOB_ARN}, expected_request(explicit + "/")
    )

    assert starter.start_drift_job(sagemaker, CONFIG, WINDOW, REGION).status == "started"


def test_the_variant_with_the_most_traffic_is_checked(sagemaker: Any) -> None:
    stub = sagemaker.stubber
    stub.add_response(
        "describe_endpoint",
        endpoint(weights={"Blue": 0.1, "Green": 0.9}),
        {"EndpointName": ENDPOINT},
    )
    stub.add_response(
        "describe_endpoint_config",
        endpoint_config({"Blue": "Model-6", "Green": "Model-7"}),
        {"EndpointConfigName": "Config-abc"},
    )
    stub.add_response("describe_model", model("Model-7"), {"ModelName": "Model-7"})
    stub.add_response("describe_model_package", package(), {"ModelPackageName": PACKAGE_ARN})

    served = starter.find_served_model(sagemaker, ENDPOINT)

    assert isinstance(served, starter.ServedModel)
    assert (served.model_name, served.model_version) == ("Model-7", "7")


def test_a_retry_finds_the_job_it_already_started(sagemaker: Any) -> None:
    serve(sagemaker)
    sagemaker.stubber.add_client_error(
        "create_processing_job",
        service_error_code="ResourceInUse",
        service_message="Job name must be unique within an AWS account and region",
        expected_params=expected_request(),
    )
    sagemaker.stubber.add_response(
        "describe_processing_job",
        {
            "ProcessingJobName": expected_request()["ProcessingJobName"],
            "ProcessingJobArn": JOB_ARN,
            "ProcessingJobStatus": "InProgress",
            "CreationTime": CREATED,
            "ProcessingResources": expected_request()["ProcessingResources"],
            "AppSpecification": {"ImageUri": IMAGE},
        },
        {"ProcessingJobName": expected_request()["ProcessingJobName"]},
    )

    result = starter.start_drift_job(sagemaker, CONFIG, WINDOW, REGION)

    assert result.status == "already_started" and result.metric == "DriftJobsAlreadyStarted"
    assert "ResourceInUse" in result.message


def test_other_create_errors_raise(sagemaker: Any) -> None:
    serve(sagemaker)
    sagemaker.stubber.add_client_error(
        "create_processing_job",
        service_error_code="ResourceLimitExceeded",
        service_message="The account-level service limit 'ml.m5.large for processing job usage'",
    )
    sagemaker.stubber.add_client_error(
        "describe_processing_job",
        service_error_code="ValidationException",
        service_message="Could not find requested job with name drift-...",
    )

    with pytest.raises(ClientError, match="ResourceLimitExceeded"):
        starter.start_drift_job(sagemaker, CONFIG, WINDOW, REGION)


# --- nothing to check --------------------------------------------------------------------------


def test_no_endpoint_yet_skips_without_error(sagemaker: Any) -> None:
    sagemaker.stubber.add_client_error(
        "describe_endpoint",
        service_error_code="ValidationException",
        service_message=f'Could not find endpoint "{ENDPOINT}".',
        expected_params={"EndpointName": ENDPOINT},
    )

    result = starter.start_drift_job(sagemaker, CONFIG, WINDOW, REGION)

    assert (result.status, result.metric) == ("skipped", "SkippedNoEndpoint")
    assert result.job_name is None


@pytest.mark.parametrize(
    ("response", "metric"),
    [
        (endpoint(status="Creating"), "SkippedEndpointNotServing"),
        (endpoint(status="Failed"), "SkippedEndpointNotServing"),
        (endpoint(capture=False), "SkippedNoCapture"),
    ],
)
def test_endpoint_without_traffic_to_check_skips(
    sagemaker: Any, response: dict[str, Any], metric: str
) -> None:
    sagemaker.stubber.add_response("describe_endpoint", response, {"EndpointName": ENDPOINT})

    result = starter.start_drift_job(sagemaker, CONFIG, WINDOW, REGION)

    assert (result.status, result.metric) == ("skipped", metric)


def test_other_describe_errors_raise(sagemaker: Any) -> None:
    sagemaker.stubber.add_client_error(
        "describe_endpoint", service_error_code="AccessDeniedException", service_message="no"
    )

    with pytest.raises(ClientError, match="AccessDenied"):
        starter.start_drift_job(sagemaker, CONFIG, WINDOW, REGION)


# --- served model without what the job needs --------------------------------------------------


def test_model_not_built_from_a_package_raises(sagemaker: Any) -> None:
    stub = sagemaker.stubber
    stub.add_response("describe_endpoint", endpoint(), {"EndpointName": ENDPOINT})
    stub.add_response(
        "describe_endpoint_config", endpoint_config(), {"EndpointConfigName": "Config-abc"}
    )
    stub.add_response("describe_model", model(package=None), {"ModelName": "Model-7"})

    with pytest.raises(starter.ServedModelError, match="was not created from a model package"):
        starter.start_drift_job(sagemaker, CONFIG, WINDOW, REGION)


def test_package_without_baseline_raises(sagemaker: Any) -> None:
    serve(sagemaker, package=package(statistics=None))

    with pytest.raises(
        starter.ServedModelError,
        match=f"model package {re.escape(PACKAGE_ARN)} has no drift baseline",
    ):
        starter.start_drift_job(sagemaker, CONFIG, WINDOW, REGION)


# --- names, windows, configuration -------------------------------------------------------------


def test_job_names_fit_sagemaker_rules() -> None:
    pattern = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    long_a, long_b = "a" * 60 + "-one", "a" * 60 + "-two"

    names = [starter.job_name(e, SCHEDULED) for e in (ENDPOINT, long_a, long_b, "x" * 63)]

    assert all(len(n) <= 63 and pattern.match(n) for n in names), names
    assert names[1] != names[2]  # shortened names keep a hash of the full endpoint name
    assert names[0] == "drift-mlops-loop-dev-endpoint-20251121060000"


def test_window_ends_at_the_scheduled_time() -> None:
    window = starter.parse_event(
        {"window_hours": 6, "scheduled_time": "2025-11-21T06:00:00Z"}, CREATED
    )
    assert (window.start, window.end) == (datetime(2025, 11, 21, 0, 0, tzinfo=UTC), SCHEDULED)

    default = starter.parse_event({}, datetime(2025, 11, 21, 6, 0, 12, 345, tzinfo=UTC))
    assert default.end == datetime(2025, 11, 21, 6, 0, 12, tzinfo=UTC)
    assert default.end - default.start == timedelta(hours=24)


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        ("24", "expected a JSON object, got str"),
        ({"window_hours": "24"}, "window_hours='24' is not a number"),
        ({"window_hours": 0}, "window_hours=0 is outside [1, 336]"),
        ({"window_hours": True}, "is not a number"),
        ({"scheduled_time": "<aws.scheduler.scheduled-time>"}, "is not an ISO-8601 time"),
    ],
)
def test_malformed_scheduler_input_is_rejected(event: Any, needle: str) -> None:
    with pytest.raises(starter.InvalidEventError) as raised:
        starter.parse_event(event, CREATED)

    assert needle in str(raised.value)


def test_config_defaults() -> None:
    assert (CONFIG.instance_type, CONFIG.volume_size_gb, CONFIG.max_runtime_seconds) == (
        "ml.m5.large",
        20,
        3600,
    )
    assert (CONFIG.drift_share_threshold, CONFIG.min_rows, CONFIG.stattest) == (0.3, 100, None)
    assert CONFIG.missing_share_threshold == 0.1


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"ENDPOINT_NAME": ""}, "ENDPOINT_NAME='' is not allowed"),
        (
            {"JOB_ROLE_ARN": "my-role"},
            "JOB_ROLE_ARN='my-role' is not allowed: set it to an IAM role",
        ),
        ({"KMS_KEY_ARN": "alias/x"}, "KMS_KEY_ARN='alias/x' is not allowed"),
        ({"MISSING_SHARE_THRESHOLD": "0"}, "MISSING_SHARE_THRESHOLD='0' is not allowed"),
        ({"MIN_ROWS": "many"}, "MIN_ROWS='many' is not allowed: set it to an integer"),
        ({"DRIFT_SHARE_THRESHOLD": "2"}, "DRIFT_SHARE_THRESHOLD='2' is not allowed"),
        ({"INSTANCE_TYPE": "m5.large"}, "INSTANCE_TYPE='m5.large' is not allowed"),
        (
            {"VPC_SUBNETS": "subnet-xyz", "VPC_SECURITY_GROUP_IDS": "sg-0a1b2c3d"},
            "VPC_SUBNETS='subnet-xyz' is not allowed",
        ),
        (
            {"VPC_SUBNETS": "subnet-0a1b2c3d"},
            "VPC_SUBNETS and VPC_SECURITY_GROUP_IDS are not allowed one without the other",
        ),
    ],
)
def test_bad_configuration_names_the_variable(change: dict[str, str], needle: str) -> None:
    with pytest.raises(starter.ConfigError) as raised:
        starter.StarterConfig.from_env({**VALID_ENV, **change})

    assert needle in str(raised.value)


# --- handler -----------------------------------------------------------------------------------


CONTEXT = lambda_context("start-drift-job", REGION, ACCOUNT)


@pytest.fixture()
def handler(sagemaker: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return handler_with("start_drift_job", monkeypatch, VALID_ENV, sagemaker=sagemaker)


def test_handler_counts_a_skip_and_returns_quietly(
    handler: Any, sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sagemaker.stubber.add_client_error(
        "describe_endpoint",
        service_error_code="ValidationException",
        service_message=f'Could not find endpoint "{ENDPOINT}".',
    )

    result = handler.lambda_handler({"window_hours": 24}, CONTEXT)

    assert result["status"] == "skipped"
    documents = emf_documents(capsys.readouterr().out)
    assert [doc.get("SkippedNoEndpoint") for doc in documents] == [[1.0]]


def test_handler_starts_the_job(
    handler: Any, sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(sagemaker)
    sagemaker.stubber.add_response(
        "create_processing_job", {"ProcessingJobArn": JOB_ARN}, expected_request()
    )

    result = handler.lambda_handler(
        {"window_hours": 24, "scheduled_time": "2025-11-21T06:00:00Z"}, CONTEXT
    )

    assert result["status"] == "started"
    assert result["job_name"] == JOB_NAME
    assert [doc.get("DriftJobsStarted") for doc in emf_documents(capsys.readouterr().out)] == [
        [1.0]
    ]


def test_handler_rejects_malformed_input_without_calling_aws(
    handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    result = handler.lambda_handler({"window_hours": -1}, CONTEXT)

    assert result == {"status": "rejected", "message": "window_hours=-1 is outside [1, 336]"}
    assert [doc.get("InvalidEvents") for doc in emf_documents(capsys.readouterr().out)] == [[1.0]]
