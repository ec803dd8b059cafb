"""The role SageMaker Pipelines runs the pipelines as (each pipeline's RoleArn), scoped to one
environment.

It is not the role of any job. SageMaker Pipelines uses it to start the steps' jobs, register
models and read property files; every job runs as a job role of its own
(constructs/pipeline_job_roles.py), which this role alone passes, and only to SageMaker. Two
roles, not one shared with the processing jobs, because a role that can start jobs and pass
the training job role must run no code: Evaluate runs our code with network access, and as
this role it could start a training job as the training job role (the one writer of models)
and so replace a served model, or register packages. No code runs as this role.

It registers models but can never approve one: explicit denies (which no other policy attached
to the role can override) refuse `CreateModelPackage` with any `ModelApprovalStatus` other than
PendingManualApproval or with a `ModelLifeCycle` stage (the Service Authorization Reference
lists `sagemaker:ModelApprovalStatus`, `sagemaker:ModelLifeCycle:Stage` and
`sagemaker:ModelLifeCycle:StageStatus` as request keys of CreateModelPackage), and every
`UpdateModelPackage` (approve, reject, promote, edit metadata such as the artifact digest). An
explicit deny also refuses any training job without network isolation
(`sagemaker:NetworkIsolation`): the training job role's credentials never reach a container.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.bucket_access import grant_object_read
from constructs.nag import acknowledge, object_wildcard
from constructs.private_network import VpcPlacement

# The pipelines run processing and training jobs only (registration creates no model), and
# SageMaker names each one itself: pipelines-<execution id>-<step>-<suffix>.
JOB_RESOURCE_TYPES = ("processing-job", "training-job")
PIPELINE_JOBS = "pipelines-*"
# Where every job of the pipelines writes (s3://<artifact bucket>/pipelines/<pipeline>/...).
OUTPUTS_PREFIX = "pipelines/"
# Job kinds as the Create action names them (CreateProcessingJob, CreateTrainingJob).
CREATE_JOB_ACTIONS = tuple(
    f"sagemaker:Create{kind.title().replace('-', '')}" for kind in JOB_RESOURCE_TYPES
)


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


def deny_training_without_network_isolation(role: iam.Role) -> None:
    """Explicit deny: training jobs only with network isolation (`...IfExists`: a request that
    omits EnableNetworkIsolation is refused too). Isolated, the container gets no credentials
    of its role and no network: only SageMaker writes its model and checkpoints."""
    role.add_to_policy(
        iam.PolicyStatement(
            sid="TrainOnlyNetworkIsolated",
            effect=iam.Effect.DENY,
            actions=["sagemaker:CreateTrainingJob"],
            resources=["*"],
            conditions={"BoolIfExists": {"sagemaker:NetworkIsolation": "false"}},
        )
    )


@dataclass(frozen=True)
class ScoringJobs:
    """What the scoring pipeline's transform jobs must request: `output_key` encrypts the
    predictions (the data bucket's key), `volume_key` the instances' volumes (the key the
    definitions use for volumes), on `instance_type` (`serving.batch.instance_type`)."""

    output_key: kms.IKey
    volume_key: kms.IKey
    instance_type: str


class SageMakerPipelinesRole(Construct):
    """Trusted by SageMaker; runs the pipelines (module docstring). May start, describe, stop
    and tag the pipelines' processing and training jobs (`pipelines-*`; training jobs only
    network-isolated), pass `job_roles` (and nothing else) to SageMaker, register models only
    into `model_package_group_name` and only as PendingManualApproval (never approve, promote or
    update a package: explicit denies), describe that group and its packages (the Register
    step's properties are DescribeModelPackage's answer), and read the steps' property files
    (JsonGet) under `pipelines/` of `artifact_bucket` (its key through S3 only). No S3 write,
    no logs, no images, no volume keys: those belong to the job roles. With `vpc` (default
    None), explicit denies refuse any job outside its subnets and security groups
    (`sagemaker:VpcSubnets`, `sagemaker:VpcSecurityGroupIds`). With `tuning` (default False)
    it also runs the Train step's tuning job under the same conditions. With `scoring` (batch
    serving; default None) it also creates network-isolated models (`pipelines-*`: the scoring
    pipeline's Model step, from a package of the group) and runs transform jobs of models so
    named, only with `scoring`'s output and volume keys and instance type. Exposes `role`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifact_bucket: s3.IBucket,
        model_package_group_name: str,
        job_roles: Sequence[iam.IRole],
        vpc: VpcPlacement | None = None,
        scoring: ScoringJobs | None = None,
        tuning: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        if not job_roles:
            raise ValueError("name the job roles the pipelines pass: none given")
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker Pipelines role of {stack.stack_name} (runs no job)",
        )
        role = self.role
        # property files (Evaluate's evaluation.json), read by the Pipelines service
        grant_object_read(artifact_bucket, role, OUTPUTS_PREFIX)

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        jobs = [arn(kind, PIPELINE_JOBS) for kind in JOB_RESOURCE_TYPES]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RunPipelineJobs",
                actions=[
                    *CREATE_JOB_ACTIONS,
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=jobs,
            )
        )
        deny_training_without_network_isolation(role)
        tuning_actions = self._tuning(arn) if tuning else []
        if scoring is not None:
            jobs += self._scoring(arn, scoring)
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
            # a job started with this role runs in the environment's subnets, or not at all
            scoring_models = ["sagemaker:CreateModel"] if scoring is not None else []
            vpc.deny_outside(role, [*CREATE_JOB_ACTIONS, *scoring_models, *tuning_actions])
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassOnlyTheJobRoles",
                actions=["iam:PassRole"],
                resources=[job_role.role_arn for job_role in job_roles],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        acknowledge(
            role,
            object_wildcard(role, artifact_bucket, OUTPUTS_PREFIX),
            reason="Reads the steps' property files (Evaluate's evaluation.json, for the gate) "
            "under pipelines/ of this environment's artifact bucket; writes nothing.",
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

    def _tuning(self, arn: Callable[[str, str], str]) -> list[str]:
        """`pipeline.tuning`: the Train step's tuning job (named by SageMaker Pipelines), only
        network-isolated, like the training jobs it runs; returns the create action (the VPC
        denies cover it too). The Service Authorization Reference lists the same request keys
        for CreateHyperParameterTuningJob as for CreateTrainingJob (sagemaker:NetworkIsolation,
        VpcSubnets, VpcSecurityGroupIds, VolumeKmsKey, OutputKmsKey, InstanceTypes,
        InterContainerTrafficEncryption, MaxRuntimeInSeconds, FileSystem*) and iam:PassRole
        and sagemaker:AddTags as its dependent actions."""
        create = "sagemaker:CreateHyperParameterTuningJob"
        tuning_jobs = arn("hyper-parameter-tuning-job", PIPELINE_JOBS)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RunPipelineTuningJobs",
                actions=[
                    create,
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                    "sagemaker:AddTags",
                ],
                resources=[tuning_jobs],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="TuneOnlyNetworkIsolated",
                effect=iam.Effect.DENY,
                actions=[create],
                resources=["*"],
                conditions={"BoolIfExists": {"sagemaker:NetworkIsolation": "false"}},
            )
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{tuning_jobs}]",
            reason="SageMaker Pipelines names the tuning job of each execution itself "
            "(pipelines-*).",
        )
        return [create]

    def _scoring(self, arn: Callable[[str, str], str], scoring: ScoringJobs) -> list[str]:
        """Batch serving: the Model step's network-isolated model and the Score step's
        transform job, both named by SageMaker Pipelines; returns their ARN patterns. A
        transform job only of those models, with the predictions and volumes encrypted by the
        given keys and on the configured instance type (the Service Authorization Reference
        lists sagemaker:ModelArn, OutputKmsKey, VolumeKmsKey and InstanceTypes as request keys
        of CreateTransformJob): a request that omits a key or names another is refused."""
        models, transforms = arn("model", PIPELINE_JOBS), arn("transform-job", PIPELINE_JOBS)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="CreateOnlyNetworkIsolatedScoringModels",
                actions=["sagemaker:CreateModel"],
                resources=[models],
                conditions={"Bool": {"sagemaker:NetworkIsolation": "true"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ScoreOnlyWithThoseModels",
                actions=["sagemaker:CreateTransformJob"],
                resources=[transforms],
                conditions={
                    "ArnLike": {"sagemaker:ModelArn": models},
                    # ARN operators fail on an absent key: unencrypted requests are refused
                    "ArnEquals": {
                        "sagemaker:OutputKmsKey": scoring.output_key.key_arn,
                        "sagemaker:VolumeKmsKey": scoring.volume_key.key_arn,
                    },
                    "ForAllValues:StringEquals": {
                        "sagemaker:InstanceTypes": [scoring.instance_type]
                    },
                    # ForAllValues holds for an absent key: require it
                    "Null": {"sagemaker:InstanceTypes": "false"},
                },
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="FollowScoringJobs",
                actions=[
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob",
                    "sagemaker:AddTags",
                ],
                resources=[transforms],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeAndTagScoringModels",
                actions=["sagemaker:DescribeModel", "sagemaker:AddTags"],
                resources=[models],
            )
        )
        return [models, transforms]
