"""SageMaker's account-wide job log groups, owned by a stack (security.own_job_log_groups)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.nag import IMPORTED_KEY_REASON, acknowledge_guard

JOB_LOG_GROUPS = {
    "ProcessingJobLogs": "/aws/sagemaker/ProcessingJobs",
    "TrainingJobLogs": "/aws/sagemaker/TrainingJobs",
}


def own_job_log_groups(scope: Construct, encryption_key: kms.IKey, retain: bool) -> None:
    """SageMaker's job log groups in `scope` (construct ids as JOB_LOG_GROUPS' keys, so the
    logical ids are the stack's own), kept a year, encrypted with `encryption_key`, retained
    with the stack's data when `retain`."""
    for construct_id, name in JOB_LOG_GROUPS.items():
        group = logs.LogGroup(
            scope,
            construct_id,
            log_group_name=name,
            encryption_key=encryption_key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        acknowledge_guard(group, "cloudwatch_log_group_encrypted_check", reason=IMPORTED_KEY_REASON)
