"""The deploy handler under AWS faults: retried, reported with the AWS message, never half done.

The documented outcome (model_deployer's docstring): a busy stack raises `StackBusyError`
(retry later); any other AWS failure raises `DeployError` with the operation, AWS code and AWS
message; throttling and 5xx are retried in-process first (standard mode, 5 attempts). Through
the SQS path a raised error reports the record as a batch item failure, so it is re-delivered.
The only write is one UpdateStack, so "no partial update" means: a failed read sends no
UpdateStack, and a failed UpdateStack leaves the stack's parameters as they were.

The model registry and the artifact bucket live in moto (each package records its model
artifact's SHA-256, as the pipeline does). CloudFormation is a scripted endpoint behind the
`before-send` hook (moto's CloudFormation needs packages the project doesn't install): it keeps
one stack's status and parameters, answers DescribeStacks / UpdateStack in the query protocol
botocore parses, and honours UpdateStack's ClientRequestToken as the API documents.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import BotoCoreError
from moto import mock_aws

from tests.faults import (
    ACCESS_DENIED,
    ALL_FAULTS,
    READ_TIMEOUT,
    THROTTLED,
    Fault,
    FaultInjector,
)
from tests.lambda_loader import load_lambda_module
from tests.lambdas.deploy_world import rollback_event

deployer = load_lambda_module("deploy_model", "model_deployer")
handler = load_lambda_module("deploy_model")

REGION = "eu-west-1"
ACCOUNT = "123456789012"
GROUP = "mlops-loop-dev-models"
STACK_NAME = "mlops-loop-dev-serving"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/0f1e2d3c-aaaa-bbbb"
EVENT_ID = "7f0c2a1e-5b7d-4c1e-9a0b-3c2d1e0f9a8b"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-loop-dev-serving-DeployRole"
BUCKET = "mlops-loop-dev-artifacts"
PREFIX = "pipelines/mlops-loop-dev-training/training/"
CFN_NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
SESSION = boto3.session.Session(
    region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


@dataclass
class FakeCloudFormation:
    """One stack as CloudFormation reports it; answers DescribeStacks and UpdateStack."""

    status: str = "UPDATE_COMPLETE"
    parameters: dict[str, str] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)  # accepted UpdateStack requests
    tokens: set[str] = field(default_factory=set)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        form = {key: values[0] for key, values in parse_qs(body or "").items()}
        action = form["Action"]
        if form.get("StackName") not in (STACK_NAME, STACK_ID):
            return self._error(request, f"Stack with id {form.get('StackName')} does not exist")
        if action == "DescribeStacks":
            return self._describe(request)
        if action == "UpdateStack":
            return self._update(request, form)
        raise AssertionError(f"the deploy handler must not call {action}")

    def _update(self, request: AWSPreparedRequest, form: dict[str, str]) -> AWSResponse:
        token = form.get("ClientRequestToken")
        if token and token in self.tokens:
            return self._updated(request)  # a retried request: same answer, no second update
        if self.status.endswith("_IN_PROGRESS"):
            return self._error(
                request,
                f"Stack:{STACK_ID} is in {self.status} state and can not be updated.",
            )
        assert form.get("UsePreviousTemplate") == "true"
        parameters = dict(self.parameters)
        index = 1
        while f"Parameters.member.{index}.ParameterKey" in form:
            key = form[f"Parameters.member.{index}.ParameterKey"]
            if form.get(f"Parameters.member.{index}.UsePreviousValue") != "true":
                parameters[key] = form[f"Parameters.member.{index}.ParameterValue"]
            index += 1
        assert set(parameters) == set(self.parameters), "every parameter must be passed"
        if parameters == self.parameters:
            return self._error(request, "No updates are to be performed.")
        self.parameters, self.status = parameters, "UPDATE_IN_PROGRESS"
        self.updates.append(form)
        if token:
            self.tokens.add(token)
        return self._updated(request)

    def _describe(self, request: AWSPreparedRequest) -> AWSResponse:
        members = "".join(
            f"<member><ParameterKey>{escape(k)}</ParameterKey>"
            f"<ParameterValue>{escape(v)}</ParameterValue></member>"
            for k, v in self.parameters.items()
        )
        return self._ok(
            request,
            "DescribeStacks",
            f"<Stacks><member><StackId>{STACK_ID}</StackId><StackName>{STACK_NAME}</StackName>"
            f"<CreationTime>2025-11-20T09:30:00Z</CreationTime>"
            f"<StackStatus>{self.status}</StackStatus><Parameters>{members}</Parameters>"
            "</member></Stacks>",
        )

    def _updated(self, request: AWSPreparedRequest) -> AWSResponse:
        return self._ok(request, "UpdateStack", f"<StackId>{STACK_ID}</StackId>")

    @staticmethod
    def _ok(request: AWSPreparedRequest, action: str, result: str) -> AWSResponse:
        xml = (
            f'<{action}Response xmlns="{CFN_NAMESPACE}"><{action}Result>{result}</{action}Result>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            f"</{action}Response>"
        )
        return AWSResponse(request.url, 200, {"Content-Type": "text/xml"}, _Body(xml.encode()))

    @staticmethod
    def _error(request: AWSPreparedRequest, message: str) -> AWSResponse:
        xml = (
            f'<ErrorResponse xmlns="{CFN_NAMESPACE}"><Error><Type>Sender</Type>'
            f"<Code>ValidationError</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Body(xml.encode()))


@dataclass
class World:
    sagemaker: Any
    cloudformation: FakeCloudFormation
    faults: dict[str, FaultInjector]
    packages: list[str]  # ARNs of versions 1, 2, ... (all Approved)


# The handler's clients, built once with its config and reused (as in a warm Lambda
# environment: building clients would dominate these tests), each behind a fault injector.
SAGEMAKER = SESSION.client("sagemaker", config=deployer.CLIENT_CONFIG)
CLOUDFORMATION = SESSION.client("cloudformation", config=deployer.CLIENT_CONFIG)
S3 = SESSION.client("s3", config=deployer.CLIENT_CONFIG)
FAULTS = {
    "sagemaker": FaultInjector(SAGEMAKER),
    "cloudformation": FaultInjector(CLOUDFORMATION),
    "s3": FaultInjector(S3),
}


@pytest.fixture()
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with mock_aws():
        SAGEMAKER.create_model_package_group(ModelPackageGroupName=GROUP)
        S3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        packages = []
        for version in (1, 2):
            key = f"{PREFIX}job-{version}/output/model.tar.gz"
            model = f"model {version}".encode() * 100
            S3.put_object(Bucket=BUCKET, Key=key, Body=model)
            packages.append(
                SAGEMAKER.create_model_package(
                    ModelPackageGroupName=GROUP,
                    ModelApprovalStatus="Approved",
                    InferenceSpecification={
                        "Containers": [
                            {
                                "Image": f"141502667606.dkr.ecr.{REGION}.amazonaws.com/"
                                "sagemaker-xgboost:3.0-5",
                                "ModelDataUrl": f"s3://{BUCKET}/{key}",
                            }
                        ],
                        "SupportedContentTypes": ["text/csv"],
                        "SupportedResponseMIMETypes": ["text/csv"],
                    },
                    CustomerMetadataProperties={
                        "model_artifact_sha256": hashlib.sha256(model).hexdigest()
                    },
                )["ModelPackageArn"]
            )
        stack = FakeCloudFormation(
            parameters={
                "BootstrapVersion": "/cdk-bootstrap/hnb659fds/version",
                "ModelPackageArn": packages[0],
            }
        )
        for name, value in {
            "SERVING_STACK_NAME": STACK_NAME,
            "MODEL_PACKAGE_GROUP_NAME": GROUP,
            "DEPLOY_ON": "approval",
            "CFN_SERVICE_ROLE_ARN": DEPLOY_ROLE,
            "ARTIFACT_BUCKET": BUCKET,
            "MODEL_ARTIFACT_PREFIX": PREFIX,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setitem(handler.clients, "sagemaker", SAGEMAKER)
        monkeypatch.setitem(handler.clients, "cloudformation", CLOUDFORMATION)
        monkeypatch.setitem(handler.clients, "s3", S3)
        for injector in FAULTS.values():
            injector.reset()
        FAULTS["cloudformation"].backend = stack
        yield World(SAGEMAKER, stack, FAULTS, packages)


CONTEXT = type(
    "Context",
    (),
    {
        "function_name": "deploy-model",
        "memory_limit_in_mb": 256,
        "invoked_function_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:deploy-model",
        "aws_request_id": "req-1",
    },
)()


def approval(arn: str) -> dict[str, Any]:
    """The "SageMaker Model Package State Change" event of an approval."""
    return {
        "version": "0",
        "id": EVENT_ID,
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2025-11-20T10:00:00Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": GROUP,
            "ModelPackageArn": arn,
            "ModelApprovalStatus": "Approved",
        },
    }


def sqs_batch(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": "m-0",
                "receiptHandle": "handle",
                "body": json.dumps(event),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:deploy-requests",
                "awsRegion": REGION,
            }
        ]
    }


def emf(output: str, name: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded-metric documents carrying metric `name`."""
    documents = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    return [document for document in documents if name in document]


