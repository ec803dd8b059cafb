"""What both drift engines' jobs share (Evidently drift check, Model Monitor data-quality job):
their role and the notification of a failed job."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.bucket_access import grant_object_read, grant_object_write
from constructs.key_use import grant_volume_encryption
from constructs.nag import acknowledge, object_wildcard
from constructs.sagemaker_execution_role import OUTPUTS_PREFIX

MONITORING_PREFIX = "monitoring/"


def monitoring_job_role(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    data_bucket: s3.IBucket,
    capture_prefix: str | None,
    artifact_bucket: s3.IBucket,
    encryption_key: kms.IKey,
    metrics_namespace: str,
    pulls_images: bool = True,
) -> iam.Role:
    """A SageMaker job role that reads `capture_prefix` of `data_bucket` (None: nothing there,
    batch serving's checks read the scoring runs' rows, pipeline outputs) and the registered
    baselines (pipeline outputs) in `artifact_bucket`, writes reports under `monitoring/`
    there (each bucket's key through S3 only), encrypts its volume with `encryption_key`, logs
    to SageMaker's processing-job log group and publishes metrics only to
    `metrics_namespace`. `pulls_images`: the role may get an ECR token (the caller grants the
    pull on the job image's repository)."""
    stack = Stack.of(scope)
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description=description,
    )
    if capture_prefix is not None:
        grant_object_read(data_bucket, role, capture_prefix, list_prefix_only=False)
    grant_object_read(artifact_bucket, role, OUTPUTS_PREFIX, list_prefix_only=False)
    grant_object_write(artifact_bucket, role, MONITORING_PREFIX)
    grant_volume_encryption(encryption_key, role)
    job_logs = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name="/aws/sagemaker/ProcessingJobs:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[job_logs],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": metrics_namespace}},
        )
    )
    star = "cloudwatch:PutMetricData restricted by condition to the job's namespace"
    if pulls_images:
        role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        star = f"ecr:GetAuthorizationToken (no resource-level permissions) and {star}"
    acknowledge(role, "AwsSolutions-IAM5[Resource::*]", reason=f"Only {star}.")
    acknowledge(
        role,
        *([] if capture_prefix is None else [object_wildcard(role, data_bucket, capture_prefix)]),
        object_wildcard(role, artifact_bucket, OUTPUTS_PREFIX),
        object_wildcard(role, artifact_bucket, MONITORING_PREFIX),
        f"AwsSolutions-IAM5[Resource::{job_logs}]",
        reason="Reads captured traffic and registered baselines (pipeline outputs), writes "
        "reports under monitoring/, in this environment's buckets (keys through S3 only); "
        "logs to SageMaker's job log group.",
    )
    return role


def notify_failed_jobs(
    scope: Construct,
    construct_id: str,
    *,
    what: str,
    endpoint_name: str,
    match: dict[str, Any],
    topic: sns.ITopic,
) -> events.Rule:
    """Processing jobs that fail and match `match` (more `detail` fields) notify `topic` with
    "<what> <job name> of <endpoint> failed" and how to read the reason. The reason itself
    stays out of the message: a job's failure reason may quote the data it read, and the
    topic's email subscriptions are plain text outside the account."""
    field = events.EventField.from_path
    return events.Rule(
        scope,
        construct_id,
        description=f"{what} of {endpoint_name} failed",
        event_pattern=events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=["SageMaker Processing Job State Change"],
            detail={"ProcessingJobStatus": ["Failed"], **match},
        ),
        targets=[
            targets.SnsTopic(
                topic,
                message=events.RuleTargetInput.from_text(
                    f"{what} {field('$.detail.ProcessingJobName')} of {endpoint_name} failed. "
                    "Its failure reason: aws sagemaker describe-processing-job "
                    f"--processing-job-name {field('$.detail.ProcessingJobName')} "
                    "--query FailureReason"
                ),
            )
        ],
    )
