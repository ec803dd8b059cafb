"""Stateful resources: never replaced by an app change, retained in staging and prod."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnResource, Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from constructs import Construct
from constructs.nag import acknowledge, acknowledge_guard
from constructs.policy_checks import skip_checkov
from constructs.secure_bucket import SecureBucket
from mlops_config import EnvironmentConfig

# Data-bucket prefixes are part of the contract with producers, the endpoint and the monitors.
LANDING_PREFIX = "landing/"
GROUND_TRUTH_PREFIX = "ground-truth/"
CAPTURE_PREFIX = "capture/"

# Logical IDs of stateful resources are pinned: a refactor must never replace them.
PINNED_LOGICAL_IDS = {
    "DataKey": "AWS::KMS::Key",
    "AccessLogBucket": "AWS::S3::Bucket",
    "DataBucket": "AWS::S3::Bucket",
    "ArtifactBucket": "AWS::S3::Bucket",
    "ModelPackageGroup": "AWS::SageMaker::ModelPackageGroup",
    "NotificationTopic": "AWS::SNS::Topic",
    "DatasetLedger": "AWS::DynamoDB::Table",
    "EvaluationLedger": "AWS::DynamoDB::Table",
}


def _pin(resource: Any, logical_id: str) -> None:
    cfn = resource.node.default_child if not isinstance(resource, CfnResource) else resource
    cfn.override_logical_id(logical_id)


class DataStack(Stack):
    """KMS key, data/artifact/access-log buckets, Model Package Group, notifications topic,
    dataset ledger.

    Exposes `key`, `data_bucket`, `artifact_bucket`, `model_package_group_name`,
    `model_package_group_arn`, `topic`, `ledger` and `evaluation_ledger` for the other stacks.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=config.retain, **kwargs)
        removal = RemovalPolicy.RETAIN if config.retain else RemovalPolicy.DESTROY
        noncurrent = Duration.days(config.data.noncurrent_version_expiration_days)

        self.key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{config.prefix}",
            description=f"{config.prefix}: data, artifacts, queues, topics, logs and job volumes",
            enable_key_rotation=True,
            removal_policy=removal,
            pending_window=Duration.days(7 if not config.retain else 30),
        )
        # Services that write into encrypted destinations on our behalf (alarms and rules
        # publishing to the topic, log groups) need the key; scoped to this account.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowServicePublishers",
                principals=[
                    iam.ServicePrincipal("events.amazonaws.com"),
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        log_groups = f"arn:{self.partition}:logs:{self.region}:{self.account}:*"
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogs",
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
            )
        )
        # Grants only for AWS services acting on our resources (volumes, tables, functions).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyGrantsExceptForAwsResources",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={
                    "BoolIfExists": {
                        "kms:GrantIsForAWSResource": "false",
                        "aws:PrincipalIsAWSService": "false",
                    }
                },
            )
        )
        _pin(self.key, "DataKey")

        # S3 server access logs can only be delivered to an SSE-S3 bucket.
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(365),
                    noncurrent_version_expiration=noncurrent,
                )
            ],
            removal_policy=removal,
            auto_delete_objects=not config.retain,
        )
        _pin(self.access_log_bucket, "AccessLogBucket")
        acknowledge(
            self.access_log_bucket,
            "AwsSolutions-S1",
            reason="This is the server-access-log destination; logging it into itself would loop.",
        )
        skip_checkov(
            self.access_log_bucket,
            "CKV_AWS_18",
            "This is the server-access-log destination; logging it into itself would loop.",
        )
        acknowledge_guard(
            self.access_log_bucket,
            "s3_bucket_logging_enabled_check",
            "s3_bucket_default_encryption_kms_check",
            reason="S3 delivers server access logs only to an SSE-S3 bucket that does not log "
            "itself.",
        )

        self.data_bucket = SecureBucket(
            self,
            "Data",
            encryption_key=self.key,
            access_logs=self.access_log_bucket,
            access_logs_prefix="data-bucket/",
            retain=config.retain,
            noncurrent_version_expiration=noncurrent,
            event_bridge=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-captured-traffic",
                    prefix=CAPTURE_PREFIX,
                    expiration=Duration.days(config.data.capture_expiration_days),
                )
            ],
        ).bucket
        _pin(self.data_bucket, "DataBucket")

        self.artifact_bucket = SecureBucket(
            self,
            "Artifacts",
            encryption_key=self.key,
            access_logs=self.access_log_bucket,
            access_logs_prefix="artifact-bucket/",
            retain=config.retain,
            noncurrent_version_expiration=noncurrent,
        ).bucket
        _pin(self.artifact_bucket, "ArtifactBucket")

        self.model_package_group_name = config.model_package_group_name
        group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=config.model_package_group_name,
            model_package_group_description=(
                f"Models trained by the {config.pipeline_name} pipeline ({config.name})"
            ),
            # Stack tags do not reach this resource type: tag it explicitly.
            tags=[{"key": k, "value": v} for k, v in sorted(config.tags.items())],
        )
        group.apply_removal_policy(removal)
        _pin(group, "ModelPackageGroup")
        self.model_package_group_arn = group.attr_model_package_group_arn

        self.topic = sns.Topic(
            self,
            "NotificationTopic",
            display_name=f"{config.prefix} MLOps notifications",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.topic.apply_removal_policy(removal)
        _pin(self.topic, "NotificationTopic")
        for email in config.notification_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        # Dataset version -> the execution it started: the exactly-once guard and the trace
        # from every model back to its data. One per pipeline, so a ground-truth version never
        # collides with the landing version of the same name.
        self.ledger = self._ledger("DatasetLedger", removal, config.retain)
        self.evaluation_ledger = self._ledger("EvaluationLedger", removal, config.retain)

        CfnOutput(
            self,
            "DataBucketName",
            value=self.data_bucket.bucket_name,
            description="Land data under landing/<dataset>/<version>/",
        )
        CfnOutput(self, "ArtifactBucketName", value=self.artifact_bucket.bucket_name)
        CfnOutput(self, "ModelPackageGroupName", value=config.model_package_group_name)
        CfnOutput(self, "NotificationTopicArn", value=self.topic.topic_arn)

        for bucket in (self.access_log_bucket, self.data_bucket, self.artifact_bucket):
            acknowledge_guard(
                bucket,
                "s3_bucket_object_lock_enabled_check",
                reason="Object Lock would block the lifecycle expiry of noncurrent versions and "
                "captured traffic and dev's clean destroy; versioning plus retained buckets "
                "protect the data. Turn it on per compliance need.",
            )
        acknowledge_guard(
            self.data_bucket,
            "s3_event_notifications_enabled_check",
            reason="EventBridge notifications are on, set by CDK's notifications custom resource "
            "that the rule cannot see (tests/test_data_stack.py asserts it).",
        )
        for bucket in (self.access_log_bucket, self.artifact_bucket):
            acknowledge_guard(
                bucket,
                "s3_event_notifications_enabled_check",
                reason="Nothing consumes events of this bucket: access logs and pipeline "
                "artifacts are read on demand.",
            )

        for key, value in config.tags.items():
            Tags.of(self).add(key, value)
        self._acknowledge_cdk_internals()

    def _ledger(self, logical_id: str, removal: RemovalPolicy, retain: bool) -> dynamodb.Table:
        """On-demand, KMS, point-in-time recovery; key schema owned by lambdas/start_training."""
        table = dynamodb.Table(
            self,
            logical_id,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            removal_policy=removal,
            deletion_protection=retain,
        )
        _pin(table, logical_id)
        return table

    def _acknowledge_cdk_internals(self) -> None:
        # CDK's own singleton that switches on the bucket's EventBridge notifications.
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    reason="CDK-internal handler that only calls "
                    "PutBucketNotificationConfiguration at deploy time; its managed policy "
                    "grants nothing beyond writing its own logs.",
                )