# ---- the outcome table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """The `call`-th call of `operation` while handling `event` ("approval" | "rollback")."""

    name: str
    event: str
    service: str
    operation: str
    call: int = 1


DESCRIBE_NEW = Step("approval-describe-package", "approval", "sagemaker", "DescribeModelPackage")
DESCRIBE_STACK = Step("approval-describe-stack", "approval", "cloudformation", "DescribeStacks")
DESCRIBE_SERVING = Step(
    "approval-describe-serving", "approval", "sagemaker", "DescribeModelPackage", 2
)
UPDATE_STACK = Step("approval-update-stack", "approval", "cloudformation", "UpdateStack")
GET_ARTIFACT = Step("approval-get-artifact", "approval", "s3", "GetObject")
LIST_PACKAGES = Step("rollback-list-packages", "rollback", "sagemaker", "ListModelPackages")
STEPS = (DESCRIBE_NEW, DESCRIBE_STACK, DESCRIBE_SERVING, GET_ARTIFACT, UPDATE_STACK, LIST_PACKAGES)

CLIENT_ERRORS = tuple(fault for fault in ALL_FAULTS if fault.network is None)
NETWORK_ERRORS = tuple(fault for fault in ALL_FAULTS if fault.network is not None)


def start(world: World, step: Step) -> tuple[dict[str, Any], str]:
    """Put the world where `step`'s event starts; return the event and the ARN it deploys."""
    if step.event == "approval":
        return approval(world.packages[1]), world.packages[1]
    world.cloudformation.parameters["ModelPackageArn"] = world.packages[1]
    return rollback_event(), world.packages[0]


