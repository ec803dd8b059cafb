r"""The Register step: the challenger as a model package awaiting approval, with its metrics,
data baselines, integrity and lineage in the registry.

Every package is registered PendingManualApproval: no parameter can change that, and the
pipelines' role, the only one that may register, may create packages only that way
(constructs/sagemaker_execution_role.py).
CustomerMetadataProperties values must match `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`, 1-256
characters, so only values that always do are recorded: the version manifest's URI (named by
the DataDigest, where the raw InputDataUri may hold any character and 1,024 of them), the
DatasetVersion label (the trigger escapes it), digests, ARNs, and Evaluate's metadata-safe
strings (the model artifact's SHA-256, which the deployer verifies, and how the champion was
compared).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_code import offline
from pipeline_code.definition.context import Context
from pipeline_code.definition.contract import (
    BASELINE_METADATA_KEY,
    BASELINE_STATISTICS_FILE,
    EVALUATION_OUTPUT,
    REGISTERED_APPROVAL_STATUS,
    STEP_REGISTER,
)
from pipeline_code.definition.sdk import SUPPORTED_SDK_VERSION
from pipeline_code.definition.setting_rules import problem_type
from pipeline_code.definition.shared_steps import (
    gate_value,
    prepare_output,
    registry_value,
    version_manifest_uri,
)
from pipeline_code.definition.step_code import (
    EVALUATION_CONTRACT,
    has_category_features,
    read_string_constants,
)
from pipeline_code.definition.trained_model import TrainedModel
from pipeline_code.definition.trainers import trainer_image_uri

#: The container variables of script mode with the code inside the model archive; the default
#: Accept is text/csv as in algorithm mode (script mode's own default is JSON).
SCRIPT_MODE_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
}

# Registry metadata key -> evaluation.json constant (under LINEAGE_KEY) it is copied from.
# `model_artifact_sha256` is the deployer's key (lambdas/deploy_model/model_deployer/integrity).
LINEAGE_METADATA = {
    "model_artifact_sha256": "LINEAGE_MODEL_ARTIFACT_SHA256",
    # How the champion's features matched (the rows compared are `champion_comparison`).
    "champion_features": "LINEAGE_CHAMPION_COMPARISON",
}


def registry_task(schema: Mapping[str, Any]) -> str:
    """The package's Task (CreateModelPackage's enum): REGRESSION for a regression model,
    CLASSIFICATION for a binary or multi-class one."""
    return "REGRESSION" if problem_type(schema) == "regression" else "CLASSIFICATION"


def lineage_values(evaluate: Any, report: Any) -> dict[str, Any]:
    """The registry metadata Evaluate's report provides (JsonGet of evaluation.json)."""
    from sagemaker.core.workflow.functions import JsonGet

    names = read_string_constants(EVALUATION_CONTRACT)
    return {
        key: JsonGet(
            step_name=evaluate.name,
            property_file=report,
            json_path=f"{names['LINEAGE_KEY']}.{names[constant]}",
        )
        for key, constant in LINEAGE_METADATA.items()
    }


def serving_environment(schema: Mapping[str, Any]) -> dict[str, str] | None:
    """The serving container's script mode for a model with category features: Train puts
    the inference script and the fitted encoding into the model archive
    (steps/train/serving_files.py), so the container loads them from the model directory
    (no repack step, nothing downloaded). None: algorithm mode, numbers only."""
    if not has_category_features(schema):
        return None
    return dict(SCRIPT_MODE_ENVIRONMENT)


def label_metadata(schema: Mapping[str, Any]) -> dict[str, str]:
    """The target value class 1 stands for, when it is not 0/1 (registry-safe by its rule)."""
    positive = schema.get("positive_class")
    return {"positive_class": positive} if positive else {}


def register_step(
    ctx: Context,
    prepare: Any,
    model: TrainedModel,
    evaluate: Any,
    report: Any,
    baseline: Any = None,
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
    inference_image = trainer_image_uri(settings, "inference")
    builder = ModelBuilder(
        image_uri=inference_image,
        # CreateModelPackage takes no role (the pipeline's own role registers): this ARN-shaped
        # stand-in only satisfies the SDK, and the generator fails if it ever reaches the
        # definition.
        role_arn=offline.arn_shaped_role(),
        sagemaker_session=ctx.session,
        instance_type=settings.processing_instance_type,
        # The default ({"auto": False}) is truthy and switches on script mode, which adds
        # empty SAGEMAKER_PROGRAM/SAGEMAKER_SUBMIT_DIRECTORY variables to the serving container.
        dependencies=None,
        # The scikit-learn image serves only in script mode (no algorithm mode).
        env_vars=(
            dict(SCRIPT_MODE_ENVIRONMENT)
            if settings.sklearn is not None
            else serving_environment(settings.schema)
        ),
    )
    # Not constructor arguments in v3; the default model name is random (uuid4).
    builder.s3_model_data_url = model.artifacts
    builder.model_name = f"{settings.pipeline_name}-model"
    step_args = builder.register(
        model_package_group_name=offline.placeholder(offline.MODEL_PACKAGE_GROUP_NAME),
        content_types=["text/csv"],
        response_types=["text/csv"],
        approval_status=REGISTERED_APPROVAL_STATUS,
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
            "version_manifest_uri": version_manifest_uri(ctx),
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
            "training_job_name": model.training_job_name,
            **model.metadata,
            "champion_model_package_arn": params.champion_model_package_arn,
            **lineage_values(evaluate, report),
            **monitor_metadata,
            **label_metadata(settings.schema),
            **({"trainer": settings.trainer} if settings.trainer != "xgboost" else {}),
        },
        domain="MACHINE_LEARNING",
        task=registry_task(settings.schema),
    )
    return ModelStep(name=STEP_REGISTER, step_args=step_args)
