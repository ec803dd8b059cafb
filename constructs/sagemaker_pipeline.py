"""A SageMaker Pipeline owned by CloudFormation, from a definition generated offline."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnResource, CustomResource, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_s3_deployment as s3_deployment
from aws_cdk import aws_sns as sns
from aws_cdk import custom_resources as cr

from constructs import Construct
from constructs.key_use import S3_WRITE_KEY_ACTIONS, grant_key_use
from constructs.nag import (
    IMPORTED_KEY_REASON,
    S3_READ_ACTIONS,
    S3_WRITE_ACTIONS,
    acknowledge,
    acknowledge_guard,
    actions,
    object_wildcard,
)
from constructs.python_function import PythonFunction

PIPELINE_STATUS_EVENT = "SageMaker Model Building Pipeline Execution Status Change"


def pipeline_arn(stack: Stack, pipeline_name: str) -> str:
    """The ARN of `pipeline_name` (SageMaker writes pipeline names in lower case in ARNs)."""
    return stack.format_arn(
        service="sagemaker", resource="pipeline", resource_name=pipeline_name.lower()
    )


def pipeline_executions_arn(stack: Stack, pipeline_name: str) -> str:
    """The ARN pattern of every execution of `pipeline_name` (SageMaker writes pipeline names
    in lower case in their ARNs)."""
    return stack.format_arn(
        service="sagemaker",
        resource="pipeline",
        resource_name=f"{pipeline_name.lower()}/execution/*",
    )


def _asset_bucket_objects(stack: Stack) -> str:
    return (
        f"AwsSolutions-IAM5[Resource::arn:{stack.partition}:s3:::cdk-hnb659fds-assets-"
        f"{stack.account}-{stack.region}/*]"
    )


class PipelineStepCode(Construct):
    """Copies the generated step code in `code_dir` into `artifact_bucket` under `code_prefix`.

    Paths are content-hashed (`<prefix><sha256>/...`: a step's code directory, the schema, the
    SDK's training drivers), so unchanged steps keep their cache keys. Old code is kept (no
    prune, retained on delete): executions in flight, and cached steps, keep reading the code
    they started with. The copy never deletes (the bucket policy admits only this copier,
    tagged by the caller, to `code_prefix`, and no one but break-glass principals may delete
    there); the bucket's key is used through S3 only. Exposes `deployment`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        code_prefix: str,
        artifact_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        # Without its key, so that CDK's grant on the destination adds no key statement.
        destination = s3.Bucket.from_bucket_attributes(
            self,
            "Destination",
            bucket_arn=artifact_bucket.bucket_arn,
            bucket_name=artifact_bucket.bucket_name,
        )
        self.deployment = s3_deployment.BucketDeployment(
            self,
            "Copy",
            sources=[s3_deployment.Source.asset(str(code_dir))],
            destination_bucket=destination,
            destination_key_prefix=code_prefix,
            prune=False,
            retain_on_delete=True,
            memory_limit=256,
        )
        copier_role = self.deployment.handler_role
        grant_key_use(artifact_bucket.encryption_key, copier_role, S3_WRITE_KEY_ACTIONS, via=["s3"])
        copier_role.add_to_principal_policy(  # CDK's grant includes deletes: this copy never does
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[artifact_bucket.arn_for_objects("*")],
            )
        )
        # BucketDeployment's function is a stack-level singleton: acknowledge on it.
        copier = copier_role.node.scope
        assert copier is not None
        acknowledge(
            copier,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "AwsSolutions-L1",
            reason="CDK's BucketDeployment handler, run by CloudFormation only at deploy time to "
            "copy the step code asset; its runtime and logging policy are set by CDK.",
        )
        acknowledge(
            copier,
            *actions(*S3_READ_ACTIONS, *S3_WRITE_ACTIONS),
            object_wildcard(copier, artifact_bucket),
            _asset_bucket_objects(Stack.of(self)),
            reason="BucketDeployment copies every object of the content-hashed code asset into "
            "the artifact bucket; object names are not known before the copy. Deletes are "
            "denied to it, and the bucket policy admits it to pipeline-code/ alone.",
        )