@pytest.mark.parametrize(
    ("step", "fault"),
    [pytest.param(s, f, id=f"{s.name}-{f.kind}") for s in STEPS for f in CLIENT_ERRORS],
)
def test_aws_error_raises_with_the_aws_message_and_updates_nothing(
    world: World, step: Step, fault: Fault, capsys: pytest.CaptureFixture[str]
) -> None:
    event, target = start(world, step)
    before = dict(world.cloudformation.parameters)
    injector = world.faults[step.service]
    injector.fail(step.operation, fault, call=step.call)

    with pytest.raises(deployer.DeployError) as raised:
        handler.lambda_handler(event, CONTEXT)

    code, _ = fault.code_for(step.service)
    assert str(raised.value) == f"{step.operation} failed: {code}: {fault.message}"
    assert not isinstance(raised.value, deployer.StackBusyError)
    assert injector.faulted[step.operation] == injector.expected_attempts(fault)
    assert world.cloudformation.updates == []
    assert world.cloudformation.parameters == before
    [failure] = emf(capsys.readouterr().out, "DeployFailures")
    assert failure["Error"] == "AwsError"

    # The event is retried (Lambda async retry or SQS re-delivery) once the fault is gone.
    injector.heal()
    assert handler.lambda_handler(event, CONTEXT)["action"] == "deployment_started"
    [update] = world.cloudformation.updates
    assert world.cloudformation.parameters["ModelPackageArn"] == target
    assert update["ClientRequestToken"] == f"deploy-v{target.rsplit('/', 1)[1]}-{EVENT_ID}"
    assert update["RoleARN"] == DEPLOY_ROLE


@pytest.mark.parametrize(
    ("step", "fault"),
    [
        pytest.param(s, f, id=f"{s.name}-{f.kind}")
        for s in STEPS
        for f in (THROTTLED, ACCESS_DENIED)
    ],
)
def test_failed_record_is_reported_for_redelivery_and_deployed_once_after(
    world: World, step: Step, fault: Fault
) -> None:
    event, target = start(world, step)
    world.faults[step.service].fail(step.operation, fault, call=step.call)

    assert handler.lambda_handler(sqs_batch(event), CONTEXT) == {
        "batchItemFailures": [{"itemIdentifier": "m-0"}]
    }
    assert handler.lambda_handler(sqs_batch(event), CONTEXT) == {"batchItemFailures": []}
    # A late duplicate of the same event changes nothing.
    world.cloudformation.status = "UPDATE_COMPLETE"
    assert handler.lambda_handler(sqs_batch(event), CONTEXT) == {"batchItemFailures": []}
    assert len(world.cloudformation.updates) == 1
    assert world.cloudformation.parameters["ModelPackageArn"] == target


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.name)
def test_throttling_that_ends_within_the_retries_deploys_at_once(world: World, step: Step) -> None:
    event, target = start(world, step)
    attempts = world.faults[step.service].expected_attempts(THROTTLED) - 1
    world.faults[step.service].fail(step.operation, THROTTLED, call=step.call, attempts=attempts)

    assert handler.lambda_handler(event, CONTEXT)["action"] == "deployment_started"
    assert world.cloudformation.parameters["ModelPackageArn"] == target
    assert len(world.cloudformation.updates) == 1


