"""The SageMaker pipeline custom resource: create/update/delete against moto, error paths
against botocore's Stubber (which validates every request against the real service model),
and the thin handler with CloudFormation-shaped events."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.retries.standard
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber
from moto import mock_aws

from tests.lambda_loader import load_lambda_module

pr = load_lambda_module("pipeline_resource", "pipeline_resource")
handler_module = load_lambda_module("pipeline_resource")

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "cdk-hnb659fds-assets-123456789012-eu-west-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/pipeline-execution"
PIPELINE = "fraud-dev-training"
SUBSTITUTIONS = {
    "ArtifactBucket": "fraud-dev-artifacts",
    "RoleArn": ROLE_ARN,
    "KmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "ModelPackageGroupName": "fraud-dev-models",
}


def definition_template(instance_type: str = "ml.m5.xlarge") -> dict[str, Any]:
    """A definition shaped like the SDK's output, with the placeholders the generator uses."""
    return {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [
            {"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://${ArtifactBucket}/in"},
            {"Name": "MetricFloor", "Type": "Float", "DefaultValue": 0.8},
        ],
        "PipelineExperimentConfig": {
            "ExperimentName": {"Get": "Execution.PipelineName"},
            "TrialName": {"Get": "Execution.PipelineExecutionId"},
        },
        "Steps": [
            {
                "Name": "Prepare",
                "Type": "Processing",
                "Arguments": {
                    "ProcessingResources": {
                        "ClusterConfig": {
                            "InstanceType": instance_type,
                            "InstanceCount": 1,
                            "VolumeSizeInGB": 30,
                            "VolumeKmsKeyId": "${KmsKeyArn}",
                        }
                    },
                    "AppSpecification": {
                        "ImageUri": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/"
                        "sagemaker-xgboost:3.0-5",
                        "ContainerEntrypoint": ["python3", "/opt/ml/processing/code/prepare.py"],
                    },
                    "RoleArn": "${RoleArn}",
                    "ProcessingInputs": [
                        {
                            "InputName": "code",
                            "S3Input": {
                                "S3Uri": "s3://${ArtifactBucket}/code/0f3a/prepare.py",
                                "LocalPath": "/opt/ml/processing/code",
                                "S3DataType": "S3Prefix",
                                "S3InputMode": "File",
                            },
                        }
                    ],
                    "ProcessingOutputConfig": {"KmsKeyId": "${KmsKeyArn}", "Outputs": []},
                },
            },
            {
                "Name": "Register",
                "Type": "RegisterModel",
                "Arguments": {"ModelPackageGroupName": "${ModelPackageGroupName}"},
            },
        ],
    }


