"""IAM across every stack of every environment: nothing on any resource (`*` or an ARN that
matches as much) but actions without resource-level permissions, every resource of a type
only where the name is generated, no service-wide actions, PassRole named and scoped.

Each check reads every identity statement (policies, managed policies, inline role policies)
and fails on input with none, so an empty or unparsed template cannot pass it; the checks are
also run on templates with a wildcard put in, and must object.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import pytest

from tests import security_checks as checks
from tests.conftest import synthesized

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")

ENVIRONMENTS = ["dev", "staging", "prod"]

# Actions that have no resource-level permissions in IAM (so `*` is the only choice) and are
# harmless or constrained by a condition where they write.
NO_RESOURCE_LEVEL: dict[str, str | None] = {
    "ecr:GetAuthorizationToken": None,
    "sagemaker:ListModelPackages": None,
    # reads of the Serving stack's deploy role (the autoscaling policy's CloudFormation handler)
    "application-autoscaling:DescribeScalableTargets": None,
    "application-autoscaling:DescribeScalingPolicies": None,
    "application-autoscaling:DescribeScheduledActions": None,
    "cloudwatch:GetMetricData": None,
    "cloudwatch:PutMetricData": "cloudwatch:namespace",  # must be limited to a namespace
}
# Resource types whose every resource in the account and region a role may reach, and why.
TYPE_WIDE = {
    "sagemaker:model": "CloudFormation generates the served model's name on each deploy (the "
    "deploy role creates only network-isolated ones); the drift starter reads it",
    "sagemaker:endpoint-config": "CloudFormation generates the endpoint config's name on each "
    "deploy; the drift starter reads it",
    "application-autoscaling:scalable-target": "Application Auto Scaling names scalable "
    "targets by id; the deploy role's statements are limited to SageMaker variants",
}


@cache
def _templates(env: str) -> str:
    return json.dumps({role: t.to_json() for role, t in synthesized(env).items()})


def templates(env: str) -> checks.Templates:
    return dict(json.loads(_templates(env)))


def wildcard_problems(t: checks.Templates) -> list[str]:
    return checks.wildcard_resource_problems(t, NO_RESOURCE_LEVEL, TYPE_WIDE)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_wildcard_resources_only_for_actions_without_resource_permissions(env: str) -> None:
    assert wildcard_problems(templates(env)) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_service_wide_actions(env: str) -> None:
    statements = list(checks.identity_statements(templates(env)))
    assert len(statements) > 50  # every role's statements were read
    for where, statement in statements:
        for action in checks.as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{where}: {action}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pass_role_is_always_scoped_to_named_roles_and_a_service(env: str) -> None:
    passing = [
        (where, statement)
        for where, statement in checks.identity_statements(templates(env))
        if "iam:PassRole" in checks.as_list(statement["Action"])
    ]
    assert len(passing) >= 3  # pipeline handler, deploy role, drift starter at least
    for where, statement in passing:
        assert all(
            checks.resource_scope(r)[0] == "named" for r in checks.as_list(statement["Resource"])
        ), where
        passed_to = statement.get("Condition", {}).get("StringEquals", {})
        assert passed_to.get("iam:PassedToService", "").endswith(".amazonaws.com"), where


# ---- the checks object when a wildcard is put in ----------------------------------------


def _with_resource(resource: Any, action: str = "sqs:SendMessage") -> checks.Templates:
    """dev's templates plus one Allow statement of `action` on `resource`."""
    t = copy.deepcopy(templates("dev"))
    policy = next(r for r in t["training"]["Resources"].values() if r["Type"] == "AWS::IAM::Policy")
    policy["Properties"]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": action, "Resource": resource}
    )
    return t


@pytest.mark.parametrize(
    "resource",
    [
        "*",
        "arn:aws:sqs:eu-west-1:111111111111:*",
        "arn:aws:sqs:*:111111111111:mlops-loop-dev-queue",
        "arn:aws:sqs:eu-west-1:*:mlops-loop-dev-queue",
        "arn:*:sqs:eu-west-1:111111111111:mlops-loop-dev-queue",
        "arn:aws:s3:::*",
        "arn:aws:s3:::*/*",
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":sqs:", {"Ref": "AWS::Region"},
                           ":", {"Ref": "AWS::AccountId"}, ":*"]]},
    ],
)  # fmt: skip
def test_a_wildcard_arn_counts_as_any_resource(resource: Any) -> None:
    assert checks.resource_scope(resource)[0] == "any"
    problems = wildcard_problems(_with_resource(resource))
    assert len(problems) == 1 and "sqs:SendMessage on " in problems[0]


def test_every_resource_of_an_unlisted_type_is_caught() -> None:
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:training-job/*"
    problems = wildcard_problems(_with_resource(arn, "sagemaker:StopTrainingJob"))
    assert len(problems) == 1 and problems[0].endswith(f": every sagemaker:training-job ({arn})")


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:sqs:eu-west-1:111111111111:mlops-loop-dev-queue",
        "arn:aws:s3:::mlops-loop-dev-data/*",
        "arn:aws:sagemaker:eu-west-1:111111111111:processing-job/pipelines-*",
        {"Fn::Join": ["", [{"Fn::GetAtt": ["Queue", "Arn"]}, ":*"]]},
    ],
)
def test_named_resources_and_prefixes_are_not_wildcards(resource: Any) -> None:
    assert checks.resource_scope(resource)[0] == "named"
    assert wildcard_problems(_with_resource(resource)) == []


def test_a_resource_level_action_on_star_without_its_condition_is_caught() -> None:
    problems = wildcard_problems(_with_resource("*", "cloudwatch:PutMetricData"))
    assert len(problems) == 1 and problems[0].endswith(
        "cloudwatch:PutMetricData without cloudwatch:namespace"
    )


def test_templates_without_any_statement_fail_the_check() -> None:
    assert wildcard_problems({}) == ["no identity policy statements: nothing was checked"]
    empty: checks.Templates = {"training": {"Resources": {}}}
    assert wildcard_problems(empty) == ["no identity policy statements: nothing was checked"]