def test_update_stack_whose_response_was_lost_deploys_once(world: World) -> None:
    """UpdateStack applied, response lost: botocore re-sends it with the same
    ClientRequestToken, which CloudFormation answers without a second update."""
    world.faults["cloudformation"].fail("UpdateStack", READ_TIMEOUT.after_processing(), attempts=1)

    assert handler.lambda_handler(approval(world.packages[1]), CONTEXT)["action"] == (
        "deployment_started"
    )
    assert len(world.cloudformation.updates) == 1


def test_busy_stack_is_a_retryable_error_without_an_update(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.cloudformation.status = "UPDATE_ROLLBACK_IN_PROGRESS"

    assert handler.lambda_handler(sqs_batch(approval(world.packages[1])), CONTEXT) == {
        "batchItemFailures": [{"itemIdentifier": "m-0"}]
    }
    assert world.cloudformation.updates == []
    assert [doc["Error"] for doc in emf(capsys.readouterr().out, "DeployFailures")] == ["StackBusy"]


def test_stack_turning_busy_before_the_update_is_a_busy_stack(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = world.cloudformation
    original = stack.__call__
    turned_busy: list[bool] = []

    def busy_on_first_update(request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        if "Action=UpdateStack" in (body or "") and not turned_busy:
            turned_busy.append(True)
            stack.status = "UPDATE_IN_PROGRESS"  # another deployment started meanwhile
        return original(request, **kwargs)

    world.faults["cloudformation"].backend = busy_on_first_update

    with pytest.raises(deployer.StackBusyError, match="turned UPDATE_IN_PROGRESS"):
        handler.lambda_handler(approval(world.packages[1]), CONTEXT)

    assert stack.updates == []
    assert stack.parameters["ModelPackageArn"] == world.packages[0]
    assert [doc["Error"] for doc in emf(capsys.readouterr().out, "DeployFailures")] == ["StackBusy"]
    # Retried once the other operation settled: deployed.
    stack.status = "UPDATE_COMPLETE"
    assert handler.lambda_handler(approval(world.packages[1]), CONTEXT)["action"] == (
        "deployment_started"
    )
    assert stack.parameters["ModelPackageArn"] == world.packages[1]


# ---- network errors ----------------------------------------------------------------------------

NETWORK_CASES = [
    pytest.param(s, f, id=f"{s.name}-{f.kind}")
    for s in (DESCRIBE_NEW, DESCRIBE_STACK, UPDATE_STACK)
    for f in NETWORK_ERRORS
]


@pytest.mark.parametrize(("step", "fault"), NETWORK_CASES)
def test_network_error_fails_the_record_for_redelivery_without_an_update(
    world: World, step: Step, fault: Fault
) -> None:
    event, target = start(world, step)
    injector = world.faults[step.service]
    injector.fail(step.operation, fault, call=step.call)

    assert handler.lambda_handler(sqs_batch(event), CONTEXT) == {
        "batchItemFailures": [{"itemIdentifier": "m-0"}]
    }
    assert injector.faulted[step.operation] == injector.expected_attempts(fault)
    assert world.cloudformation.updates == []
    assert handler.lambda_handler(sqs_batch(event), CONTEXT) == {"batchItemFailures": []}
    assert world.cloudformation.parameters["ModelPackageArn"] == target


@pytest.mark.parametrize(
    ("step", "fault"),
    [pytest.param(s, f, id=f"{s.name}-{f.kind}") for s in STEPS for f in NETWORK_ERRORS],
)
def test_network_error_is_a_deploy_error_naming_the_operation(
    world: World, step: Step, fault: Fault, capsys: pytest.CaptureFixture[str]
) -> None:
    event, _ = start(world, step)
    world.faults[step.service].fail(step.operation, fault, call=step.call)

    with pytest.raises(deployer.DeployError, match=f"^{step.operation} failed: ") as raised:
        handler.lambda_handler(event, CONTEXT)

    assert not isinstance(raised.value, deployer.StackBusyError)
    assert isinstance(raised.value.__cause__, BotoCoreError)
    assert "amazonaws.com" in str(raised.value)  # the endpoint that did not answer
    assert world.cloudformation.updates == []
    [failure] = emf(capsys.readouterr().out, "DeployFailures")
    assert failure["Error"] == "AwsError"


# ---- the registry changes under the handler ----------------------------------------------------


def test_deleted_serving_package_does_not_block_a_new_approval(world: World) -> None:
    # moto lacks DeleteModelPackage; this is its (and SageMaker's) answer for a missing one.
    gone = Fault(
        "package-deleted",
        {"*": ("ValidationException", 400)},
        f"Model package {world.packages[0]} not found",
    )
    world.faults["sagemaker"].fail("DescribeModelPackage", gone, call=DESCRIBE_SERVING.call)

    outcome = handler.lambda_handler(approval(world.packages[1]), CONTEXT)

    assert outcome["action"] == "deployment_started"
    assert world.cloudformation.parameters["ModelPackageArn"] == world.packages[1]
