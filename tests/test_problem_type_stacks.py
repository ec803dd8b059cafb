"""A multi-class or regression configuration synthesizes every stack (cdk-nag and the policy
checks included), and its quality alarm watches its own metric in the metric's direction."""

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


def _quality_alarm(template: Template) -> dict[str, Any]:
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    (quality,) = [
        a["Properties"]
        for a in alarms.values()
        if a["Properties"].get("Namespace") == "mlops-loop-dev/ModelQuality"
    ]
    return quality


@pytest.mark.parametrize(
    ("problem", "pipeline", "monitoring", "metric_name", "operator", "threshold"),
    [("regression", {"metric": "rmse", "metric_floor": 400.0}, {"quality_metric_floor": 450.0},
      "RMSE", "GreaterThanThreshold", 450.0),
     ("multiclass", {"metric": "macro_f1", "metric_floor": 0.7}, {"quality_metric_floor": 0.65},
      "MacroF1", "LessThanThreshold", 0.65)],
)  # fmt: skip
def test_the_quality_alarm_watches_the_types_metric_in_its_direction(
    problem: str,
    pipeline: dict[str, Any],
    monitoring: dict[str, Any],
    metric_name: str,
    operator: str,
    threshold: float,
) -> None:
    templates = _synth(problem, pipeline, monitoring)
    quality = _quality_alarm(templates["monitoring"])
    assert quality["MetricName"] == metric_name
    assert quality["ComparisonOperator"] == operator
    assert quality["Threshold"] == threshold
