"""pipeline.tuning: off when absent; search ranges within the hyperparameters' bounds and
botocore's model of CreateHyperParameterTuningJob; combinations that cannot run are refused
with one line naming the key."""

from __future__ import annotations

import copy
from typing import Any

import botocore.session
import pytest

from mlops_config import ConfigError, parse_environment, read_cdk_json_context
from mlops_config.tuning import (
    MAX_CATEGORICAL_VALUES,
    SCALINGS,
    STRATEGIES,
    hyperparameter_bounds,
    tunable_metrics,
    tuning_objective,
    tuning_refusal,
)

RANGES = {
    "eta": {"min": 0.01, "max": 0.3, "scaling": "log"},
    "max_depth": {"min": 3, "max": 10},
    "subsample": {"values": [0.6, 0.8, 1.0]},
}
MODEL = botocore.session.get_session().get_service_model("sagemaker")


def parsed(tuning: Any, **pipeline: Any) -> Any:
    context = copy.deepcopy(read_cdk_json_context())
    block = context["environments"]["dev"].setdefault("pipeline", {})
    block.update(pipeline)
    if tuning is not None:
        block["tuning"] = tuning
    return parse_environment(context, "dev").pipeline


def error(tuning: Any, **pipeline: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        parsed(tuning, **pipeline)
    return str(raised.value)


def test_tuning_is_off_unless_configured_in_every_environment() -> None:
    context = read_cdk_json_context()
    for name in context["environments"]:
        assert parse_environment(context, name).pipeline.tuning is None


def test_a_tuning_block_keeps_its_ranges_strategy_and_budget() -> None:
    tuning = parsed({"ranges": RANGES, "strategy": "random", "max_jobs": 6}).tuning
    assert tuning.strategy == "random" and tuning.max_jobs == 6 and tuning.max_parallel_jobs == 2
    assert tuning.early_stopping == "off"  # a stopped trial saves no model
    assert tuning.ranges["eta"].scaling == "log" and tuning.ranges["subsample"].values == (
        0.6,
        0.8,
        1.0,
    )


@pytest.mark.parametrize(
    ("tuning", "pipeline", "message"),
    [
        (
            {"ranges": {"etaa": {"min": 0.1, "max": 0.2}}},
            {},
            "environments.dev.pipeline.tuning.ranges = 'etaa' is not allowed: a hyperparameter",
        ),
        (
            {"ranges": {"early_stopping_rounds": {"min": 5, "max": 50}}},
            {},
            "environments.dev.pipeline.tuning.ranges = 'early_stopping_rounds' is not allowed: a "
            "hyperparameter built-in XGBoost can tune: one of num_round, max_depth, eta,",
        ),
        (
            {"ranges": {"eta": {"min": 0.01, "max": 3}}},
            {},
            "environments.dev.pipeline.tuning.ranges.eta = 3 is not allowed: a number from "
            "0.0001 to 1 (the bounds of eta)",
        ),
        (
            {"ranges": {"max_depth": {"min": 3.5, "max": 8}}},
            {},
            "environments.dev.pipeline.tuning.ranges.max_depth = 3.5 is not allowed: an integer",
        ),
        (
            {"ranges": {"eta": {"min": 0.2, "max": 0.1}}},
            {},
            "environments.dev.pipeline.tuning.ranges.eta.max = 0.1 is not allowed: above min",
        ),
        (
            {"ranges": {"min_child_weight": {"min": 0, "max": 10, "scaling": "log"}}},
            {},
            "environments.dev.pipeline.tuning.ranges.min_child_weight.min = 0 is not allowed: "
            "above 0 with scaling log",
        ),
        (
            {"ranges": {"eta": {"min": 0.1}}},
            {},
            "environments.dev.pipeline.tuning.ranges.eta.max is missing",
        ),
        (
            {"ranges": {"eta": {"values": [0.1, 0.2], "min": 0.1}}},
            {},
            "environments.dev.pipeline.tuning.ranges.eta.values = [0.1, 0.2] is not allowed: give "
            "values or min/max, not both",
        ),
        (
            {"ranges": {"eta": {"values": [round(0.01 * i, 2) for i in range(1, 32)]}}},
            {},
            "environments.dev.pipeline.tuning.ranges.eta.values = [",
        ),
        (
            {"ranges": {"eta": {"min": 0.1, "max": 0.2, "scalin": "log"}}},
            {},
            "environments.dev.pipeline.tuning.ranges.eta.scalin is not a known key: did you mean "
            "scaling?",
        ),
        ({"ranges": {}}, {}, "environments.dev.pipeline.tuning.ranges = {} is not allowed"),
        (
            {"ranges": RANGES, "max_jobs": 0},
            {},
            "environments.dev.pipeline.tuning.max_jobs = 0 is not allowed: an integer from 1",
        ),
        (
            {"ranges": RANGES, "max_jobs": 2, "max_parallel_jobs": 3},
            {},
            "environments.dev.pipeline.tuning.max_parallel_jobs = 3 is not allowed: at most "
            "max_jobs (2)",
        ),
        (
            {"ranges": RANGES, "strategy": "grid"},
            {},
            "environments.dev.pipeline.tuning.strategy = 'grid' is not allowed: one of bayesian, "
            "hyperband, random",
        ),
        (
            {"ranges": RANGES, "strategy": "hyperband", "early_stopping": "auto"},
            {},
            "environments.dev.pipeline.tuning.early_stopping = 'auto' is not allowed: off with "
            "strategy hyperband",
        ),
        (
            {
                "ranges": {**RANGES, "num_round": {"min": 50, "max": 500}},
                "strategy": "hyperband",
                "early_stopping": "off",
            },
            {},
            "environments.dev.pipeline.tuning.ranges = 'num_round' is not allowed: with strategy "
            "hyperband",
        ),
        (
            {"ranges": RANGES, "early_stopping": "auto"},
            {"metric": "f1", "decision_threshold": "max-f1"},
            "environments.dev.pipeline.tuning is not allowed with early_stopping auto and "
            "metric f1: early stopping stops trials on their intermediate objective values",
        ),
        (
            {"ranges": RANGES},
            {"training_instance_count": 2},
            "environments.dev.pipeline.tuning is not allowed with training_instance_count 2",
        ),
    ],
)
def test_bad_tuning_is_one_line_naming_the_key(
    tuning: Any, pipeline: dict[str, Any], message: str
) -> None:
    text = error(tuning, **pipeline)
    assert text.startswith(message), text
    assert "\n" not in text


def test_the_bounds_are_botocores() -> None:
    ranges = MODEL.shape_for("ParameterRanges").members
    for kind in ("IntegerParameterRanges", "ContinuousParameterRanges"):
        # every hyperparameter can have a range of one kind: fewer than the list may hold
        assert ranges[kind].metadata["max"] >= len(RANGES)
    values = MODEL.shape_for("CategoricalParameterRange").members["Values"]
    assert values.metadata == {"min": 1, "max": MAX_CATEGORICAL_VALUES}
    limits = MODEL.shape_for("ResourceLimits").members
    assert limits["MaxNumberOfTrainingJobs"].metadata["min"] == 1
    assert limits["MaxParallelTrainingJobs"].metadata["min"] == 1
    strategies = MODEL.shape_for("HyperParameterTuningJobStrategyType").enum
    assert set(STRATEGIES.values()) <= set(strategies)
    assert set(SCALINGS.values()) <= set(MODEL.shape_for("HyperParameterScalingType").enum)
    early = MODEL.shape_for("TrainingJobEarlyStoppingType").enum
    assert {"Off", "Auto"} == set(early)


def test_hyperparameter_bounds_come_from_the_hyperparameters_rules() -> None:
    assert hyperparameter_bounds("max_depth") == (1, 20, True)
    assert hyperparameter_bounds("eta") == (0.0001, 1.0, False)


@pytest.mark.parametrize(
    ("pipeline", "metric", "instances", "strategy"),
    [
        ({"metric": "f1", "decision_threshold": "max-f1"}, "f1", 1, "hyperband"),
        ({"training_instance_count": 2}, "auc", 2, "bayesian"),
    ],
)
def test_cdk_json_and_the_generators_settings_refuse_tuning_alike(
    pipeline: dict[str, Any], metric: str, instances: int, strategy: str
) -> None:
    from pipeline_code.definition.setting_rules import SettingsError
    from pipeline_code.definition.settings import PipelineSettings
    from tests.pipeline.generated import SETTINGS

    verdict = tuning_refusal(metric, instances, "binary", strategy, "off")
    assert verdict is not None
    tuning = {"ranges": RANGES, "strategy": strategy, "early_stopping": "off"}
    assert error(tuning, **pipeline).startswith(f"environments.dev.pipeline.tuning {verdict}")
    with pytest.raises(SettingsError) as raised:
        # gate_method unset follows the metric (the shared settings' delong is AUC's alone)
        shared = {k: v for k, v in SETTINGS.items() if k != "gate_method"}
        PipelineSettings.from_dict(shared | pipeline | {"tuning": tuning})
    assert str(raised.value) == f"settings.tuning {verdict}"
    assert tuning_refusal("auc", 1) is None
    assert tuning_refusal(metric, 1, "binary", "bayesian", "off") is None


def test_a_ranges_kind_follows_the_hyperparameters_own_rule() -> None:
    # one list of integer hyperparameters: the rules of pipeline.hyperparameters
    from sagemaker.core.parameter import IntegerParameter

    from mlops_config.pipeline import Hyperparameters
    from mlops_config.tuning import XGBOOST_TUNABLE, SearchRange
    from pipeline_code.definition.tuning import parameter_ranges

    names = [n for n in Hyperparameters.model_fields if n in XGBOOST_TUNABLE]
    ranges = parameter_ranges({n: SearchRange(min=0.5, max=1) for n in names})
    for name in names:
        integral = hyperparameter_bounds(name)[2]
        assert isinstance(ranges[name], IntegerParameter) == integral, name


def typed_context(problem: str, metric: str, floor: float) -> dict[str, Any]:
    """cdk.json's context with `problem`'s gate `metric` and the keys a non-binary metric must
    set in its own units (floor, the quality alarm's threshold, the champion tolerance)."""
    from tests.test_config_problem_types import with_problem

    context = with_problem(
        copy.deepcopy(read_cdk_json_context()),
        problem,
        metric=metric,
        metric_floor=floor,
        champion_tolerance=abs(floor) / 50,
    )
    context["defaults"]["monitoring"]["quality_metric_floor"] = floor * 1.2
    return context


@pytest.mark.parametrize(
    ("problem", "metric", "floor", "objective", "direction"),
    [
        ("binary", "auc", 0.8, "validation:auc", "Maximize"),
        ("multiclass", "accuracy", 0.7, "validation:accuracy", "Maximize"),
        ("multiclass", "log_loss", 0.9, "validation:mlogloss", "Minimize"),
        ("regression", "rmse", 12.5, "validation:rmse", "Minimize"),
        ("regression", "mae", 10.0, "validation:mae", "Minimize"),
        # ranked by the validation RMSE: mse = rmse^2, r2 = 1 - rmse^2 / var(y) on one split
        ("regression", "mse", 150.0, "validation:rmse", "Minimize"),
        ("regression", "r2", -0.5, "validation:rmse", "Minimize"),
    ],
)
def test_every_problem_types_tunable_gate_metric_is_the_objective_with_its_direction(
    problem: str, metric: str, floor: float, objective: str, direction: str
) -> None:
    context = typed_context(problem, metric, floor)
    context["environments"]["dev"].setdefault("pipeline", {})["tuning"] = {"ranges": RANGES}
    config = parse_environment(context, "dev")
    assert config.pipeline.tuning is not None
    chosen = tuning_objective(problem, metric)
    assert (chosen.name, chosen.type) == (objective, direction)


@pytest.mark.parametrize(
    ("problem", "metric", "floor", "message"),
    [
        ("regression", "mae", 10.0, "strategy hyperband and metric mae"),
        ("multiclass", "accuracy", 0.7, "strategy hyperband and metric accuracy"),
        # reported once, in train.py's summary (at the decision threshold for binary)
        ("binary", "f1", 0.5, "strategy hyperband and metric f1"),
        ("binary", "recall", 0.5, "strategy hyperband and metric recall"),
        ("multiclass", "macro_f1", 0.5, "strategy hyperband and metric macro_f1"),
        ("multiclass", "weighted_f1", 0.5, "strategy hyperband and metric weighted_f1"),
    ],
)
def test_hyperband_needs_an_objective_reported_while_the_trial_trains(
    problem: str, metric: str, floor: float, message: str
) -> None:
    from tests.test_config_problem_types import config_error

    context = typed_context(problem, metric, floor)
    tuning = {"ranges": RANGES, "strategy": "hyperband"}
    context["environments"]["dev"].setdefault("pipeline", {})["tuning"] = tuning
    text = config_error(context)
    assert text.startswith(f"environments.dev.pipeline.tuning is not allowed with {message}")
    assert "\n" not in text


def test_every_gate_metric_of_every_problem_type_can_be_tuned() -> None:
    from mlops_config.pipeline import PROBLEM_METRICS

    for problem, metrics in PROBLEM_METRICS.items():
        assert set(tunable_metrics(problem)) == set(metrics), problem


@pytest.mark.parametrize(
    ("problem", "metric", "floor"),
    [
        ("binary", "f1", 0.5),
        ("binary", "accuracy", 0.5),
        ("binary", "precision", 0.5),
        ("binary", "recall", 0.5),
        ("multiclass", "macro_f1", 0.5),
        ("multiclass", "weighted_f1", 0.5),
    ],
)
def test_a_gate_metric_reported_only_when_a_trial_ends_is_tuned_with_bayesian_search(
    problem: str, metric: str, floor: float
) -> None:
    from mlops_config import parse_environment

    context = typed_context(problem, metric, floor)
    tuning = {"ranges": RANGES, "strategy": "bayesian"}
    context["environments"]["dev"].setdefault("pipeline", {})["tuning"] = tuning
    env = parse_environment(context, "dev")
    assert env.pipeline.tuning is not None
    assert env.pipeline.metric == metric


@pytest.mark.parametrize(
    ("problem", "metric", "floor", "accepted"),
    [
        ("regression", "mae", 10.0, False),
        ("multiclass", "accuracy", 0.7, False),
        # XGBoost prints these every 10 rounds: early stopping has values to judge
        ("regression", "rmse", 450.0, True),
        ("multiclass", "log_loss", 0.9, True),
    ],
)
def test_early_stopping_auto_needs_an_objective_reported_while_the_trial_trains(
    problem: str, metric: str, floor: float, accepted: bool
) -> None:
    from pipeline_code.definition.setting_rules import SettingsError
    from pipeline_code.definition.settings import PipelineSettings
    from tests.pipeline.test_problem_type_definition import TYPED_SETTINGS
    from tests.test_config_problem_types import config_error

    tuning = {"ranges": RANGES, "strategy": "bayesian", "early_stopping": "auto"}
    context = typed_context(problem, metric, floor)
    context["environments"]["dev"].setdefault("pipeline", {})["tuning"] = tuning
    generator = TYPED_SETTINGS[problem] | {"metric": metric, "metric_floor": floor}
    if accepted:
        configured = parse_environment(context, "dev").pipeline.tuning
        assert configured is not None and configured.early_stopping == "auto"
        assert PipelineSettings.from_dict(generator | {"tuning": tuning}).tuning is not None
        return
    refusal = (
        f"is not allowed with early_stopping auto and metric {metric}: early stopping stops "
        f"trials on their intermediate objective values, and XGBoost reports none for {metric} "
        "while it trains (set early_stopping to off)"
    )
    assert config_error(context) == f"environments.dev.pipeline.tuning {refusal}"
    with pytest.raises(SettingsError) as raised:
        PipelineSettings.from_dict(generator | {"tuning": tuning})
    assert str(raised.value) == f"settings.tuning {refusal}"
    # off, the same search is accepted: the refusal is early stopping's alone
    context["environments"]["dev"]["pipeline"]["tuning"]["early_stopping"] = "off"
    assert parse_environment(context, "dev").pipeline.tuning is not None
