"""The pipeline custom resource under AWS faults: CloudFormation gets FAILED with the reason.

The documented outcome (pipeline_resource's docstring): every failure raises
`PipelineResourceError` whose message is the reason CloudFormation shows (the CDK Provider
framework reports the onEvent Lambda's error message), `<Operation> failed: <AWS code>: <AWS
message> [<subject>]`; throttling, 5xx and network errors are retried in-process first
(standard mode, MAX_ATTEMPTS attempts); deleting a pipeline that does not exist succeeds. A
failed request changes nothing that CloudFormation's rollback can't restore.

Requests go through the thin handler with CloudFormation-shaped events; S3 and SageMaker state
lives in moto; faults are injected below botocore's retry loop (tests.faults.FaultInjector).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError
from moto import mock_aws

from tests.faults import (
    ACCESS_DENIED,
    ALL_FAULTS,
    INTERNAL_ERROR,
    NOT_FOUND,
    READ_TIMEOUT,
    THROTTLED,
    Fault,
    FaultInjector,
)
from tests.lambda_loader import load_lambda_module

pr = load_lambda_module("pipeline_resource", "pipeline_resource")
handler = load_lambda_module("pipeline_resource")

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ASSETS = "cdk-hnb659fds-assets-123456789012-eu-west-1"
PIPELINE = "mlops-dev-training"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/pipeline-execution"
SESSION = boto3.session.Session(
    region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
)
# The handler's clients, built once with its config and reused (as in a warm Lambda
# environment: building clients would dominate these tests), each behind a fault injector.
CLIENTS = {
    "s3": SESSION.client("s3", config=pr.client_config()),
    "sagemaker": SESSION.client("sagemaker", config=pr.client_config()),
}
FAULTS = {name: FaultInjector(client) for name, client in CLIENTS.items()}


@dataclass
class LambdaContext:
    function_name: str = "pipeline-resource-onevent"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:onevent"
    aws_request_id: str = "3f1e6c52-1111-4d6b-9a7a-2b7f0c9d4e10"


@dataclass
class World:
    sagemaker: Any  # the handler's clients (tests read state through them too)
    s3: Any
    faults: dict[str, FaultInjector]


@pytest.fixture()
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with mock_aws():
        CLIENTS["s3"].create_bucket(
            Bucket=ASSETS, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        # The handler builds its clients per request with boto3.client(service, config=...).
        monkeypatch.setattr(
            handler,
            "boto3",
            SimpleNamespace(client=lambda service, config=None: CLIENTS[service]),
        )
        for injector in FAULTS.values():
            injector.reset()
        yield World(CLIENTS["sagemaker"], CLIENTS["s3"], FAULTS)


def definition(instance_type: str) -> str:
    return json.dumps(
        {
            "Version": "2020-12-01",
            "Parameters": [{"Name": "InputDataUri", "Type": "String"}],
            "Steps": [
                {
                    "Name": "Prepare",
                    "Type": "Processing",
                    "Arguments": {
                        "ProcessingResources": {
                            "ClusterConfig": {"InstanceType": instance_type, "InstanceCount": 1}
                        },
                        "RoleArn": "${RoleArn}",
                    },
                }
            ],
        }
    )


def properties(world: World, instance_type: str = "ml.m5.xlarge", **overrides: Any) -> dict:
    body = definition(instance_type).encode()
    key = f"assets/{hashlib.sha256(body).hexdigest()}.json"
    world.s3.put_object(Bucket=ASSETS, Key=key, Body=body)
    return {
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:provider-onevent",
        "PipelineName": PIPELINE,
        "RoleArn": ROLE_ARN,
        "DefinitionBucket": ASSETS,
        "DefinitionKey": key,
        "DefinitionSha256": hashlib.sha256(body).hexdigest(),
        "Substitutions": {"RoleArn": ROLE_ARN},
        "MaxParallelExecutionSteps": "4",
        "Tags": [{"Key": "project", "Value": "mlops"}, {"Key": "env", "Value": "dev"}],
        **overrides,
    }


def cfn_event(request_type: str, props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ServiceToken": props["ServiceToken"],
        "ResponseURL": "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/x",
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/mlops-dev-training/1c2d",
        "RequestId": f"{request_type}-5f0c1f7e-8d1a-4f77-b1c3",
        "LogicalResourceId": "TrainingPipeline",
        "ResourceType": "Custom::SageMakerPipeline",
        "ResourceProperties": props,
        **extra,
    }


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    return handler.lambda_handler(event, LambdaContext())


def create(world: World, props: dict[str, Any]) -> None:
    invoke(cfn_event("Create", props))


def update_event(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return cfn_event("Update", new, OldResourceProperties=old, PhysicalResourceId=PIPELINE)


def live_pipeline(world: World) -> tuple[str, dict[str, str]] | None:
    """The pipeline's instance type and tags as SageMaker holds them, or None if absent."""
    names = [p["PipelineName"] for p in world.sagemaker.list_pipelines()["PipelineSummaries"]]
    if PIPELINE not in names:
        return None
    described = world.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    steps = json.loads(described["PipelineDefinition"])["Steps"]
    instance = steps[0]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"]
    # dict(): moto's AddTags appends instead of overwriting, so the last value per key wins.
    tags = world.sagemaker.list_tags(ResourceArn=described["PipelineArn"])["Tags"]
    return instance, {tag["Key"]: tag["Value"] for tag in tags}


