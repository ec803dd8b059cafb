"""Training: the SageMaker pipeline, the role it runs as, and what starts it."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.bucket_policies import PIPELINE_OUTPUTS_WRITER, STEP_CODE_WRITER, writer_tag_key
from constructs.dataset_trigger import DatasetTrigger
from constructs.ecr_images import image_uris_in
from constructs.job_tagger import JobTagger
from constructs.nag import IMPORTED_KEY_REASON, acknowledge_guard
from constructs.private_network import PrivateNetwork
from constructs.sagemaker_execution_role import SageMakerExecutionRole
from constructs.sagemaker_pipeline import PipelineStepCode, SageMakerPipeline
from mlops_config import EnvironmentConfig
from pipeline_code.definition import (
    PARAM_CHAMPION_MODEL_PACKAGE_ARN,
    PARAM_MODEL_PACKAGE_ARN,
    PARAM_MODEL_ROLE,
)
from pipeline_code.offline import CODE_PREFIX, VPC_SECURITY_GROUP, VPC_SUBNET
from stacks.data_stack import GROUND_TRUTH_PREFIX, LANDING_PREFIX, DataStack
from stacks.pipeline_definitions import GeneratedPipelines

# SageMaker's account-wide job log groups (security.own_job_log_groups).
JOB_LOG_GROUPS = {
    "ProcessingJobLogs": "/aws/sagemaker/ProcessingJobs",
    "TrainingJobLogs": "/aws/sagemaker/TrainingJobs",
}


def retrain_alarm_prefix(config: EnvironmentConfig) -> str:
    """Alarms named with this prefix start a retrain when they fire (if enabled)."""
    return f"{config.prefix}-retrain-"


def vpc_placeholder_values(network: PrivateNetwork) -> dict[str, str]:
    """`${VpcSubnetN}` and `${VpcSecurityGroupN}` of the definitions: the network's ids."""
    names = {
        VPC_SUBNET: network.subnet_ids,
        VPC_SECURITY_GROUP: network.security_group_ids,
    }
    return {
        f"{stem}{i}": value for stem, values in names.items() for i, value in enumerate(values, 1)
    }


