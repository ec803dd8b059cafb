"""Fixtures for the operator CLI: moto for what it implements (SageMaker model packages, S3,
STS, EventBridge PutEvents), botocore Stubber for the rest (CloudFormation, Lambda, pipeline
execution steps, job descriptions); Stubber checks every request against the service model."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner, Result

from cli.aws import Clients
from cli.main import app
from mlops_config import load_config

DEV = load_config("dev")
PROD = load_config("prod")
REGION = DEV.region
ACCOUNT = DEV.account
GROUP = DEV.model_package_group_name
PIPELINE = DEV.pipeline_name
SERVING_STACK = f"{DEV.prefix}-serving"
TRAINING_STACK = f"{DEV.prefix}-training"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
# One botocore session for all tests: loading service models once keeps the suite fast
# (mock_aws resets boto3's default session, which would reload them for every test).
SESSION = boto3.session.Session()


def run(*args: str, clients: Clients | None = None, env: str = "dev") -> Result:
    """`mlops --env <env> <args>` in-process; `clients` replaces the CLI's own clients."""
    return CliRunner().invoke(app, ["--env", env, *args], obj=clients)


def execution_arn(execution_id: str, pipeline: str = PIPELINE) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{pipeline}/execution/{execution_id}"


def package_arn(version: int, group: str = GROUP, account: str = ACCOUNT) -> str:
    return f"arn:aws:sagemaker:{REGION}:{account}:model-package/{group}/{version}"


def price_file(folder: Path, rates: dict[str, dict[str, float]]) -> Path:
    """A `--prices` file in `folder` for REGION: job kind -> instance type -> USD per hour."""
    path = folder / "prices.json"
    path.write_text(
        json.dumps({"compiled": "2026-01-01", "source": "test", "regions": {REGION: rates}})
    )
    return path


def payload(data: Any) -> StreamingBody:
    raw = json.dumps(data).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def stack(
    name: str,
    *,
    parameters: dict[str, str] | None = None,
    outputs: dict[str, str] | None = None,
    status: str = "UPDATE_COMPLETE",
) -> dict[str, Any]:
    """A DescribeStacks response for one stack."""
    return {
        "Stacks": [
            {
                "StackName": name,
                "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/1",
                "CreationTime": NOW,
                "StackStatus": status,
                "Parameters": [
                    {"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()
                ],
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in (outputs or {}).items()],
            }
        ]
    }


class Aws:
    """Clients for one test: moto-backed by default, Stubber-wrapped where asked."""

    def __init__(self) -> None:
        self.clients = Clients(REGION, session=SESSION)
        self.stubbers: dict[str, Stubber] = {}

    def stub(self, service: str) -> Stubber:
        if service not in self.stubbers:
            client = SESSION.client(service, region_name=REGION)
            stubber = Stubber(client)
            stubber.activate()
            self.clients.preset(service, client)
            self.stubbers[service] = stubber
        return self.stubbers[service]

    def client(self, service: str) -> Any:
        return self.clients(service)

    def serving(self, model_package_arn: str = "", env: Any = DEV) -> None:
        """Queue DescribeStacks of the Serving stack serving `model_package_arn`."""
        name = f"{env.prefix}-serving"
        self.stub("cloudformation").add_response(
            "describe_stacks",
            stack(
                name,
                parameters={"ModelPackageArn": model_package_arn},
                outputs={
                    "EndpointName": f"{env.prefix}-endpoint",
                    "OperatorEventBusName": f"{env.prefix}-operator-requests",
                },
            ),
            {"StackName": name},
        )

    def missing_stack(self, name: str) -> None:
        self.stub("cloudformation").add_client_error(
            "describe_stacks",
            service_error_code="ValidationError",
            service_message=f"Stack with id {name} does not exist",
            http_status_code=400,
            expected_params={"StackName": name},
        )

    def run(self, *args: str, env: str = "dev") -> Result:
        return run(*args, clients=self.clients, env=env)

    def assert_done(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """Fake credentials of the dev account, moto on, no caller environment leaking in."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "MOTO_ACCOUNT_ID": ACCOUNT,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_REGION", "MLOPS_ENV"):
        monkeypatch.delenv(key, raising=False)
    with mock_aws():
        yield Aws()


def register(
    aws: Aws,
    *,
    approval: str = "PendingManualApproval",
    auc: float = 0.9,
    dataset: str = "fraud/v1",
    execution_id: str = "exec1",
    evaluation_uri: str | None = None,
    group: str = GROUP,
) -> str:
    """Create the group if needed and register one package the way the pipeline does."""
    sagemaker = aws.client("sagemaker")
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    if group not in {g["ModelPackageGroupName"] for g in groups}:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelApprovalStatus": approval,
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/xgboost:3.0-5",
                    "ModelDataUrl": f"s3://artifacts/{execution_id}/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "MetadataProperties": {
            "CommitId": "abc1234",
            "GeneratedBy": execution_arn(execution_id),
            "ProjectId": DEV.project,
        },
        "CustomerMetadataProperties": {
            "input_data_uri": f"s3://data/landing/{dataset}/",
            "dataset_version": dataset,
            "data_digest": f"sha256:{dataset}",
            "code_commit": "abc1234",
            "pipeline_execution_id": execution_id,
            "metric": "auc",
            "challenger": str(auc),
        },
    }
    if evaluation_uri:
        request["ModelMetrics"] = {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}
            }
        }
    return str(sagemaker.create_model_package(**request)["ModelPackageArn"])
