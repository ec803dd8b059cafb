"""The evaluation-only pipeline: Validate (prepare.py --all-to-test, on the exact object versions
of the run's version manifest) -> Evaluate (evaluate.py scores ModelPackageArn on the labelled
data, writes a report and publishes CloudWatch metrics: a `production` model's where the quality
alarm watches, a `candidate`'s apart, by ModelRole). It never registers anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline_code import offline
from pipeline_code.definition.context import Context, s3_input, s3_output
from pipeline_code.definition.contract import (
    EVALUATION_OUTPUT,
    EVALUATION_REPORTS,
    PIPELINE_OUTPUTS_ROOT,
    PROCESSING_DIR,
    SEED,
    STEP_EVALUATE,
    STEP_VALIDATE,
    VALIDATE_OUTPUTS,
)
from pipeline_code.definition.parameters import evaluation_parameters
from pipeline_code.definition.settings import PipelineSettings
from pipeline_code.definition.shared_steps import prepare_output, prepare_processing_step
from pipeline_code.definition.step_code import CodeLocations
from pipeline_code.definition.trainers import evaluate_image_uri, evaluate_trainer_arguments

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.pipeline import Pipeline


def evaluation_report_uri(ctx: Context) -> Any:
    """``s3://${ArtifactBucket}/pipelines/<evaluation pipeline>/reports/<DatasetVersion>/<id>``:
    reports grouped by dataset version, one folder per execution."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="/",
        values=[
            "s3:/",
            ctx.bucket,
            PIPELINE_OUTPUTS_ROOT,
            ctx.pipeline_name,
            EVALUATION_REPORTS,
            ctx.params.dataset_version,
            ExecutionVariables.PIPELINE_EXECUTION_ID,
        ],
    )


def _score_step(ctx: Context, validate: Any) -> Any:
    from sagemaker.mlops.workflow.steps import ProcessingStep

    settings, params = ctx.settings, ctx.params
    # No network isolation: the model is resolved in the registry, read from S3, and the
    # metrics go to CloudWatch.
    processor = ctx.processor(
        network_isolation=False,
        env={"AWS_DEFAULT_REGION": settings.region},
        instance_count=1,
        # a scikit-learn package is scored in the image that trained it (definition/trainers)
        image_uri=evaluate_image_uri(settings),
    )
    step_args = processor.run(
        code=ctx.code.evaluate_script,
        inputs=[s3_input("test", prepare_output(validate, "test"), f"{PROCESSING_DIR}/test")],
        outputs=[
            s3_output(
                ctx,
                STEP_EVALUATE,
                EVALUATION_OUTPUT,
                f"{PROCESSING_DIR}/evaluation",
                s3_uri=evaluation_report_uri(ctx),
            ),
        ],
        arguments=[
            "--test-dir",
            f"{PROCESSING_DIR}/test",
            "--output-dir",
            f"{PROCESSING_DIR}/evaluation",
            "--target",
            settings.schema["target"],
            *evaluate_trainer_arguments(settings),
            # the alarm's metric: published or the run fails (never silently left out)
            "--metric",
            settings.metric,
            "--bootstrap-samples",
            str(settings.bootstrap_samples),
            "--seed",
            str(SEED),
            "--model-package-arn",
            params.model_package_arn,
            "--model-role",
            params.model_role,
            "--model-package-group",
            offline.placeholder(offline.MODEL_PACKAGE_GROUP_NAME),
            "--metrics-namespace",
            settings.model_quality_namespace,
            "--dataset-version",
            params.dataset_version,
            "--data-digest",
            params.data_digest,
        ],
    )
    return ProcessingStep(
        name=STEP_EVALUATE,
        step_args=step_args,
        description="Score ModelPackageArn (the served package, or a candidate) on the labelled "
        "data; publish the metrics by ModelRole.",
        # Not cached: publishing the metrics is the point of the run (a cache hit would publish
        # nothing), and the package's registry state (approval, rollback marks) is checked
        # when the step runs.
    )


def build_evaluation_pipeline(
    settings: PipelineSettings, code: CodeLocations, session: PipelineSession
) -> Pipeline:
    """Build the evaluation-only pipeline (Validate -> Evaluate; nothing is registered).

    Args: as for :func:`build_training_pipeline`.
    """
    ctx = Context(
        settings=settings,
        code=code,
        session=session,
        params=evaluation_parameters(settings),
        pipeline_name=settings.evaluation_pipeline_name,
    )
    validate = prepare_processing_step(
        ctx,
        step=STEP_VALIDATE,
        outputs=VALIDATE_OUTPUTS,
        mode_arguments=["--all-to-test"],
        description="Validate the labelled data with the training rules; keep every row.",
        instance_count=1,
    )
    score = _score_step(ctx, validate)
    return ctx.pipeline([validate, score])
