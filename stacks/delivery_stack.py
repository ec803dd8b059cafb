"""The delivery pipeline (`make synth ENV=delivery`): CDK Pipelines deploys the app itself.

One CodePipeline in the tooling account (cdk.json `delivery`): the source (GitHub through a
CodeConnections connection, or CodeCommit), a synth step that runs the project's own `make
test`, synthesizes the pipeline (for its self-update) and every environment's stacks exactly as
`make synth ENV=all` does, then one step per environment, in the configured order, that deploys
that environment's stacks from that assembly with the pinned CDK CLI, as `make deploy` does:
into the environment's account through the CDK bootstrap roles there (`cdk bootstrap --trust
<tooling account>`), keeping each stack's current parameter values (the served model package:
CloudFormation actions would reset it and delete the endpoint), building the drift image on the
way (no laptop needs Docker). Stages that ask for an approval first show `cdk diff` of the same
assembly against their account (through its read-only lookup role), so what is approved is what
is deployed. Stacks keep the names and logical ids `make deploy` gives them, so an environment
can move between the two.
"""

from __future__ import annotations

import json
from pathlib import Path
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
from stacks.app_builder import stack_names

# The CDK bootstrap's default qualifier: the roles `cdk bootstrap` creates in every account.
BOOTSTRAP_QUALIFIER = "hnb659fds"
# CodeBuild's Ubuntu image with the Python and Node versions the Makefile expects.
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
RUNTIMES = {"python": "3.11", "nodejs": "20"}


# Where the synth step writes every environment's cloud assembly (`cdk synth -c env=all`).
ENVIRONMENTS_ASSEMBLY = "environments"
# The bootstrap roles the CDK CLI assumes in an environment's account to deploy it.
DEPLOY_ROLES = ("deploy", "file-publishing", "image-publishing", "lookup")


def bootstrap_role_arn(stack: cdk.Stack, kind: str, account: str, region: str) -> str:
    """A role `cdk bootstrap` creates in `account`/`region` (`kind`: deploy, lookup, ...)."""
    return (
        f"arn:{stack.partition}:iam::{account}:role/"
        f"cdk-{BOOTSTRAP_QUALIFIER}-{kind}-role-{account}-{region}"
    )


def pinned_cli_version() -> str:
    """The CDK CLI version package.json pins (`make install` installs exactly it)."""
    package = json.loads((Path(__file__).resolve().parent.parent / "package.json").read_text())
    return str(package["devDependencies"]["aws-cdk"])


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
    """Exposes `pipeline` (pipelines.CodePipeline) and `deploy_steps` (environment name ->
    its deploy step)."""

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
            # The same commands a developer runs: the whole suite, then the pipeline itself
            # and every environment's stacks (the latter exactly as `make synth ENV=all`).
            commands=[
                "make test",
                "make synth ENV=delivery",
                "node_modules/.bin/cdk synth --quiet -c env=all "
                f"-o cdk.out/{ENVIRONMENTS_ASSEMBLY}",
            ],
            primary_output_directory="cdk.out",
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=construct_id,
            pipeline_type=codepipeline.PipelineType.V2,
            synth=synth,
            artifact_bucket=self.artifact_bucket,
            synth_code_build_defaults=_build_defaults(codebuild.ComputeType.LARGE, self.build_logs),
            code_build_defaults=_build_defaults(codebuild.ComputeType.SMALL, self.build_logs),
            publish_assets_in_parallel=False,
            cli_version=pinned_cli_version(),  # the self-update uses the checkout's CLI too
        )
        self.deploy_steps: dict[str, pipelines.CodeBuildStep] = {}
        for config in environments:
            deploy = self._deploy(config, synth, source)
            self.deploy_steps[config.name] = deploy
            pre: list[pipelines.Step] = []
            if config.name in delivery.approval_before:
                diff, approval = self._diff(config, synth, source), self._approval(config)
                approval.add_step_dependency(diff)  # the reviewer reads the diff first
                pre = [diff, approval]
                deploy.add_step_dependency(approval)
            self.pipeline.add_wave(config.name, pre=pre, post=[deploy])
        self.pipeline.build_pipeline()
        self._acknowledge_generated_roles()
        acknowledge_guard(
            self.pipeline,
            "codebuild_project_environment_privileged_check",
            reason="Only the deploy steps run privileged: they build the drift image (a Docker "
            "asset) as `make deploy` does, so no deploying laptop needs Docker.",
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

    def _cli_step(
        self,
        name: str,
        config: EnvironmentConfig,
        synth: pipelines.ShellStep,
        source: pipelines.CodePipelineSource,
        command: str,
        roles: tuple[str, ...],
        *,
        docker: bool = False,
    ) -> pipelines.CodeBuildStep:
        """The pinned CDK CLI (from the checkout's lock file, install scripts off) running
        `command` on the environment's stacks of the synthesized assembly, allowed to assume
        only `roles` of the environment's bootstrap roles."""
        stacks = " ".join(stack_names(config).values())  # this environment's four stacks
        return pipelines.CodeBuildStep(
            f"{name}-{config.name}",
            input=source,
            # Docker (privileged): the deploy builds the drift image, as `make deploy` does.
            build_environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.MEDIUM, privileged=True
            )
            if docker
            else None,
            additional_inputs={"synthesized": synth},
            commands=[
                "npm ci --ignore-scripts --no-audit --no-fund",
                f"node_modules/.bin/cdk {command} --app synthesized/{ENVIRONMENTS_ASSEMBLY} "
                f"{stacks}",
            ],
            role_policy_statements=[
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"],
                    resources=[
                        bootstrap_role_arn(self, kind, config.account, config.region)
                        for kind in roles
                    ],
                )
            ],
        )

    def _diff(
        self,
        config: EnvironmentConfig,
        synth: pipelines.ShellStep,
        source: pipelines.CodePipelineSource,
    ) -> pipelines.CodeBuildStep:
        """`cdk diff` of the environment's stacks against its account, in the build log the
        approver opens: read-only (the lookup role, the deployed templates)."""
        return self._cli_step("Diff", config, synth, source, "diff --method=template", ("lookup",))

    def _deploy(
        self,
        config: EnvironmentConfig,
        synth: pipelines.ShellStep,
        source: pipelines.CodePipelineSource,
    ) -> pipelines.CodeBuildStep:
        """`cdk deploy` of the environment's stacks, as `make deploy` does: assets published
        (the drift image built here), every stack's current parameter values kept."""
        step = self._cli_step(
            "Deploy",
            config,
            synth,
            source,
            "deploy --require-approval never --previous-parameters=true",
            DEPLOY_ROLES,
            docker=True,
        )
        return step

    @staticmethod
    def _approval(config: EnvironmentConfig) -> pipelines.ManualApprovalStep:
        return pipelines.ManualApprovalStep(
            f"Approve-{config.name}",
            comment=f"Deploy {config.prefix} to account {config.account} ({config.region})? "
            f"The Diff-{config.name} action's build log shows what changes.",
        )