class SageMakerPipeline(Construct):
    """Creates, updates and deletes the pipeline `pipeline_name` through a custom resource.

    The definition file (with `${Placeholders}`) travels as an S3 asset, so its size is bounded
    by the API (1 MB), not by the template; `definition_sha256` is a resource property, so every
    change to the definition shows in `cdk diff`. The pipeline is created after `step_code` is
    in place. `substitutions` maps placeholder names to deploy-time values (tokens allowed).
    `max_parallel_steps` defaults to 4. Exposes `pipeline_name` and `pipeline_arn`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        description: str,
        definition_file: Path,
        definition_sha256: str,
        step_code: PipelineStepCode,
        role: iam.IRole,
        encryption_key: kms.IKey,
        substitutions: dict[str, str],
        tags: dict[str, str],
        max_parallel_steps: int = 4,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.pipeline_name = pipeline_name
        definition = s3_assets.Asset(self, "Definition", path=str(definition_file))

        handler = PythonFunction(
            self,
            "Handler",
            folder="pipeline_resource",
            description=f"Creates/updates/deletes the SageMaker pipeline {pipeline_name}",
            encryption_key=encryption_key,
            timeout=Duration.minutes(2),
        )
        definition.grant_read(handler.role)
        arn = pipeline_arn(stack, pipeline_name)
        handler.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreatePipeline",
                    "sagemaker:UpdatePipeline",
                    "sagemaker:DeletePipeline",
                    "sagemaker:AddTags",
                    "sagemaker:DeleteTags",
                    "sagemaker:ListTags",
                ],
                resources=[arn],
            )
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        acknowledge(
            handler,
            *actions(*S3_READ_ACTIONS),
            _asset_bucket_objects(stack),
            reason="Read access to the definition asset, granted by Asset.grant_read on the CDK "
            "asset bucket (the object key is a content hash known only at synth).",
        )

        handler_resource = handler.function.node.default_child
        assert isinstance(handler_resource, CfnResource)
        provider_logs = logs.LogGroup(
            self,
            "ProviderLogs",
            encryption_key=encryption_key,
            retention=logs.RetentionDays.ONE_YEAR,
        )
        acknowledge_guard(
            provider_logs, "cloudwatch_log_group_encrypted_check", reason=IMPORTED_KEY_REASON
        )
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=handler.function,
            log_group=provider_logs,
        )
        acknowledge(
            provider,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(handler_resource)}.Arn>:*]",
            reason="CDK's Provider framework function relays CloudFormation events to our "
            "handler; it may invoke only that handler (any version).",
        )

        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::SageMakerPipeline",
            properties={
                "PipelineName": pipeline_name,
                "PipelineDescription": description,
                "RoleArn": role.role_arn,
                "DefinitionBucket": definition.s3_bucket_name,
                "DefinitionKey": definition.s3_object_key,
                "DefinitionSha256": definition_sha256,
                "Substitutions": substitutions,
                "MaxParallelExecutionSteps": str(max_parallel_steps),
                "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            },
        )
        self.resource.node.add_dependency(step_code.deployment, role)
        self.pipeline_arn = self.resource.get_att_string("PipelineArn")

    def notify_on_status(self, topic: sns.ITopic, statuses: tuple[str, ...]) -> events.Rule:
        """Send executions of this pipeline that reach one of `statuses` to `topic`."""
        rule = events.Rule(
            self,
            "StatusNotifications",
            description=f"{self.pipeline_name}: executions that end {'/'.join(statuses)}",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_STATUS_EVENT],
                detail={
                    "pipelineArn": [self.pipeline_arn],
                    "currentPipelineExecutionStatus": list(statuses),
                },
            ),
        )
        rule.add_target(
            targets.SnsTopic(
                topic,
                message=events.RuleTargetInput.from_text(
                    f"Pipeline {self.pipeline_name}: execution "
                    f"{events.EventField.from_path('$.detail.pipelineExecutionDisplayName')} is "
                    f"{events.EventField.from_path('$.detail.currentPipelineExecutionStatus')} "
                    f"({events.EventField.from_path('$.detail.pipelineExecutionArn')})"
                ),
            )
        )
        return rule
