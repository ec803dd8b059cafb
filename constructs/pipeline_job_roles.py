"""The roles the pipelines' jobs run as: one for processing and check jobs, one for training.

A served model (`pipelines/<training pipeline>/training/.../model.tar.gz`, the package's
ModelDataUrl) is re-read by SageMaker whenever the endpoint scales out, without our SHA-256
check. So exactly one principal may write there: the training job role, whose only job is the
network-isolated Train step (the pipelines' role refuses any training job without isolation),
so no code of ours ever holds its credentials: SageMaker alone uses them, to fetch the inputs
and upload the model and checkpoints. Every processing job (Prepare, the Model Monitor
Baseline, Evaluate, and the eval-only pipeline's Validate and Evaluate) runs as the processing
job role, which reads artifacts and writes only under its own output prefixes, never a model:
the worst code running in Evaluate (the one job with network access) can do is write a wrong
report, which the gate and the registry's digests bound. The artifact bucket policy repeats the
rule (constructs/bucket_policies.py, `only_writers`), so a grant added later cannot undo it.

Neither role may call a SageMaker API but DescribeModelPackage (the processing role: Evaluate
resolves the champion or the package to score), pass a role or start a job: those are the
pipelines' role's (constructs/sagemaker_execution_role.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.bucket_access import grant_object_read, grant_object_write
from constructs.ecr_images import grant_image_pulls
from constructs.key_use import grant_volume_encryption
from constructs.nag import acknowledge, object_wildcard
from constructs.private_network import VpcPlacement

SAGEMAKER_NAMESPACES = "/aws/sagemaker/*"


def _job_role(scope: Construct, construct_id: str, description: str) -> iam.Role:
    return iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description=description,
    )


def _grant_job_basics(
    role: iam.Role,
    *,
    log_group: str,
    metric_namespaces: Sequence[str],
    image_uris: Sequence[str],
    volume_key: kms.IKey,
    vpc: VpcPlacement | None,
) -> str:
    """Logs to SageMaker's `log_group` (e.g. /aws/sagemaker/ProcessingJobs), metrics to
    SageMaker's namespaces and `metric_namespaces`, pulls of `image_uris`, volumes encrypted
    with `volume_key`, and in `vpc` the network interfaces; returns the log group ARN pattern."""
    stack = Stack.of(role)
    logs = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{log_group}:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="JobLogs",
            actions=[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            resources=[logs],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="JobMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={
                "StringLike": {"cloudwatch:namespace": [SAGEMAKER_NAMESPACES, *metric_namespaces]}
            },
        )
    )
    grant_image_pulls(role, image_uris)
    grant_volume_encryption(volume_key, role)
    if vpc is not None:
        vpc.grant_sagemaker_interfaces(role)
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::{logs}]",
        reason=f"SageMaker's own job log group ({log_group}), its streams named by SageMaker.",
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        reason="Only for actions without resource-level permissions: "
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData limited by a namespace "
        "condition to SageMaker's and ours.",
    )
    return logs


class ProcessingJobRole(Construct):
    """Trusted by SageMaker; what the pipelines' processing and check jobs run as. Reads
    `read_prefixes` of `data_bucket` and every object of `artifact_bucket` (step code,
    manifests, job outputs, models: the champion included), creates (never deletes) objects only
    under `output_prefixes` of `artifact_bucket` (never under a model prefix: the bucket policy
    refuses it too), describes the packages of `model_package_group_name`, logs to
    /aws/sagemaker/ProcessingJobs, publishes metrics to SageMaker's namespaces and
    `metric_namespaces`, pulls `image_uris`, encrypts volumes with `encryption_key`, and in
    `vpc` (default None) places its network interfaces. Each bucket's key through S3 only.
    Exposes `role`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        read_prefixes: Sequence[str],
        artifact_bucket: s3.IBucket,
        output_prefixes: Sequence[str],
        encryption_key: kms.IKey,
        model_package_group_name: str,
        metric_namespaces: Sequence[str],
        image_uris: Sequence[str],
        vpc: VpcPlacement | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not output_prefixes:
            raise ValueError("name the prefixes the processing jobs write: none given")
        stack = Stack.of(self)
        self.role = role = _job_role(
            self, "Role", f"Processing jobs of the pipelines of {stack.stack_name}"
        )
        for prefix in read_prefixes:
            grant_object_read(data_bucket, role, prefix, list_prefix_only=False)
        grant_object_read(artifact_bucket, role, list_prefix_only=False)
        for prefix in output_prefixes:
            grant_object_write(artifact_bucket, role, prefix)
        packages = stack.format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{model_package_group_name}/*",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeModelsOfThisGroupOnly",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[packages],
            )
        )
        _grant_job_basics(
            role,
            log_group="/aws/sagemaker/ProcessingJobs",
            metric_namespaces=metric_namespaces,
            image_uris=image_uris,
            volume_key=encryption_key,
            vpc=vpc,
        )
        acknowledge(
            role,
            *[object_wildcard(role, data_bucket, prefix) for prefix in read_prefixes],
            object_wildcard(role, artifact_bucket),
            *[object_wildcard(role, artifact_bucket, prefix) for prefix in output_prefixes],
            reason="Reads the landed and labelled data and the artifact bucket (step code, "
            "manifests, job outputs, the champion's model) of this environment, creates "
            "(never deletes) only its jobs' outputs, per execution and report; keys are used "
            "through S3 only.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{packages}]",
            reason="Evaluate describes the champion (or the package it scores), a version of "
            "this environment's model package group created at run time; read only.",
        )


class TrainingJobRole(Construct):
    """Trusted by SageMaker; what the Train step's (network-isolated) training jobs run as, and
    the one role the artifact bucket admits under `model_prefix`. Reads `read_prefixes` of
    `artifact_bucket` (step code, Prepare's splits) and creates (never deletes) the models
    under `model_prefix`; with `checkpoint_prefix` (spot training; default None) reads and
    writes its checkpoints there. Logs to /aws/sagemaker/TrainingJobs, publishes metrics only to
    SageMaker's namespaces, pulls `image_uris`, encrypts volumes with `encryption_key`, and in
    `vpc` (default None) places its network interfaces. The key through S3 only. No SageMaker
    API. Exposes `role`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifact_bucket: s3.IBucket,
        read_prefixes: Sequence[str],
        model_prefix: str,
        encryption_key: kms.IKey,
        image_uris: Sequence[str],
        checkpoint_prefix: str | None = None,
        vpc: VpcPlacement | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = role = _job_role(
            self, "Role", f"Training jobs of {stack.stack_name}: the one writer of models"
        )
        reads = [*read_prefixes, *([checkpoint_prefix] if checkpoint_prefix else [])]
        writes = [model_prefix, *([checkpoint_prefix] if checkpoint_prefix else [])]
        for prefix in reads:
            grant_object_read(artifact_bucket, role, prefix, list_prefix_only=False)
        for prefix in writes:
            grant_object_write(artifact_bucket, role, prefix)
        _grant_job_basics(
            role,
            log_group="/aws/sagemaker/TrainingJobs",
            metric_namespaces=(),
            image_uris=image_uris,
            volume_key=encryption_key,
            vpc=vpc,
        )
        acknowledge(
            role,
            *[object_wildcard(role, artifact_bucket, p) for p in sorted({*reads, *writes})],
            reason="Reads the step code and Prepare's splits, writes the models (and spot "
            "checkpoints) of this environment's training pipeline, named by SageMaker per job; "
            "never deletes; the key is used through S3 only.",
        )
