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
from constructs.bucket_access import grant_object_read, grant_object_write
from constructs.ecr_images import grant_image_pulls
from constructs.key_use import grant_volume_encryption
from constructs.nag import acknowledge, object_wildcard
from constructs.private_network import VpcPlacement

# The pipelines run processing and training jobs only (registration creates no model), and
# SageMaker names each one itself: pipelines-<execution id>-<step>-<suffix>.
JOB_RESOURCE_TYPES = ("processing-job", "training-job")
PIPELINE_JOBS = "pipelines-*"
# Where every job of the pipelines writes (s3://<artifact bucket>/pipelines/<pipeline>/...).
OUTPUTS_PREFIX = "pipelines/"


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


class SageMakerExecutionRole(Construct):
    """Trusted by SageMaker; may read `read_prefixes` of `data_bucket`, read objects of
    `artifact_bucket` and create (never delete) them under `pipelines/`, encrypt job volumes
    with `encryption_key`, run the pipelines' jobs, pull `image_uris` (SageMaker's images),
    register models only into `model_package_group_name` and only as PendingManualApproval
    (never approve, promote or update a package: explicit denies), and publish metrics to
    SageMaker's namespaces and `metric_namespaces`. Pass itself to SageMaker (jobs run as the
    same role). Each bucket's key is used through S3 only. With `vpc` (default None), jobs
    run in its subnets and security groups, and explicit denies refuse any other
    (`sagemaker:VpcSubnets`, `sagemaker:VpcSecurityGroupIds`). Exposes `role`.
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
        image_uris: list[str],
        vpc: VpcPlacement | None = None,
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
        _grant_storage(role, data_bucket, read_prefixes, artifact_bucket, encryption_key)

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
                    "sagemaker:AddTags",
                ],
                resources=[arn(kind, PIPELINE_JOBS) for kind in JOB_RESOURCE_TYPES],
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
        if vpc is not None:
            vpc.grant_sagemaker_interfaces(role)
            # a job started with this role runs in the environment's subnets, or not at all
            vpc.deny_outside(
                role,
                [f"sagemaker:Create{kind.title().replace('-', '')}" for kind in JOB_RESOURCE_TYPES],
            )
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
        grant_image_pulls(role, image_uris)
        jobs = [arn(kind, PIPELINE_JOBS) for kind in JOB_RESOURCE_TYPES]
        acknowledge(
            role,
            *[object_wildcard(role, data_bucket, prefix) for prefix in read_prefixes],
            object_wildcard(role, artifact_bucket),
            object_wildcard(role, artifact_bucket, OUTPUTS_PREFIX),
            reason="Reads objects under the landing and ground-truth prefixes of this "
            "environment's data bucket and of its artifact bucket (step code, manifests, "
            "champion models), creates (never deletes) job outputs under pipelines/, where the "
            "bucket policy admits this role alone and keeps models write-once; keys are used "
            "through S3 only.",
        )
        acknowledge(
            role,
            *[f"AwsSolutions-IAM5[Resource::{r}]" for r in jobs],
            reason="SageMaker Pipelines names the jobs of each execution itself (pipelines-*).",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{packages}]",
            reason="Versions of this environment's model package group only, created at run "
            "time; the role can neither approve nor promote them (UpdateModelPackage is "
            "explicitly denied).",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{log_groups}]",
            reason="SageMaker's own job log groups (/aws/sagemaker/*), named by SageMaker.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            reason="Only for actions without resource-level permissions: "
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData limited by a namespace "
            "condition to SageMaker's and ours.",
        )


def _grant_storage(
    role: iam.Role,
    data_bucket: s3.IBucket,
    read_prefixes: list[str],
    artifact_bucket: s3.IBucket,
    volume_key: kms.IKey,
) -> None:
    """Job inputs from the data bucket's `read_prefixes`; code and inputs from the artifact
    bucket, outputs under its `pipelines/` (no delete: models are write-once); job volumes."""
    for prefix in read_prefixes:
        grant_object_read(data_bucket, role, prefix, list_prefix_only=False)
    grant_object_read(artifact_bucket, role, list_prefix_only=False)
    grant_object_write(artifact_bucket, role, OUTPUTS_PREFIX)
    grant_volume_encryption(volume_key, role)
