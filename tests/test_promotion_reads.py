"""promote mode: what the next environment's receiver may read (exactly what a package names,
never a data split, evaluated as IAM does on both sides), what it may publish (its own topic)
and never approve, and both sides in vpc mode."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PROMOTE_VPC_TARGET, synthesized
from tests.lambda_loader import load_lambda_module
from tests.policy_evaluation import Request, as_list, decision, denied, resolve
from tests.promotion_templates import (
    DEV,
    DEV_PACKAGE_FILES,
    PROD,
    STAGING,
    artifact_bucket_policy,
    cross_account,
    role_named,
    role_statements,
    source,
    target,
)

pytestmark = pytest.mark.xdist_group("cdk")
__all__ = ["source", "target"]


def test_in_vpc_mode_the_receiver_runs_in_the_subnets_and_the_next_one_may_read() -> None:
    """staging in a created VPC: its receiver runs in its subnets (its S3 gateway endpoint
    reaches dev's bucket), and its endpoint-only bucket policy admits prod's receiver, which
    reads from its own network, and no one else from outside."""
    synthesized_vpc = synthesized("staging", PROMOTE_VPC_TARGET)
    templates = {role: t.to_json() for role, t in synthesized_vpc.items()}
    training = templates["training"]["Resources"]
    role = role_named(templates["training"], "mlops-loop-staging-promotion-receiver")
    (function,) = [
        r["Properties"]
        for r in training.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    ]
    assert function["VpcConfig"]["SubnetIds"]
    policy = artifact_bucket_policy(templates)
    model = (
        "<ArtifactBucket>/pipelines/mlops-loop-staging-training/training/promoted/1/1/model.tar.gz"
    )
    prod_receiver = f"arn:aws:iam::{PROD}:role/mlops-loop-prod-promotion-receiver"
    # a direct call from outside this VPC's endpoints (no aws:SourceVpce of ours)
    direct = {"aws:ViaAWSService": "false", "aws:PrincipalIsAWSService": "false"}
    assert not denied(policy, Request("s3:GetObject", model, prod_receiver, context=direct))
    other = f"arn:aws:iam::{PROD}:role/other"
    assert denied(policy, Request("s3:GetObject", model, other, context=direct))
    # the data bucket admits no one of another account from outside its endpoints
    (data_policy,) = [
        r["Properties"]["PolicyDocument"]
        for r in templates["data"]["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and r["Properties"]["Bucket"] == {"Ref": "DataBucket"}
    ]
    landed = "<DataBucket>/landing/fraud/v1/part-0.csv"
    assert denied(data_policy, Request("s3:GetObject", landed, prod_receiver, context=direct))


def test_a_sending_environment_in_a_vpc_admits_the_next_receiver_past_its_endpoints() -> None:
    overrides = '{"promotion": {"mode": "promote"}, "network": {"mode": "vpc", "create_vpc": true}}'
    templates = {role: t.to_json() for role, t in synthesized("dev", overrides).items()}
    policy = artifact_bucket_policy(templates)
    model = "<ArtifactBucket>/pipelines/mlops-loop-dev-training/training/pipelines-a-Train/m.tar.gz"
    direct = {"aws:ViaAWSService": "false", "aws:PrincipalIsAWSService": "false"}
    receiver = f"arn:aws:iam::{STAGING}:role/mlops-loop-staging-promotion-receiver"
    assert not denied(policy, Request("s3:GetObject", model, receiver, context=direct))
    other = f"arn:aws:iam::{STAGING}:role/mlops-loop-staging-promotion-sender"
    assert denied(policy, Request("s3:GetObject", model, other, context=direct))
    # what the receiver may read past the endpoints, its grant limits to dev's pipeline prefix
    grants = [s for ss in cross_account(templates, DEV).values() for s in ss]
    (grant,) = [s for s in grants if s["Action"] == "s3:GetObject"]
    assert sorted(grant["Resource"]) == sorted(f"<ArtifactBucket>/{k}" for k in DEV_PACKAGE_FILES)


def test_the_next_receiver_reads_what_a_package_names_and_never_a_data_split(
    source: dict[str, dict[str, Any]], target: dict[str, dict[str, Any]]
) -> None:
    """#19 S3, evaluated as IAM does on both sides (dev's bucket policy, staging's receiver
    role): the model, the evaluation report and the baselines are readable; Prepare's labelled
    splits and the checkpoints are not (before, all of dev's pipeline prefix was)."""
    prefix = "pipelines/mlops-loop-dev-training/"
    readable = [
        "training/pipelines-a-Train/output/model.tar.gz",
        "executions/e1/Evaluate/evaluation/evaluation.json",
        "executions/e1/Prepare/baseline/baseline.csv",
        "executions/e1/Baseline/results/constraints.json",
    ]
    unreadable = [
        "executions/e1/Prepare/train/part-0.csv",
        "executions/e1/Prepare/validation/part-0.csv",
        "executions/e1/Prepare/test/test.csv",
        "checkpoints/pipelines-a-Train/xgboost-checkpoint.10",
    ]
    receiver = f"arn:aws:iam::{STAGING}:role/mlops-loop-staging-promotion-receiver"
    grants = [s for ss in cross_account(source, DEV).values() for s in ss]
    bucket_policy = [s for s in grants if s["Action"] == "s3:GetObject"]
    role = role_named(target["training"], "mlops-loop-staging-promotion-receiver")
    identity = role_statements(target["training"], role)
    in_dev = {"s3:ResourceAccount": DEV}
    for key, allowed in [(k, True) for k in readable] + [(k, False) for k in unreadable]:
        by_bucket = Request("s3:GetObject", f"<ArtifactBucket>/{prefix}{key}", receiver)
        by_role = Request(
            "s3:GetObject", f"arn:aws:s3:::dev-bucket/{prefix}{key}", receiver, context=in_dev
        )
        assert (decision(bucket_policy, by_bucket) == "allow") is allowed, key
        assert (decision(identity, by_role) == "allow") is allowed, key
    # and the receiver's own check agrees with both policies
    object_copy = load_lambda_module("receive_model", "object_copy")
    for key in readable:
        assert object_copy.readable_key(prefix + key, prefix), key
    for key in unreadable:
        assert not object_copy.readable_key(prefix + key, prefix), key


def test_the_receiver_may_alert_on_a_rejection_and_still_approves_nothing(
    target: dict[str, dict[str, Any]],
) -> None:
    """#19 S4: it publishes to this environment's topic only (through KMS via SNS), and the
    loop's denies still refuse it any approval, whatever else it is allowed."""
    training = target["training"]
    role = role_named(training, "mlops-loop-staging-promotion-receiver")
    statements = role_statements(training, role)
    publishes = [s for s in statements if "sns:Publish" in as_list(s["Action"])]
    assert len(publishes) == 1
    assert "NotificationTopic" in str(publishes[0]["Resource"])
    (function,) = [
        r["Properties"]
        for r in training["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    ]
    topic = function["Environment"]["Variables"]["TOPIC_ARN"]
    assert resolve(topic) == resolve(publishes[0]["Resource"])
    principal = "arn:aws:iam::222222222222:role/mlops-loop-staging-promotion-receiver"
    copy = "arn:aws:sagemaker:eu-west-1:222222222222:model-package/mlops-loop-staging-models/3"
    for action in ("sagemaker:UpdateModelPackage", "sagemaker:CreateModelPackage"):
        request = Request(
            action, copy, principal, context={"sagemaker:ModelApprovalStatus": "Approved"}
        )
        assert decision(statements, request) == "explicit-deny", action
