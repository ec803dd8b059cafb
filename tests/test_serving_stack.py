"""Serving stack: the guarded endpoint and the approval -> deploy wiring."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.lambda_loader import load_lambda_module

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")


def _one(template: Template, kind: str) -> tuple[str, dict[str, Any]]:
    (item,) = [(k, r) for k, r in template.to_json()["Resources"].items() if r["Type"] == kind]
    return item


def test_no_endpoint_until_a_model_package_is_set(dev: dict[str, Template]) -> None:
    template = dev["serving"].to_json()
    assert template["Parameters"]["ModelPackageArn"]["Default"] == ""
    assert template["Conditions"]["HasModel"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ModelPackageArn"}, ""]}]
    }
    for kind in (
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
    ):
        assert _one(dev["serving"], kind)[1]["Condition"] == "HasModel", kind


def test_model_comes_from_the_package_with_network_isolation(dev: dict[str, Template]) -> None:
    _, model = _one(dev["serving"], "AWS::SageMaker::Model")
    assert model["Properties"]["PrimaryContainer"] == {
        "ModelPackageName": {"Ref": "ModelPackageArn"}
    }
    assert model["Properties"]["EnableNetworkIsolation"] is True


def test_endpoint_config_is_encrypted_and_captures_to_the_data_bucket(
    dev: dict[str, Template],
    prod: dict[str, Template],
) -> None:
    _, config = _one(dev["serving"], "AWS::SageMaker::EndpointConfig")
    props = config["Properties"]
    assert "KmsKeyId" in props
    capture = props["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 100
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert "KmsKeyId" in capture
    assert capture["DestinationS3Uri"]["Fn::Join"][1][-1] == "/capture"
    assert capture["CaptureContentTypeHeader"] == {"CsvContentTypes": ["text/csv"]}
    _, prod_config = _one(prod["serving"], "AWS::SageMaker::EndpointConfig")
    assert prod_config["Properties"]["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    assert prod_config["Properties"]["ProductionVariants"][0]["InstanceType"] == "ml.m5.xlarge"


def test_blue_green_canary_rolls_back_on_both_alarms(dev: dict[str, Template]) -> None:
    template = dev["serving"]
    _, endpoint = _one(template, "AWS::SageMaker::Endpoint")
    deployment = endpoint["Properties"]["DeploymentConfig"]
    routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        "WaitIntervalInSeconds": 600,
    }
    rollback_alarms = [
        a["AlarmName"]["Ref"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]
    ]
    alarms = template.to_json()["Resources"]
    metrics = sorted(alarms[a]["Properties"]["MetricName"] for a in rollback_alarms)
    assert metrics == ["Invocation5XXErrors", "ModelLatency"]
    latency = next(
        alarms[a]
        for a in rollback_alarms
        if alarms[a]["Properties"]["MetricName"] == "ModelLatency"
    )
    assert latency["Properties"]["Threshold"] == 500_000  # 500 ms in microseconds
    assert latency["Properties"]["ExtendedStatistic"] == "p99"


def test_autoscaling_tracks_invocations_per_instance(prod: dict[str, Template]) -> None:
    _, target = _one(prod["serving"], "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["Properties"]["MinCapacity"] == 2
    assert target["Properties"]["MaxCapacity"] == 6
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in str(
        target["Properties"]["RoleARN"]
    )
    _, policy = _one(prod["serving"], "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 200
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )


def _resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template.to_json()["Resources"].items() if r["Type"] == kind}


def _rule(template: Template, **pattern: Any) -> dict[str, Any]:
    (rule,) = [
        r["Properties"]
        for r in _resources(template, "AWS::Events::Rule").values()
        if all(r["Properties"]["EventPattern"].get(k) == v for k, v in pattern.items())
    ]
    return rule


def _queue_id(template: Template, redrive_count: int) -> str:
    (queue,) = [
        k
        for k, r in _resources(template, "AWS::SQS::Queue").items()
        if r["Properties"].get("RedrivePolicy", {}).get("maxReceiveCount") == redrive_count
    ]
    return queue


def test_approvals_and_rollbacks_reach_the_deployer_through_a_queue(
    dev: dict[str, Template],
) -> None:
    template = dev["serving"]
    queue = {"Fn::GetAtt": [_queue_id(template, 20), "Arn"]}
    approvals = _rule(template, source=["aws.sagemaker"])
    assert approvals["EventPattern"]["detail"] == {
        "ModelPackageGroupName": ["mlops-loop-dev-models"],
        "ModelApprovalStatus": ["Approved"],
    }
    assert "EventBusName" not in approvals  # AWS service events arrive on the default bus
    rollbacks = _rule(template, source=["mlops.serving"])
    assert rollbacks["EventPattern"]["detail"] == {
        "model_package_group_name": ["mlops-loop-dev-models"]
    }
    (bus,) = _resources(template, "AWS::Events::EventBus")
    assert rollbacks["EventBusName"] == {"Ref": bus}  # never the default bus
    for rule in (approvals, rollbacks):
        assert [t["Arn"] for t in rule["Targets"]] == [queue]
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": 1, "FunctionResponseTypes": ["ReportBatchItemFailures"]},
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "RedrivePolicy": {"maxReceiveCount": 20, "deadLetterTargetArn": Match.any_value()},
            "KmsMasterKeyId": Match.any_value(),
        },
    )


def test_deployer_environment_follows_the_config(
    dev: dict[str, Template],
    prod: dict[str, Template],
) -> None:
    for templates, deploy_on in ((dev, "approval"), (prod, "promotion")):
        templates["serving"].has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Environment": {
                    "Variables": Match.object_like(
                        {"DEPLOY_ON": deploy_on, "SERVING_STACK_NAME": Match.any_value()}
                    )
                },
                "Handler": "handler.lambda_handler",
            },
        )


def _deployer(template: Template) -> dict[str, Any]:
    (function,) = [
        r["Properties"]
        for r in _resources(template, "AWS::Lambda::Function").values()
        if "MODEL_ARTIFACT_PREFIX" in r["Properties"].get("Environment", {}).get("Variables", {})
    ]
    return function


def test_deployer_reads_only_the_model_artifacts_the_pipeline_writes(
    dev: dict[str, Template],
) -> None:
    from mlops_config import parse_environment, read_cdk_json_context
    from stacks.pipeline_definitions import generate_pipelines

    template = dev["serving"]
    function = _deployer(template)
    prefix = function["Environment"]["Variables"]["MODEL_ARTIFACT_PREFIX"]
    # The training step's output path in the definition the app deploys is under that prefix.
    definition = json.loads(
        generate_pipelines(parse_environment(read_cdk_json_context(), "dev"))
        .definition_file("training")
        .read_text()
    )
    outputs = [
        step["Arguments"]["OutputDataConfig"]["S3OutputPath"]
        for step in definition["Steps"]
        if step["Type"] == "Training"
    ]
    assert outputs and all(
        o.rstrip("/") + "/" == f"s3://${{ArtifactBucket}}/{prefix}" for o in outputs
    )
    gets = [
        s
        for r in _resources(template, "AWS::IAM::Policy").values()
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "s3:GetObject"
        and "DeployerFunctionRole" in json.dumps(r["Properties"]["Roles"])
    ]
    assert [s["Resource"]["Fn::Join"][1][1] for s in gets] == [f"/{prefix}*"]
    # Hashing a model streams it: a timeout and memory sized for it, SQS visibility 6x.
    assert (function["Timeout"], function["MemorySize"]) == (120, 1024)
    queue = _resources(template, "AWS::SQS::Queue")[_queue_id(template, 20)]
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * function["Timeout"]


def test_operator_bus_admits_only_tagged_operators(dev: dict[str, Template]) -> None:
    template = dev["serving"]
    (policy,) = _resources(template, "AWS::Events::EventBusPolicy").values()
    statement = policy["Properties"]["Statement"]
    assert (statement["Effect"], statement["Action"], statement["Principal"]) == (
        "Deny",
        "events:PutEvents",
        {"AWS": "*"},
    )
    assert statement["Condition"] == {
        "StringNotEquals": {"aws:PrincipalTag/mlops-loop-operator": "true"}
    }
    outputs = template.to_json()["Outputs"]
    (bus,) = _resources(template, "AWS::Events::EventBus")
    assert outputs["OperatorEventBusName"]["Value"] == {"Ref": bus}


def _managed(template: Template, words: str) -> list[dict[str, Any]]:
    (policy,) = [
        r["Properties"]
        for r in _resources(template, "AWS::IAM::ManagedPolicy").values()
        if words in r["Properties"]["Description"]
    ]
    return policy["PolicyDocument"]["Statement"]


def test_approver_policy_separates_approve_reject_and_promote(dev: dict[str, Template]) -> None:
    statements = {s.get("Sid"): s for s in _managed(dev["serving"], "Approvers of")}
    keep_hash = {
        "sagemaker:CustomerMetadataProperties/model_artifact_sha256": "true",
        "sagemaker:CustomerMetadataPropertiesToRemove": "true",
    }
    assert statements["ApproveModelPackages"]["Condition"] == {
        "StringEquals": {"sagemaker:ModelApprovalStatus": "Approved"},
        "Null": {"sagemaker:ModelLifeCycle:Stage": "true", **keep_hash},
    }
    assert statements["RejectModelPackages"]["Condition"] == {
        "StringEquals": {"sagemaker:ModelApprovalStatus": "Rejected"},
        "Null": {"sagemaker:ModelLifeCycle:Stage": "true", **keep_hash},
    }
    assert statements["PromoteModelPackages"]["Condition"] == {
        "StringEquals": {
            "sagemaker:ModelLifeCycle:Stage": "Production",
            "sagemaker:ModelLifeCycle:StageStatus": "Approved",
        },
        "Null": {"sagemaker:ModelApprovalStatus": "true", **keep_hash},
    }
    for sid in ("ApproveModelPackages", "RejectModelPackages", "PromoteModelPackages"):
        assert statements[sid]["Resource"].endswith(":model-package/mlops-loop-dev-models/*")


def test_operator_policy_may_put_only_rollback_requests_on_the_bus(
    dev: dict[str, Template],
) -> None:
    (put,) = [
        s for s in _managed(dev["serving"], "Operators of") if s["Action"] == "events:PutEvents"
    ]
    (bus,) = _resources(dev["serving"], "AWS::Events::EventBus")
    assert put["Resource"] == {"Fn::GetAtt": [bus, "Arn"]}
    assert put["Condition"] == {
        "StringEquals": {
            "events:source": "mlops.serving",
            "events:detail-type": "Rollback Requested",
        }
    }


def _alarm_on(template: Template, what: str) -> dict[str, Any]:
    """The alarm whose metric (or metric math) mentions `what`."""
    (alarm,) = [
        r["Properties"]
        for r in _resources(template, "AWS::CloudWatch::Alarm").values()
        if what
        in json.dumps(r["Properties"].get("Dimensions", []))
        + json.dumps(r["Properties"].get("Metrics", []))
    ]
    return alarm


def test_deploy_failures_are_loud(dev: dict[str, Template]) -> None:
    template = dev["serving"]
    requests = _resources(template, "AWS::SQS::Queue")[_queue_id(template, 20)]
    dead_letters = requests["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
    function = next(
        k
        for k, r in _resources(template, "AWS::Lambda::Function").items()
        if "MODEL_ARTIFACT_PREFIX" in json.dumps(r)
    )
    on_dead_letters = _alarm_on(template, dead_letters["Fn::GetAtt"][0])
    errors = _alarm_on(template, function)
    failures = _alarm_on(template, "DeployFailures")
    assert (on_dead_letters["Threshold"], errors["MetricName"]) == (0, "Errors")
    kinds = {
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
        for m in failures["Metrics"]
        if "MetricStat" in m
    }
    failure_kinds = load_lambda_module("deploy_model", "model_deployer").FailureKind
    assert kinds == {str(k) for k in failure_kinds} - {"StackBusy"}
    # each kind alone must breach: a missing series must not blank the sum
    (expression,) = [m["Expression"] for m in failures["Metrics"] if "Expression" in m]
    ids = [m["Id"] for m in failures["Metrics"] if "MetricStat" in m]
    assert expression == " + ".join(f"FILL({i}, 0)" for i in ids)
    for alarm in (on_dead_letters, errors, failures):
        assert "NotificationTopic" in json.dumps(alarm["AlarmActions"])


def test_every_rule_has_a_dead_letter_queue_that_alarms(dev: dict[str, Template]) -> None:
    template = dev["serving"]
    queues = set()
    for rule in _resources(template, "AWS::Events::Rule").values():
        if rule["Properties"].get("EventPattern", {}).get("source") == ["aws.sagemaker"] and (
            "ModelPackageGroupName" not in json.dumps(rule)
        ):
            continue  # Model Monitor's job-failure rule (engine model-monitor only)
        for target in rule["Properties"]["Targets"]:
            queues.add(target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
    (rule_dead_letters,) = queues
    assert _alarm_on(template, rule_dead_letters)["AlarmActions"]


def test_rollbacks_mark_the_package_and_a_failed_rollback_notifies_the_runbook(
    dev: dict[str, Template],
) -> None:
    template = dev["serving"]
    completed = _rule(
        template,
        **{"detail": {"status-details": {"status": ["UPDATE_ROLLBACK_COMPLETE"]}}},
    )
    assert completed["EventPattern"]["source"] == ["aws.cloudformation"]
    assert completed["EventPattern"]["resources"] == [{"Ref": "AWS::StackId"}]
    arns = json.dumps([t["Arn"] for t in completed["Targets"]])
    assert _queue_id(template, 20) in arns and "NotificationTopic" in arns
    failed = _rule(
        template, **{"detail": {"status-details": {"status": ["UPDATE_ROLLBACK_FAILED"]}}}
    )
    (notify,) = failed["Targets"]
    assert "continue-update-rollback" in json.dumps(notify["InputTransformer"])
