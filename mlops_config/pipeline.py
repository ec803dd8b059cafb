"""The training pipeline's settings: job sizes and limits, XGBoost hyperparameters and the
champion/challenger gate."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import model_validator

from mlops_config.rules import (
    INSTANCE_TYPE,
    ISO_DURATION,
    Boolean,
    Integer,
    Number,
    NumberOr,
    NumberSaying,
    OneOf,
    Section,
    Text,
    allowed,
    field_error,
    rule_error,
)
from mlops_config.trainer import CustomConfig, SklearnConfig, Trainer
from mlops_config.tuning import TuningConfig, tuning_refusal

Metric = Literal[
    "auc", "f1", "accuracy", "precision", "recall", "macro_f1", "weighted_f1", "log_loss",
    "rmse", "mae", "mse", "r2",
]  # fmt: skip
METRICS: tuple[str, ...] = get_args(Metric)
#: The gate metrics of each `schema.problem_type` (steps/common/problem_types.py holds the same
#: table for the step code; a test pins that they agree).
PROBLEM_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "f1", "accuracy", "precision", "recall"),
    "multiclass": ("accuracy", "macro_f1", "weighted_f1", "log_loss"),
    "regression": ("rmse", "mae", "mse", "r2"),
}
#: Smaller is better: metric_floor is a ceiling and the gate's delta is negated.
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mse"})
#: Metrics in [0, 1] (so is their floor); r2 is at most 1, the errors at least 0.
UNIT_INTERVAL = frozenset(
    {"auc", "f1", "accuracy", "precision", "recall", "macro_f1", "weighted_f1"}
)
#: Bounds of metric_floor and champion_tolerance as JSON Schema sees them; each metric narrows.
_UNBOUNDED = 1e12
#: Metrics a threshold can be chosen to maximise (precision or recall alone would pick a
#: degenerate one: the highest or the lowest score).
THRESHOLD_METRICS = ("f1", "accuracy")
MAX_F1 = "max-f1"
MAX_GATE_METRIC = "max-gate-metric"
BALANCED = "balanced"
BOOTSTRAP = "bootstrap"
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
    """Instances of the prepare and predict jobs: above 1, PrepareShards reads the version's
    files ShardedByS3Key (each instance its share) and Prepare merges the parts on one
    instance; EvaluateShards predicts the test split's files the same way and Evaluate
    decides the gate from the predictions on one instance. Any split, problem type and
    trainer; the parts and predictions expire a day after cache_expire_after."""
    training_instance_type: InstanceType = "ml.m5.xlarge"
    """Instance type of the training job."""
    training_instance_count: Annotated[int, Integer(1, 10)] = 1
    """Instances of the training job: above 1, XGBoost trains one model across them (Prepare
    writes one train shard per instance, fed ShardedByS3Key)."""
    use_spot: Annotated[bool, Boolean()] = False
    """Managed spot training with checkpoints."""
    max_runtime_seconds: Seconds = 3600
    """A job running longer is stopped."""
    max_wait_seconds: Seconds = 7200
    """With use_spot: runtime plus the time to wait for spot capacity; more than the runtime."""
    hyperparameters: Hyperparameters = Hyperparameters()
    metric: Annotated[Metric, OneOf()] = "auc"
    """Gate metric, one of schema.problem_type's: binary auc, f1, accuracy, precision,
    recall; multiclass accuracy, macro_f1, weighted_f1, log_loss; regression rmse, mae, mse,
    r2. Lower is better for log_loss, rmse, mae and mse."""
    metric_floor: Annotated[
        float,
        NumberSaying(
            -_UNBOUNDED,
            _UNBOUNDED,
            "a number from 0 to 1 (log_loss, rmse, mae, mse: at least 0; r2: at most 1)",
        ),
    ] = 0.8
    """Absolute floor the challenger's metric must clear (from 0 to 1; r2 at most 1). For a
    lower-is-better metric it is a ceiling the challenger must not exceed, in the metric's
    units. The default is a binary model's: a multiclass or regression config must set it."""
    champion_tolerance: Annotated[
        float,
        NumberSaying(
            0.0, _UNBOUNDED, "a number from 0 to 0.5 (log_loss, rmse, mae, mse, r2: at least 0)"
        ),
    ] = 0.01
    """How much worse than the champion the challenger may be, in the metric's units: the gate
    fails only when the champion is better with 97.5 % confidence and the one-sided 97.5 %
    lower bound of the delta is below -champion_tolerance."""
    min_positives: Annotated[int, Integer(1, 100_000)] = 100
    """Rows of each class the gate needs among the rows it decides on; fewer fail the gate
    ("too little evaluation data")."""
    gate_method: Annotated[Literal["delong", "bootstrap"], OneOf()] | None = None
    """Standard error of the gate metric's difference: DeLong's (exact, AUC only) or the paired
    bootstrap's. The default follows the metric: delong for auc, else bootstrap; delong with
    another metric is refused."""
    bootstrap_samples: Annotated[int, Integer(100, 100_000)] = 1000
    """Paired bootstrap resamples (standard errors of the threshold metrics, metric spreads)."""
    decision_threshold: Annotated[float | str, NumberOr(0.0, 1.0, (MAX_F1, MAX_GATE_METRIC))] = (
        MAX_F1
    )
    """Probability from which a row is predicted positive, chosen on the validation split:
    max-f1, max-gate-metric (metric f1 or accuracy) or a fixed number; stored with the model."""
    scale_pos_weight: Annotated[float | str, NumberOr(0.0, 10_000.0, (BALANCED,))] = 1
    """Class weight of the positives in training (1: none; balanced: negatives/positives).
    Any weight is undone by Platt scaling on the validation split, baked into the model."""
    max_parallel_steps: Annotated[int, Integer(1, 50)] = 4
    """Steps of one execution running at once."""
    cache_expire_after: Annotated[
        str, Text(ISO_DURATION, "an ISO 8601 duration such as P30D or PT12H")
    ] = "P30D"
    """Step cache lifetime."""
    xgboost_framework_version: Annotated[Literal["3.0-5"], OneOf()] = "3.0-5"
    """SageMaker XGBoost image; the local xgboost is pinned to match."""
    tuning: TuningConfig | None = None
    """Hyperparameter tuning in place of the training job (absent: off): search ranges,
    strategy and budget (mlops_config.tuning)."""
    trainer: Annotated[Trainer, OneOf()] = "xgboost"
    """Training code: xgboost (train.py, SageMaker XGBoost image) or sklearn (the estimator of
    pipeline.sklearn, SageMaker scikit-learn image; one instance, no tuning)."""
    sklearn: SklearnConfig | None = None
    """With trainer sklearn: the estimator class and its parameters (absent:
    HistGradientBoostingClassifier with its defaults)."""
    custom: CustomConfig | None = None
    """With trainer custom (required there): the training image and the script's folder."""

    @model_validator(mode="after")
    def _trainer_can_run(self) -> PipelineConfig:
        for block in ("sklearn", "custom"):
            if self.trainer != block and getattr(self, block) is not None:
                verdict = allowed(f"with trainer {self.trainer} (set trainer {block})")
                raise field_error(block, "{...}", verdict)
        if self.trainer == "xgboost":
            return self
        if self.trainer == "custom" and self.custom is None:
            raise field_error("custom", None, "is required with trainer custom")
        if self.training_instance_count > 1:
            raise field_error(
                "training_instance_count",
                self.training_instance_count,
                allowed(f"with trainer {self.trainer}: it trains on one instance"),
            )
        if self.tuning is not None:
            raise rule_error(
                f"is not allowed with trainer {self.trainer}: the tuning job searches train.py's "
                "XGBoost hyperparameters",
                field="tuning",
            )
        return self

    @model_validator(mode="after")
    def _one_gpu_instance(self) -> PipelineConfig:
        # train.py refuses several GPU hosts when the job runs (untested there): say it at synth
        family = self.training_instance_type.removeprefix("ml.").split(".")[0]
        if self.training_instance_count > 1 and family[:1] in ("p", "g"):
            raise field_error(
                "training_instance_count",
                self.training_instance_count,
                allowed(
                    f"with GPU instance type {self.training_instance_type}: training on several "
                    "GPU instances is untested (use 1 GPU instance or CPU instances)"
                ),
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _gate_method_follows_the_metric(cls, data: Any) -> Any:
        # DeLong's variance is AUC's: unset, every other metric takes the bootstrap.
        if isinstance(data, dict) and data.get("gate_method") is None:
            return {
                **data,
                "gate_method": "delong" if data.get("metric", "auc") == "auc" else BOOTSTRAP,
            }
        return data

    @model_validator(mode="after")
    def _delong_is_for_auc(self) -> PipelineConfig:
        if self.gate_method == "delong" and self.metric != "auc":
            raise field_error(
                "gate_method",
                self.gate_method,
                allowed(
                    f"with metric {self.metric}: DeLong's standard error is AUC's; use "
                    f"{BOOTSTRAP} (or leave gate_method unset)"
                ),
            )
        return self

    @model_validator(mode="after")
    def _threshold_can_be_maximised(self) -> PipelineConfig:
        if self.decision_threshold == MAX_GATE_METRIC and self.metric not in THRESHOLD_METRICS:
            raise field_error(
                "decision_threshold",
                self.decision_threshold,
                allowed(
                    f"with metric {self.metric}: maximising needs a threshold metric "
                    f"({', '.join(THRESHOLD_METRICS)}); use {MAX_F1} or a number"
                ),
            )
        return self

    @model_validator(mode="after")
    def _floor_fits_metric(self) -> PipelineConfig:
        # (that a lower-is-better metric's ceiling and tolerance are set is checked with the
        # problem type: mlops_config.loading._check_problem_type)
        metric = self.metric
        if metric in UNIT_INTERVAL:
            floor_ok, floor_range, tolerance_high = 0 <= self.metric_floor <= 1, "from 0 to 1", 0.5
        elif metric == "r2":
            floor_ok, floor_range, tolerance_high = self.metric_floor <= 1, "at most 1", _UNBOUNDED
        else:
            floor_ok, floor_range, tolerance_high = self.metric_floor >= 0, "at least 0", _UNBOUNDED
        if not floor_ok:
            suffix = "" if metric in UNIT_INTERVAL else f" with metric {metric}"
            raise field_error(
                "metric_floor", self.metric_floor, allowed(f"a number {floor_range}{suffix}")
            )
        if self.champion_tolerance > tolerance_high:
            raise field_error(
                "champion_tolerance", self.champion_tolerance, allowed("a number from 0 to 0.5")
            )
        return self

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

    @model_validator(mode="after")
    def _tuning_can_run(self) -> PipelineConfig:
        if self.tuning is None:
            return self
        refusal = tuning_refusal(self.metric, self.training_instance_count)
        if refusal is not None:
            raise rule_error(refusal, field="tuning")
        return self
