"""Config: `schema.problem_type` and the gate metric that fits it, with each metric's direction
and the range of its floor; a default binary config is unchanged."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mlops_config import ConfigError, load_config, parse_environment, read_cdk_json_context
from mlops_config.pipeline import LOWER_IS_BETTER, PROBLEM_METRICS


@pytest.fixture()
def context() -> dict[str, Any]:
    return copy.deepcopy(read_cdk_json_context())


def with_problem(context: dict[str, Any], problem: str, **pipeline: Any) -> dict[str, Any]:
    context["schema"]["problem_type"] = problem
    context["schema"].pop("positive_class", None)
    # cdk.json leaves the metric's floor unset (its default follows the metric); each case
    # sets its own.
    context["defaults"]["pipeline"].pop("metric_floor", None)
    if problem != "binary":
        # no floor has a default for another type (tests/test_config_rules.py requires each);
        # a case that is not about them takes these unless it sets its own
        if pipeline.get("metric") not in LOWER_IS_BETTER:  # a ceiling's absence is tested
            pipeline = {"metric_floor": 0.5, **pipeline}
        context["defaults"].setdefault("monitoring", {}).setdefault("quality_metric_floor", 0.5)
    context["defaults"].setdefault("pipeline", {}).update(pipeline)
    return context


def config_error(context: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as error:
        parse_environment(context, "dev")
    return str(error.value)


def test_the_default_is_binary_and_its_schema_json_is_unchanged() -> None:
    config = load_config("dev")
    assert config.schema.problem_type == "binary"
    assert "problem_type" not in json.loads(config.schema.to_json())


@pytest.mark.parametrize(
    ("problem", "metric", "floor"),
    [("multiclass", "macro_f1", 0.7), ("multiclass", "log_loss", 0.9), ("regression", "rmse", 12.5),
     ("regression", "r2", -0.5)],
)  # fmt: skip
def test_each_problem_type_parses_with_its_metrics_and_reaches_the_step_scripts(
    context: dict[str, Any], problem: str, metric: str, floor: float
) -> None:
    if metric in LOWER_IS_BETTER:  # in the target's units: each must be set (no default fits)
        context["defaults"]["monitoring"]["quality_metric_floor"] = floor * 1.2
        context["defaults"]["pipeline"]["champion_tolerance"] = floor / 10
    config = parse_environment(
        with_problem(context, problem, metric=metric, metric_floor=floor), "dev"
    )
    assert config.schema.problem_type == problem
    assert config.pipeline.metric == metric and config.pipeline.metric_floor == floor
    assert json.loads(config.schema.to_json())["problem_type"] == problem


@pytest.mark.parametrize(
    ("problem", "metric"),
    [("regression", "auc"), ("regression", "accuracy"), ("multiclass", "auc"),
     ("multiclass", "rmse"), ("binary", "macro_f1"), ("binary", "r2")],
)  # fmt: skip
def test_a_metric_of_another_problem_type_is_refused_naming_the_allowed_ones(
    context: dict[str, Any], problem: str, metric: str
) -> None:
    with_problem(context, problem, metric=metric, metric_floor=0.5)
    message = config_error(context)
    assert message == (
        f"environments.dev.pipeline.metric = {metric!r} is not allowed with "
        f"schema.problem_type = {problem!r}: one of {', '.join(PROBLEM_METRICS[problem])}"
    )
    assert "\n" not in message


def test_regression_with_the_default_metric_says_which_metrics_to_set(
    context: dict[str, Any],
) -> None:
    message = config_error(with_problem(context, "regression"))
    assert "pipeline.metric = 'auc'" in message and "one of rmse, mae, mse, r2" in message


@pytest.mark.parametrize("metric", sorted(LOWER_IS_BETTER))
def test_a_lower_is_better_metric_needs_its_ceiling_set(
    context: dict[str, Any], metric: str
) -> None:
    problem = "multiclass" if metric == "log_loss" else "regression"
    message = config_error(with_problem(context, problem, metric=metric))
    assert "pipeline.metric_floor" in message
    assert f"is required with metric {metric}: the largest {metric}" in message


@pytest.mark.parametrize(
    ("problem", "metric", "floor", "verdict"),
    [("binary", "auc", 1.2, "a number from 0 to 1"),
     ("binary", "f1", -0.1, "a number from 0 to 1"),
     ("multiclass", "macro_f1", -0.1, "a number from 0 to 1"),
     ("regression", "rmse", -1.0, "a number at least 0 with metric rmse"),
     ("multiclass", "log_loss", -0.5, "a number at least 0 with metric log_loss"),
     ("regression", "r2", 1.5, "a number at most 1 with metric r2")],
)  # fmt: skip
def test_a_floor_outside_the_metrics_range_is_refused(
    context: dict[str, Any], problem: str, metric: str, floor: float, verdict: str
) -> None:
    message = config_error(with_problem(context, problem, metric=metric, metric_floor=floor))
    assert (
        message == f"environments.dev.pipeline.metric_floor = {floor!r} is not allowed: {verdict}"
    )


@pytest.mark.parametrize("value", [True, False, "0", None])
def test_a_floor_or_tolerance_that_is_not_a_number_says_every_metrics_range(
    context: dict[str, Any], value: Any
) -> None:
    for key, says in (
        (
            "metric_floor",
            "a number from 0 to 1 (log_loss, rmse, mae, mse: at least 0; r2: at most 1)",
        ),
        ("champion_tolerance", "a number from 0 to 0.5 (log_loss, rmse, mae, mse, r2: at least 0)"),
    ):
        bad = copy.deepcopy(context)
        bad["environments"]["dev"].setdefault("pipeline", {})[key] = value
        assert config_error(bad) == (
            f"environments.dev.pipeline.{key} = {value!r} is not allowed: {says}"
        )


@pytest.mark.parametrize(
    ("key", "value"),
    [("metric_floor", 0), ("metric_floor", 1),
     ("champion_tolerance", 0), ("champion_tolerance", 0.5)],
)  # fmt: skip
def test_a_binary_metric_takes_both_bounds(context: dict[str, Any], key: str, value: float) -> None:
    context["environments"]["dev"].setdefault("pipeline", {})[key] = value
    assert getattr(parse_environment(context, "dev").pipeline, key) == value


def test_a_binary_metric_keeps_its_tolerance_bound_and_an_error_metric_does_not(
    context: dict[str, Any],
) -> None:
    message = config_error(with_problem(context, "binary", champion_tolerance=0.6))
    assert message == (
        "environments.dev.pipeline.champion_tolerance = 0.6 is not allowed: a number from 0 to 0.5"
    )
    regression = with_problem(
        copy.deepcopy(read_cdk_json_context()),
        "regression",
        metric="rmse",
        metric_floor=40.0,
        champion_tolerance=2.5,
    )
    regression["defaults"]["monitoring"]["quality_metric_floor"] = 45.0
    assert parse_environment(regression, "dev").pipeline.champion_tolerance == 2.5


@pytest.mark.parametrize("key", ["decision_threshold", "scale_pos_weight"])
def test_binary_only_settings_are_refused_for_another_type(
    context: dict[str, Any], key: str
) -> None:
    value = 0.5 if key == "decision_threshold" else "balanced"
    with_problem(context, "multiclass", metric="accuracy", **{key: value})
    message = config_error(context)
    assert message.startswith(f"environments.dev.pipeline.{key} = ")
    assert "applies to binary models only" in message


def test_a_positive_class_is_refused_outside_binary(context: dict[str, Any]) -> None:
    with_problem(context, "multiclass", metric="accuracy")
    context["schema"]["positive_class"] = "Adelie"
    message = config_error(context)
    assert message.startswith("schema.positive_class = 'Adelie' is not allowed")
    assert "binary only" in message


def test_an_unknown_problem_type_is_refused(context: dict[str, Any]) -> None:
    context["schema"]["problem_type"] = "ranking"
    message = config_error(context)
    assert message.startswith("schema.problem_type = 'ranking' is not allowed")
    assert "binary" in message and "regression" in message


# ---- the definition generator's settings (what the CDK app hands the generator) ----------


def _settings(problem: str | None, **changes: Any) -> dict[str, Any]:
    from tests.pipeline.generated import SETTINGS

    settings = copy.deepcopy(SETTINGS)
    if problem not in (None, "binary"):
        # the binary-only choices of the shared settings (0.35, balanced) do not apply
        del settings["decision_threshold"], settings["scale_pos_weight"]
        # the shared settings' delong is AUC's: unset, the method follows the metric
        del settings["gate_method"]
    settings |= changes
    if problem is not None:
        settings["schema"]["problem_type"] = problem
    return settings


@pytest.mark.parametrize("metric", sorted(LOWER_IS_BETTER))
def test_a_lower_is_better_metric_needs_its_tolerance_set(
    context: dict[str, Any], metric: str
) -> None:
    """0.01 is a probability's tolerance: in grams or log loss units it means nothing."""
    problem = "multiclass" if metric == "log_loss" else "regression"
    context["defaults"]["pipeline"].pop("champion_tolerance", None)
    message = config_error(with_problem(context, problem, metric=metric, metric_floor=5.0))
    assert message.startswith("environments.dev.pipeline.champion_tolerance")
    assert f"is required with metric {metric}: how much worse" in message
    context["defaults"]["pipeline"]["champion_tolerance"] = 0.5
    context["defaults"]["monitoring"]["quality_metric_floor"] = 6.0
    assert parse_environment(context, "dev").pipeline.champion_tolerance == 0.5


