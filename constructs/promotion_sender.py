"""The sending side of a model promotion: what the next environment of the chain may read here,
and the rule that tells it a package was approved.

The receiving environment copies each package its predecessor approves into its own registry
and bucket (constructs/promotion_receiver.py; README, Promoting one model across accounts).
Here, in the sending account:

* `grant_promotion_reads` adds, on the three resources the copy reads, one Allow each for the
  next environment's account, only for its receiver role (by `aws:PrincipalArn`: the role is
  named by contract and need not exist yet when this environment deploys first):
  the model package group's resource policy (`sagemaker:DescribeModelPackage` on this group's
  versions), the artifact bucket's policy (`s3:GetObject` of the files a package names below
  this environment's pipeline prefix, `s3:ListBucket` of those prefixes only: not the data
  splits nor checkpoints) and the artifact key's policy (`kms:Decrypt`
  through S3 in this region). Nothing here can write, approve or delete.
* `PromotionSender` forwards this group's approvals and rejections ("SageMaker Model Package
  State Change", Approved or Rejected) to the next environment's promotions bus, as a role
  that may put events on that bus alone; undeliverable events land in a dead-letter queue
  that alarms.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.dead_letters import dead_letter_queue, dead_letters_alarm
from mlops_config import PromotionPeer
from mlops_config.promotion import sender_role_name
from pipeline_code.definition.contract import PACKAGE_FILE_PATTERNS

MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
# Approvals are copied; rejections (and rollbacks) of copied packages are alerts downstream.
FORWARDED_STATUSES = ("Approved", "Rejected")
# The actions the receiving account is granted here, exactly.
PACKAGE_READ_ACTIONS = ("sagemaker:DescribeModelPackage",)
OBJECT_READ_ACTIONS = ("s3:GetObject",)
LIST_ACTIONS = ("s3:ListBucket",)
KEY_ACTIONS = ("kms:Decrypt",)


def receiver_role_arn(stack: Stack, peer: PromotionPeer) -> str:
    """The receiving environment's copy role, as `aws:PrincipalArn` names it."""
    return f"arn:{stack.partition}:iam::{peer.account}:role/{peer.receiver_role_name}"


def _only_receiver(stack: Stack, peer: PromotionPeer) -> dict[str, Any]:
    return {"ArnEquals": {"aws:PrincipalArn": receiver_role_arn(stack, peer)}}


def group_policy(stack: Stack, group_name: str, peer: PromotionPeer) -> dict[str, Any]:
    """The model package group's resource policy: `peer`'s receiver role describes this
    group's versions (SageMaker's cross-account registry pattern, read-only)."""
    versions = stack.format_arn(
        service="sagemaker", resource="model-package", resource_name=f"{group_name.lower()}/*"
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": f"PromotionTo{_title(peer.name)}DescribesPackages",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{stack.partition}:iam::{peer.account}:root"},
                "Action": list(PACKAGE_READ_ACTIONS),
                "Resource": versions,
                "Condition": _only_receiver(stack, peer),
            }
        ],
    }


def package_file_keys(pipeline_prefix: str) -> list[str]:
    """The key patterns of what a package of the pipeline under `pipeline_prefix` names."""
    return [f"{pipeline_prefix}{pattern}" for pattern in PACKAGE_FILE_PATTERNS]


def _title(name: str) -> str:
    return "".join(part.title() for part in name.split("-"))


def grant_promotion_reads(
    *,
    group: sagemaker.CfnModelPackageGroup,
    group_name: str,
    bucket: s3.IBucket,
    key: kms.IKey,
    pipeline_prefix: str,
    peer: PromotionPeer,
) -> None:
    """Let `peer`'s receiver role read this environment's packages of `group`, the files they
    name below `pipeline_prefix` of `bucket` (`package_file_keys`: models, evaluation reports,
    baselines; never the data splits or checkpoints) and decrypt them with `key` through S3.
    Each grant names `peer`'s account as principal and its receiver role as the only
    `aws:PrincipalArn`."""
    stack = Stack.of(bucket)
    group.model_package_group_policy = group_policy(stack, group_name, peer)
    account = iam.AccountPrincipal(peer.account)
    sid = f"PromotionTo{_title(peer.name)}"
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid=f"{sid}ReadsModels",
            principals=[account],
            actions=list(OBJECT_READ_ACTIONS),
            resources=[bucket.arn_for_objects(k) for k in package_file_keys(pipeline_prefix)],
            conditions=_only_receiver(stack, peer),
        )
    )
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid=f"{sid}ListsModels",
            principals=[account],
            actions=list(LIST_ACTIONS),
            resources=[bucket.bucket_arn],
            conditions={
                **_only_receiver(stack, peer),
                "StringLike": {"s3:prefix": package_file_keys(pipeline_prefix)},
            },
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=f"{sid}DecryptsModels",
            principals=[account],
            actions=list(KEY_ACTIONS),
            resources=["*"],
            conditions={
                **_only_receiver(stack, peer),
                "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"},
            },
        )
    )


def promotions_bus_arn(stack: Stack, peer: PromotionPeer) -> str:
    return f"arn:{stack.partition}:events:{peer.region}:{peer.account}:event-bus/{peer.bus_name}"


class PromotionSender(Construct):
    """Forwards approvals of `group` to `peer`'s promotions bus as `role` (named
    `<prefix>-promotion-sender`: the bus's policy names it). Exposes `rule`, `role`,
    `dead_letters` and `alarm`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        group: str,
        peer: PromotionPeer,
        encryption_key: kms.IKey,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        bus_arn = promotions_bus_arn(stack, peer)
        # Named, so the role's trust can name the one rule (aws:SourceArn) without a cycle:
        # the rule's target names the role.
        rule_name = f"{prefix}-promotion-forwarder"
        rule_arn = stack.format_arn(service="events", resource="rule", resource_name=rule_name)
        self.rule = events.Rule(
            self,
            "OnModelPackageApproved",
            rule_name=rule_name,
            description=f"Approvals in {group} go to {peer.name} ({peer.account}) to be copied",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[MODEL_PACKAGE_STATE_CHANGE],
                detail={
                    "ModelPackageGroupName": [group],
                    "ModelApprovalStatus": list(FORWARDED_STATUSES),
                },
            ),
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=sender_role_name(prefix),
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {"aws:SourceArn": rule_arn},
                },
            ),
            description=f"EventBridge forwards approvals of {group} to {peer.name}'s bus",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus_arn])
        )
        self.dead_letters = dead_letter_queue(
            self, "DeadLetters", encryption_key=encryption_key, of="the promotion rule"
        )
        self.rule.add_target(
            targets.EventBus(
                events.EventBus.from_event_bus_arn(self, "PromotionsBus", bus_arn),
                role=self.role,
                dead_letter_queue=self.dead_letters,
            )
        )
        self.alarm = dead_letters_alarm(
            self,
            "DeadLettersAlarm",
            queue=self.dead_letters,
            description=f"An approval of {group} could not be forwarded to {peer.name}'s "
            "promotions bus: it will not be copied there until it is redriven",
            topic=topic,
        )