def substituted(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    text = json.dumps(template)
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return json.loads(text)


def put_definition(s3: Any, body: str | bytes, key: str = "assets/definition.json") -> dict:
    """Upload a definition object; return the properties that point at it."""
    data = body.encode() if isinstance(body, str) else body
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return {
        "DefinitionBucket": BUCKET,
        "DefinitionKey": key,
        "DefinitionSha256": hashlib.sha256(data).hexdigest(),
    }


def properties(definition_location: dict, **overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:provider-onevent",
        "PipelineName": PIPELINE,
        "PipelineDescription": "Fraud model training (dev)",
        "RoleArn": ROLE_ARN,
        "Substitutions": dict(SUBSTITUTIONS),
        "MaxParallelExecutionSteps": "4",
        "Tags": [{"Key": "project", "Value": "fraud"}, {"Key": "env", "Value": "dev"}],
        **definition_location,
    }
    props.update(overrides)
    return {key: value for key, value in props.items() if value is not None}


@pytest.fixture(autouse=True)
def _fake_aws(aws_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # The caller's ~/.aws/config must not change retry behaviour or endpoints under test.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@dataclass
class Aws:
    sagemaker: Any
    s3: Any


@pytest.fixture()
def aws() -> Iterator[Aws]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION, config=pr.client_config())
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield Aws(
            sagemaker=boto3.client("sagemaker", region_name=REGION, config=pr.client_config()),
            s3=s3,
        )


@pytest.fixture()
def stubbed(aws: Aws) -> Iterator[tuple[Any, Stubber]]:
    """A SageMaker client whose every call must be queued on the Stubber (S3 stays on moto)."""
    sagemaker = boto3.client("sagemaker", region_name=REGION, config=pr.client_config())
    with Stubber(sagemaker) as stubber:
        yield sagemaker, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture()
def offline() -> Iterator[Aws]:
    """Clients that may not call anything: every call fails on an empty Stubber."""
    clients = Aws(
        sagemaker=boto3.client("sagemaker", region_name=REGION, config=pr.client_config()),
        s3=boto3.client("s3", region_name=REGION, config=pr.client_config()),
    )
    with Stubber(clients.sagemaker), Stubber(clients.s3):
        yield clients


def event(request_type: str, props: Any, **extra: Any) -> dict[str, Any]:
    return {
        "request_type": request_type,
        "properties": props,
        "old_properties": extra.get("old_properties"),
        "physical_resource_id": extra.get("physical_resource_id"),
        "request_id": extra.get("request_id", f"{request_type.lower()}-6e7a9b2c-1f0d-4c1e"),
    }


def arn_of(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{name}"


def tags_of(sagemaker: Any, name: str) -> dict[str, str]:
    # dict(): moto's AddTags appends instead of overwriting, so the last value per key wins.
    tags = sagemaker.list_tags(ResourceArn=arn_of(name))["Tags"]
    return {tag["Key"]: tag["Value"] for tag in tags}


# ---------------------------------------------------------------- happy paths (moto)


def test_create_stores_the_substituted_definition_with_settings(aws: Aws) -> None:
    template = definition_template()
    props = properties(put_definition(aws.s3, json.dumps(template)))

    result = pr.handle_event(**event("Create", props), sagemaker=aws.sagemaker, s3=aws.s3)

    described = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    assert json.loads(described["PipelineDefinition"]) == substituted(template, SUBSTITUTIONS)
    assert "${" not in described["PipelineDefinition"]
    assert described["RoleArn"] == ROLE_ARN
    assert described["PipelineDescription"] == "Fraud model training (dev)"
    assert described["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 4}
    assert tags_of(aws.sagemaker, PIPELINE) == {"project": "fraud", "env": "dev"}
    assert result == {
        "PhysicalResourceId": PIPELINE,
        "Data": {"PipelineArn": described["PipelineArn"], "PipelineName": PIPELINE},
    }


def test_create_without_optional_properties_uses_the_documented_defaults(aws: Aws) -> None:
    location = put_definition(aws.s3, json.dumps({"Version": "2020-12-01", "Steps": []}))
    props = properties(
        location,
        PipelineDescription=None,
        Substitutions=None,
        MaxParallelExecutionSteps=None,
        Tags=None,
    )

    pr.handle_event(**event("Create", props), sagemaker=aws.sagemaker, s3=aws.s3)

    described = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    assert described["ParallelismConfiguration"] == {
        "MaxParallelExecutionSteps": pr.DEFAULT_MAX_PARALLEL_EXECUTION_STEPS
    }
    assert tags_of(aws.sagemaker, PIPELINE) == {}


def test_update_changes_definition_parallelism_description_and_tags(aws: Aws) -> None:
    old = properties(put_definition(aws.s3, json.dumps(definition_template()), key="v1.json"))
    pr.handle_event(**event("Create", old), sagemaker=aws.sagemaker, s3=aws.s3)
    new_template = definition_template(instance_type="ml.c5.2xlarge")
    new = properties(
        put_definition(aws.s3, json.dumps(new_template), key="v2.json"),
        PipelineDescription="Fraud model training (dev), bigger instances",
        MaxParallelExecutionSteps="2",
        Tags=[{"Key": "env", "Value": "development"}, {"Key": "owner", "Value": "ml-team"}],
    )

    result = pr.handle_event(
        **event("Update", new, old_properties=old, physical_resource_id=PIPELINE),
        sagemaker=aws.sagemaker,
        s3=aws.s3,
    )

    described = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    assert json.loads(described["PipelineDefinition"]) == substituted(new_template, SUBSTITUTIONS)
    assert described["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 2}
    assert described["PipelineDescription"] == "Fraud model training (dev), bigger instances"
    assert tags_of(aws.sagemaker, PIPELINE) == {"env": "development", "owner": "ml-team"}
    assert result["PhysicalResourceId"] == PIPELINE
    assert result["Data"]["PipelineArn"] == described["PipelineArn"]


def test_update_leaves_tags_it_never_declared(aws: Aws) -> None:
    old = properties(put_definition(aws.s3, json.dumps(definition_template())))
    pr.handle_event(**event("Create", old), sagemaker=aws.sagemaker, s3=aws.s3)
    aws.sagemaker.add_tags(
        ResourceArn=arn_of(PIPELINE), Tags=[{"Key": "sagemaker:project-name", "Value": "fraud"}]
    )
    new = copy.deepcopy(old)
    new["Tags"] = [{"Key": "project", "Value": "fraud"}]

    pr.handle_event(
        **event("Update", new, old_properties=old, physical_resource_id=PIPELINE),
        sagemaker=aws.sagemaker,
        s3=aws.s3,
    )

    assert tags_of(aws.sagemaker, PIPELINE) == {
        "project": "fraud",
        "sagemaker:project-name": "fraud",
    }


def test_update_with_a_new_name_creates_that_pipeline_and_returns_its_id(aws: Aws) -> None:
    old = properties(put_definition(aws.s3, json.dumps(definition_template())))
    pr.handle_event(**event("Create", old), sagemaker=aws.sagemaker, s3=aws.s3)
    new = {**old, "PipelineName": "fraud-dev-training-v2"}

    result = pr.handle_event(
        **event("Update", new, old_properties=old, physical_resource_id=PIPELINE),
        sagemaker=aws.sagemaker,
        s3=aws.s3,
    )

    assert result["PhysicalResourceId"] == "fraud-dev-training-v2"
    described = aws.sagemaker.describe_pipeline(PipelineName="fraud-dev-training-v2")
    assert result["Data"]["PipelineArn"] == described["PipelineArn"]
    assert tags_of(aws.sagemaker, "fraud-dev-training-v2") == {"project": "fraud", "env": "dev"}
    # The old one is CloudFormation's to delete (it sends Delete for the old physical ID).
    aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)


def test_rollback_of_a_rename_updates_the_old_pipeline_in_place(aws: Aws) -> None:
    old = properties(put_definition(aws.s3, json.dumps(definition_template()), key="v1.json"))
    pr.handle_event(**event("Create", old), sagemaker=aws.sagemaker, s3=aws.s3)
    renamed = {
        **properties(put_definition(aws.s3, json.dumps({"Version": "2020-12-01"}), key="v2.json")),
        "PipelineName": "fraud-dev-training-v2",
    }
    pr.handle_event(
        **event("Update", renamed, old_properties=old, physical_resource_id=PIPELINE),
        sagemaker=aws.sagemaker,
        s3=aws.s3,
    )

    # CloudFormation rolls back: old properties again, the new pipeline's physical ID.
    result = pr.handle_event(
        **event(
            "Update", old, old_properties=renamed, physical_resource_id="fraud-dev-training-v2"
        ),
        sagemaker=aws.sagemaker,
        s3=aws.s3,
    )

    assert result["PhysicalResourceId"] == PIPELINE
    described = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    assert json.loads(described["PipelineDefinition"]) == substituted(
        definition_template(), SUBSTITUTIONS
    )


def test_update_recreates_a_pipeline_deleted_out_of_band(aws: Aws) -> None:
    old = properties(put_definition(aws.s3, json.dumps(definition_template())))
    pr.handle_event(**event("Create", old), sagemaker=aws.sagemaker, s3=aws.s3)
    aws.sagemaker.delete_pipeline(PipelineName=PIPELINE, ClientRequestToken="x" * 32)
    new = {**old, "MaxParallelExecutionSteps": "3"}

    result = pr.handle_event(
        **event("Update", new, old_properties=old, physical_resource_id=PIPELINE),
        sagemaker=aws.sagemaker,
        s3=aws.s3,
    )

    described = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    assert described["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 3}
    assert tags_of(aws.sagemaker, PIPELINE) == {"project": "fraud", "env": "dev"}
    assert result["PhysicalResourceId"] == PIPELINE


def test_delete_removes_the_pipeline(aws: Aws) -> None:
    props = properties(put_definition(aws.s3, json.dumps(definition_template())))
    pr.handle_event(**event("Create", props), sagemaker=aws.sagemaker, s3=aws.s3)

    result = pr.handle_event(
        **event("Delete", props, physical_resource_id=PIPELINE),
        sagemaker=aws.sagemaker,
        s3=aws.s3,
    )

    assert result == {"PhysicalResourceId": PIPELINE}
    assert aws.sagemaker.list_pipelines()["PipelineSummaries"] == []


def test_delete_of_a_missing_pipeline_succeeds(aws: Aws) -> None:
    # moto answers ValidationException "Could not find pipeline with PipelineName ...".
    result = pr.handle_event(
        **event("Delete", {}, physical_resource_id="never-created"),
        sagemaker=aws.sagemaker,
        s3=aws.s3,
    )

    assert result == {"PhysicalResourceId": "never-created"}


# ---------------------------------------------------------------- error paths (Stubber)


def create_token(request_id: str = "create-6e7a9b2c-1f0d-4c1e", name: str = PIPELINE) -> str:
    return pr.client_request_token(request_id, "CreatePipeline", name)


def test_create_validation_error_carries_the_aws_message(
    aws: Aws, stubbed: tuple[Any, Stubber]
) -> None:
    sagemaker, stubber = stubbed
    props = properties(put_definition(aws.s3, json.dumps(definition_template())))
    message = "Invalid pipeline definition: Step Prepare references unknown property Foo"
    stubber.add_client_error(
        "create_pipeline",
        service_error_code="ValidationException",
        service_message=message,
        http_status_code=400,
    )

    with pytest.raises(pr.PipelineResourceError) as raised:
        pr.handle_event(**event("Create", props), sagemaker=sagemaker, s3=aws.s3)

    assert str(raised.value).startswith(f"CreatePipeline failed: ValidationException: {message}")
    assert PIPELINE in str(raised.value)


def test_create_access_denied_fails_with_the_reason(aws: Aws, stubbed: tuple[Any, Stubber]) -> None:
    sagemaker, stubber = stubbed
    props = properties(put_definition(aws.s3, json.dumps(definition_template())))
    message = (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/onevent/fn is not authorized to perform: "
        "iam:PassRole on resource: " + ROLE_ARN
    )
    stubber.add_client_error(
        "create_pipeline",
        service_error_code="AccessDeniedException",
        service_message=message,
        http_status_code=400,
    )

    with pytest.raises(pr.PipelineResourceError, match="iam:PassRole") as raised:
        pr.handle_event(**event("Create", props), sagemaker=sagemaker, s3=aws.s3)

    assert "CreatePipeline failed: AccessDeniedException" in str(raised.value)


def test_create_sends_one_deterministic_token_and_every_setting(
    aws: Aws, stubbed: tuple[Any, Stubber]
) -> None:
    sagemaker, stubber = stubbed
    template = definition_template()
    props = properties(put_definition(aws.s3, json.dumps(template)))
    expected_definition = pr.render_definition(json.dumps(template), SUBSTITUTIONS)
    stubber.add_response(
        "create_pipeline",
        {"PipelineArn": arn_of(PIPELINE)},
        {
            "PipelineName": PIPELINE,
            "PipelineDefinition": expected_definition,
            "PipelineDescription": "Fraud model training (dev)",
            "RoleArn": ROLE_ARN,
            "ParallelismConfiguration": {"MaxParallelExecutionSteps": 4},
            "Tags": [{"Key": "project", "Value": "fraud"}, {"Key": "env", "Value": "dev"}],
            "ClientRequestToken": create_token(),
        },
    )

    pr.handle_event(**event("Create", props), sagemaker=sagemaker, s3=aws.s3)


def test_update_always_sends_parallelism_and_only_the_tag_changes(
    aws: Aws, stubbed: tuple[Any, Stubber]
) -> None:
    # boto3#4384: Pipeline.upsert drops parallelism_config on update; we must not.
    sagemaker, stubber = stubbed
    template = definition_template()
    old = properties(put_definition(aws.s3, json.dumps(template)))
    new = {key: value for key, value in old.items() if key != "MaxParallelExecutionSteps"}
    new["Tags"] = [{"Key": "env", "Value": "dev"}, {"Key": "owner", "Value": "ml-team"}]
    stubber.add_response(
        "update_pipeline",
        {"PipelineArn": arn_of(PIPELINE), "PipelineVersionId": 2},
        {
            "PipelineName": PIPELINE,
            "PipelineDefinition": pr.render_definition(json.dumps(template), SUBSTITUTIONS),
            "PipelineDescription": "Fraud model training (dev)",
            "RoleArn": ROLE_ARN,
            "ParallelismConfiguration": {"MaxParallelExecutionSteps": 50},
        },
    )
    stubber.add_response(
        "list_tags",
        {
            "Tags": [
                {"Key": "project", "Value": "fraud"},
                {"Key": "env", "Value": "dev"},
                {"Key": "sagemaker:project-id", "Value": "p-abc"},
            ]
        },
        {"ResourceArn": arn_of(PIPELINE)},
    )
    stubber.add_response(
        "delete_tags", {}, {"ResourceArn": arn_of(PIPELINE), "TagKeys": ["project"]}
    )
    stubber.add_response(
        "add_tags",
        {"Tags": []},
        {"ResourceArn": arn_of(PIPELINE), "Tags": [{"Key": "owner", "Value": "ml-team"}]},
    )

    result = pr.handle_event(
        **event("Update", new, old_properties=old, physical_resource_id=PIPELINE),
        sagemaker=sagemaker,
        s3=aws.s3,
    )

    assert result["Data"] == {"PipelineArn": arn_of(PIPELINE), "PipelineName": PIPELINE}


def test_update_of_missing_pipeline_creates_it_on_resource_not_found(
    aws: Aws, stubbed: tuple[Any, Stubber]
) -> None:
    sagemaker, stubber = stubbed
    props = properties(put_definition(aws.s3, json.dumps(definition_template())))
    stubber.add_client_error(
        "update_pipeline",
        service_error_code="ResourceNotFound",
        service_message=f"Pipeline '{arn_of(PIPELINE)}' does not exist.",
    )
    stubber.add_response("create_pipeline", {"PipelineArn": arn_of(PIPELINE)})

    result = pr.handle_event(
        **event("Update", props, old_properties=props, physical_resource_id=PIPELINE),
        sagemaker=sagemaker,
        s3=aws.s3,
    )

    assert result["PhysicalResourceId"] == PIPELINE


def test_update_validation_error_about_something_else_is_not_taken_for_missing(
    aws: Aws, stubbed: tuple[Any, Stubber]
) -> None:
    sagemaker, stubber = stubbed
    props = properties(put_definition(aws.s3, json.dumps(definition_template())))
    stubber.add_client_error(
        "update_pipeline",
        service_error_code="ValidationException",
        service_message=f"Role {ROLE_ARN} does not exist or cannot be assumed",
    )

    with pytest.raises(pr.PipelineResourceError, match="UpdatePipeline failed: Validation"):
        pr.handle_event(
            **event("Update", props, old_properties=props, physical_resource_id=PIPELINE),
            sagemaker=sagemaker,
            s3=aws.s3,
        )


def test_tag_sync_access_denied_fails_with_the_reason(
    aws: Aws, stubbed: tuple[Any, Stubber]
) -> None:
    sagemaker, stubber = stubbed
    props = properties(put_definition(aws.s3, json.dumps(definition_template())))
    stubber.add_response("update_pipeline", {"PipelineArn": arn_of(PIPELINE)})
    stubber.add_client_error(
        "list_tags",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: sagemaker:ListTags",
    )

    with pytest.raises(pr.PipelineResourceError, match="ListTags failed: AccessDeniedException"):
        pr.handle_event(
            **event("Update", props, old_properties=props, physical_resource_id=PIPELINE),
            sagemaker=sagemaker,
            s3=aws.s3,
        )


def test_delete_resource_not_found_is_success(stubbed: tuple[Any, Stubber], aws: Aws) -> None:
    sagemaker, stubber = stubbed
    request_id = "delete-0b1c"
    stubber.add_client_error(
        "delete_pipeline",
        service_error_code="ResourceNotFound",
        service_message=f"Pipeline '{arn_of(PIPELINE)}' does not exist.",
        expected_params={
            "PipelineName": PIPELINE,
            "ClientRequestToken": pr.client_request_token(request_id, "DeletePipeline", PIPELINE),
        },
    )

    result = pr.handle_event(
        **event("Delete", {}, physical_resource_id=PIPELINE, request_id=request_id),
        sagemaker=sagemaker,
        s3=aws.s3,
    )

    assert result == {"PhysicalResourceId": PIPELINE}


def test_delete_while_executions_run_fails_with_the_reason(
    stubbed: tuple[Any, Stubber], aws: Aws
) -> None:
    sagemaker, stubber = stubbed
    stubber.add_client_error(
        "delete_pipeline",
        service_error_code="ConflictException",
        service_message="Pipeline has running executions",
    )

    with pytest.raises(pr.PipelineResourceError, match="DeletePipeline failed: ConflictException"):
        pr.handle_event(
            **event("Delete", {}, physical_resource_id=PIPELINE), sagemaker=sagemaker, s3=aws.s3
        )


@pytest.mark.parametrize("physical_id", [pr.CREATE_FAILED_MARKER, None])
def test_delete_after_a_failed_create_calls_nothing(offline: Aws, physical_id: str | None) -> None:
    result = pr.handle_event(
        **event("Delete", {"PipelineName": ""}, physical_resource_id=physical_id),
        sagemaker=offline.sagemaker,
        s3=offline.s3,
    )

    assert result.get("PhysicalResourceId") == physical_id


# ---------------------------------------------------------------- throttling and retries


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _http(status: int, body: dict[str, Any]) -> AWSResponse:
    return AWSResponse(
        "https://api.sagemaker.eu-west-1.amazonaws.com/",
        status,
        {"Content-Type": "application/x-amz-json-1.1"},
        _Raw(json.dumps(body).encode()),
    )


@pytest.fixture()
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0
    )


def _scripted_sagemaker(responses: list[AWSResponse], sent: list[dict[str, Any]]) -> Any:
    """A SageMaker client with the handler's retry config whose HTTP layer answers from
    `responses`. Stubber can't test retries: it answers at `before-call`, above the retry
    loop; `before-send` sits inside it, so botocore's real retry handler sees these."""
    sagemaker = boto3.client("sagemaker", region_name=REGION, config=pr.client_config())

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(json.loads(request.body))
        return responses.pop(0) if len(responses) > 1 else responses[0]

    sagemaker.meta.events.register_first("before-send.sagemaker.CreatePipeline", answer)
    return sagemaker


def test_throttling_is_retried_with_the_same_token_then_succeeds(
    aws: Aws, no_backoff: None
) -> None:
    throttled = _http(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
    created = _http(200, {"PipelineArn": arn_of(PIPELINE)})
    sent: list[dict[str, Any]] = []
    sagemaker = _scripted_sagemaker([throttled, throttled, created], sent)
    props = properties(put_definition(aws.s3, json.dumps(definition_template())))

    result = pr.handle_event(**event("Create", props), sagemaker=sagemaker, s3=aws.s3)

    assert result["Data"]["PipelineArn"] == arn_of(PIPELINE)
    assert len(sent) == 3
    # Same idempotency token on every attempt: a create that landed before a throttled
    # response can't be made twice.
    assert {request["ClientRequestToken"] for request in sent} == {create_token()}


def test_throttling_that_never_ends_fails_with_the_reason(aws: Aws, no_backoff: None) -> None:
    throttled = _http(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
    sent: list[dict[str, Any]] = []
    sagemaker = _scripted_sagemaker([throttled], sent)
    props = properties(put_definition(aws.s3, json.dumps(definition_template())))

    with pytest.raises(pr.PipelineResourceError) as raised:
        pr.handle_event(**event("Create", props), sagemaker=sagemaker, s3=aws.s3)

    assert str(raised.value).startswith("CreatePipeline failed: ThrottlingException: Rate exceeded")
    assert len(sent) == pr.MAX_ATTEMPTS


# ---------------------------------------------------------------- bad definitions


def test_sha_mismatch_fails_before_any_sagemaker_call(
    aws: Aws, stubbed: tuple[Any, Stubber]
) -> None:
    sagemaker, _ = stubbed
    location = put_definition(aws.s3, json.dumps(definition_template()))
    aws.s3.put_object(Bucket=BUCKET, Key=location["DefinitionKey"], Body=b'{"Version": "x"}')

    with pytest.raises(pr.PipelineResourceError) as raised:
        pr.handle_event(**event("Create", properties(location)), sagemaker=sagemaker, s3=aws.s3)

    message = str(raised.value)
    assert location["DefinitionSha256"] in message
    assert hashlib.sha256(b'{"Version": "x"}').hexdigest() in message
    assert f"s3://{BUCKET}/{location['DefinitionKey']}" in message


def test_leftover_placeholders_are_all_named(aws: Aws, stubbed: tuple[Any, Stubber]) -> None:
    sagemaker, _ = stubbed
    template = definition_template()
    template["Steps"][0]["Arguments"]["Environment"] = {"STAGE": "${Stage}", "X": "${Other}"}
    props = properties(
        put_definition(aws.s3, json.dumps(template)),
        Substitutions={k: v for k, v in SUBSTITUTIONS.items() if k != "KmsKeyArn"},
    )

    with pytest.raises(pr.PipelineResourceError) as raised:
        pr.handle_event(**event("Create", props), sagemaker=sagemaker, s3=aws.s3)

    assert "${KmsKeyArn}, ${Other}, ${Stage}" in str(raised.value)


def test_escaped_placeholder_stays_literal_and_values_are_json_escaped() -> None:
    template = json.dumps({"Cmd": "echo ${!HOME}", "Note": "${Desc}", "Bucket": "${Bucket}"})

    rendered = pr.render_definition(
        template, {"Desc": 'quote " and back\\slash', "Bucket": "b", "Unused": "u"}
    )

    assert json.loads(rendered) == {
        "Cmd": "echo ${HOME}",
        "Note": 'quote " and back\\slash',
        "Bucket": "b",
    }


def test_oversize_definition_fails_clearly(aws: Aws, stubbed: tuple[Any, Stubber]) -> None:
    sagemaker, _ = stubbed
    template = {"Version": "2020-12-01", "Metadata": {"Padding": "p" * pr.MAX_DEFINITION_CHARS}}
    props = properties(put_definition(aws.s3, json.dumps(template)))

    with pytest.raises(pr.PipelineResourceError) as raised:
        pr.handle_event(**event("Create", props), sagemaker=sagemaker, s3=aws.s3)

    message = str(raised.value)
    assert f"{len(json.dumps(template)):,} characters" in message
    assert "at most 1,048,576" in message


def test_definition_at_the_size_limit_is_accepted() -> None:
    padding = pr.MAX_DEFINITION_CHARS - len(json.dumps({"P": ""}))
    template = json.dumps({"P": "p" * padding})
    assert len(template) == pr.MAX_DEFINITION_CHARS

    assert pr.render_definition(template, {}) == template


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
    ],
    ids=["not-json", "not-an-object", "not-utf8"],
)
def test_malformed_definition_object_fails_clearly(
    aws: Aws, stubbed: tuple[Any, Stubber], body: bytes, fragment: str
) -> None:
    sagemaker, _ = stubbed
    props = properties(put_definition(aws.s3, body))

    with pytest.raises(pr.PipelineResourceError, match=fragment):
        pr.handle_event(**event("Create", props), sagemaker=sagemaker, s3=aws.s3)


def test_missing_definition_object_fails_with_the_s3_reason(
    aws: Aws, stubbed: tuple[Any, Stubber]
) -> None:
    sagemaker, _ = stubbed
    location = {"DefinitionBucket": BUCKET, "DefinitionKey": "gone.json"}
    props = properties({**location, "DefinitionSha256": "0" * 64})

    with pytest.raises(pr.PipelineResourceError, match="GetObject failed: NoSuchKey") as raised:
        pr.handle_event(**event("Create", props), sagemaker=sagemaker, s3=aws.s3)

    assert f"s3://{BUCKET}/gone.json" in str(raised.value)


# ---------------------------------------------------------------- malformed properties


VALID_LOCATION = {
    "DefinitionBucket": BUCKET,
    "DefinitionKey": "d.json",
    "DefinitionSha256": "a" * 64,
}


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"PipelineName": None}, "PipelineName is required"),
        ({"PipelineName": "fraud_dev"}, "PipelineName 'fraud_dev' is invalid"),
        ({"RoleArn": None}, "RoleArn is required"),
        ({"RoleArn": "pipeline-role"}, "RoleArn 'pipeline-role' is not an IAM role ARN"),
        ({"DefinitionBucket": ""}, "DefinitionBucket is required"),
        ({"DefinitionSha256": "abc"}, "DefinitionSha256 'abc' is not a SHA-256"),
        ({"MaxParallelExecutionSteps": "0"}, "MaxParallelExecutionSteps must be a whole number"),
        ({"MaxParallelExecutionSteps": "four"}, "got 'four'"),
        ({"Tags": {"env": "dev"}}, "Tags must be a list"),
        ({"Tags": [{"Key": "env"}]}, "Tags[0].Value must be a string"),
        ({"Tags": [{"Key": "aws:x", "Value": "v"}]}, "reserved prefix 'aws:'"),
        (
            {"Tags": [{"Key": "env", "Value": "a"}, {"Key": "env", "Value": "b"}]},
            "Tags[1].Key 'env' is repeated",
        ),
        ({"Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]}, "at most 50"),
        ({"Substitutions": {"RoleArn": 7}}, "Substitutions.RoleArn must be a string"),
        ({"Substitutions": ["RoleArn"]}, "Substitutions must be an object"),
        ({"PipelineDescription": "d" * 3073}, "PipelineDescription must be a string"),
        ({"MaxParallelSteps": "4"}, "unknown properties MaxParallelSteps"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_malformed_properties_fail_with_a_message_naming_the_key(
    offline: Aws, overrides: dict[str, Any], fragment: str
) -> None:
    props = {**properties(VALID_LOCATION), **overrides}
    props = {key: value for key, value in props.items() if value is not None}

    with pytest.raises(pr.PropertiesError) as raised:  # before any S3 or SageMaker call
        pr.handle_event(**event("Create", props), sagemaker=offline.sagemaker, s3=offline.s3)

    assert fragment in str(raised.value)


def test_all_property_problems_are_reported_together() -> None:
    with pytest.raises(pr.PropertiesError) as raised:
        pr.parse_properties({"RoleArn": "nope", "MaxParallelExecutionSteps": "-1"})

    message = str(raised.value)
    for fragment in ("PipelineName is required", "RoleArn 'nope'", "DefinitionKey is required"):
        assert fragment in message
    assert "MaxParallelExecutionSteps" in message


def test_numbers_as_cloudformation_sends_them_are_accepted() -> None:
    parsed = pr.parse_properties(properties(VALID_LOCATION, MaxParallelExecutionSteps="12"))

    assert parsed.max_parallel_execution_steps == 12
    assert pr.parse_properties(properties(VALID_LOCATION, MaxParallelExecutionSteps=12)) == parsed


def test_unknown_request_type_fails_clearly(offline: Aws) -> None:
    with pytest.raises(pr.PipelineResourceError, match="RequestType 'Upsert'"):
        pr.handle_event(**event("Upsert", {}), sagemaker=offline.sagemaker, s3=offline.s3)


def test_client_request_token_is_deterministic_and_in_range() -> None:
    token = pr.client_request_token("req-1", "CreatePipeline", PIPELINE)

    assert token == pr.client_request_token("req-1", "CreatePipeline", PIPELINE)
    assert 32 <= len(token) <= 128
    assert token != pr.client_request_token("req-2", "CreatePipeline", PIPELINE)
    assert token != pr.client_request_token("req-1", "DeletePipeline", PIPELINE)
    assert token != pr.client_request_token("req-1", "CreatePipeline", "other")


def test_unanswered_call_reason_names_operation_exception_endpoint_and_subject() -> None:
    url = f"https://api.sagemaker.{REGION}.amazonaws.com/"
    error = ReadTimeoutError(endpoint_url=url)

    reason = str(pr.aws_failure("UpdatePipeline", error, f"pipeline {PIPELINE}"))

    assert reason == (
        f'UpdatePipeline failed: ReadTimeoutError: Read timeout on endpoint URL: "{url}" '
        f"[pipeline {PIPELINE}]"
    )
    # No answer says nothing about the pipeline: never taken for "does not exist".
    assert not pr.is_pipeline_not_found(error, PIPELINE)


def test_retry_config_is_standard_mode() -> None:
    config = pr.client_config()

    assert config.retries == {"mode": "standard", "total_max_attempts": pr.MAX_ATTEMPTS}


# ---------------------------------------------------------------- the thin handler


@dataclass
class LambdaContext:
    function_name: str = "pipeline-resource-onevent"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:onevent"
    aws_request_id: str = "3f1e6c52-1111-4d6b-9a7a-2b7f0c9d4e10"


def cfn_event(request_type: str, props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/fraud-dev-training/1c2d"
    request = {
        "RequestType": request_type,
        "ServiceToken": props.get("ServiceToken", ""),
        "ResponseURL": "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/x",
        "StackId": stack_id,
        "RequestId": extra.pop("RequestId", f"{request_type}-5f0c1f7e-8d1a-4f77-b1c3"),
        "LogicalResourceId": "TrainingPipeline",
        "ResourceType": "Custom::SageMakerPipeline",
        "ResourceProperties": props,
    }
    request.update(extra)
    return request


def test_handler_runs_create_update_delete_from_cloudformation_events(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    old = properties(put_definition(aws.s3, json.dumps(definition_template()), key="v1.json"))
    new = properties(
        put_definition(aws.s3, json.dumps(definition_template("ml.m5.2xlarge")), key="v2.json"),
        MaxParallelExecutionSteps="8",
    )

    created = handler_module.lambda_handler(cfn_event("Create", old), LambdaContext())
    updated = handler_module.lambda_handler(
        cfn_event("Update", new, OldResourceProperties=old, PhysicalResourceId=PIPELINE),
        LambdaContext(),
    )
    described = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    deleted = handler_module.lambda_handler(
        cfn_event("Delete", new, PhysicalResourceId=PIPELINE), LambdaContext()
    )

    assert (
        created
        == updated
        == {
            "PhysicalResourceId": PIPELINE,
            "Data": {"PipelineArn": described["PipelineArn"], "PipelineName": PIPELINE},
        }
    )
    assert described["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 8}
    assert deleted == {"PhysicalResourceId": PIPELINE}
    assert aws.sagemaker.list_pipelines()["PipelineSummaries"] == []
    logged = [json.dumps(vars(record), default=str) for record in caplog.records]
    update_log = next(line for line in logged if '"msg": "Update"' in line)
    assert PIPELINE in update_log and new["DefinitionSha256"] in update_log
    # The event's pre-signed ResponseURL must never reach the logs.
    assert not any("cloudformation-custom-resource-response" in line for line in logged)


def test_handler_raises_the_reason_for_a_malformed_event(aws: Aws) -> None:
    props = properties(VALID_LOCATION)
    del props["PipelineName"]

    with pytest.raises(pr.PropertiesError, match="PipelineName is required"):
        handler_module.lambda_handler(cfn_event("Create", props), LambdaContext())