def test_a_higher_is_better_metric_keeps_the_default_tolerance(context: dict[str, Any]) -> None:
    context["defaults"]["pipeline"].pop("champion_tolerance", None)
    config = parse_environment(with_problem(context, "multiclass", metric="macro_f1"), "dev")
    assert config.pipeline.champion_tolerance == 0.01


@pytest.mark.parametrize(
    ("key", "value"), [("decision_threshold", 0.35), ("scale_pos_weight", "balanced")]
)
@pytest.mark.parametrize("problem", ["multiclass", "regression"])
def test_the_generator_refuses_a_binary_only_setting_for_another_type(
    problem: str, key: str, value: Any
) -> None:
    from pipeline_code.definition.setting_rules import SettingsError
    from pipeline_code.definition.settings import PipelineSettings

    metric = {"multiclass": "accuracy", "regression": "rmse"}[problem]
    with pytest.raises(SettingsError) as error:
        PipelineSettings.from_dict(_settings(problem, metric=metric, **{key: value}))
    assert str(error.value) == (
        f"settings.{key}: got {value!r}; expected not set with schema.problem_type "
        f"{problem!r} (binary models only)"
    )


def test_the_generator_takes_the_binary_only_defaults_for_another_type() -> None:
    from pipeline_code.definition.settings import PipelineSettings

    defaults = {"decision_threshold": "max-f1", "scale_pos_weight": 1}
    settings = PipelineSettings.from_dict(_settings("regression", metric="rmse", **defaults))
    assert (settings.decision_threshold, settings.scale_pos_weight) == ("max-f1", "1")


