"""A multi-class or regression configuration synthesizes every stack (cdk-nag and the policy
checks included), with its ground-truth trigger and a quality alarm on its gate metric's
CloudWatch name, breaching in the metric's direction (a ceiling for rmse/log_loss)."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest
from aws_cdk.assertions import Template

from mlops_config import parse_environment, read_cdk_json_context
from tests.conftest import new_app


def _synth(problem: str, pipeline: dict[str, Any], monitoring: dict[str, Any]) -> dict:
    from stacks.app_builder import build_environment
    from stacks.policy_validation import add_policy_checks

    context = copy.deepcopy(read_cdk_json_context())
    context["schema"]["problem_type"] = problem
    context["defaults"]["pipeline"].update(pipeline)
    context["defaults"]["monitoring"].update(monitoring)
    config = parse_environment(context, "dev")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    app = new_app(outdir=os.path.join(".build", "test-cdk.out", worker, f"dev-{problem}"))
    stacks = build_environment(app, config)
    add_policy_checks(app, control_tower=True)
    app.synth()
    return {role: Template.from_stack(stack) for role, stack in stacks.items()}


def _quality_alarms(template: Template) -> list[dict[str, Any]]:
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    return [
        a["Properties"]
        for a in alarms.values()
        if a["Properties"].get("Namespace") == "mlops-loop-dev/ModelQuality"
    ]


def _ground_truth_triggers(template: Template) -> list[str]:
    return [
        key
        for key in template.find_resources("AWS::Lambda::Function")
        if key.startswith("EvaluationTrigger")
    ]


# (problem, pipeline, monitoring, CloudWatch metric name evaluate publishes, statistic, operator)
# expected from CloudWatch's ComparisonOperator semantics: a higher-is-better metric alarms on
# its worst (Minimum) daily value falling below the floor, a lower-is-better one on its worst
# (Maximum) value rising above the ceiling.
TYPED = [
    ("regression", {"metric": "rmse", "metric_floor": 400.0, "champion_tolerance": 20.0},
     {"quality_metric_floor": 450.0}, "RMSE", "Maximum", "GreaterThanThreshold"),
    ("regression", {"metric": "r2", "metric_floor": 0.5, "champion_tolerance": 0.02},
     {"quality_metric_floor": 0.45}, "R2", "Minimum", "LessThanThreshold"),
    ("multiclass", {"metric": "macro_f1", "metric_floor": 0.7}, {"quality_metric_floor": 0.65},
     "MacroF1", "Minimum", "LessThanThreshold"),
    ("multiclass", {"metric": "log_loss", "metric_floor": 0.6, "champion_tolerance": 0.03},
     {"quality_metric_floor": 0.7}, "LogLoss", "Maximum", "GreaterThanThreshold"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("problem", "pipeline", "monitoring", "name", "statistic", "operator"), TYPED
)
def test_a_typed_config_has_a_ground_truth_trigger_and_a_quality_alarm_in_its_direction(
    problem: str,
    pipeline: dict[str, Any],
    monitoring: dict[str, Any],
    name: str,
    statistic: str,
    operator: str,
) -> None:
    """The eval-only pipeline scores every type and publishes its metrics (evaluate's
    model_quality): labels landing under ground-truth/ start it, and the alarm watches the gate
    metric where it is published."""
    templates = _synth(problem, pipeline, monitoring)
    [quality] = _quality_alarms(templates["monitoring"])
    assert quality["MetricName"] == name
    assert quality["Statistic"] == statistic
    assert quality["ComparisonOperator"] == operator
    assert quality["Threshold"] == monitoring["quality_metric_floor"]
    assert quality["Dimensions"] == [
        {"Name": "ModelPackageGroup", "Value": "mlops-loop-dev-models"}
    ]
    assert _ground_truth_triggers(templates["training"]) != []
    assert "EvaluationTriggerFunctionName" in templates["training"].find_outputs("*")
    # the dashboard's line at the alarm threshold says which way it breaches
    label = "ceiling" if statistic == "Maximum" else "floor"
    assert _quality_annotations(templates["monitoring"]) == [
        {"label": label, "value": monitoring["quality_metric_floor"]}
    ]


def _quality_annotations(template: Template) -> list[dict[str, Any]]:
    """The horizontal annotations of the dashboard's model-quality graph."""
    [dashboard] = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(p if isinstance(p, str) else "x" for p in parts)  # tokens sit in strings
    widgets = json.loads(text)["widgets"]
    return [
        {"label": a["label"], "value": a["value"]}
        for w in widgets
        if str(w["properties"].get("title", "")).startswith("Model quality")
        for a in w["properties"].get("annotations", {}).get("horizontal", [])
    ]


def test_a_binary_config_keeps_its_ground_truth_trigger_and_quality_alarm() -> None:
    templates = _synth("binary", {}, {})
    [quality] = _quality_alarms(templates["monitoring"])
    assert (quality["MetricName"], quality["Statistic"]) == ("AUC", "Minimum")
    assert quality["ComparisonOperator"] == "LessThanThreshold"
    assert _ground_truth_triggers(templates["training"]) != []