class TrainingStack(Stack):
    """Exposes `role`, `pipeline` and `evaluation_pipeline` (SageMakerPipeline), `trigger` and
    `evaluation_trigger` (DatasetTrigger)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataStack,
        pipelines: GeneratedPipelines,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if pipelines.code_prefix != CODE_PREFIX:
            raise ValueError(
                f"the generated step code lives under {pipelines.code_prefix!r}, but the "
                f"artifact bucket keeps {CODE_PREFIX!r} write-once"
            )
        writer_tag = writer_tag_key(config.project)
        self.role = SageMakerExecutionRole(
            self,
            "SageMakerRole",
            data_bucket=data.data_bucket,
            read_prefixes=[LANDING_PREFIX, GROUND_TRUTH_PREFIX],
            artifact_bucket=data.artifact_bucket,
            encryption_key=data.artifact_key,
            model_package_group_name=data.model_package_group_name,
            metric_namespaces=[config.model_quality_namespace],
            image_uris=sorted(
                {
                    uri
                    for key in ("training", "evaluation")
                    for uri in image_uris_in(pipelines.definition_file(key).read_text())
                }
            ),
            vpc=data.network.placement if data.network else None,
        ).role
        # the one principal the artifact bucket admits to pipelines/ (job outputs, models)
        Tags.of(self.role).add(writer_tag, PIPELINE_OUTPUTS_WRITER)

        deploy_time_values = {
            "ArtifactBucket": data.artifact_bucket.bucket_name,
            "DataBucket": data.data_bucket.bucket_name,
            "RoleArn": self.role.role_arn,
            "KmsKeyArn": data.artifact_key.key_arn,
            "ModelPackageGroupName": data.model_package_group_name,
        }
        if data.network is not None:
            deploy_time_values.update(vpc_placeholder_values(data.network))
        unknown = sorted(set(pipelines.placeholders) - set(deploy_time_values))
        if unknown:
            raise ValueError(
                f"the generated definitions use placeholders {unknown} that the Training stack "
                f"does not provide (it provides {sorted(deploy_time_values)})"
            )
        step_code = PipelineStepCode(
            self,
            "StepCode",
            code_dir=pipelines.code_dir,
            code_prefix=pipelines.code_prefix,
            artifact_bucket=data.artifact_bucket,
        )
        # the one principal the artifact bucket admits to pipeline-code/
        Tags.of(step_code.deployment.handler_role).add(writer_tag, STEP_CODE_WRITER)
        substitutions = {k: deploy_time_values[k] for k in pipelines.placeholders}

        def pipeline(construct_id: str, name: str, key: str, description: str) -> SageMakerPipeline:
            return SageMakerPipeline(
                self,
                construct_id,
                pipeline_name=name,
                description=f"{config.prefix}: {description}",
                definition_file=pipelines.definition_file(key),
                definition_sha256=pipelines.definition_sha256(key),
                step_code=step_code,
                role=self.role,
                encryption_key=data.operations_key,
                substitutions=substitutions,
                tags=config.tags,
                max_parallel_steps=config.pipeline.max_parallel_steps,
            )

        self.pipeline = pipeline(
            "Pipeline",
            config.pipeline_name,
            "training",
            "prepare, train, evaluate vs champion, gate, register",
        )
        self.evaluation_pipeline = pipeline(
            "EvaluationPipeline",
            config.evaluation_pipeline_name,
            "evaluation",
            "score the production model on newly labelled data",
        )
        for each in (self.pipeline, self.evaluation_pipeline):
            each.notify_on_status(data.topic, ("Failed", "Succeeded", "Stopped"))
        # dataset version and execution id on every job, for cost allocation
        self.job_tagger = JobTagger(
            self,
            "JobTagger",
            pipeline_names=[config.pipeline_name, config.evaluation_pipeline_name],
            encryption_key=data.operations_key,
            topic=data.topic,
            metrics_namespace=f"{config.prefix}/JobTagger",
        )

        t = config.trigger

        def trigger(
            construct_id: str,
            prefix: str,
            ledger: dynamodb.ITable,
            target: SageMakerPipeline,
            **retrain: Any,
        ) -> DatasetTrigger:
            created = DatasetTrigger(
                self,
                construct_id,
                bucket=data.data_bucket,
                landing_prefix=prefix,
                ledger=ledger,
                manifest_bucket=data.artifact_bucket,
                pipeline_name=target.pipeline_name,
                encryption_key=data.operations_key,
                topic=data.topic,
                metrics_namespace=f"{config.prefix}/{construct_id}",
                completion_mode=t.completion_mode,
                quiet_period_seconds=t.quiet_period_seconds,
                max_concurrent_executions=t.max_concurrent_executions,
                allow_reupload=t.allow_reupload,
                **retrain,
            )
            created.node.add_dependency(target)
            return created

        self.trigger = trigger(
            "Trigger",
            LANDING_PREFIX,
            data.ledger,
            self.pipeline,
            retrain_schedule=t.retrain_schedule,
            retrain_alarm_prefix=(
                retrain_alarm_prefix(config) if config.monitoring.retrain_on_alarm else None
            ),
            retrain_cooldown=Duration.hours(config.monitoring.retrain_cooldown_hours),
            champion=(PARAM_CHAMPION_MODEL_PACKAGE_ARN, config.model_package_group_name),
            serving_stack_name=config.serving_stack_name,
        )
        # labelled data under ground-truth/ scores the production model, exactly once per version
        self.evaluation_trigger = trigger(
            "EvaluationTrigger",
            GROUND_TRUTH_PREFIX,
            data.evaluation_ledger,
            self.evaluation_pipeline,
            model_package_parameter=PARAM_MODEL_PACKAGE_ARN,
            model_role_parameter=PARAM_MODEL_ROLE,
            serving_stack_name=config.serving_stack_name,
        )
        CfnOutput(self, "PipelineName", value=config.pipeline_name)
        CfnOutput(self, "EvaluationPipelineName", value=config.evaluation_pipeline_name)
        CfnOutput(
            self,
            "StartTrainingFunctionName",
            value=self.trigger.function.function_name,
            description='Invoke with {"action": "retrain-latest", ...} to retrain',
        )
        CfnOutput(
            self,
            "EvaluationTriggerFunctionName",
            value=self.evaluation_trigger.function.function_name,
            description='Invoke with {"action": "retrain-latest", ...} to re-evaluate',
        )

        if config.security.own_job_log_groups:
            self._job_log_groups(data, config.retain)
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)

    def _job_log_groups(self, data: DataStack, retain: bool) -> None:
        """SageMaker's job log groups, kept a year and encrypted, owned by this stack."""
        for construct_id, name in JOB_LOG_GROUPS.items():
            group = logs.LogGroup(
                self,
                construct_id,
                log_group_name=name,
                encryption_key=data.operations_key,
                retention=logs.RetentionDays.ONE_YEAR,
                removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            )
            acknowledge_guard(
                group, "cloudwatch_log_group_encrypted_check", reason=IMPORTED_KEY_REASON
            )
