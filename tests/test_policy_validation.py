"""The Control Tower rules run only where they can match, find what all of them find, and fail
synth on any finding that is not acknowledged.

The probe holds resource types with Control Tower findings (a queue with no dead-letter queue,
a bucket without logging, a function outside a VPC, a table without point-in-time recovery) and
one acknowledged finding: the applicable rules must report the same violations, and acknowledge
the same ones, as `CfnGuardValidator` running every rule, and the findings left must still fail
synth (cfn-guard gives its findings no severity, and CDK then counts a report with any
acknowledged finding a success).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs

from constructs.nag import acknowledge_guard
from stacks.policy_validation import (
    ApplicableControlTowerRules,
    applicable_rules,
    control_tower_rules,
)

pytestmark = pytest.mark.xdist_group("cdk")


def _probe(outdir: Path, plugin: Any) -> tuple[dict[str, Any], str]:
    """Synthesize the probe with `plugin`: its validation report and synth's error ("" if none)."""
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    sqs.Queue(stack, "Plain")
    s3.Bucket(stack, "Bucket")
    dynamodb.Table(
        stack,
        "Table",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
    )
    function = lambda_.Function(
        stack,
        "Function",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
    )
    acknowledge_guard(function, "lambda_inside_vpc_check", reason="A probe function, no VPC here.")
    cdk.Validations.of(app).add_plugins(plugin)
    try:
        app.synth()
        error = ""
    except Exception as failure:
        error = str(failure)
    (report,) = json.loads((outdir / "validation-report.json").read_text())["pluginReports"]
    return dict(report), error


def _findings(report: dict[str, Any], key: str) -> list[str]:
    return sorted(
        f"{v['ruleName']} {c['constructPath']}"
        for v in report.get(key, [])
        for c in v["violatingConstructs"]
    )


def test_the_applicable_rules_find_what_every_rule_finds(tmp_path: Path) -> None:
    from cdklabs.cdk_validator_cfnguard import CfnGuardValidator

    every, _ = _probe(tmp_path / "every", CfnGuardValidator(control_tower_rules_enabled=True))
    applicable, error = _probe(tmp_path / "applicable", ApplicableControlTowerRules())

    assert applicable["pluginName"] == every["pluginName"] == "cdk-validator-cfnguard"
    assert _findings(applicable, "violations") == _findings(every, "violations")
    assert _findings(applicable, "suppressedViolations") == _findings(every, "suppressedViolations")
    assert any(f.startswith("sqs_dlq_check ") for f in _findings(applicable, "violations"))
    assert any(
        f.startswith("lambda_inside_vpc_check ")
        for f in _findings(applicable, "suppressedViolations")
    )
    # the unacknowledged findings fail synth although another finding is acknowledged
    assert "ValidationFailed" in error and "CT.SQS.PR.1" in error
    assert applicable["conclusion"] == "failure"


def test_rules_are_selected_by_the_resource_types_they_name() -> None:
    rules = control_tower_rules()
    assert len(rules) > 200  # the validator's whole Control Tower set was read
    queue_only = applicable_rules({"AWS::SQS::Queue"})
    assert "ct-sqs-pr-1" in queue_only  # dead-letter queue
    assert all("AWS::SQS::Queue" in rules[name].resource_types for name in queue_only)
    assert not any(name.startswith(("ct-redshift-", "ct-s3-")) for name in queue_only)
    assert applicable_rules(set()) == []
