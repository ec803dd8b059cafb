"""Builders and Stubber-backed clients shared by the deploy handler's tests.

Events are shaped as AWS documents them (model package state change, CloudFormation stack
status change with `client-request-token`); responses follow botocore's service models, which
Stubber checks every request and response against. An activated Stubber with nothing queued
fails on any call, which is how "no call" is proven.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from tests.lambda_loader import load_lambda_module

deployer = load_lambda_module("deploy_model", "model_deployer")

REGION = "eu-west-1"
ACCOUNT = "123456789012"
GROUP = "mlops-loop-dev-models"
OTHER_GROUP = "mlops-loop-prod-models"
STACK_NAME = "mlops-loop-dev-serving"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/0f1e2d3c-aaaa-bbbb"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-loop-dev-serving-DeployRole8C803698-AbC"
BUCKET = "mlops-loop-dev-artifacts-1a2b3c"
PREFIX = "pipelines/mlops-loop-dev-training/training/"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
EVENT_ID = "7f0c2a1e-5b7d-4c1e-9a0b-3c2d1e0f9a8b"
CREATED = datetime(2025, 11, 20, 9, 30, tzinfo=UTC)
ROLLED_BACK_AT = datetime(2025, 11, 20, 10, 40, tzinfo=UTC)

DEV = deployer.DeployerConfig(STACK_NAME, GROUP, "approval", DEPLOY_ROLE, BUCKET, PREFIX)
PROD = deployer.DeployerConfig(STACK_NAME, GROUP, "promotion", DEPLOY_ROLE, BUCKET, PREFIX)
VALID_ENV = {
    "SERVING_STACK_NAME": STACK_NAME,
    "MODEL_PACKAGE_GROUP_NAME": GROUP,
    "DEPLOY_ON": "approval",
    "CFN_SERVICE_ROLE_ARN": DEPLOY_ROLE,
    "ARTIFACT_BUCKET": BUCKET,
    "MODEL_ARTIFACT_PREFIX": PREFIX,
}
PROMOTED = {"Stage": "Production", "StageStatus": "Approved"}


def arn(version: int, group: str = GROUP) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"


def version_of(package_arn: str) -> int:
    return int(package_arn.rsplit("/", 1)[1])


def artifact_bytes(version: int) -> bytes:
    """The (fake) model.tar.gz of package `version`: distinct bytes per version."""
    return f"model artifact of version {version}\n".encode() * 1000


def artifact_key(version: int) -> str:
    return f"{PREFIX}pipelines-exec{version}-Train-abc/output/model.tar.gz"


def token(version: int, event_id: str = EVENT_ID) -> str:
    return f"deploy-v{version}-{event_id}"


def state_change(
    version: int = 3, status: str = "Approved", group: str = GROUP, **detail: Any
) -> dict[str, Any]:
    """A model package state change event shaped like the ones SageMaker sends."""
    return {
        "version": "0",
        "id": EVENT_ID,
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2025-11-20T10:00:00Z",
        "region": REGION,
        "resources": [arn(version, group)],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": arn(version, group),
            "ModelPackageName": group,
            "CreationTime": 1763631000000,
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": status,
            **detail,
        },
    }


def rollback_event(target: str | None = None, group: str = GROUP) -> dict[str, Any]:
    detail: dict[str, Any] = {"reason": "p99 latency doubled", "model_package_group_name": group}
    if target is not None:
        detail["model_package_arn"] = target
    return {
        "version": "0",
        "id": EVENT_ID,
        "detail-type": "Rollback Requested",
        "source": "mlops.serving",
        "account": ACCOUNT,
        "time": "2025-11-20T10:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


def stack_status_event(
    status: str = "UPDATE_ROLLBACK_COMPLETE",
    client_token: str | None = None,
    stack_id: str = STACK_ID,
) -> dict[str, Any]:
    """A "CloudFormation Stack Status Change" event, after AWS's documented example."""
    detail: dict[str, Any] = {
        "stack-id": stack_id,
        "status-details": {"status": status, "status-reason": ""},
    }
    if client_token is not None:
        detail["client-request-token"] = client_token
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "CloudFormation Stack Status Change",
        "source": "aws.cloudformation",
        "account": ACCOUNT,
        "time": "2025-11-20T10:40:00Z",
        "region": REGION,
        "resources": [stack_id],
        "detail": detail,
    }


