"""Serving stack: the guarded endpoint and the approval -> deploy wiring."""

from __future__ import annotations

import json
import re
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
    metrics = sorted(alarms[a]["Properties"].get("MetricName", "5xx rate") for a in rollback_alarms)
    assert metrics == ["5xx rate", "ModelLatency"]
    latency = next(
        alarms[a]
        for a in rollback_alarms
        if alarms[a]["Properties"].get("MetricName") == "ModelLatency"
    )
    assert latency["Properties"]["Threshold"] == 500_000  # 500 ms in microseconds
    assert latency["Properties"]["ExtendedStatistic"] == "p99"


def _metric_math(expression: str, values: dict[str, float | None]) -> float | None:
    """One period of CloudWatch metric math of the rollback alarm's shape (`IF(c, a, b)`,
    `FILL(m, v)`, arithmetic); a metric without a datapoint is None, and so is the result
    when a metric it needs (not filled) has none."""
    filled = set(re.findall(r"FILL\((\w+), ", expression))
    if any(value is None for name, value in values.items() if name not in filled):
        return None
    python = re.sub(r"^IF\((.+?), (.+), (.+?)\)$", r"((\2) if (\1) else (\3))", expression)
    python = re.sub(r"FILL\((\w+), (\d+)\)", r"(\2 if \1 is None else \1)", python)
    return float(eval(python, {"__builtins__": {}}, dict(values)))


def _rollback_rate_alarm(template: dict[str, Any]) -> dict[str, Any]:
    (endpoint,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Endpoint"
    ]
    rollback = endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]
    (rate,) = [
        template["Resources"][alarm["AlarmName"]["Ref"]]["Properties"]
        for alarm in rollback["Alarms"]
        if "Metrics" in template["Resources"][alarm["AlarmName"]["Ref"]]["Properties"]
    ]
    return rate


def test_canary_rolls_back_on_the_share_of_5xx_not_on_a_count(dev: dict[str, Template]) -> None:
    """A 10 % canary at 10 requests a minute gets one; when it fails, a count alarm (5 errors
    a minute) never fires, the rate alarm does."""
    rate = _rollback_rate_alarm(dev["serving"].to_json())
    (expression,) = [m["Expression"] for m in rate["Metrics"] if "Expression" in m]
    ids = {}
    for query in rate["Metrics"]:
        if "MetricStat" in query:
            stat = query["MetricStat"]
            assert (stat["Stat"], stat["Period"]) == ("Sum", 60)
            assert stat["Metric"]["Dimensions"] == [
                {"Name": "EndpointName", "Value": "mlops-loop-dev-endpoint"},
                {"Name": "VariantName", "Value": "AllTraffic"},
            ]
            ids[stat["Metric"]["MetricName"]] = query["Id"]
    errors, calls = ids["Invocation5XXErrors"], ids["Invocations"]
    assert rate["Threshold"] == 5 and rate["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert rate["EvaluationPeriods"] == 2 and rate["TreatMissingData"] == "notBreaching"
    assert _metric_math(expression, {errors: 1, calls: 10}) == 10.0  # trips
    assert _metric_math(expression, {errors: None, calls: 10}) == 0.0  # no 5xx published
    assert _metric_math(expression, {errors: 0, calls: 0}) == 0.0
    assert _metric_math(expression, {errors: 400, calls: 10_000}) == 4.0  # below 5 %
    assert _metric_math(expression, {errors: None, calls: None}) is None  # no traffic


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


MODEL_PACKAGES = "arn:aws:sagemaker:eu-west-1:111111111111:model-package"


@pytest.mark.parametrize(
    ("value", "admitted"),
    [
        ("", True),  # no endpoint yet
        (f"{MODEL_PACKAGES}/mlops-loop-dev-models/7", True),
        (f"{MODEL_PACKAGES}/mlops-loop-dev-models/12", True),
        (f"{MODEL_PACKAGES}/mlops-loop-prod-models/7", False),  # another environment's group
        ("arn:aws:sagemaker:eu-west-1:999999999999:model-package/mlops-loop-dev-models/7", False),
        ("arn:aws:sagemaker:us-east-1:111111111111:model-package/mlops-loop-dev-models/7", False),
        (f"{MODEL_PACKAGES}/mlops-loop-dev-models-copy/7", False),
        (f"{MODEL_PACKAGES}/mlops-loop-dev-models/7/x", False),
        (f"{MODEL_PACKAGES}/mlops-loop-dev-models/", False),
    ],
)
def test_only_a_version_of_this_environments_group_can_be_served(
    dev: dict[str, Template], value: str, admitted: bool
) -> None:
    pattern = dev["serving"].to_json()["Parameters"]["ModelPackageArn"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is admitted


@pytest.mark.parametrize(
    ("value", "admitted"),
    [
        ("", True),
        (
            "s3://mlops-loop-dev-data-artifactbucket-1a2b3c4d5e6f/pipelines/"
            "mlops-loop-dev-training/executions/abc/Prepare/baseline/statistics.json",
            True,
        ),
        (
            "s3://mlops-loop-dev-data-artifactbucket-1a2b3c4d5e6f/monitoring/x/statistics.json",
            False,
        ),
        ("s3://elsewhere/pipelines/mlops-loop-prod-training/x/statistics.json", False),
        ("https://example.com/pipelines/mlops-loop-dev-training/x.json", False),
    ],
)
def test_model_monitor_baselines_come_only_from_the_training_pipelines_outputs(
    model_monitor: dict[str, Template], value: str, admitted: bool
) -> None:
    parameters = model_monitor["serving"].to_json()["Parameters"]
    for name in ("DataQualityStatisticsUri", "DataQualityConstraintsUri"):
        assert bool(re.fullmatch(parameters[name]["AllowedPattern"], value)) is admitted, name


def test_the_endpoint_log_group_exists_before_the_endpoint_encrypted_and_kept_a_year(
    dev: dict[str, Template],
) -> None:
    (logs,) = [
        (k, r)
        for k, r in _resources(dev["serving"], "AWS::Logs::LogGroup").items()
        if r["Properties"].get("LogGroupName") == "/aws/sagemaker/Endpoints/mlops-loop-dev-endpoint"
    ]
    logical_id, group = logs
    assert "Condition" not in group  # created with the stack, before any model is approved
    assert group["Properties"]["RetentionInDays"] == 365
    assert "OperationsKey" in json.dumps(group["Properties"]["KmsKeyId"])
    role_statements = [
        s
        for p in _resources(dev["serving"], "AWS::IAM::Policy").values()
        if "EndpointModelRole" in json.dumps(p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    [writes] = [s for s in role_statements if "logs:PutLogEvents" in s["Action"]]
    assert writes["Resource"] == (
        "arn:aws:logs:eu-west-1:111111111111:log-group:/aws/sagemaker/Endpoints/"
        "mlops-loop-dev-endpoint*"
    )