@pytest.mark.parametrize(
    ("problem", "metric", "floor", "tolerance"),
    [("multiclass", "weighted_f1", 0.6, 0.02), ("multiclass", "log_loss", 0.7, 0.05),
     ("regression", "rmse", 25.0, 2.0), ("regression", "r2", -0.2, 0.05)],
)  # fmt: skip
def test_the_generator_takes_each_problem_types_metrics(
    problem: str, metric: str, floor: float, tolerance: float
) -> None:
    from pipeline_code.definition.settings import PipelineSettings

    settings = PipelineSettings.from_dict(
        _settings(problem, metric=metric, metric_floor=floor, champion_tolerance=tolerance)
    )
    assert settings.metric == metric and settings.metric_floor == floor
    assert settings.schema["problem_type"] == problem


@pytest.mark.parametrize(
    ("problem", "metric", "message"),
    [(None, "rmse", "settings.metric: got 'rmse'; expected one of auc, f1, accuracy, precision, "
      "recall (schema.problem_type 'binary')"),
     ("regression", "auc", "settings.metric: got 'auc'; expected one of rmse, mae, mse, r2 "
      "(schema.problem_type 'regression')"),
     ("ranking", "auc", "settings.schema.problem_type: got 'ranking'; expected one of binary, "
      "multiclass, regression")],
)  # fmt: skip
def test_the_generator_refuses_a_metric_of_another_type(
    problem: str | None, metric: str, message: str
) -> None:
    from pipeline_code.definition.setting_rules import SettingsError
    from pipeline_code.definition.settings import PipelineSettings

    with pytest.raises(SettingsError) as error:
        PipelineSettings.from_dict(_settings(problem, metric=metric))
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("metric", "floor", "expected"),
    [("rmse", -1.0, "a number in [0.0, 1000000000000.0]"),
     ("r2", 1.5, "a number in [-1000000000000.0, 1.0]")],
)  # fmt: skip
def test_the_generator_checks_the_floor_in_the_metrics_range(
    metric: str, floor: float, expected: str
) -> None:
    from pipeline_code.definition.setting_rules import SettingsError
    from pipeline_code.definition.settings import PipelineSettings

    with pytest.raises(SettingsError) as error:
        PipelineSettings.from_dict(_settings("regression", metric=metric, metric_floor=floor))
    assert str(error.value) == f"settings.metric_floor: got {floor!r}; expected {expected}"