def package(
    version: int,
    status: str = "Approved",
    group: str = GROUP,
    life_cycle: dict[str, str] | None = None,
    package_status: str = "Completed",
    *,
    description: str | None = None,
    modified: datetime | None = None,
    sha256: str | None = "recorded",
) -> dict[str, Any]:
    """A DescribeModelPackage response of a package registered the way the pipeline does
    (one container, the artifact's SHA-256 in CustomerMetadataProperties)."""
    digest = hashlib.sha256(artifact_bytes(version)).hexdigest() if sha256 == "recorded" else sha256
    response: dict[str, Any] = {
        "ModelPackageName": group,
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelPackageArn": arn(version, group),
        "CreationTime": CREATED,
        "LastModifiedTime": modified or CREATED,
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:3.0-5",
                    "ModelDataUrl": f"s3://{BUCKET}/{artifact_key(version)}",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "ModelPackageStatus": package_status,
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": status,
    }
    if digest is not None:
        response["CustomerMetadataProperties"] = {"model_artifact_sha256": digest}
    if life_cycle is not None:
        response["ModelLifeCycle"] = life_cycle
    if description is not None:
        response["ApprovalDescription"] = description
    return response


def stack(current: str = "", status: str = "UPDATE_COMPLETE") -> dict[str, Any]:
    """A DescribeStacks response for the Serving stack as CDK deploys it."""
    return {
        "Stacks": [
            {
                "StackName": STACK_NAME,
                "StackId": STACK_ID,
                "CreationTime": CREATED,
                "StackStatus": status,
                "Parameters": [
                    {
                        "ParameterKey": "BootstrapVersion",
                        "ParameterValue": "/cdk-bootstrap/hnb659fds/version",
                        "ResolvedValue": "29",
                    },
                    {"ParameterKey": "ModelPackageArn", "ParameterValue": current},
                ],
                "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            }
        ]
    }


def update_request(model_package_arn: str, **extra: Any) -> dict[str, Any]:
    """The exact UpdateStack request expected for a deploy of `model_package_arn`."""
    return {
        "StackName": STACK_ID,
        "UsePreviousTemplate": True,
        "Parameters": [
            {"ParameterKey": "ModelPackageArn", "ParameterValue": model_package_arn},
            {"ParameterKey": "BootstrapVersion", "UsePreviousValue": True},
        ],
        "Capabilities": CAPABILITIES,
        "RoleARN": DEPLOY_ROLE,
        "ClientRequestToken": token(version_of(model_package_arn)),
        **extra,
    }


def stack_event(
    status: str,
    client_token: str,
    minutes: int,
    *,
    logical_id: str = STACK_NAME,
    kind: str = "AWS::CloudFormation::Stack",
    reason: str = "",
) -> dict[str, Any]:
    """One StackEvent (DescribeStackEvents), `minutes` after 10:00."""
    event: dict[str, Any] = {
        "StackId": STACK_ID,
        "EventId": f"{logical_id}-{status}-{minutes}",
        "StackName": STACK_NAME,
        "LogicalResourceId": logical_id,
        "ResourceType": kind,
        "Timestamp": datetime(2025, 11, 20, 10, 0, tzinfo=UTC) + timedelta(minutes=minutes),
        "ResourceStatus": status,
        "ClientRequestToken": client_token,
    }
    if reason:
        event["ResourceStatusReason"] = reason
    return event


ENDPOINT_FAILURE = (
    "Endpoint mlops-loop-dev-endpoint rolled back: the alarm EndpointErrors5xx fired "
    "during the canary"
)


def failed_deploy_events(version: int, client_token: str | None = None) -> list[dict[str, Any]]:
    """The stack events of a deploy of `version` that rolled back at 10:40, newest first, after
    an earlier successful deploy (so the walk must stop at the failed one's start)."""
    failed = client_token or token(version)
    earlier = token(version - 1, "0b7e5d1c-1111-2222-3333-444455556666")
    return [
        stack_event("UPDATE_ROLLBACK_COMPLETE", failed, 40),
        stack_event("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", failed, 39),
        stack_event(
            "UPDATE_ROLLBACK_IN_PROGRESS",
            failed,
            30,
            reason="The following resource(s) failed to update: [Endpoint8024A810].",
        ),
        stack_event(
            "UPDATE_FAILED",
            failed,
            29,
            logical_id="Endpoint8024A810",
            kind="AWS::SageMaker::Endpoint",
            reason=ENDPOINT_FAILURE,
        ),
        stack_event(
            "UPDATE_IN_PROGRESS",
            failed,
            5,
            logical_id="Endpoint8024A810",
            kind="AWS::SageMaker::Endpoint",
        ),
        stack_event("UPDATE_IN_PROGRESS", failed, 0, reason="User Initiated"),
        stack_event(
            "UPDATE_FAILED",
            earlier,
            -60,
            logical_id="EndpointConfig24AD0A28",
            kind="AWS::SageMaker::EndpointConfig",
            reason="an older failure that must not be blamed on this deploy",
        ),
        stack_event("UPDATE_COMPLETE", earlier, -61),
    ]


class Aws(SimpleNamespace):
    sagemaker: Any
    cloudformation: Any
    s3: Any
    sm: Stubber
    cfn: Stubber
    s3_stub: Stubber

    def describe_package(self, response: dict[str, Any], name: str | None = None) -> None:
        self.sm.add_response(
            "describe_model_package",
            response,
            {"ModelPackageName": name or response["ModelPackageArn"]},
        )

    def describe_stack(self, response: dict[str, Any]) -> None:
        self.cfn.add_response("describe_stacks", response, {"StackName": STACK_NAME})

    def stack_events(self, events: list[dict[str, Any]]) -> None:
        self.cfn.add_response(
            "describe_stack_events", {"StackEvents": events}, {"StackName": STACK_ID}
        )

    def artifact(self, version: int, data: bytes | None = None) -> None:
        """GetObject of package `version`'s model artifact (its registered bytes by default)."""
        body = artifact_bytes(version) if data is None else data
        self.s3_stub.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentLength": len(body)},
            {"Bucket": BUCKET, "Key": artifact_key(version)},
        )

    def update_stack(self, request: dict[str, Any]) -> None:
        """The artifact check of the package, then its UpdateStack."""
        self.artifact(version_of(request["Parameters"][0]["ParameterValue"]))
        self.cfn.add_response("update_stack", {"StackId": STACK_ID}, request)

    def reject(self, version: int, description: str) -> None:
        self.sm.add_response(
            "update_model_package",
            {"ModelPackageArn": arn(version)},
            {
                "ModelPackageArn": arn(version),
                "ModelApprovalStatus": "Rejected",
                "ApprovalDescription": description,
            },
        )

    def handle(self, event: Any, config: Any = DEV) -> Any:
        return deployer.handle_event(
            event,
            sagemaker=self.sagemaker,
            cloudformation=self.cloudformation,
            s3=self.s3,
            config=config,
        )


@pytest.fixture()
def aws() -> Iterator[Aws]:
    sagemaker = boto3.client("sagemaker", region_name=REGION, config=deployer.CLIENT_CONFIG)
    cloudformation = boto3.client(
        "cloudformation", region_name=REGION, config=deployer.CLIENT_CONFIG
    )
    s3 = boto3.client("s3", region_name=REGION, config=deployer.CLIENT_CONFIG)
    with Stubber(sagemaker) as sm, Stubber(cloudformation) as cfn, Stubber(s3) as s3_stub:
        yield Aws(
            sagemaker=sagemaker,
            cloudformation=cloudformation,
            s3=s3,
            sm=sm,
            cfn=cfn,
            s3_stub=s3_stub,
        )
        sm.assert_no_pending_responses()
        cfn.assert_no_pending_responses()
        s3_stub.assert_no_pending_responses()
