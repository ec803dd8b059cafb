"""The training pipeline's settings: job sizes and limits, XGBoost hyperparameters and the
champion/challenger gate."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import model_validator

from mlops_config.rules import (
    INSTANCE_TYPE,
    ISO_DURATION,
    Boolean,
    Integer,
    Number,
    OneOf,
    Section,
    Text,
    allowed,
    field_error,
)

Metric = Literal["auc", "f1", "accuracy", "precision", "recall"]
METRICS: tuple[str, ...] = get_args(Metric)
InstanceType = Annotated[str, Text(INSTANCE_TYPE, "a SageMaker instance type such as ml.m5.xlarge")]
Seconds = Annotated[int, Integer(60, 432_000)]


class Hyperparameters(Section):
    """XGBoost hyperparameters (the pipeline parameters' defaults)."""

    num_round: Annotated[int, Integer(1, 10_000)] = 300
    max_depth: Annotated[int, Integer(1, 20)] = 6
    eta: Annotated[float, Number(0.0001, 1.0)] = 0.1
    subsample: Annotated[float, Number(0.1, 1.0)] = 0.8
    colsample_bytree: Annotated[float, Number(0.1, 1.0)] = 0.8
    min_child_weight: Annotated[float, Number(0.0, 1000.0)] = 1
    early_stopping_rounds: Annotated[int, Integer(1, 1000)] = 20


class PipelineConfig(Section):
    processing_instance_type: InstanceType = "ml.m5.xlarge"
    """Instance type of the prepare and evaluate jobs."""
    processing_instance_count: Annotated[int, Integer(1, 10)] = 1
    training_instance_type: InstanceType = "ml.m5.xlarge"
    """Instance type of the training job."""
    training_instance_count: Annotated[int, Integer(1, 10)] = 1
    use_spot: Annotated[bool, Boolean()] = False
    """Managed spot training with checkpoints."""
    max_runtime_seconds: Seconds = 3600
    """A job running longer is stopped."""
    max_wait_seconds: Seconds = 7200
    """With use_spot: runtime plus the time to wait for spot capacity; more than the runtime."""
    hyperparameters: Hyperparameters = Hyperparameters()
    metric: Annotated[Metric, OneOf()] = "auc"
    """Gate metric (higher is better)."""
    metric_floor: Annotated[float, Number(0.0, 1.0)] = 0.8
    """Absolute floor the challenger's metric must clear."""
    champion_tolerance: Annotated[float, Number(0.0, 0.5)] = 0.01
    """How much worse than the champion the challenger may be (lower 95% bound of the
    paired-bootstrap delta)."""
    bootstrap_samples: Annotated[int, Integer(100, 100_000)] = 1000
    """Paired bootstrap resamples for the delta's confidence interval."""
    max_parallel_steps: Annotated[int, Integer(1, 50)] = 4
    """Steps of one execution running at once."""
    cache_expire_after: Annotated[
        str, Text(ISO_DURATION, "an ISO 8601 duration such as P30D or PT12H")
    ] = "P30D"
    """Step cache lifetime."""
    xgboost_framework_version: Annotated[Literal["3.0-5"], OneOf()] = "3.0-5"
    """SageMaker XGBoost image; the local xgboost is pinned to match."""

    @model_validator(mode="after")
    def _spot_can_wait(self) -> PipelineConfig:
        # Wait equal to runtime leaves no time to get spot capacity: every wait kills the job.
        if self.use_spot and self.max_wait_seconds <= self.max_runtime_seconds:
            raise field_error(
                "max_wait_seconds",
                self.max_wait_seconds,
                allowed(
                    f"with use_spot it must exceed max_runtime_seconds "
                    f"({self.max_runtime_seconds}) by the time to wait for spot capacity"
                ),
            )
        return self
