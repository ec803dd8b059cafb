"""Stateful resources: never replaced by an app change, retained in staging and prod."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnResource, Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from constructs import Construct
from constructs.bucket_policies import (
    MODEL_WRITER,
    PIPELINE_OUTPUTS_WRITER,
    STEP_CODE_WRITER,
    deny_outside_endpoints,
    only_writers,
    pipelines_reader_tag_key,
    restrict_writers,
    root_user,
    write_once,
    writer_tag_key,
)
from constructs.dataset_trigger import MANIFEST_PREFIX
from constructs.environment_keys import create_environment_keys, deployer_role_arn
from constructs.mlflow_server import ManagedMlflowServer
from constructs.nag import acknowledge, acknowledge_guard
from constructs.operator_access import operator_tag
from constructs.private_network import PrivateNetwork, deploy_time_availability_zones
from constructs.promotion_sender import grant_promotion_reads, receiver_role_arn
from constructs.secure_bucket import SecureBucket, access_log_bucket, shard_parts_expiry
from mlops_config import EnvironmentConfig
from pipeline_code.definition.contract import TRAINING_OUTPUTS, pipeline_output_prefix
from pipeline_code.offline import CODE_PREFIX

# Data-bucket prefixes are part of the contract with producers, the endpoint and the monitors.
LANDING_PREFIX = "landing/"
GROUND_TRUTH_PREFIX = "ground-truth/"
CAPTURE_PREFIX = "capture/"
# batch serving: scoring versions land here; the transform jobs write under predictions/
SCORE_PREFIX = "score/"
# Artifact-bucket prefixes: every pipeline's job outputs, and among them its models (the
# training step's output path, ModelDataUrl of every package: never deleted; written by the
# training job role alone, under pipeline_output_prefix(<training pipeline>, TRAINING_OUTPUTS)).
PIPELINE_OUTPUTS_PREFIX = "pipelines/"
MODELS_PATTERN = "pipelines/*/training/*"

# Logical IDs of stateful resources are pinned: a refactor must never replace them.
PINNED_LOGICAL_IDS = {
    "DataKey": "AWS::KMS::Key",
    "ArtifactKey": "AWS::KMS::Key",
    "OperationsKey": "AWS::KMS::Key",
    "AccessLogBucket": "AWS::S3::Bucket",
    "DataBucket": "AWS::S3::Bucket",
    "ArtifactBucket": "AWS::S3::Bucket",
    "ModelPackageGroup": "AWS::SageMaker::ModelPackageGroup",
    "NotificationTopic": "AWS::SNS::Topic",
    "DatasetLedger": "AWS::DynamoDB::Table",
    "EvaluationLedger": "AWS::DynamoDB::Table",
}
MLFLOW_SERVER_LOGICAL_ID = "MlflowTrackingServer"  # tracking.mlflow managed: pinned likewise


def _pin(resource: Any, logical_id: str) -> None:
    cfn = resource.node.default_child if not isinstance(resource, CfnResource) else resource
    cfn.override_logical_id(logical_id)


class DataStack(Stack):
    """The environment's keys (`data_key`, `artifact_key`, `operations_key`), data/artifact/
    access-log buckets, Model Package Group, notifications topic, dataset ledgers.

    Exposes `data_key`, `artifact_key`, `operations_key`, `data_bucket`, `artifact_bucket`,
    `model_package_group_name`, `model_package_group_arn`, `topic` (for publishers: a
    reference whose policy other stacks cannot widen), `ledger` and `evaluation_ledger`,
    `scoring_ledger` (batch serving only, else None), `network` (a PrivateNetwork in vpc
    mode, else None) and `mlflow_server` (tracking.mlflow managed, else None).
    """

    @property
    def availability_zones(self) -> list[str]:
        """The region's first two AZs, resolved at deploy time: a created VPC never makes synth
        look them up (CDK's default is a context look-up with AWS credentials)."""
        return deploy_time_availability_zones()

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=config.retain, **kwargs)
        removal = RemovalPolicy.RETAIN if config.retain else RemovalPolicy.DESTROY
        noncurrent = Duration.days(config.data.noncurrent_version_expiration_days)

        keys = create_environment_keys(
            self,
            prefix=config.prefix,
            administrators=config.security.key_administrators,
            retain=config.retain,
        )
        self.data_key, self.artifact_key = keys.data, keys.artifacts
        self.operations_key = keys.operations
        for logical_id, kms_key in (
            ("DataKey", keys.data),
            ("ArtifactKey", keys.artifacts),
            ("OperationsKey", keys.operations),
        ):
            _pin(kms_key, logical_id)
        break_glass = config.security.break_glass_principals or (root_user(self),)

        self.access_log_bucket = access_log_bucket(
            self,
            "AccessLogBucket",
            retain=config.retain,
            noncurrent_version_expiration=noncurrent,
            break_glass=break_glass,
        )
        _pin(self.access_log_bucket, "AccessLogBucket")
        data = SecureBucket(
            self,
            "Data",
            encryption_key=self.data_key,
            access_logs=self.access_log_bucket,
            access_logs_prefix="data-bucket/",
            retain=config.retain,
            noncurrent_version_expiration=noncurrent,
            break_glass=break_glass,
            event_bridge=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-captured-traffic",
                    prefix=CAPTURE_PREFIX,
                    expiration=Duration.days(config.data.capture_expiration_days),
                )
            ],
        )
        self.data_bucket = data.bucket
        _pin(self.data_bucket, "DataBucket")
        if config.data.producer_principals:
            restrict_writers(
                self.data_bucket,
                [
                    LANDING_PREFIX,
                    GROUND_TRUTH_PREFIX,
                    *([SCORE_PREFIX] if config.serving.is_batch else []),
                ],
                writers=[*config.data.producer_principals, *data.history_keepers],
                sid="OnlyProducersLandData",
            )

        artifacts = SecureBucket(
            self,
            "Artifacts",
            encryption_key=self.artifact_key,
            access_logs=self.access_log_bucket,
            access_logs_prefix="artifact-bucket/",
            retain=config.retain,
            noncurrent_version_expiration=noncurrent,
            break_glass=break_glass,
            lifecycle_rules=shard_parts_expiry(
                config.pipeline_name, config.pipeline.cache_expire_after
            ),
        )
        self.artifact_bucket = artifacts.bucket
        _pin(self.artifact_bucket, "ArtifactBucket")
        self._write_once_artifacts(config, artifacts.history_keepers)

        # tracking.mlflow managed: the experiments live as long as the registry they explain
        self.mlflow_server: ManagedMlflowServer | None = None
        if config.tracking.mlflow == "managed":
            self.mlflow_server = ManagedMlflowServer(
                self,
                "MlflowServer",
                server_name=config.mlflow_server_name,
                size=config.tracking.server_size,
                mlflow_version=config.tracking.mlflow_version,
                artifact_bucket=self.artifact_bucket,
                retain=config.retain,
                tags=config.tags,
            )
            _pin(self.mlflow_server.server, MLFLOW_SERVER_LOGICAL_ID)

        # vpc mode: the subnets and security groups everything else runs in
        self.network = (
            PrivateNetwork(self, "Network", config=config, log_key=self.operations_key)
            if config.network.in_vpc
            else None
        )
        if self.network is not None:
            deployer = deployer_role_arn(self)
            # promote mode: the next environment's receiver reads models from its own network
            successor = config.promotion.sends_to
            receiver = [receiver_role_arn(self, successor)] if successor is not None else []
            for bucket, keepers, server in (
                (self.data_bucket, data.history_keepers, None),
                (self.artifact_bucket, [*artifacts.history_keepers, *receiver], self.mlflow_server),
            ):
                deny_outside_endpoints(
                    bucket,
                    endpoint_ids=self.network.s3_endpoint_ids,
                    allowed=[
                        *([deployer] if deployer else []),
                        *config.data.producer_principals,
                        *keepers,
                    ],
                    allowed_tags={operator_tag(config.project): "true"},
                    reader_tag=(pipelines_reader_tag_key(config.project), "true"),
                    prefix_readers=server.outside_readers if server else {},
                )

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
        if config.promotion.sends_to is not None:
            # promote mode: the next environment's receiver reads (only) what it copies
            grant_promotion_reads(
                group=group,
                group_name=config.model_package_group_name,
                bucket=self.artifact_bucket,
                key=self.artifact_key,
                pipeline_prefix=f"{PIPELINE_OUTPUTS_PREFIX}{config.pipeline_name}/",
                peer=config.promotion.sends_to,
            )

        self.topic = self._topic(config, removal)

        # Dataset version -> the execution it started: the exactly-once guard and the trace
        # from every model back to its data. One per pipeline, so a ground-truth version never
        # collides with the landing version of the same name.
        self.ledger = self._ledger("DatasetLedger", removal, config.retain)
        self.evaluation_ledger = self._ledger("EvaluationLedger", removal, config.retain)
        # batch serving: scoring version -> the scoring execution it started
        self.scoring_ledger = (
            self._ledger("ScoringLedger", removal, config.retain)
            if config.serving.is_batch
            else None
        )

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
                reason="Object Lock is bucket-wide and cannot stop a key being overwritten; the "
                "bucket policy denies deleting versions and makes models, step code and "
                "manifests write-once instead (README, Security), keeping lifecycle expiry "
                "and dev's clean destroy.",
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

    def _write_once_artifacts(self, config: EnvironmentConfig, keepers: list[str]) -> None:
        """Models and step code are never deleted, and written only by their writers (tagged by
        the Training stack): under `pipelines/` the two job roles, under the training
        pipeline's model prefix the training job role alone, under `pipeline-code/`
        BucketDeployment's role; version manifests are never deleted nor replaced (their writer
        sends If-None-Match)."""
        tag = writer_tag_key(config.project)
        bucket = self.artifact_bucket
        only_writers(
            bucket,
            sid="PipelineOutputsOnlyByJobRoles",
            prefix=PIPELINE_OUTPUTS_PREFIX,
            writer=(tag, (PIPELINE_OUTPUTS_WRITER, MODEL_WRITER)),
            allowed=keepers,
        )
        write_once(
            bucket,
            sid="Models",
            protected=[MODELS_PATTERN],
            written_under=pipeline_output_prefix(config.pipeline_name, TRAINING_OUTPUTS),
            writer=(tag, (MODEL_WRITER,)),
            allowed=keepers,
        )
        write_once(
            bucket,
            sid="StepCode",
            protected=[f"{CODE_PREFIX}*"],
            written_under=CODE_PREFIX,
            writer=(tag, (STEP_CODE_WRITER,)),
            allowed=keepers,
        )
        write_once(
            bucket,
            sid="DatasetManifests",
            protected=[f"{MANIFEST_PREFIX}*"],
            written_under=MANIFEST_PREFIX,
            writer=None,
            allowed=keepers,
            conditional_writes=True,
        )

    def _topic(self, config: EnvironmentConfig, removal: RemovalPolicy) -> sns.ITopic:
        """The notifications topic; only this environment's rules and alarms may publish as
        services. Other stacks get a reference, so CDK's rule targets cannot add statements
        (theirs would not name their source)."""
        topic = sns.Topic(
            self,
            "NotificationTopic",
            display_name=f"{config.prefix} MLOps notifications",
            master_key=self.operations_key,
            enforce_ssl=True,
        )
        topic.apply_removal_policy(removal)
        _pin(topic, "NotificationTopic")
        for email in config.notification_emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        # Our rules and alarms are named after this environment's stacks (CloudFormation names
        # them <stack name>-<id>-<suffix>) or, for the retrain alarms, <prefix>-retrain-*.
        for sid, service, source in (
            ("RulesOfThisEnvironmentPublish", "events", f"rule/{config.prefix}-*"),
            ("AlarmsOfThisEnvironmentPublish", "cloudwatch", f"alarm:{config.prefix}-*"),
        ):
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[iam.ServicePrincipal(f"{service}.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions={
                        "ArnLike": {
                            "aws:SourceArn": (
                                f"arn:{self.partition}:{service}:{self.region}:{self.account}:"
                                f"{source}"
                            )
                        },
                        "StringEquals": {"aws:SourceAccount": self.account},
                    },
                )
            )
        return sns.Topic.from_topic_arn(self, "NotificationTopicForPublishers", topic.topic_arn)

    def _ledger(self, logical_id: str, removal: RemovalPolicy, retain: bool) -> dynamodb.Table:
        """On-demand, KMS, point-in-time recovery; key schema owned by lambdas/start_training."""
        table = dynamodb.Table(
            self,
            logical_id,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.data_key,
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
