"""What the promote-mode stack tests share: the synthesized templates of a source (dev) and a
middle target (staging), and readers of their cross-account statements and role policies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import PROMOTE_SOURCE, PROMOTE_TARGET, synthesized
from tests.policy_evaluation import as_list, resolve

DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333"


@pytest.fixture(scope="module")
def source() -> dict[str, dict[str, Any]]:
    """dev in promote mode: trains, sends to staging."""
    return {role: t.to_json() for role, t in synthesized("dev", PROMOTE_SOURCE).items()}


@pytest.fixture(scope="module")
def target() -> dict[str, dict[str, Any]]:
    """staging in promote mode: receives from dev, sends to prod."""
    return {role: t.to_json() for role, t in synthesized("staging", PROMOTE_TARGET).items()}


POLICY_DOCUMENTS = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupPolicy",
    "AWS::Events::EventBus": "Policy",
}


def resource_statements(
    templates: dict[str, dict[str, Any]],
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id, statement) of every resource-based policy in the templates."""
    for template in templates.values():
        for logical_id, resource in template["Resources"].items():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::Events::EventBusPolicy":
                yield logical_id, resolve(properties["Statement"])
                continue
            field = POLICY_DOCUMENTS.get(resource["Type"])
            if field and field in properties:
                for statement in as_list(resolve(properties[field])["Statement"]):
                    yield logical_id, statement


def foreign_accounts(statement: dict[str, Any], own: str) -> set[str]:
    """The other accounts a statement's AWS principals name (a `*` principal counts as '*')."""
    principal = statement.get("Principal")
    if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*"):
        return {"*"}
    names = as_list(principal.get("AWS", [])) if isinstance(principal, dict) else []
    accounts: set[str] = set()
    for name in map(str, names):
        match = re.match(r"^arn:aws:iam::(\d{12}):", name)
        if match is None:  # a role of this app, or this account (`<AWS::AccountId>`)
            assert name.startswith("<") or "<AWS::AccountId>" in name, name
            continue
        if match.group(1) != own:
            accounts.add(match.group(1))
    return accounts


def cross_account(
    templates: dict[str, dict[str, Any]], own: str
) -> dict[str, list[dict[str, Any]]]:
    """Allow statements granting another account, by logical id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for logical_id, statement in resource_statements(templates):
        if statement.get("Effect") == "Allow" and foreign_accounts(statement, own):
            found.setdefault(logical_id, []).append(statement)
    return found


# What a dev package names (#19 S3: no longer all of pipelines/mlops-loop-dev-training/*)
DEV_PACKAGE_FILES = [
    "pipelines/mlops-loop-dev-training/training/*",
    "pipelines/mlops-loop-dev-training/executions/*/Evaluate/evaluation/*",
    "pipelines/mlops-loop-dev-training/executions/*/Prepare/baseline/*",
    "pipelines/mlops-loop-dev-training/executions/*/Baseline/results/*",
]


def role_named(template: dict[str, Any], name: str) -> str:
    (logical_id,) = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == name
    ]
    return logical_id


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role} in resource["Properties"]["Roles"]
        for statement in resolve(resource["Properties"]["PolicyDocument"])["Statement"]
    ]


def artifact_bucket_policy(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (policy,) = [
        r["Properties"]["PolicyDocument"]
        for r in templates["data"]["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and r["Properties"]["Bucket"] == {"Ref": "ArtifactBucket"}
    ]
    return policy
