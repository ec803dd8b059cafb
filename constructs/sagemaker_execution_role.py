"""The role SageMaker Pipelines and their jobs run as, scoped to one environment.

It registers models but can never approve one: explicit denies (which no other policy attached
to the role can override) refuse `CreateModelPackage` with any `ModelApprovalStatus` other than
PendingManualApproval or with a `ModelLifeCycle` stage (the Service Authorization Reference
lists `sagemaker:ModelApprovalStatus`, `sagemaker:ModelLifeCycle:Stage` and
`sagemaker:ModelLifeCycle:StageStatus` as request keys of CreateModelPackage), and every
`UpdateModelPackage` (approve, reject, promote, edit metadata such as the artifact digest).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.nag import (
    KMS_ACTIONS,
    S3_READ_ACTIONS,
    S3_WRITE_ACTIONS,
    acknowledge,
    actions,
    object_wildcard,
)

# SageMaker names the jobs a pipeline starts itself (pipelines-<execution id>-<step>-<hash>).
JOB_RESOURCE_TYPES = ("processing-job", "training-job", "model", "transform-job")
# The only approval status the loop may register with (pipeline_code.definition.contract).
PENDING_MANUAL_APPROVAL = "PendingManualApproval"


def deny_self_approval(role: iam.Role) -> None:
    """Explicit denies: packages only as PendingManualApproval, without a life-cycle stage,
    and never updated (module docstring)."""
    role.add_to_policy(
        iam.PolicyStatement(
            sid="RegisterOnlyPendingManualApproval",
            effect=iam.Effect.DENY,
            actions=["sagemaker:CreateModelPackage"],
            resources=["*"],
            # IfExists: a request that omits the status is denied too (the condition holds when
            # the key is absent), so the Register step must state PendingManualApproval.
            conditions={
                "StringNotEqualsIfExists": {
                    "sagemaker:ModelApprovalStatus": PENDING_MANUAL_APPROVAL
                }
            },
        )
    )
    for key in ("sagemaker:ModelLifeCycle:Stage", "sagemaker:ModelLifeCycle:StageStatus"):
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterWithoutLifeCycle" + key.rsplit(":", 1)[-1],
                effect=iam.Effect.DENY,
                actions=["sagemaker:CreateModelPackage"],
                resources=["*"],
                conditions={"Null": {key: "false"}},  # denied whenever the request sets it
            )
        )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="NeverApproveRejectPromoteOrEdit",
            effect=iam.Effect.DENY,
            actions=["sagemaker:UpdateModelPackage"],
            resources=["*"],
        )
    )


def grant_volume_encryption(key: kms.IKey, role: iam.IRole) -> None:
    """SageMaker attaches KMS-encrypted volumes to a job through a grant made as its role."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:CreateGrant", "kms:DescribeKey"],
            resources=[key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
    )


class SageMakerExecutionRole(Construct):
    """Trusted by SageMaker; may read `read_prefixes` of `data_bucket`, read/write
    `artifact_bucket`, use `encryption_key`, run jobs, register models only into
    `model_package_group_name` and only as PendingManualApproval (never approve, promote or
    update a package: explicit denies), and publish metrics to SageMaker's namespaces and
    `metric_namespaces`. Pass itself to SageMaker (jobs run as the same role).
    Exposes `role`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        read_prefixes: list[str],
        artifact_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        model_package_group_name: str,
        metric_namespaces: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker pipeline and job role of {stack.stack_name}",
        )
        role = self.role
        for prefix in read_prefixes:
            data_bucket.grant_read(role, f"{prefix}*")
        artifact_bucket.grant_read_write(role)
        encryption_key.grant_encrypt_decrypt(role)
        grant_volume_encryption(encryption_key, role)

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        role.add_to_policy(
            iam.PolicyStatement(
                sid="RunPipelineJobs",
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:AddTags",
                ],
                resources=[arn(kind, "*") for kind in JOB_RESOURCE_TYPES],
            )
        )
        group = model_package_group_name
        packages = arn("model-package", f"{group}/*")
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterAndReadModelsOfThisGroupOnly",
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:AddTags",
                ],
                resources=[arn("model-package-group", group), packages],
            )
        )
        deny_self_approval(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassOnlyItself",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/*",
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
                resources=[log_groups],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", *metric_namespaces]}
                },
            )
        )
        images = f"arn:{stack.partition}:ecr:{stack.region}:*:repository/sagemaker-*"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PullSageMakerFrameworkImages",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[images],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            )
        )
        jobs = [arn(kind, "*") for kind in JOB_RESOURCE_TYPES]
        acknowledge(
            role,
            *actions(*S3_READ_ACTIONS, *S3_WRITE_ACTIONS, *KMS_ACTIONS),
            *[object_wildcard(role, data_bucket, prefix) for prefix in read_prefixes],
            object_wildcard(role, artifact_bucket),
            reason="CDK grants on this environment's buckets and key only: read the landing "
            "and ground-truth prefixes, read/write pipeline artifacts.",
        )
        acknowledge(
            role,
            *[f"AwsSolutions-IAM5[Resource::{r}]" for r in (*jobs, packages, log_groups, images)],
            reason="SageMaker names the jobs of each execution itself; model packages are "
            "versions of this environment's group only; logs and images are SageMaker's own.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            reason="Only for actions without resource-level permissions: "
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData limited by a namespace "
            "condition to SageMaker's and ours.",
        )
