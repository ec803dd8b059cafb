"""Training: the SageMaker pipelines, the roles they and their jobs run as, and what starts
them."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.bucket_policies import (
    STEP_CODE_WRITER,
    pipelines_reader_tag_key,
    writer_tag_key,
)
from constructs.dataset_trigger import DatasetTrigger
from constructs.job_log_groups import own_job_log_groups
from constructs.job_tagger import JobTagger
from constructs.mlflow_run_tracker import MlflowRunTracker
from constructs.predictions_marker import PredictionsMarker
from constructs.private_network import PrivateNetwork
from constructs.promotion_receiver import PromotionReceiver
from constructs.promotion_sender import PromotionSender
from constructs.sagemaker_execution_role import SageMakerPipelinesRole, ScoringJobs
from constructs.sagemaker_pipeline import PipelineStepCode, SageMakerPipeline
from constructs.scoring_model_cleanup import ScoringModelCleanup
from mlops_config import EnvironmentConfig
from pipeline_code.definition import (
    PARAM_CHAMPION_MODEL_PACKAGE_ARN,
    PARAM_MODEL_PACKAGE_ARN,
    PARAM_MODEL_ROLE,
)
from pipeline_code.definition.contract import (
    TRAINING_OUTPUTS,
    pipeline_output_prefix,
)
from pipeline_code.offline import (
    CODE_PREFIX,
    DATA_KMS_KEY_ARN,
    PROCESSING_JOB_ROLE_ARN,
    SCORING_MODEL_ROLE_ARN,
    TRAINING_JOB_ROLE_ARN,
    VPC_SECURITY_GROUP,
    VPC_SUBNET,
)
from stacks.data_stack import GROUND_TRUTH_PREFIX, LANDING_PREFIX, SCORE_PREFIX, DataStack
from stacks.pipeline_definitions import GeneratedPipelines
from stacks.training_job_roles import JobRoles


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
    """Exposes `role` (what SageMaker Pipelines runs as), `processing_job_role` and
    `training_job_role` (what the jobs run as), `pipeline` and `evaluation_pipeline`
    (SageMakerPipeline), `trigger` and `evaluation_trigger` (DatasetTrigger).

    In promote mode (`config.promotion`), a target environment trains nothing on landing data:
    `trigger` is None and `receiver` (PromotionReceiver) copies in the packages its predecessor
    approves; an environment with a successor forwards its approvals (`sender`,
    PromotionSender). Otherwise `receiver` and `sender` are None."""

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
        roles = JobRoles(self, config, data, pipelines)
        self.processing_job_role = roles.processing
        self.training_job_role = roles.training
        self.scoring_model_role = roles.scoring
        self.role = SageMakerPipelinesRole(
            self,
            "PipelinesRole",
            artifact_bucket=data.artifact_bucket,
            model_package_group_name=data.model_package_group_name,
            job_roles=[
                self.processing_job_role,
                self.training_job_role,
                *([self.scoring_model_role] if self.scoring_model_role else []),
            ],
            vpc=data.network.placement if data.network else None,
            scoring=ScoringJobs(
                output_key=data.data_key,
                volume_key=data.artifact_key,
                instance_type=config.serving.batch.instance_type,
            )
            if self.scoring_model_role is not None
            else None,
            tuning=config.pipeline.tuning is not None,
        ).role
        # vpc mode: the one role the buckets let read (property files) from outside the VPC
        Tags.of(self.role).add(pipelines_reader_tag_key(config.project), "true")

        deploy_time_values = {
            "ArtifactBucket": data.artifact_bucket.bucket_name,
            "DataBucket": data.data_bucket.bucket_name,
            PROCESSING_JOB_ROLE_ARN: self.processing_job_role.role_arn,
            TRAINING_JOB_ROLE_ARN: self.training_job_role.role_arn,
            "KmsKeyArn": data.artifact_key.key_arn,
            "ModelPackageGroupName": data.model_package_group_name,
        }
        if data.network is not None:
            deploy_time_values.update(vpc_placeholder_values(data.network))
        if self.scoring_model_role is not None:
            deploy_time_values[SCORING_MODEL_ROLE_ARN] = self.scoring_model_role.role_arn
            deploy_time_values[DATA_KMS_KEY_ARN] = data.data_key.key_arn
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
            # no execution before its jobs' roles have their policies
            each.resource.node.add_dependency(self.processing_job_role, self.training_job_role)
        # dataset version and execution id on every job, for cost allocation
        self.job_tagger = JobTagger(
            self,
            "JobTagger",
            pipeline_names=[
                config.pipeline_name,
                config.evaluation_pipeline_name,
                *([config.scoring_pipeline_name] if config.serving.is_batch else []),
            ],
            encryption_key=data.operations_key,
            topic=data.topic,
            metrics_namespace=f"{config.prefix}/JobTagger",
            transform_jobs=config.serving.is_batch,  # the scoring runs' transform jobs
            # a tuning trial's execution tag is read from its tuning job
            follow_tuning_jobs=config.pipeline.tuning is not None,
        )
        # tracking.mlflow on: every finished execution -> one MLflow run
        self.run_tracker = (
            MlflowRunTracker(
                self,
                "RunTracker",
                config=config,
                artifact_bucket=data.artifact_bucket,
                encryption_key=data.operations_key,
                topic=data.topic,
            )
            if config.tracking.enabled
            else None
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
                allow_reupload=retrain.pop("allow_reupload", t.allow_reupload),
                **retrain,
            )
            created.node.add_dependency(target)
            return created

        self.trigger: DatasetTrigger | None = None
        self.receiver: PromotionReceiver | None = None
        self.sender: PromotionSender | None = None
        self._promotion(config, data)
        if config.promotion.trains:
            self.trigger = self._landing_trigger(config, data, trigger)
        # labelled data under ground-truth/ scores the production model, exactly once per
        # version (every problem type, with its own metrics)
        self.evaluation_trigger: DatasetTrigger = trigger(
            "EvaluationTrigger",
            GROUND_TRUTH_PREFIX,
            data.evaluation_ledger,
            self.evaluation_pipeline,
            model_package_parameter=PARAM_MODEL_PACKAGE_ARN,
            model_role_parameter=PARAM_MODEL_ROLE,
            serving_stack_name=config.serving_stack_name,
        )
        self.scoring_pipeline, self.scoring_trigger = None, None
        if data.scoring_ledger is not None:
            # batch serving: each version under score/ is scored once by the served package
            self.scoring_pipeline = pipeline(
                "ScoringPipeline",
                config.scoring_pipeline_name,
                "scoring",
                "score data landing under score/ with the served package (batch serving)",
            )
            self.scoring_pipeline.notify_on_status(data.topic, ("Failed", "Succeeded", "Stopped"))
            self.scoring_pipeline.resource.node.add_dependency(
                self.processing_job_role, self.scoring_model_role
            )
            self.scoring_trigger = trigger(
                "ScoringTrigger",
                SCORE_PREFIX,
                data.scoring_ledger,
                self.scoring_pipeline,
                model_package_parameter=PARAM_MODEL_PACKAGE_ARN,
                serving_stack_name=config.serving_stack_name,
                # a version whose scoring failed (bad data) is fixed by uploading it again;
                # identical content still starts nothing
                allow_reupload=True,
            )
            # _SUCCESS under predictions/ once a scoring transform job completed
            self.predictions_marker = PredictionsMarker(
                self,
                "PredictionsMarker",
                data_bucket=data.data_bucket,
                encryption_key=data.operations_key,
                topic=data.topic,
                metrics_namespace=f"{config.prefix}/PredictionsMarker",
            )
            self.scoring_model_cleanup = ScoringModelCleanup(
                self,
                "ScoringModelCleanup",
                scoring_pipeline_name=config.scoring_pipeline_name,
                scoring_pipeline_arn=self.scoring_pipeline.pipeline_arn,
                data_bucket=data.data_bucket,
                encryption_key=data.operations_key,
                topic=data.topic,
                metrics_namespace=f"{config.prefix}/ScoringModelCleanup",
            )
            CfnOutput(self, "ScoringPipelineName", value=config.scoring_pipeline_name)
            CfnOutput(
                self,
                "ScoringTriggerFunctionName",
                value=self.scoring_trigger.function.function_name,
                description='Invoke with {"action": "retrain-version", ...} to score a version '
                "again (mlops start --pipeline scoring)",
            )
        CfnOutput(self, "PipelineName", value=config.pipeline_name)
        CfnOutput(self, "EvaluationPipelineName", value=config.evaluation_pipeline_name)
        if self.trigger is not None:
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
            own_job_log_groups(self, data.operations_key, config.retain)
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)

    @property
    def intake(self) -> tuple[str, tuple[sqs.IQueue, sqs.IQueue], cloudwatch.Alarm]:
        """What feeds this environment's registry, for the dashboard: a title, the queue and
        its dead-letter queue, and that dead-letter queue's alarm (the landing trigger's, or
        in a promotion target the receiver's)."""
        if self.trigger is not None:
            trigger = self.trigger
            queues = (trigger.queue, trigger.dead_letter_queue)
            return "Trigger queue and dead letters", queues, trigger.dead_letters_alarm
        if self.receiver is None:
            raise ValueError("the Training stack has neither a landing trigger nor a receiver")
        receiver = self.receiver
        queues = (receiver.queue, receiver.dead_letters)
        return "Promotion queue and dead letters", queues, receiver.alarms["dead_letters"]

    def _landing_trigger(
        self, config: EnvironmentConfig, data: DataStack, trigger: Any
    ) -> DatasetTrigger:
        """Dataset versions under landing/ start the training pipeline (and retrains)."""
        t = config.trigger
        return trigger(
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

    def _promotion(self, config: EnvironmentConfig, data: DataStack) -> None:
        """promote mode: receive from the predecessor, forward approvals to the successor."""
        promotion = config.promotion
        if promotion.receives_from is not None:
            self.receiver = PromotionReceiver(
                self,
                "PromotionReceiver",
                prefix=config.prefix,
                group=config.model_package_group_name,
                peer=promotion.receives_from,
                artifact_bucket=data.artifact_bucket,
                model_prefix=pipeline_output_prefix(config.pipeline_name, TRAINING_OUTPUTS),
                writer_tag=writer_tag_key(config.project),
                encryption_key=data.operations_key,
                topic=data.topic,
            )
        if promotion.sends_to is not None:
            self.sender = PromotionSender(
                self,
                "PromotionSender",
                prefix=config.prefix,
                group=config.model_package_group_name,
                peer=promotion.sends_to,
                encryption_key=data.operations_key,
                topic=data.topic,
            )