def reason_of(error: BaseException) -> str:
    """What CloudFormation shows: the Provider framework reports the error's message."""
    return str(error)


# ---- the outcome table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request type with one faulted AWS call."""

    request: str  # Create | Update | Delete
    service: str
    operation: str
    subject: str  # what the reason names after the AWS message

    @property
    def name(self) -> str:
        return f"{self.request.lower()}-{self.operation}"


CREATE_READ = Case("Create", "s3", "GetObject", "s3://")
CREATE = Case("Create", "sagemaker", "CreatePipeline", f"pipeline {PIPELINE}")
UPDATE = Case("Update", "sagemaker", "UpdatePipeline", f"pipeline {PIPELINE}")
LIST_TAGS = Case("Update", "sagemaker", "ListTags", f":pipeline/{PIPELINE}")
ADD_TAGS = Case("Update", "sagemaker", "AddTags", f":pipeline/{PIPELINE}")
DELETE_TAGS = Case("Update", "sagemaker", "DeleteTags", f":pipeline/{PIPELINE}")
DELETE = Case("Delete", "sagemaker", "DeletePipeline", f"pipeline {PIPELINE}")

CLIENT_ERRORS = tuple(fault for fault in ALL_FAULTS if fault.network is None)
NETWORK_ERRORS = tuple(fault for fault in ALL_FAULTS if fault.network is not None)
TAG_FAULTS = (THROTTLED, ACCESS_DENIED, INTERNAL_ERROR)

FAILING = [
    pytest.param(case, fault, id=f"{case.name}-{fault.kind}")
    for case, faults in (
        (CREATE_READ, CLIENT_ERRORS),
        (CREATE, CLIENT_ERRORS),
        # UpdatePipeline's ResourceNotFound means "create it" (tests/lambdas covers that).
        (UPDATE, tuple(f for f in CLIENT_ERRORS if f is not NOT_FOUND)),
        (LIST_TAGS, TAG_FAULTS),
        (ADD_TAGS, TAG_FAULTS),
        (DELETE_TAGS, TAG_FAULTS),
        # DeletePipeline's ResourceNotFound is a success (below).
        (DELETE, tuple(f for f in CLIENT_ERRORS if f is not NOT_FOUND)),
    )
    for fault in faults
]


def old_properties(world: World) -> dict[str, Any]:
    """What the stack deployed before: tags project=mlops, env=dev."""
    return properties(world)


def new_properties(world: World) -> dict[str, Any]:
    """The update: a new instance type; tag env dropped (DeleteTags), project changed (AddTags)."""
    return properties(world, "ml.m5.2xlarge", Tags=[{"Key": "project", "Value": "mlops-v2"}])


def run_case(world: World, case: Case, fault: Fault) -> None:
    """Bring the pipeline to the state the request starts from, inject `fault` on the case's
    call and send the request. Raises what the handler raised."""
    old, new = old_properties(world), new_properties(world)
    if case.request != "Create":
        create(world, old)
    world.faults[case.service].fail(case.operation, fault)
    if case.request == "Create":
        invoke(cfn_event("Create", old))
    elif case.request == "Update":
        invoke(update_event(old, new))
    else:
        invoke(cfn_event("Delete", old, PhysicalResourceId=PIPELINE))


