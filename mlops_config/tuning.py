"""`pipeline.tuning`: a SageMaker hyperparameter tuning job in place of the training job.

Off unless the block is present. It names search ranges over the XGBoost hyperparameters of
`pipeline.hyperparameters` (an integer hyperparameter gets an integer range, a fractional one
a continuous range, `values` a categorical one), the search strategy, and the budget
(`max_jobs` training jobs, `max_parallel_jobs` at once). The objective is not configured: it is
the gate metric on the validation split (so the tuner picks what the gate judges), which
train.py reports as it trains.

Bounds come from botocore's model of CreateHyperParameterTuningJob (30 ranges of each kind,
1 to 30 categorical values, at least one job and one parallel job) and from the
hyperparameters' own bounds; a range outside them is an error naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import model_validator

from mlops_config.rules import (
    Allowed,
    Integer,
    Number,
    OneOf,
    Section,
    allowed,
    field_error,
    rule_error,
)

# botocore's sagemaker model: ParameterRanges lists hold at most 30 ranges each,
# CategoricalParameterRange.Values 1 to 30 values; MaxNumberOfTrainingJobs and
# MaxParallelTrainingJobs are at least 1 (botocore gives no maximum). The upper bounds of the
# budget, 500 jobs and 100 at once, are this project's own caps against a typo's bill, not
# limits of the API; the account's SageMaker quotas may be lower and then refuse the job.
MAX_CATEGORICAL_VALUES = 30
MAX_TUNING_JOBS = 500
MAX_PARALLEL_TUNING_JOBS = 100

#: cdk.json's strategy -> the API's HyperParameterTuningJobStrategyType.
STRATEGIES = {"bayesian": "Bayesian", "hyperband": "Hyperband", "random": "Random"}
#: cdk.json's scaling -> the API's HyperParameterScalingType.
SCALINGS = {"auto": "Auto", "linear": "Linear", "log": "Logarithmic"}
#: The hyperparameters the built-in XGBoost algorithm marks `tunable=True`: the tuning service
#: checks a tuned name against the algorithm's list, even for a script-mode trial
#: (aws/sagemaker-python-sdk#2226). From aws/sagemaker-xgboost-container,
#: src/sagemaker_xgboost_container/algorithm_mode/hyperparameter_validation.py at commit
#: cb8df91cd44c7b01c53ccf321fd3fdf3eb78adae (e.g. early_stopping_rounds is not tunable).
XGBOOST_TUNABLE = (
    "num_round",
    "eta",
    "gamma",
    "max_depth",
    "min_child_weight",
    "max_delta_step",
    "subsample",
    "colsample_bytree",
    "colsample_bylevel",
    "colsample_bynode",
    "lambda",
    "alpha",
)
#: A number as train.py's summary (`0.9134`) and XGBoost's evaluation lines (`0.91342`,
#: `1.2e+04`) print it.
_NUMBER = r"([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"


@dataclass(frozen=True)
class TuningObjective:
    """What a tuning job maximises or minimises for one gate metric: `name` (the tuning job's
    objective metric), `type` (Maximize or Minimize), the `regex` that reads it from a trial's
    log, `summary` (train.py's summary name: the model metadata's `best_<summary>`), whether
    XGBoost's evaluation lines report it every 10 rounds (`intermediate`: what early stopping and
    Hyperband judge) and, when it is a stand-in, why it ranks the trials as the gate metric."""

    name: str
    type: str
    regex: str
    summary: str
    intermediate: bool
    stands_in: str = ""


def _objective(
    summary: str, xgboost: str | None, kind: str, stands_in: str = ""
) -> TuningObjective:
    # train.py's summary `validation_<name> <value>`; XGBoost's `validation-<metric>:<value>`
    lines = [f"validation-{xgboost}:"] if xgboost else []
    regex = f"(?:{'|'.join([*lines, f'{summary} '])}){_NUMBER}"
    return TuningObjective(
        f"validation:{summary.removeprefix('validation_')}",
        kind,
        regex,
        summary,
        xgboost is not None,
        stands_in,
    )


_RMSE = "rmse"
#: (schema.problem_type, gate metric) -> the tuning objective: the gate metric on the
#: validation split as train.py prints it (objectives.validation_summary and XGBoost's
#: eval_metric of that problem type). mse and r2 are ranked by the validation RMSE: on one
#: validation split both are monotone in it (mse = rmse^2, r2 = 1 - mse / var(y)), so the best
#: trial is the same. A binary model's threshold metrics (at its decision threshold, as the gate
#: computes them) and a multi-class model's F1s are printed only in the summary, when a trial ends.
TUNING_OBJECTIVES: dict[tuple[str, str], TuningObjective] = {
    ("binary", "auc"): _objective("validation_auc", "auc", "Maximize"),
    **{
        ("binary", name): _objective(f"validation_{name}", None, "Maximize")
        for name in ("f1", "accuracy", "precision", "recall")
    },
    ("multiclass", "accuracy"): _objective("validation_accuracy", None, "Maximize"),
    ("multiclass", "macro_f1"): _objective("validation_macro_f1", None, "Maximize"),
    ("multiclass", "weighted_f1"): _objective("validation_weighted_f1", None, "Maximize"),
    ("multiclass", "log_loss"): _objective("validation_mlogloss", "mlogloss", "Minimize"),
    ("regression", "rmse"): _objective("validation_rmse", _RMSE, "Minimize"),
    ("regression", "mae"): _objective("validation_mae", None, "Minimize"),
    ("regression", "mse"): _objective(
        "validation_rmse", _RMSE, "Minimize", "mse = rmse^2 on the validation split"
    ),
    ("regression", "r2"): _objective(
        "validation_rmse", _RMSE, "Minimize", "r2 = 1 - rmse^2 / var(y) on the validation split"
    ),
}


def tunable_metrics(problem_type: str | None = None) -> tuple[str, ...]:
    """The gate metrics tuning can take as its objective (of `problem_type`, or of any)."""
    found = [m for p, m in TUNING_OBJECTIVES if problem_type in (None, p)]
    return tuple(dict.fromkeys(found))


def tuning_objective(problem_type: str, metric: str) -> TuningObjective:
    """The objective of gate metric `metric` for `problem_type` (LookupError: not tunable)."""
    return TUNING_OBJECTIVES[(problem_type, metric)]


class SearchRange(Section):
    """The values one hyperparameter is searched over: `min`/`max` (with `scaling`), or
    `values` (a categorical range)."""

    min: Annotated[float, Number(-1e12, 1e12)] | None = None
    """Lowest value tried (with `max`)."""
    max: Annotated[float, Number(-1e12, 1e12)] | None = None
    """Highest value tried (with `min`)."""
    scaling: Annotated[Literal["auto", "linear", "log"], OneOf()] = "auto"
    """How `min`..`max` is searched: `auto` (SageMaker chooses), `linear`, or `log` (for ranges
    spanning orders of magnitude, such as eta; `min` above 0)."""
    values: (
        Annotated[
            tuple[Annotated[float, Number(-1e12, 1e12)], ...],
            Allowed(f"a list of 1 to {MAX_CATEGORICAL_VALUES} numbers"),
        ]
        | None
    ) = None
    """The values tried, as a categorical range (instead of `min`/`max`)."""

    @model_validator(mode="after")
    def _one_kind(self) -> SearchRange:
        if self.values is not None:
            if self.min is not None or self.max is not None:
                raise field_error(
                    "values", list(self.values), allowed("give values or min/max, not both")
                )
            if not 1 <= len(self.values) <= MAX_CATEGORICAL_VALUES:
                raise field_error(
                    "values",
                    list(self.values),
                    allowed(f"a list of 1 to {MAX_CATEGORICAL_VALUES} numbers"),
                )
            if len(set(self.values)) != len(self.values):
                raise field_error("values", list(self.values), allowed("values without repeats"))
            if self.scaling != "auto":
                raise field_error(
                    "scaling", self.scaling, allowed("a categorical range (values) has no scaling")
                )
            return self
        if self.min is None or self.max is None:
            raise rule_error(
                "is missing: a range needs min and max, or values",
                field="max" if self.min is not None else "min",
            )
        if self.min >= self.max:
            raise field_error("max", self.max, allowed(f"above min ({self.min:g})"))
        if self.scaling == "log" and self.min <= 0:
            raise field_error("min", self.min, allowed("above 0 with scaling log"))
        return self


class TuningConfig(Section):
    """Hyperparameter tuning (off when absent): SageMaker runs up to `max_jobs` training jobs
    over `ranges` and the best one's model goes on to Evaluate and the gate."""

    ranges: Annotated[dict[str, SearchRange], Allowed("an object of hyperparameter -> range")]
    """Hyperparameter name (a key of `pipeline.hyperparameters`) -> its search range. The
    others keep their configured value in every trial."""
    strategy: Annotated[Literal["bayesian", "hyperband", "random"], OneOf()] = "bayesian"
    """How the next trials are chosen: `bayesian` (learns from the finished trials),
    `hyperband` (starts many, stops the weak early; brings its own early stopping), `random`."""
    max_jobs: Annotated[int, Integer(1, MAX_TUNING_JOBS)] = 10
    """Training jobs the tuning job may run in all: the budget (cost = jobs x one training
    job's price)."""
    max_parallel_jobs: Annotated[int, Integer(1, MAX_PARALLEL_TUNING_JOBS)] = 2
    """Training jobs running at once (at most max_jobs); fewer lets bayesian learn more from
    each finished trial."""
    early_stopping: Annotated[Literal["auto", "off"], OneOf()] = "off"
    """`auto`: SageMaker stops trials unlikely to beat the best so far (cheaper; a stopped
    trial saves no model, see the README; refused with multiclass accuracy and regression mae,
    reported only when a trial ends); `off` (every trial runs to its end; required with
    hyperband, which stops trials itself)."""

    @model_validator(mode="after")
    def _consistent(self) -> TuningConfig:
        from mlops_config.pipeline import Hyperparameters

        known = list(Hyperparameters.model_fields)
        if not self.ranges:
            raise field_error("ranges", {}, allowed("at least one hyperparameter to search"))
        for name, search in self.ranges.items():
            if name not in known:
                raise field_error(
                    "ranges", name, allowed(f"a hyperparameter: one of {', '.join(known)}")
                )
            if name not in XGBOOST_TUNABLE:
                tunable = ", ".join(n for n in known if n in XGBOOST_TUNABLE)
                raise field_error(
                    "ranges",
                    name,
                    allowed(f"a hyperparameter built-in XGBoost can tune: one of {tunable}"),
                )
            low, high, integral = hyperparameter_bounds(name)
            for value in search.values if search.values is not None else (search.min, search.max):
                assert value is not None
                if not low <= value <= high or (integral and value != int(value)):
                    kind = "an integer" if integral else "a number"
                    raise field_error(
                        f"ranges.{name}",
                        value,
                        allowed(f"{kind} from {low:g} to {high:g} (the bounds of {name})"),
                    )
        if self.max_parallel_jobs > self.max_jobs:
            raise field_error(
                "max_parallel_jobs",
                self.max_parallel_jobs,
                allowed(f"at most max_jobs ({self.max_jobs})"),
            )
        if self.strategy == "hyperband":
            if self.early_stopping != "off":
                raise field_error(
                    "early_stopping",
                    self.early_stopping,
                    allowed("off with strategy hyperband, which stops weak trials itself"),
                )
            if "num_round" in self.ranges:
                raise field_error(
                    "ranges",
                    "num_round",
                    allowed(
                        "with strategy hyperband, num_round is hyperband's resource (the "
                        "rounds a trial may run), not a range"
                    ),
                )
        return self


