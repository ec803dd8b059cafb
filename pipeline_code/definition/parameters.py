"""The pipeline parameters of the pipelines, with their defaults from the settings.

With `pipeline.tuning`, the hyperparameters a run may not override (mlops_config.tuning's
fixed_hyperparameters) are their configured values, not pipeline parameters."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from mlops_config.tuning import fixed_hyperparameters
from pipeline_code.definition.contract import (
    MODEL_ROLES,
    PARAM_CHAMPION_MODEL_PACKAGE_ARN,
    PARAM_CODE_COMMIT,
    PARAM_COLSAMPLE_BYTREE,
    PARAM_DATA_DIGEST,
    PARAM_DATASET_VERSION,
    PARAM_EARLY_STOPPING_ROUNDS,
    PARAM_ETA,
    PARAM_INPUT_DATA_URI,
    PARAM_MAX_DEPTH,
    PARAM_MIN_CHILD_WEIGHT,
    PARAM_MODEL_PACKAGE_ARN,
    PARAM_MODEL_ROLE,
    PARAM_NUM_ROUND,
    PARAM_PROCESSING_INSTANCE_COUNT,
    PARAM_PROCESSING_INSTANCE_TYPE,
    PARAM_SUBSAMPLE,
    PARAM_TRAINING_INSTANCE_TYPE,
)
from pipeline_code.definition.settings import PipelineSettings


@dataclass(frozen=True)
class _ParameterSet:
    def all(self) -> list[Any]:
        """Every parameter, in definition order (a fixed value is none)."""
        from sagemaker.core.workflow.parameters import Parameter

        values = [getattr(self, field.name) for field in fields(self)]
        return [value for value in values if isinstance(value, Parameter)]


@dataclass(frozen=True)
class TrainingParameters(_ParameterSet):
    """The training pipeline's parameters (SDK objects), in definition order."""

    input_data_uri: Any
    dataset_version: Any
    data_digest: Any
    code_commit: Any
    processing_instance_type: Any
    processing_instance_count: Any
    training_instance_type: Any
    num_round: Any
    max_depth: Any
    eta: Any
    subsample: Any
    colsample_bytree: Any
    min_child_weight: Any
    early_stopping_rounds: Any
    champion_model_package_arn: Any


def training_parameters(settings: PipelineSettings) -> TrainingParameters:
    from sagemaker.core.workflow.parameters import (
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )

    hp = settings.hyperparameters
    fixed = fixed_hyperparameters(settings.tuning)

    def hyperparameter(kind: Any, name: str, field: str) -> Any:
        value = getattr(hp, field)
        return value if field in fixed else kind(name, default_value=value)

    return TrainingParameters(
        input_data_uri=ParameterString(PARAM_INPUT_DATA_URI),
        dataset_version=ParameterString(PARAM_DATASET_VERSION),
        data_digest=ParameterString(PARAM_DATA_DIGEST),
        code_commit=ParameterString(PARAM_CODE_COMMIT, default_value=settings.code_commit),
        processing_instance_type=ParameterString(
            PARAM_PROCESSING_INSTANCE_TYPE, default_value=settings.processing_instance_type
        ),
        processing_instance_count=ParameterInteger(
            PARAM_PROCESSING_INSTANCE_COUNT, default_value=settings.processing_instance_count
        ),
        training_instance_type=ParameterString(
            PARAM_TRAINING_INSTANCE_TYPE, default_value=settings.training_instance_type
        ),
        num_round=hyperparameter(ParameterInteger, PARAM_NUM_ROUND, "num_round"),
        max_depth=hyperparameter(ParameterInteger, PARAM_MAX_DEPTH, "max_depth"),
        eta=hyperparameter(ParameterFloat, PARAM_ETA, "eta"),
        subsample=hyperparameter(ParameterFloat, PARAM_SUBSAMPLE, "subsample"),
        colsample_bytree=hyperparameter(ParameterFloat, PARAM_COLSAMPLE_BYTREE, "colsample_bytree"),
        min_child_weight=hyperparameter(ParameterFloat, PARAM_MIN_CHILD_WEIGHT, "min_child_weight"),
        early_stopping_rounds=hyperparameter(
            ParameterInteger, PARAM_EARLY_STOPPING_ROUNDS, "early_stopping_rounds"
        ),
        champion_model_package_arn=ParameterString(PARAM_CHAMPION_MODEL_PACKAGE_ARN),
    )


@dataclass(frozen=True)
class EvaluationParameters(_ParameterSet):
    """The evaluation pipeline's parameters (SDK objects), in definition order."""

    input_data_uri: Any
    dataset_version: Any
    data_digest: Any
    model_package_arn: Any
    model_role: Any
    processing_instance_type: Any


def evaluation_parameters(settings: PipelineSettings) -> EvaluationParameters:
    from sagemaker.core.workflow.parameters import ParameterString

    return EvaluationParameters(
        # Same names as the training pipeline's: the start-training Lambda starts both.
        input_data_uri=ParameterString(PARAM_INPUT_DATA_URI),
        dataset_version=ParameterString(PARAM_DATASET_VERSION),
        data_digest=ParameterString(PARAM_DATA_DIGEST),
        model_package_arn=ParameterString(PARAM_MODEL_PACKAGE_ARN, default_value=""),
        # A run started by hand is a candidate unless it says otherwise: only the trigger,
        # which chose the served package, passes "production".
        model_role=ParameterString(
            PARAM_MODEL_ROLE, default_value=MODEL_ROLES[0], enum_values=list(MODEL_ROLES)
        ),
        processing_instance_type=ParameterString(
            PARAM_PROCESSING_INSTANCE_TYPE, default_value=settings.processing_instance_type
        ),
    )


@dataclass(frozen=True)
class ScoringParameters(_ParameterSet):
    """The scoring pipeline's parameters (batch serving), in definition order."""

    input_data_uri: Any
    dataset_version: Any
    data_digest: Any
    model_package_arn: Any
    processing_instance_type: Any


def scoring_parameters(settings: PipelineSettings) -> ScoringParameters:
    from sagemaker.core.workflow.parameters import ParameterString

    return ScoringParameters(
        # The trigger's names: it starts this pipeline like the other two.
        input_data_uri=ParameterString(PARAM_INPUT_DATA_URI),
        dataset_version=ParameterString(PARAM_DATASET_VERSION),
        data_digest=ParameterString(PARAM_DATA_DIGEST),
        # The trigger passes the served package; "" (nothing served) fails the Check step.
        model_package_arn=ParameterString(PARAM_MODEL_PACKAGE_ARN, default_value=""),
        processing_instance_type=ParameterString(
            PARAM_PROCESSING_INSTANCE_TYPE, default_value=settings.processing_instance_type
        ),
    )
