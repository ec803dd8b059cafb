"""The Register step: the challenger as a model package, with its metrics, data baselines and
lineage (data version, digest, code commit, execution) in the registry."""

from __future__ import annotations

from typing import Any

from pipeline_code import offline
from pipeline_code.definition.context import Context, xgboost_image_uri
from pipeline_code.definition.contract import (
    BASELINE_METADATA_KEY,
    BASELINE_STATISTICS_FILE,
    EVALUATION_OUTPUT,
    STEP_REGISTER,
)
from pipeline_code.definition.sdk import SUPPORTED_SDK_VERSION
from pipeline_code.definition.shared_steps import gate_value, prepare_output, registry_value


def register_step(
    ctx: Context, prepare: Any, train: Any, evaluate: Any, report: Any, baseline: Any = None
) -> Any:
    """The model package. ``baseline`` (the Model Monitor Baseline step, if any) replaces
    Prepare's statistics.json as the data-quality metrics and drift-check baselines."""
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.metadata_properties import MetadataProperties
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    settings, params = ctx.settings, ctx.params
    evaluation_json = Join(
        on="/",
        values=[
            evaluate.properties.ProcessingOutputConfig.Outputs[EVALUATION_OUTPUT].S3Output.S3Uri,
            ctx.code.evaluation_keys["file"],
        ],
    )
    baseline_statistics = Join(
        on="/", values=[prepare_output(prepare, "baseline"), BASELINE_STATISTICS_FILE]
    )
    model_quality = MetricsSource(content_type="application/json", s3_uri=evaluation_json)
    data_statistics = MetricsSource(content_type="application/json", s3_uri=baseline_statistics)
    data_constraints = None
    monitor_metadata: dict[str, Any] = {}
    if baseline is not None:
        data_statistics = MetricsSource(
            content_type="application/json",
            s3_uri=baseline.properties.CalculatedBaselineStatistics,
        )
        data_constraints = MetricsSource(
            content_type="application/json",
            s3_uri=baseline.properties.CalculatedBaselineConstraints,
        )
        monitor_metadata[BASELINE_METADATA_KEY] = prepare_output(prepare, "baseline")
    inference_image = xgboost_image_uri(settings, "inference")
    builder = ModelBuilder(
        image_uri=inference_image,
        role_arn=ctx.role,
        sagemaker_session=ctx.session,
        instance_type=settings.processing_instance_type,
        # The default ({"auto": False}) is truthy and switches on script mode, which adds
        # empty SAGEMAKER_PROGRAM/SAGEMAKER_SUBMIT_DIRECTORY variables to the serving container.
        dependencies=None,
    )
    # Not constructor arguments in v3; the default model name is random (uuid4).
    builder.s3_model_data_url = train.properties.ModelArtifacts.S3ModelArtifacts
    builder.model_name = f"{settings.pipeline_name}-model"
    step_args = builder.register(
        model_package_group_name=offline.placeholder(offline.MODEL_PACKAGE_GROUP_NAME),
        content_types=["text/csv"],
        response_types=["text/csv"],
        approval_status=params.model_approval_status,
        model_metrics=ModelMetrics(
            model_statistics=model_quality,
            model_data_statistics=data_statistics,
            model_data_constraints=data_constraints,
        ),
        drift_check_baselines=DriftCheckBaselines(
            model_statistics=model_quality,
            model_data_statistics=data_statistics,
            model_data_constraints=data_constraints,
        ),
        metadata_properties=MetadataProperties(
            commit_id=params.code_commit,
            generated_by=ExecutionVariables.PIPELINE_EXECUTION_ARN,
            project_id=settings.project,
        ),
        customer_metadata_properties={
            "input_data_uri": params.input_data_uri,
            "dataset_version": params.dataset_version,
            "data_digest": params.data_digest,
            "code_commit": params.code_commit,
            "pipeline_execution_id": ExecutionVariables.PIPELINE_EXECUTION_ID,
            "sdk_version": SUPPORTED_SDK_VERSION,
            "image_uri": inference_image,
            "metric": settings.metric,
            "challenger": gate_value(ctx, evaluate, report, "challenger").to_string(),
            # Evaluate's strings (<= 256 characters): the split rule, the decision threshold
            # (predict 1 when p >= it), the large/moderate data shifts, how the champion was
            # compared.
            **{
                key: registry_value(ctx, evaluate, report, key).to_string()
                for key in ("split_rule", "decision_threshold", "data_shift", "champion_comparison")
            },
            "training_job_name": train.properties.TrainingJobName,
            **monitor_metadata,
        },
        domain="MACHINE_LEARNING",
        task="CLASSIFICATION",
    )
    return ModelStep(name=STEP_REGISTER, step_args=step_args)
