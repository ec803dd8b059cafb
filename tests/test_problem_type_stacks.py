"""A multi-class or regression configuration synthesizes every stack (cdk-nag and the policy
checks included); until the eval-only pipeline scores such models, it has no ground-truth trigger
and no quality alarm (a binary config keeps both)."""

from __future__ import annotations

import copy
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


@pytest.mark.parametrize(
    ("problem", "pipeline", "monitoring"),
    [("regression", {"metric": "rmse", "metric_floor": 400.0, "champion_tolerance": 20.0},
      {"quality_metric_floor": 450.0}),
     ("multiclass", {"metric": "macro_f1", "metric_floor": 0.7}, {"quality_metric_floor": 0.65})],
)  # fmt: skip
def test_a_typed_config_has_no_ground_truth_trigger_and_no_quality_alarm(
    problem: str, pipeline: dict[str, Any], monitoring: dict[str, Any]
) -> None:
    """The eval-only pipeline scores binary models only: a trigger would start a run that
    always fails, and an alarm on metrics nobody publishes would never get data."""
    templates = _synth(problem, pipeline, monitoring)
    assert _quality_alarms(templates["monitoring"]) == []
    assert _ground_truth_triggers(templates["training"]) == []
    outputs = templates["training"].find_outputs("*")
    assert "EvaluationTriggerFunctionName" not in outputs


def test_a_binary_config_keeps_its_ground_truth_trigger_and_quality_alarm() -> None:
    templates = _synth("binary", {}, {})
    [quality] = _quality_alarms(templates["monitoring"])
    assert quality["ComparisonOperator"] == "LessThanThreshold"
    assert _ground_truth_triggers(templates["training"]) != []
