"""Monitoring stack: drift schedule, alarm wiring (metric, threshold, action), dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.app_builder import build_environment
from stacks.config import parse_environment, read_cdk_json_context
from tests.conftest import PROMOTE_TARGET, new_app, synthesized

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        k: r["Properties"]
        for k, r in template.to_json()["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_drift_alarm_is_named_for_retraining_and_notifies(dev: dict[str, Template]) -> None:
    (drift,) = [
        a
        for a in _alarms(dev["monitoring"]).values()
        if a.get("MetricName") == "DriftedFeatureShare"
    ]
    assert drift["AlarmName"] == "mlops-loop-dev-retrain-drift"
    assert drift["Namespace"] == "mlops-loop-dev/Drift"
    assert drift["Dimensions"] == [{"Name": "EndpointName", "Value": "mlops-loop-dev-endpoint"}]
    assert drift["Threshold"] == 0.3
    assert drift["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert len(drift["AlarmActions"]) == 1


def _failure_alarms(templates: dict[str, Template]) -> dict[str, dict[str, Any]]:
    """The ExecutionFailed alarms of the monitoring stack, by the PipelineName they watch."""
    failed = [
        a
        for a in _alarms(templates["monitoring"]).values()
        if a.get("MetricName") == "ExecutionFailed"
    ]
    by_name = {a["Dimensions"][0]["Value"]: a for a in failed}
    assert len(by_name) == len(failed)
    return by_name


def _pipeline_names(templates: dict[str, Template]) -> set[str]:
    """The PipelineName of every pipeline the training stack creates (a custom resource that
    calls CreatePipeline: constructs/sagemaker_pipeline.py)."""
    resources = templates["training"].to_json()["Resources"].values()
    return {
        r["Properties"]["PipelineName"]
        for r in resources
        if r["Type"] == "Custom::SageMakerPipeline"
    }


@pytest.mark.parametrize("variant", ["dev", "promote_target"])
def test_a_failed_execution_of_either_pipeline_alarms_the_topic(
    variant: str, dev: dict[str, Template]
) -> None:
    """The training and the eval-only pipeline each have a failure alarm: in a promotion target
    eval-only is the only pipeline that runs, and its failure leaves the quality alarm without
    data. Metric and dimension as CloudWatch's SageMaker pipeline metrics document them
    (namespace AWS/Sagemaker/ModelBuildingPipeline, ExecutionFailed by PipelineName)."""
    templates = dev if variant == "dev" else synthesized("staging", PROMOTE_TARGET)
    env = "dev" if variant == "dev" else "staging"
    alarms = _failure_alarms(templates)
    expected = {f"mlops-loop-{env}-training", f"mlops-loop-{env}-evaluation"}
    assert set(alarms) == expected == _pipeline_names(templates)
    (quality,) = [
        a
        for a in _alarms(templates["monitoring"]).values()
        if a.get("AlarmName", "").endswith("quality")
    ]
    for failed in alarms.values():
        assert failed["Namespace"] == "AWS/Sagemaker/ModelBuildingPipeline"
        assert len(failed["Dimensions"]) == 1 and failed["Dimensions"][0]["Name"] == "PipelineName"
        assert failed["Statistic"] == "Sum" and failed["EvaluationPeriods"] == 1
        assert failed["Threshold"] == 0
        assert failed["ComparisonOperator"] == "GreaterThanThreshold"
        assert failed["TreatMissingData"] == "notBreaching"
        assert failed["AlarmActions"] == quality["AlarmActions"]  # the environment's topic


def test_every_alarm_of_every_stack_notifies_the_topic(dev: dict[str, Template]) -> None:
    for role in ("training", "serving", "monitoring"):
        for logical_id, alarm in _alarms(dev[role]).items():
            assert len(alarm.get("AlarmActions", [])) == 1, f"{role}/{logical_id}"


def test_dead_letters_alarms_fire_on_the_first_message(dev: dict[str, Template]) -> None:
    dlqs = [
        a
        for a in _alarms(dev["training"]).values()
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    assert len(dlqs) == 3  # the landing/ and the ground-truth/ triggers, the job tagger
    for dlq in dlqs:
        assert dlq["Threshold"] == 0 and dlq["ComparisonOperator"] == "GreaterThanThreshold"


def test_drift_alarm_retrains_only_where_enabled(
    dev: dict[str, Template], prod: dict[str, Template]
) -> None:
    pattern = {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {
            "alarmName": [{"prefix": "mlops-loop-dev-retrain-"}],
            "state": {"value": ["ALARM"]},
        },
    }
    dev["training"].has_resource_properties("AWS::Events::Rule", {"EventPattern": pattern})
    # The trigger checks the same prefix itself, in case a rule is ever widened.
    dev["training"].has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "RETRAIN_ALARM_PREFIX": "mlops-loop-dev-retrain-",
                        "PIPELINE_NAME": Match.any_value(),
                    }
                )
            }
        },
    )

    # the same environment with retrain_on_alarm off has no such rule (policy plugins are
    # exercised by the dev fixture; this build only needs the template)
    context = read_cdk_json_context()
    context["environments"]["dev"]["monitoring"]["retrain_on_alarm"] = False
    stacks = build_environment(new_app(), parse_environment(context, "dev"))
    rules = Template.from_stack(stacks["training"]).find_resources(
        "AWS::Events::Rule",
        {"Properties": {"EventPattern": Match.object_like({"source": ["aws.cloudwatch"]})}},
    )
    assert rules == {}


def test_drift_check_runs_on_the_configured_schedule(dev: dict[str, Template]) -> None:
    dev["monitoring"].has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "cron(0 * * * ? *)",
            "Target": Match.object_like(
                {"DeadLetterConfig": Match.any_value(), "RetryPolicy": Match.any_value()}
            ),
        },
    )


def test_drift_starter_gets_its_job_settings(dev: dict[str, Template]) -> None:
    dev["monitoring"].has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "ENDPOINT_NAME": "mlops-loop-dev-endpoint",
                        "DRIFT_SHARE_THRESHOLD": "0.3",
                        "MISSING_SHARE_THRESHOLD": "0.1",
                        "METRICS_NAMESPACE": "mlops-loop-dev/Drift",
                        "DRIFT_IMAGE_URI": Match.any_value(),
                    }
                )
            }
        },
    )


# Lambda refuses a function whose environment variables, measured as one JSON object, exceed
# 4 KB. An unresolved token (an imported bucket name, a role or key ARN, the image URI) counts
# as this many characters: longer than any of those values is in practice.
LAMBDA_ENVIRONMENT_LIMIT = 4096
TOKEN_STAND_IN = 128


def _resolved(value: Any) -> str:
    if isinstance(value, str):
        return value
    ((function, argument),) = value.items()
    if function == "Fn::Join":
        return argument[0].join(_resolved(part) for part in argument[1])
    return "x" * TOKEN_STAND_IN


def _drift_starter_environment_size(template: Template) -> int:
    (variables,) = [
        r["Properties"]["Environment"]["Variables"]
        for r in template.to_json()["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and "DRIFT_IMAGE_URI" in r["Properties"].get("Environment", {}).get("Variables", {})
    ]
    resolved = {name: _resolved(value) for name, value in variables.items()}
    return len(json.dumps(resolved, separators=(",", ":")).encode())


def test_drift_monitoring_deploys_with_200_features(dev: dict[str, Template]) -> None:
    # Before: the schema travelled in the starter's environment, which passed 4 KB from about
    # 65 features (the 11-character names below) and CloudFormation could not create it.
    context = read_cdk_json_context()
    context["schema"]["features"] = [
        {"name": f"feature_{i:03d}", "type": ("float", "int", "bool")[i % 3]} for i in range(200)
    ]
    stacks = build_environment(new_app(), parse_environment(context, "dev"))
    wide = Template.from_stack(stacks["monitoring"])

    size = _drift_starter_environment_size(wide)

    assert size <= LAMBDA_ENVIRONMENT_LIMIT
    assert size == _drift_starter_environment_size(dev["monitoring"])  # nothing per feature
    assert "feature_000" not in json.dumps(wide.to_json())


def test_failed_drift_jobs_notify(dev: dict[str, Template]) -> None:
    dev["monitoring"].has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Processing Job State Change"],
                "detail": {
                    "ProcessingJobStatus": ["Failed"],
                    "ProcessingJobName": [{"prefix": "drift-"}],
                },
            }
        },
    )


def test_dashboard_shows_every_part_of_the_loop(dev: dict[str, Template]) -> None:
    (dashboard,) = [
        r
        for r in dev["monitoring"].to_json()["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body = str(dashboard["Properties"]["DashboardBody"])
    for title in (
        "Pipeline executions",
        "Trigger queue and dead letters",
        "Endpoint invocations and errors",
        "Endpoint latency p99",
        "Share of drifted features",
        "Drifted features (1 = drifted)",
        "Missing share per feature (drifted when more than 0.1 above the baseline)",
        "Alarms",
    ):
        assert title in body, title


def test_quality_alarm_watches_the_gate_metric_of_this_group(dev: dict[str, Template]) -> None:
    (quality,) = [
        a
        for a in _alarms(dev["monitoring"]).values()
        if a.get("Namespace") == "mlops-loop-dev/ModelQuality"
    ]
    assert quality["AlarmName"] == "mlops-loop-dev-retrain-quality"  # retrains like drift
    assert quality["MetricName"] == "AUC"
    assert quality["Dimensions"] == [
        {"Name": "ModelPackageGroup", "Value": "mlops-loop-dev-models"}
    ]
    assert quality["Threshold"] == 0.8
    assert quality["ComparisonOperator"] == "LessThanThreshold"
    assert quality["TreatMissingData"] == "notBreaching"
    assert len(quality["AlarmActions"]) == 1
