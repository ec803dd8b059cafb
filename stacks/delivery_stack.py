"""The delivery pipeline (`make synth ENV=delivery`): CDK Pipelines deploys the app itself.

One CodePipeline in the tooling account (cdk.json `delivery`): the source (GitHub through a
CodeConnections connection, or CodeCommit), a synth step that runs the project's own `make
test` and `make synth ENV=delivery` on a clean CodeBuild machine, the pipeline's self-update,
then one stage per environment in the configured order. Each stage holds exactly the stacks
`make deploy ENV=<name>` deploys (same names, same templates), deployed into the environment's
account through the CDK bootstrap's roles there (`cdk bootstrap --trust <tooling account>`).
Stages that ask for an approval first run `cdk diff` against their account (through its
bootstrap lookup role, read-only) so the reviewer sees what will change, then wait for a
manual approval. Assets, the drift image included, are built and published by the pipeline,
so no laptop needs Docker.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import pipelines

from constructs import Construct
from constructs.bucket_policies import root_user
from constructs.environment_keys import cloudwatch_logs_use, grants_only_for_aws_resources
from constructs.nag import (
    S3_READ_ACTIONS,
    S3_WRITE_ACTIONS,
    acknowledge,
    acknowledge_guard,
    actions,
    object_wildcard,
)
from constructs.policy_checks import skip_checkov
from constructs.secure_bucket import SecureBucket, access_log_bucket
from mlops_config import EnvironmentConfig
from mlops_config.delivery import DeliveryConfig
from stacks.app_builder import build_environment

# The CDK bootstrap's default qualifier: the roles `cdk bootstrap` creates in every account.
BOOTSTRAP_QUALIFIER = "hnb659fds"
# CodeBuild's Ubuntu image with the Python and Node versions the Makefile expects.
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
RUNTIMES = {"python": "3.11", "nodejs": "20"}


class EnvironmentStage(cdk.Stage):
    """One environment's stacks, as `make deploy ENV=<name>` builds them."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=config.account, region=config.region),
        )
        self.config = config
        self.stacks = build_environment(self, config)


def lookup_role_arn(account: str, region: str) -> str:
    """The read-only role `cdk bootstrap` creates for look-ups and `cdk diff`."""
    return f"arn:aws:iam::{account}:role/cdk-{BOOTSTRAP_QUALIFIER}-lookup-role-{account}-{region}"


def _build_defaults(
    compute: codebuild.ComputeType, log_group: logs.ILogGroup
) -> pipelines.CodeBuildOptions:
    return pipelines.CodeBuildOptions(
        build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE, compute_type=compute),
        logging=codebuild.LoggingOptions(
            cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=log_group)
        ),
        partial_build_spec=codebuild.BuildSpec.from_object(
            {"phases": {"install": {"runtime-versions": RUNTIMES}}}
        ),
    )


