"""The receiving side of a model promotion: the bus the predecessor's approvals arrive on and the
function that copies each approved package into this environment's registry and bucket.

A package approved in the previous environment of the chain reaches `<prefix>-promotions`,
whose policy admits only that account's sender role (`aws:PrincipalArn`). A rule matching
"SageMaker Model Package State Change", Approved or Rejected, of that account and group queues
it; the receiver (lambdas/receive_model) describes the package in the sending account, streams its
model artifact into this bucket while hashing it and completes the upload only when the
SHA-256 equals the one the pipeline registered, copies its drift baseline, then registers a
copy in this group as PendingManualApproval, with its lineage (training account, execution,
dataset version, data digest) and `promoted_from`. From there, deployment here is the usual
approval (prod: promotion) through the deploy handler, which verifies the artifact again. A
package rejected (or rolled back) there that was copied here is an alert on this environment's
notification topic naming the copy; nothing here changes on its own.

The receiver's role (`<prefix>-promotion-receiver`, named so the sending account's policies can
name it) reads in the sending account only what that account's policies grant it (its group's
packages, the files they name below its pipeline prefix: never its data splits, its artifact
key through S3); here it writes only under `<models prefix>promoted/` (tagged as a model
writer for the write-once bucket policy), publishes only to this environment's topic and
registers only PendingManualApproval packages in this group (the loop's explicit denies).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack, Tags
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.alarms import any_occurrence_alarm
from constructs.bucket_access import grant_object_read, grant_object_write
from constructs.bucket_policies import MODEL_WRITER
from constructs.dead_letters import dead_letter_queue, dead_letters_alarm, source_queue
from constructs.key_use import consume_queue, grant_key_use
from constructs.nag import acknowledge, object_wildcard, rendered_token_arn
from constructs.promotion_sender import (
    FORWARDED_STATUSES,
    MODEL_PACKAGE_STATE_CHANGE,
    package_file_keys,
)
from constructs.python_function import PythonFunction
from constructs.rule_targets import deliver_to_queue
from constructs.sagemaker_execution_role import deny_self_approval
from mlops_config import PromotionPeer
from mlops_config.promotion import promotions_bus_name, receiver_role_name

FOLDER = "receive_model"
PROMOTED = "promoted/"
# Streaming a model artifact of a few GB through the function (hash + multipart upload).
TIMEOUT = Duration.minutes(10)
MEMORY_MB = 1024
MAX_RECEIVES = 5
# The actions the receiver is granted in the sending account, exactly (the sending account's
# policies grant the same: constructs/promotion_sender.py).
SOURCE_PACKAGE_ACTIONS = ("sagemaker:DescribeModelPackage",)
SOURCE_OBJECT_ACTIONS = ("s3:GetObject",)
SOURCE_LIST_ACTIONS = ("s3:ListBucket",)
SOURCE_KEY_ACTIONS = ("kms:Decrypt",)
# Publishing to a topic encrypted with a customer managed key
SNS_PUBLISH_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def sender_role_arn(stack: Stack, peer: PromotionPeer) -> str:
    return f"arn:{stack.partition}:iam::{peer.account}:role/{peer.sender_role_name}"


class PromotionReceiver(Construct):
    """Copies packages `peer` approves into `group`, artifacts under `model_prefix` +
    `promoted/` of `artifact_bucket`. Exposes `bus`, `rule`, `function`, `role`, `queue`,
    `dead_letters`, `rule_dead_letters` and `alarms`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        group: str,
        peer: PromotionPeer,
        artifact_bucket: s3.IBucket,
        model_prefix: str,
        writer_tag: str,
        encryption_key: kms.IKey,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        promoted_prefix = f"{model_prefix}{PROMOTED}"
        self.bus = events.EventBus(self, "Bus", event_bus_name=promotions_bus_name(prefix))
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"ApprovalsFrom{peer.account}",
                principals=[iam.AccountPrincipal(peer.account)],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                # EventBridge's documented keys for a bus policy: only SageMaker's package
                # state changes may be put here, even by that role
                conditions={
                    "ArnEquals": {"aws:PrincipalArn": sender_role_arn(stack, peer)},
                    "ForAllValues:StringEquals": {"events:source": ["aws.sagemaker"]},
                    "StringEquals": {"events:detail-type": MODEL_PACKAGE_STATE_CHANGE},
                },
            )
        )
        handler = PythonFunction(
            self,
            "Function",
            folder=FOLDER,
            shared_modules=("sqs_records",),
            role_name=receiver_role_name(prefix),
            description=f"Copies packages {peer.name} approves into {group}",
            encryption_key=encryption_key,
            environment={
                "SOURCE_ACCOUNT": peer.account,
                "SOURCE_REGION": peer.region,
                "SOURCE_MODEL_PACKAGE_GROUP_NAME": peer.model_package_group_name,
                "SOURCE_PIPELINE_PREFIX": f"pipelines/{peer.pipeline_name}/",
                "MODEL_PACKAGE_GROUP_NAME": group,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
                "PROMOTED_PREFIX": promoted_prefix,
                "TOPIC_ARN": topic.topic_arn,
                "POWERTOOLS_METRICS_NAMESPACE": f"{prefix}/Promotion",
            },
            timeout=TIMEOUT,
            memory_size=MEMORY_MB,
        )
        self.function, self.role = handler.function, handler.role
        # the artifact bucket's write-once policy admits model writers under the models prefix
        Tags.of(self.role).add(writer_tag, MODEL_WRITER)
        self._grant_source_reads(stack, peer)
        self._grant_own_writes(stack, group, artifact_bucket, promoted_prefix)
        # a rejection upstream of a package copied here is an alert on this topic
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn])
        )
        grant_key_use(encryption_key, self.role, SNS_PUBLISH_KEY_ACTIONS, via=["sns"])

        self.queue, self.dead_letters = source_queue(
            self,
            "Requests",
            "DeadLetters",
            purpose="promotion-requests",
            encryption_key=encryption_key,
            of="the promotion queue",
            visibility_timeout=Duration.minutes(60),  # six times the function timeout
            max_receive_count=MAX_RECEIVES,
        )
        # SQS's minimum concurrency: approvals are rare, copies are large
        consume_queue(self.function, self.role, self.queue, encryption_key, max_concurrency=2)
        self.rule_dead_letters = dead_letter_queue(
            self, "RuleDeadLetters", encryption_key=encryption_key, of="the promotion rule"
        )
        self.rule = events.Rule(
            self,
            "OnPredecessorApproval",
            description=f"Approvals in {peer.model_package_group_name} ({peer.account}) are "
            f"copied into {group}",
            event_bus=self.bus,
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[MODEL_PACKAGE_STATE_CHANGE],
                account=[peer.account],
                detail={
                    "ModelPackageGroupName": [peer.model_package_group_name],
                    "ModelApprovalStatus": list(FORWARDED_STATUSES),
                },
            ),
        )
        deliver_to_queue(self.rule, self.queue, dead_letter_queue=self.rule_dead_letters)
        self.alarms = {
            "dead_letters": dead_letters_alarm(
                self,
                "DeadLettersAlarm",
                queue=self.dead_letters,
                description=f"A package approved in {peer.name} could not be copied here after "
                "every retry: read the receiver's logs, fix, and redrive it",
                topic=topic,
            ),
            "rule_dead_letters": dead_letters_alarm(
                self,
                "RuleDeadLettersAlarm",
                queue=self.rule_dead_letters,
                description="EventBridge could not deliver an approval from "
                f"{peer.name} to the promotion queue",
                topic=topic,
            ),
            "errors": any_occurrence_alarm(
                self,
                "ErrorsAlarm",
                metric=self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                description="The promotion receiver failed (crash, timeout, unverified "
                "artifact or AWS error): see its logs",
                topic=topic,
            ),
        }

    def _grant_source_reads(self, stack: Stack, peer: PromotionPeer) -> None:
        """Reads in the sending account; its own policies grant no more (promotion_sender)."""
        add = self.role.add_to_policy
        packages = (
            f"arn:{stack.partition}:sagemaker:{peer.region}:{peer.account}:model-package/"
            f"{peer.model_package_group_name.lower()}/*"
        )
        add(iam.PolicyStatement(actions=list(SOURCE_PACKAGE_ACTIONS), resources=[packages]))
        # The sending bucket's name is generated at its deploy: any bucket of that account,
        # the files a package names only; its bucket policy names the one bucket that admits us.
        in_source = {"StringEquals": {"s3:ResourceAccount": peer.account}}
        files = package_file_keys(f"pipelines/{peer.pipeline_name}/")
        objects = [f"arn:{stack.partition}:s3:::*/{pattern}" for pattern in files]
        add(
            iam.PolicyStatement(
                actions=list(SOURCE_OBJECT_ACTIONS), resources=objects, conditions=in_source
            )
        )
        add(
            iam.PolicyStatement(
                actions=list(SOURCE_LIST_ACTIONS),
                resources=[f"arn:{stack.partition}:s3:::*"],
                conditions={**in_source, "StringLike": {"s3:prefix": files}},
            )
        )
        keys = f"arn:{stack.partition}:kms:{peer.region}:{peer.account}:key/*"
        add(
            iam.PolicyStatement(
                actions=list(SOURCE_KEY_ACTIONS),
                resources=[keys],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{peer.region}.amazonaws.com"}},
            )
        )
        reason = (
            "Reads in the sending account {what}: that account's resource policies admit this "
            "role alone and name the one resource; cross-account access needs both."
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{rendered_token_arn(stack, packages)}]",
            reason=reason.format(what="the versions of its model package group"),
        )
        for resource, what in (
            *((o, "the files its packages name (bucket named at deploy)") for o in objects),
            (f"arn:{stack.partition}:s3:::*", "the listing of that prefix"),
            (keys, "its artifact key, through S3 only (key id generated at deploy)"),
        ):
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::{rendered_token_arn(stack, resource)}]",
                reason=reason.format(what=what),
            )

    def _grant_own_writes(
        self, stack: Stack, group: str, bucket: s3.IBucket, promoted_prefix: str
    ) -> None:
        """Copies under `promoted_prefix` only; packages in `group` only, PendingManualApproval
        only, never updated (the same explicit denies as the pipelines' role)."""
        grant_object_read(bucket, self.role, promoted_prefix)
        grant_object_write(bucket, self.role, promoted_prefix)
        packages = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{group.lower()}/*"
        )
        group_arn = stack.format_arn(
            service="sagemaker", resource="model-package-group", resource_name=group
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterCopiesInThisGroupOnly",
                actions=["sagemaker:CreateModelPackage"],
                resources=[group_arn, packages],
            )
        )
        self.role.add_to_policy(  # List* actions support no resource-level permissions
            iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"])
        )
        deny_self_approval(self.role)
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{rendered_token_arn(stack, packages)}]",
            reason="Registers copies (PendingManualApproval only) as versions of this "
            "environment's group, created after deploy.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            reason="sagemaker:ListModelPackages (no resource-level permissions), and the "
            "explicit denies that refuse approving, promoting or editing any package.",
        )
        acknowledge(
            self.role,
            object_wildcard(self.role, bucket, promoted_prefix),
            reason="Writes and reads back the copied artifacts under this environment's "
            "promoted models prefix only (write-once by the bucket policy).",
        )
