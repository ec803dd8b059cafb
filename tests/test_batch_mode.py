"""serving.mode batch: the Serving stack builds no endpoint (no model, endpoint config,
autoscaling or endpoint alarm) and keeps the `ModelPackageArn` parameter, which the deployer sets
on approval and served_package reads: the package the next scoring run uses. Its deploy role can
do nothing but read the bootstrap version; the Monitoring stack watches no endpoint.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.serving_stack import MODEL_PACKAGE_PARAMETER

pytestmark = pytest.mark.xdist_group("cdk")

ENDPOINT_TYPES = {
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::SageMaker::MonitoringSchedule",
    "AWS::SageMaker::DataQualityJobDefinition",
}


def _resources(template: Template) -> dict[str, Any]:
    return dict(template.to_json()["Resources"])


def _statements(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    found = []
    for resource in _resources(template).values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = [r.get("Ref", "") for r in resource["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_no_endpoint_and_nothing_that_serves_one(batch: dict[str, Template]) -> None:
    types = {r["Type"] for r in _resources(batch["serving"]).values()}
    assert types.isdisjoint(ENDPOINT_TYPES)
    for role in ("serving", "monitoring"):
        for resource in _resources(batch[role]).values():
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                assert resource["Properties"].get("Namespace") != "AWS/SageMaker", resource


def test_the_served_package_is_still_the_stack_parameter(
    batch: dict[str, Template], dev: dict[str, Template]
) -> None:
    """served_package (deployer, triggers, CLI) reads this parameter: batch keeps its contract."""
    batch_json, realtime_json = batch["serving"].to_json(), dev["serving"].to_json()
    parameter = batch_json["Parameters"][MODEL_PACKAGE_PARAMETER]
    realtime = realtime_json["Parameters"][MODEL_PACKAGE_PARAMETER]
    assert parameter["AllowedPattern"] == realtime["AllowedPattern"]
    assert parameter["Default"] == ""
    assert "next versions landing under score/" in parameter["Description"]
    outputs = batch_json["Outputs"]
    assert "EndpointName" not in outputs
    assert "ServedModelPackage" in outputs and "DeployRoleArn" in outputs


def test_the_deploy_role_can_only_read_the_bootstrap_version(batch: dict[str, Template]) -> None:
    """Worst case of the deployer's service role in batch mode: it reads an SSM parameter."""
    (statement,) = _statements(batch["serving"], "DeployRole")
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "ssm:GetParameters"
    assert statement["Resource"] == ("arn:aws:ssm:eu-west-1:111111111111:parameter/cdk-bootstrap/*")


def test_the_deployer_still_deploys_approvals_through_that_role(
    batch: dict[str, Template],
) -> None:
    deployer = [
        s
        for s in _statements(batch["serving"], "Deployer")
        if "cloudformation:UpdateStack"
        in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert deployer, "the deployer must still update the Serving stack's ModelPackageArn"
    for statement in deployer:
        assert "cloudformation:RoleArn" in str(statement.get("Condition", {}))