@pytest.mark.parametrize(
    ("problem", "metric", "value", "message"),
    [("binary", "auc", 2, "is not allowed: a number from 0 to 1"),
     ("binary", "auc", -1, "is not allowed: a number from 0 to 1"),
     ("binary", "auc", "0", "is not allowed: a number from 0 to 1 (log_loss, rmse, mae, mse: at "
      "least 0; r2: at most 1)"),
     ("regression", "rmse", -5.0, "is not allowed: a number at least 0 with metric rmse"),
     ("regression", "r2", 1.5, "is not allowed: a number at most 1 with metric r2")],
)  # fmt: skip
def test_the_quality_alarm_floor_is_checked_in_the_metrics_range(
    context: dict[str, Any], problem: str, metric: str, value: Any, message: str
) -> None:
    with_problem(context, problem, metric=metric, metric_floor=0.5, champion_tolerance=0.05)
    context["environments"]["dev"].setdefault("monitoring", {})["quality_metric_floor"] = value
    assert config_error(context) == (
        f"environments.dev.monitoring.quality_metric_floor = {value!r} {message}"
    )


def test_a_lower_is_better_metric_needs_its_quality_alarm_ceiling_set(
    context: dict[str, Any],
) -> None:
    with_problem(context, "regression", metric="rmse", metric_floor=400.0, champion_tolerance=20.0)
    context["defaults"]["monitoring"].pop("quality_metric_floor", None)
    message = config_error(context)
    assert message.startswith("environments.dev.monitoring.quality_metric_floor is required with")
    context["defaults"]["monitoring"]["quality_metric_floor"] = 450.0
    assert parse_environment(context, "dev").monitoring.quality_metric_floor == 450.0


@pytest.mark.parametrize(
    ("problem", "metric"), [("multiclass", "macro_f1"), ("regression", "rmse")]
)
def test_a_sharded_prepare_takes_every_problem_type(
    context: dict[str, Any], problem: str, metric: str
) -> None:
    context = with_problem(
        context, problem, metric=metric, metric_floor=0.5, champion_tolerance=0.05
    )
    context["defaults"]["monitoring"]["quality_metric_floor"] = 0.6
    context["defaults"]["pipeline"]["processing_instance_count"] = 2
    settings = parse_environment(context, "dev")
    assert settings.pipeline.processing_instance_count == 2
