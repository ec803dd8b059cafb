"""The roles the pipelines' jobs run as, each tagged as the one writer the artifact bucket
admits for its outputs: processing (Prepare, Baseline, Evaluate, the eval-only and scoring
checks), training (Train, the one model writer) and, in batch serving, the scoring model."""

from __future__ import annotations

from aws_cdk import Stack, Tags
from aws_cdk import aws_iam as iam

from constructs.bucket_policies import MODEL_WRITER, PIPELINE_OUTPUTS_WRITER, writer_tag_key
from constructs.ecr_images import served_image_uris
from constructs.pipeline_job_roles import ProcessingJobRole, TrainingJobRole
from constructs.scoring_model_role import ScoringModelRole
from mlops_config import EnvironmentConfig
from pipeline_code.definition.contract import (
    CHECKPOINTS,
    EVALUATION_REPORTS,
    EXECUTION_OUTPUTS,
    SHARD_PARTS,
    TRAINING_OUTPUTS,
    pipeline_output_prefix,
)
from pipeline_code.offline import CODE_PREFIX
from stacks.data_stack import GROUND_TRUTH_PREFIX, LANDING_PREFIX, SCORE_PREFIX, DataStack
from stacks.pipeline_definitions import GeneratedPipelines


class JobRoles:
    """`processing`, `training` and `scoring` (None unless batch serving), created in `stack`
    (their construct ids are the stack's own, so their logical ids do not depend on this
    module)."""

    def __init__(
        self,
        stack: Stack,
        config: EnvironmentConfig,
        data: DataStack,
        pipelines: GeneratedPipelines,
    ) -> None:
        """The processing and training job roles, each tagged as the writer the artifact bucket
        admits: the training job role alone under the models' prefix (in a promotion target,
        the receiver instead)."""
        training, evaluation = config.pipeline_name, config.evaluation_pipeline_name
        tag = writer_tag_key(config.project)
        vpc = data.network.placement if data.network else None
        batch = config.serving.is_batch
        sharded = config.pipeline.processing_instance_count > 1  # PrepareShards writes parts
        scoring_outputs = pipeline_output_prefix(config.scoring_pipeline_name, EXECUTION_OUTPUTS)
        self.processing = ProcessingJobRole(
            stack,
            "ProcessingJobRole",
            data_bucket=data.data_bucket,
            read_prefixes=[LANDING_PREFIX, GROUND_TRUTH_PREFIX, *([SCORE_PREFIX] if batch else [])],
            artifact_bucket=data.artifact_bucket,
            output_prefixes=[
                pipeline_output_prefix(training, EXECUTION_OUTPUTS),
                pipeline_output_prefix(evaluation, EXECUTION_OUTPUTS),
                pipeline_output_prefix(evaluation, EVALUATION_REPORTS),
                *([scoring_outputs] if batch else []),
                *([pipeline_output_prefix(training, SHARD_PARTS)] if sharded else []),
            ],
            encryption_key=data.artifact_key,
            model_package_group_name=data.model_package_group_name,
            metric_namespaces=[config.model_quality_namespace],
            image_uris=pipelines.job_images("Processing", "QualityCheck"),
            vpc=vpc,
        ).role
        Tags.of(self.processing).add(tag, PIPELINE_OUTPUTS_WRITER)
        self.training = TrainingJobRole(
            stack,
            "TrainingJobRole",
            artifact_bucket=data.artifact_bucket,
            read_prefixes=[CODE_PREFIX, pipeline_output_prefix(training, EXECUTION_OUTPUTS)],
            model_prefix=pipeline_output_prefix(training, TRAINING_OUTPUTS),
            checkpoint_prefix=(
                pipeline_output_prefix(training, CHECKPOINTS) if config.pipeline.use_spot else None
            ),
            encryption_key=data.artifact_key,
            image_uris=pipelines.job_images("Training", "Tuning"),
            vpc=vpc,
        ).role
        if config.promotion.trains:
            # a promotion target's one model writer is its receiver: nothing trains there
            Tags.of(self.training).add(tag, MODEL_WRITER)
        self.scoring: iam.IRole | None = (
            ScoringModelRole(
                stack,
                "ScoringModelRole",
                artifact_bucket=data.artifact_bucket,
                read_prefixes=[pipeline_output_prefix(training, TRAINING_OUTPUTS), scoring_outputs],
                data_bucket=data.data_bucket,
                encryption_key=data.artifact_key,
                # the served package's inference image, as the endpoint would pull it
                image_uris=served_image_uris(config),
                vpc=vpc,
            ).role
            if batch
            else None
        )
