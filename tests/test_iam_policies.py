"""IAM across every stack: no write action on a wildcard resource, no service-wide actions."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import synthesized

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")

# Actions that have no resource-level permissions in IAM (so `*` is the only choice) and are
# harmless or constrained by a condition where they write.
NO_RESOURCE_LEVEL = {
    "ecr:GetAuthorizationToken": None,
    "sagemaker:ListModelPackages": None,
    # reads of the Serving stack's deploy role (the autoscaling policy's CloudFormation handler)
    "application-autoscaling:DescribeScalableTargets": None,
    "application-autoscaling:DescribeScalingPolicies": None,
    "application-autoscaling:DescribeScheduledActions": None,
    "cloudwatch:GetMetricData": None,
    "cloudwatch:PutMetricData": "cloudwatch:namespace",  # must be limited to a namespace
}


def _statements(env: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for role, template in synthesized(env).items():
        for logical_id, resource in template.to_json()["Resources"].items():
            if resource["Type"] == "AWS::IAM::Policy":
                for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                    found.append((f"{role}/{logical_id}", statement))
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_wildcard_resources_only_for_actions_without_resource_permissions(env: str) -> None:
    for where, statement in _statements(env):
        if statement.get("Effect") == "Deny" or "*" not in _as_list(statement["Resource"]):
            continue  # a deny on every resource only takes permissions away
        for action in _as_list(statement["Action"]):
            assert action in NO_RESOURCE_LEVEL, f"{where}: {action} on Resource '*'"
            condition_key = NO_RESOURCE_LEVEL[action]
            if condition_key:
                conditions = {k for op in statement.get("Condition", {}).values() for k in op}
                assert condition_key in conditions, f"{where}: {action} without {condition_key}"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_service_wide_actions(env: str) -> None:
    for where, statement in _statements(env):
        for action in _as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{where}: {action}"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_pass_role_is_always_scoped_to_named_roles_and_a_service(env: str) -> None:
    for where, statement in _statements(env):
        if "iam:PassRole" in _as_list(statement["Action"]):
            assert "*" not in _as_list(statement["Resource"]), where
            passed_to = statement.get("Condition", {}).get("StringEquals", {})
            assert passed_to.get("iam:PassedToService", "").endswith(".amazonaws.com"), where