@pytest.mark.parametrize(("case", "fault"), FAILING)
def test_aws_error_fails_the_request_with_the_aws_reason(
    world: World, case: Case, fault: Fault
) -> None:
    injector = world.faults[case.service]
    with pytest.raises(pr.PipelineResourceError) as raised:
        run_case(world, case, fault)

    code, _ = fault.code_for(case.service)
    reason = reason_of(raised.value)
    assert reason.startswith(f"{case.operation} failed: {code}: {fault.message} [")
    assert case.subject in reason and len(reason) <= pr.MAX_REASON_CHARS
    assert injector.faulted[case.operation] == injector.expected_attempts(fault)
    # Nothing half-done: the pipeline is as the request found it (tag sync aside, below).
    state = live_pipeline(world)
    if case.request == "Create":
        assert state is None
    elif case in (CREATE_READ, UPDATE, DELETE):
        assert state == ("ml.m5.xlarge", {"project": "mlops", "env": "dev"})


@pytest.mark.parametrize("fault", TAG_FAULTS, ids=lambda f: f.kind)
def test_rollback_after_a_failed_tag_sync_restores_the_previous_pipeline(
    world: World, fault: Fault
) -> None:
    """UpdatePipeline succeeded, AddTags failed: CloudFormation marks the update FAILED and
    rolls back by sending the old properties as an Update, which must restore everything."""
    with pytest.raises(pr.PipelineResourceError, match="AddTags failed"):
        run_case(world, ADD_TAGS, fault)
    world.faults["sagemaker"].heal()

    result = invoke(update_event(new_properties(world), old_properties(world)))

    assert result["PhysicalResourceId"] == PIPELINE
    assert live_pipeline(world) == ("ml.m5.xlarge", {"project": "mlops", "env": "dev"})


# ---- delete of a missing pipeline ------------------------------------------------------------


@pytest.mark.parametrize(
    "fault", [NOT_FOUND, READ_TIMEOUT.after_processing()], ids=["not-found", "response-lost"]
)
def test_delete_of_a_missing_pipeline_succeeds(world: World, fault: Fault) -> None:
    """ResourceNotFound (deleted out of band), or the delete applied but its response lost and
    the in-process retry answered ResourceNotFound: both are a successful Delete."""
    create(world, properties(world))
    world.faults["sagemaker"].fail("DeletePipeline", fault, attempts=1)

    result = invoke(cfn_event("Delete", properties(world), PhysicalResourceId=PIPELINE))

    assert result == {"PhysicalResourceId": PIPELINE}
    if fault.lost_response:
        assert live_pipeline(world) is None


def test_update_whose_response_was_lost_is_retried_to_the_same_end_state(world: World) -> None:
    old = properties(world)
    create(world, old)
    new = properties(world, "ml.m5.2xlarge")
    world.faults["sagemaker"].fail("UpdatePipeline", READ_TIMEOUT.after_processing(), attempts=1)

    assert invoke(update_event(old, new))["PhysicalResourceId"] == PIPELINE
    assert live_pipeline(world) == ("ml.m5.2xlarge", {"project": "mlops", "env": "dev"})


# ---- network errors ----------------------------------------------------------------------------

NETWORK_CASES = [
    pytest.param(case, fault, id=f"{case.name}-{fault.kind}")
    for case in (CREATE_READ, CREATE, UPDATE, DELETE)
    for fault in NETWORK_ERRORS
]


@pytest.mark.parametrize(("case", "fault"), NETWORK_CASES)
def test_network_error_fails_the_request_after_the_retries(
    world: World, case: Case, fault: Fault
) -> None:
    """No hung stack: after MAX_ATTEMPTS the request fails with a non-empty reason."""
    injector = world.faults[case.service]
    with pytest.raises(pr.PipelineResourceError) as raised:
        run_case(world, case, fault)

    assert injector.faulted[case.operation] == pr.MAX_ATTEMPTS
    assert isinstance(raised.value.__cause__, BotoCoreError)
    assert "amazonaws.com" in reason_of(raised.value)


@pytest.mark.parametrize(
    "case",
    [CREATE_READ, CREATE, UPDATE, LIST_TAGS, ADD_TAGS, DELETE_TAGS, DELETE],
    ids=lambda case: case.name,
)
def test_network_error_reason_names_the_operation_and_the_pipeline(
    world: World, case: Case
) -> None:
    with pytest.raises(pr.PipelineResourceError) as raised:
        run_case(world, case, READ_TIMEOUT)

    reason = reason_of(raised.value)
    assert reason.startswith(f"{case.operation} failed: ReadTimeoutError: Read timeout on ")
    assert case.subject in reason and len(reason) <= pr.MAX_REASON_CHARS
    if case.request == "Create":
        assert live_pipeline(world) is None
    elif case in (CREATE_READ, UPDATE, DELETE):
        assert live_pipeline(world) == ("ml.m5.xlarge", {"project": "mlops", "env": "dev"})