def tuning_refusal(
    metric: str,
    training_instance_count: int,
    problem_type: str | None = None,
    strategy: str | None = None,
    early_stopping: str | None = None,
) -> str | None:
    """Why `pipeline.tuning` cannot run with these pipeline settings (the verdict after
    `pipeline.tuning`), or None. One rule for cdk.json and the generator's settings; without
    `problem_type` it is the metric's, if only one problem type has it."""
    if problem_type is None:
        from mlops_config.pipeline import PROBLEM_METRICS

        # a metric of one problem type only (all but accuracy) names its problem type
        types = [problem for problem, metrics in PROBLEM_METRICS.items() if metric in metrics]
        problem_type = types[0] if len(types) == 1 else None
    tunable = tunable_metrics(problem_type)
    if metric not in tunable:
        of = f" with schema.problem_type {problem_type}" if problem_type else ""
        return (
            f"is not allowed with metric {metric}{of}: the objective is the gate metric on the "
            f"validation split and train.py reports only {', '.join(tunable)} there while it "
            "trains"
        )
    stopping = {"hyperband": strategy == "hyperband", "auto": early_stopping == "auto"}
    if (
        problem_type is not None
        and any(stopping.values())
        and not tuning_objective(problem_type, metric).intermediate
    ):
        # nothing to stop on: a trial's objective is printed once, when it has finished
        setting, stops, instead = (
            ("strategy hyperband", "hyperband stops", "use bayesian or random")
            if stopping["hyperband"]
            else ("early_stopping auto", "early stopping stops", "set early_stopping to off")
        )
        return (
            f"is not allowed with {setting} and metric {metric}: {stops} trials on their "
            f"intermediate objective values, and XGBoost reports none for {metric} while it "
            f"trains ({instead})"
        )
    if training_instance_count > 1:
        # Tuning runs train.py in the container's script mode (the tuning API takes no
        # entrypoint): one host per trial keeps the distributed contract out of it.
        return (
            f"is not allowed with training_instance_count {training_instance_count}: each "
            "trial trains on one instance (set training_instance_count to 1)"
        )
    return None


def hyperparameter_bounds(name: str) -> tuple[float, float, bool]:
    """(low, high, integral) of `pipeline.hyperparameters.<name>`, from its rule."""
    from mlops_config.pipeline import Hyperparameters

    for rule in Hyperparameters.model_fields[name].metadata:
        if isinstance(rule, Integer):
            return rule.low, rule.high, True
        if isinstance(rule, Number):
            return rule.low, rule.high, False
    raise LookupError(f"pipeline.hyperparameters.{name} has no bounds")


def fixed_hyperparameters(tuning: TuningConfig | None) -> frozenset[str]:
    """The hyperparameters a tuned definition does not take as run-time pipeline parameters:
    the ranged ones (the trials' values come from the search, so a parameter would show a value
    that trained nothing) and, with hyperband, num_round (MaxResource is derived from it: a
    larger override would stop every trial before it saves its model)."""
    if tuning is None:
        return frozenset()
    return frozenset(tuning.ranges) | (
        {"num_round"} if tuning.strategy == "hyperband" else frozenset()
    )


def tuning_settings(tuning: TuningConfig | None) -> dict[str, Any] | None:
    """The generator's `tuning` settings (None: tuning is off)."""
    if tuning is None:
        return None
    return tuning.model_dump(exclude_none=True)
