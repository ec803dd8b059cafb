"""promote mode, synthesized as CI does (cdk-nag, Control Tower rules, cfn-lint): every
cross-account permission names exactly the configured account of the next (or previous)
environment of the chain, its one contract role, and exactly the actions the copy needs; no
wildcard principal, no org-wide grant. A target runs no training trigger."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import synthesized
from tests.policy_evaluation import Request, as_list, denied, resolve
from tests.promotion_templates import (
    DEV,
    DEV_PACKAGE_FILES,
    PROD,
    STAGING,
    artifact_bucket_policy,
    cross_account,
    foreign_accounts,
    resource_statements,
    role_named,
    role_statements,
    source,
    target,
)

pytestmark = pytest.mark.xdist_group("cdk")
__all__ = ["source", "target"]


def test_the_source_grants_the_next_account_exactly_the_copys_reads(
    source: dict[str, dict[str, Any]],
) -> None:
    grants = cross_account(source, DEV)
    receiver = f"arn:aws:iam::{STAGING}:role/mlops-loop-staging-promotion-receiver"
    by_action = {
        tuple(as_list(s["Action"])): (logical_id, s)
        for logical_id, ss in grants.items()
        for s in ss
    }
    assert set(by_action) == {
        ("sagemaker:DescribeModelPackage",),
        ("s3:GetObject",),
        ("s3:ListBucket",),
        ("kms:Decrypt",),
    }
    for logical_id, statement in by_action.values():
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{STAGING}:root"}, logical_id
        assert statement["Condition"]["ArnEquals"] == {"aws:PrincipalArn": receiver}
    group_id, group = by_action[("sagemaker:DescribeModelPackage",)]
    assert source["data"]["Resources"][group_id]["Type"] == "AWS::SageMaker::ModelPackageGroup"
    assert group["Resource"] == (
        f"arn:aws:sagemaker:eu-west-1:{DEV}:model-package/mlops-loop-dev-models/*"
    )
    _, objects = by_action[("s3:GetObject",)]
    assert sorted(objects["Resource"]) == sorted(f"<ArtifactBucket>/{k}" for k in DEV_PACKAGE_FILES)
    _, listing = by_action[("s3:ListBucket",)]
    assert listing["Resource"] == "<ArtifactBucket>"
    assert sorted(listing["Condition"]["StringLike"]["s3:prefix"]) == sorted(DEV_PACKAGE_FILES)
    key_id, key = by_action[("kms:Decrypt",)]
    assert key_id == "ArtifactKey"
    assert key["Condition"]["StringEquals"] == {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}


def test_a_middle_environment_admits_only_its_neighbours(
    target: dict[str, dict[str, Any]],
) -> None:
    grants = cross_account(target, STAGING)
    accounts = {
        account
        for statements in grants.values()
        for statement in statements
        for account in foreign_accounts(statement, STAGING)
    }
    assert accounts == {DEV, PROD}
    bus = [s for ss in grants.values() for s in ss if as_list(s["Action"]) == ["events:PutEvents"]]
    assert len(bus) == 1
    assert bus[0]["Principal"] == {"AWS": f"arn:aws:iam::{DEV}:root"}
    assert bus[0]["Condition"]["ArnEquals"] == {
        "aws:PrincipalArn": f"arn:aws:iam::{DEV}:role/mlops-loop-dev-promotion-sender"
    }
    # the rest is what prod's receiver reads here, and nothing for dev
    for statements in grants.values():
        for statement in statements:
            if statement is not bus[0] and as_list(statement["Action"]) != ["events:PutEvents"]:
                assert statement["Principal"] == {"AWS": f"arn:aws:iam::{PROD}:root"}


@pytest.mark.parametrize("variant", ["source", "target"])
def test_no_resource_policy_allows_a_wildcard_principal_or_an_organization(
    variant: str, request: pytest.FixtureRequest
) -> None:
    templates = request.getfixturevalue(variant)
    for logical_id, statement in resource_statements(templates):
        if statement.get("Effect") != "Allow":
            continue
        assert "*" not in foreign_accounts(statement, ""), logical_id
        keys = {key for block in (statement.get("Condition") or {}).values() for key in block}
        assert not keys & {"aws:PrincipalOrgID", "aws:PrincipalOrgPaths"}, logical_id


def test_every_cross_account_grant_names_one_role_and_no_wildcard_action(
    source: dict[str, dict[str, Any]], target: dict[str, dict[str, Any]]
) -> None:
    for templates, own in ((source, DEV), (target, STAGING)):
        for logical_id, statements in cross_account(templates, own).items():
            for statement in statements:
                assert all("*" not in action for action in as_list(statement["Action"]))
                principal_arn = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
                assert re.fullmatch(
                    r"arn:aws:iam::\d{12}:role/mlops-loop-[a-z]+-promotion-(sender|receiver)",
                    principal_arn,
                ), logical_id


def test_the_sender_forwards_only_this_groups_approvals_to_the_next_bus(
    source: dict[str, dict[str, Any]],
) -> None:
    training = source["training"]
    bus = f"arn:aws:events:eu-west-1:{STAGING}:event-bus/mlops-loop-staging-promotions"
    forwarding = [
        r["Properties"]
        for r in training["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
        and any(t["Arn"] == bus for t in r["Properties"].get("Targets", []))
    ]
    assert len(forwarding) == 1
    assert forwarding[0]["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": ["mlops-loop-dev-models"],
            "ModelApprovalStatus": ["Approved", "Rejected"],  # rejections alert downstream
        },
    }
    (target,) = forwarding[0]["Targets"]
    assert "DeadLetterConfig" in target
    role = role_named(training, "mlops-loop-dev-promotion-sender")
    assert target["RoleArn"] == {"Fn::GetAtt": [role, "Arn"]}
    # only this rule may pass the role (#19 N1: aws:SourceArn, the rule sending the event)
    name = forwarding[0]["Name"]
    (trust,) = training["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert resolve(trust["Condition"]["ArnEquals"]) == {
        "aws:SourceArn": f"arn:aws:events:eu-west-1:{DEV}:rule/{name}"
    }
    assert role_statements(training, role) == [
        {"Action": "events:PutEvents", "Effect": "Allow", "Resource": bus}
    ]


def test_the_receiver_reads_only_the_previous_environment_and_never_approves(
    target: dict[str, dict[str, Any]],
) -> None:
    training = target["training"]
    role = role_named(training, "mlops-loop-staging-promotion-receiver")
    statements = role_statements(training, role)
    # in dev's account: by resource ARN, or (buckets have no account in their ARN) by
    # s3:ResourceAccount
    foreign = [s for s in statements if DEV in str(s)]
    assert {tuple(as_list(s["Action"])) for s in foreign} == {
        ("sagemaker:DescribeModelPackage",),
        ("s3:GetObject",),
        ("s3:ListBucket",),
        ("kms:Decrypt",),
    }
    assert not any(PROD in str(s) for s in statements)  # it sends nothing to prod
    s3_reads = [
        s for s in statements if as_list(s["Action"]) in (["s3:GetObject"], ["s3:ListBucket"])
    ]
    for statement in s3_reads:
        if "arn:aws:s3:::*" in str(statement["Resource"]):
            assert statement["Condition"]["StringEquals"] == {"s3:ResourceAccount": DEV}
    denies = {s.get("Sid") for s in statements if s["Effect"] == "Deny"}
    assert {"RegisterOnlyPendingManualApproval", "NeverApproveRejectPromoteOrEdit"} <= denies
    writes = [s for s in statements if "s3:PutObject" in as_list(s["Action"])]
    assert [s["Resource"] for s in writes] == [
        "<import:mlops-loop-staging-data:ExportsOutputFnGetAttArtifactBucketArnC5DE1C34>"
        "/pipelines/mlops-loop-staging-training/training/promoted/*"
    ]


def test_the_receiving_rule_takes_approvals_of_the_previous_account_and_group_only(
    target: dict[str, dict[str, Any]],
) -> None:
    rules = [
        r["Properties"]
        for r in target["training"]["Resources"].values()
        if r["Type"] == "AWS::Events::Rule" and "EventBusName" in r["Properties"]
    ]
    assert [rule["EventPattern"] for rule in rules] == [
        {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Package State Change"],
            "account": [DEV],
            "detail": {
                "ModelPackageGroupName": ["mlops-loop-dev-models"],
                "ModelApprovalStatus": ["Approved", "Rejected"],
            },
        }
    ]


def test_a_target_trains_nothing_on_landing_data_but_still_evaluates(
    source: dict[str, dict[str, Any]], target: dict[str, dict[str, Any]]
) -> None:
    def landing_rules(templates: dict[str, dict[str, Any]]) -> list[str]:
        return [
            logical_id
            for logical_id, r in templates["training"]["Resources"].items()
            if r["Type"] == "AWS::Events::Rule" and "landing/" in str(r["Properties"])
        ]

    assert landing_rules(source) and not landing_rules(target)
    assert "StartTrainingFunctionName" not in target["training"]["Outputs"]
    assert "EvaluationTriggerFunctionName" in target["training"]["Outputs"]
    assert "ground-truth/" in str(target["training"]["Resources"])
    # the target's Serving stack still deploys through its own deploy handler
    assert "DeployRoleArn" in target["serving"]["Outputs"]


def test_retrain_per_env_grants_no_other_account(dev: Any) -> None:
    templates = {role: t.to_json() for role, t in dev.items()}
    assert cross_account(templates, DEV) == {}
    group = templates["data"]["Resources"]["ModelPackageGroup"]["Properties"]
    assert "ModelPackageGroupPolicy" not in group


def test_in_a_target_only_the_receiver_writes_models(target: dict[str, dict[str, Any]]) -> None:
    """The artifact bucket's write-once policy, evaluated as IAM does: the receiver (tagged as
    the model writer) may create a copy; the training job role, untagged there, may not."""
    policy = artifact_bucket_policy(target)
    training = target["training"]["Resources"]
    tag = "mlops-loop-artifact-writer"
    receiver = training[role_named(target["training"], "mlops-loop-staging-promotion-receiver")]
    assert {t["Key"]: t["Value"] for t in receiver["Properties"]["Tags"]}[tag] == "models"
    (job_role,) = [k for k in training if k.startswith("TrainingJobRole") and
                   training[k]["Type"] == "AWS::IAM::Role"]  # fmt: skip
    assert tag not in {t["Key"] for t in training[job_role]["Properties"].get("Tags", [])}
    copy = (
        "<ArtifactBucket>/pipelines/mlops-loop-staging-training/training/promoted/1/1/model.tar.gz"
    )
    by_receiver = Request(
        "s3:PutObject",
        copy,
        f"arn:aws:iam::{STAGING}:role/mlops-loop-staging-promotion-receiver",
        tags={tag: "models"},
    )
    by_job_role = Request("s3:PutObject", copy, f"arn:aws:iam::{STAGING}:role/training-job")
    assert not denied(policy, by_receiver)
    assert denied(policy, by_job_role)
    # and the copy is never deleted, by the receiver either
    assert denied(policy, Request("s3:DeleteObject", copy, by_receiver.principal, by_receiver.tags))


def test_the_end_of_the_chain_admits_only_its_predecessors_approvals() -> None:
    """prod receives from staging and sends nowhere: its only cross-account statement is its
    promotions bus admitting staging's sender role."""
    overrides = '{"promotion": {"mode": "promote"}, "monitoring": {"retrain_on_alarm": false}}'
    templates = {role: t.to_json() for role, t in synthesized("prod", overrides).items()}
    grants = [s for ss in cross_account(templates, PROD).values() for s in ss]
    sender = f"arn:aws:iam::{STAGING}:role/mlops-loop-staging-promotion-sender"
    assert grants == [
        {
            "Action": "events:PutEvents",
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": sender},
                # only SageMaker's package state changes, even from that role (#19 N1)
                "ForAllValues:StringEquals": {"events:source": ["aws.sagemaker"]},
                "StringEquals": {"events:detail-type": "SageMaker Model Package State Change"},
            },
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{STAGING}:root"},
            "Resource": "<PromotionReceiverBus753C07F2>",
            "Sid": f"cdk-ApprovalsFrom{STAGING}",
        }
    ]
    roles = [
        r["Properties"].get("RoleName", "")
        for r in templates["training"]["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
    ]
    assert "mlops-loop-prod-promotion-receiver" in roles
    assert not any(name.endswith("promotion-sender") for name in roles)