class DeliveryStack(cdk.Stack):
    """Exposes `pipeline` (pipelines.CodePipeline) and `stages` (name -> EnvironmentStage)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        delivery: DeliveryConfig,
        environments: list[EnvironmentConfig],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.key = kms.Key(
            self,
            "ArtifactKey",
            description=f"{construct_id}: pipeline artifacts and build logs",
            enable_key_rotation=True,
        )
        self.key.add_to_resource_policy(grants_only_for_aws_resources())
        self.key.add_to_resource_policy(cloudwatch_logs_use(self))
        access_logs = access_log_bucket(
            self,
            "AccessLogBucket",
            retain=True,
            noncurrent_version_expiration=cdk.Duration.days(30),
            break_glass=[root_user(self)],
        )
        self.artifact_bucket = SecureBucket(
            self,
            "Artifacts",
            encryption_key=self.key,
            access_logs=access_logs,
            access_logs_prefix="pipeline-artifacts/",
            retain=True,
            noncurrent_version_expiration=cdk.Duration.days(30),
            break_glass=[root_user(self)],
        ).bucket
        for bucket in (access_logs, self.artifact_bucket):
            acknowledge_guard(
                bucket,
                "s3_bucket_object_lock_enabled_check",
                "s3_event_notifications_enabled_check",
                reason="Build outputs and their access logs, read on demand by the pipeline: "
                "nothing consumes their events, and the bucket policy denies deleting versions "
                "(Object Lock would also stop the lifecycle expiry).",
            )
        self.build_logs = logs.LogGroup(
            self,
            "BuildLogs",
            encryption_key=self.key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        source = self._source(delivery)
        synth = pipelines.ShellStep(
            "Synth",
            input=source,
            # The same commands a developer runs: the whole suite, then every stage's templates.
            commands=["make test", "make synth ENV=delivery"],
            primary_output_directory="cdk.out",
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=construct_id,
            pipeline_type=codepipeline.PipelineType.V2,
            synth=synth,
            # Stages deploy into other accounts: the artifact bucket's key admits their roles.
            artifact_bucket=self.artifact_bucket,
            synth_code_build_defaults=_build_defaults(codebuild.ComputeType.LARGE, self.build_logs),
            code_build_defaults=_build_defaults(codebuild.ComputeType.SMALL, self.build_logs),
            publish_assets_in_parallel=False,
        )
        self.stages: dict[str, EnvironmentStage] = {}
        for config in environments:
            stage = EnvironmentStage(self, config.name, config=config)
            self.stages[config.name] = stage
            pre: list[pipelines.Step] = []
            if config.name in delivery.approval_before:
                diff, approval = self._diff(stage, synth, source), self._approval(config)
                approval.add_step_dependency(diff)  # the reviewer reads the diff first
                pre = [diff, approval]
            self.pipeline.add_stage(stage, pre=pre)
        self.pipeline.build_pipeline()
        self._acknowledge_generated_roles()
        acknowledge_guard(
            self.pipeline,
            "codebuild_project_environment_privileged_check",
            reason="Only the Docker asset project runs privileged: building the drift image "
            "needs a Docker daemon, so no deploying laptop needs Docker (CDK Pipelines' own).",
        )

    def _acknowledge_generated_roles(self) -> None:
        """The wildcards in CDK Pipelines' own roles, finding by finding (cdk-nag prints each
        CodeBuild project's log and report groups with its logical id)."""
        findings = [
            *actions(*S3_READ_ACTIONS, *S3_WRITE_ACTIONS, "kms:GenerateDataKey*", "kms:ReEncrypt*"),
            object_wildcard(self.pipeline, self.pipeline.pipeline.artifact_bucket),
            "AwsSolutions-IAM5[Resource::*]",
            f"AwsSolutions-IAM5[Resource::arn:*:iam::{self.account}:role/*]",
        ]
        groups = f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/codebuild/"
        reports = f"arn:aws:codebuild:{self.region}:{self.account}:report-group/"
        findings += [
            f"AwsSolutions-IAM5[Resource::{groups}*]",
            f"AwsSolutions-IAM5[Resource::{reports}*]",
        ]
        for node in self.pipeline.node.find_all():
            if isinstance(node, codebuild.CfnProject) and "/Assets/" not in node.node.path:
                name = f"<{self.get_logical_id(node)}>"
                findings += [
                    f"AwsSolutions-IAM5[Resource::{groups}{name}:*]",
                    f"AwsSolutions-IAM5[Resource::{reports}{name}-*]",
                ]
            if isinstance(node, iam.CfnPolicy) and "/Assets/" in node.node.path:
                skip_checkov(
                    node,
                    "CKV_AWS_111",
                    "CDK Pipelines' asset roles start and watch their own CodeBuild builds "
                    "(codebuild:StartBuild on *, as CDK writes it); they have no data access.",
                )
        acknowledge(
            self.pipeline,
            *findings,
            reason="CDK Pipelines' own roles: object and key actions on the pipeline's artifact "
            "bucket and key, its CodeBuild projects' log and report groups, builds of its "
            "projects, and AssumeRole of CDK bootstrap roles (by their bootstrap-role tag); "
            "tests/test_delivery_stack.py pins that no statement allows a `*` action and that "
            "every cross-account role is a bootstrap role of a configured account.",
        )

    def _source(self, delivery: DeliveryConfig) -> pipelines.CodePipelineSource:
        if delivery.source == "github":
            assert delivery.connection_arn  # the configuration requires it with github
            return pipelines.CodePipelineSource.connection(
                delivery.repository, delivery.branch, connection_arn=delivery.connection_arn
            )
        repository = codecommit.Repository.from_repository_name(
            self, "Repository", delivery.repository
        )
        return pipelines.CodePipelineSource.code_commit(repository, delivery.branch)

    def _diff(
        self,
        stage: EnvironmentStage,
        synth: pipelines.ShellStep,
        source: pipelines.CodePipelineSource,
    ) -> pipelines.CodeBuildStep:
        """`cdk diff` of the stage's stacks against its account, in the build log the approver
        opens: the pinned CDK CLI from the checkout, the synthesized assembly from the synth."""
        config = stage.config
        return pipelines.CodeBuildStep(
            f"Diff-{config.name}",
            input=source,
            additional_inputs={"synthesized": synth},
            commands=[
                "make install",
                f"node_modules/.bin/cdk diff --app synthesized/assembly-{stage.artifact_id} --all",
            ],
            role_policy_statements=[
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"],
                    resources=[lookup_role_arn(config.account, config.region)],
                )
            ],
        )

    @staticmethod
    def _approval(config: EnvironmentConfig) -> pipelines.ManualApprovalStep:
        return pipelines.ManualApprovalStep(
            f"Approve-{config.name}",
            comment=f"Deploy {config.prefix} to account {config.account} ({config.region})? "
            f"The Diff-{config.name} action's build log shows what changes.",
        )
