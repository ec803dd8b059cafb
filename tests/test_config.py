"""Config: every bad value fails before synth with one message naming key, value and rule."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest

from stacks.config import (
    ConfigError,
    load_config,
    parse_environment,
    read_cdk_json_context,
    select_environments,
)


@pytest.fixture()
def context() -> dict[str, Any]:
    return copy.deepcopy(read_cdk_json_context())


def test_every_environment_parses_with_its_overrides(context: dict[str, Any]) -> None:
    configs = {c.name: c for c in select_environments(context, "all")}
    assert set(configs) == {"dev", "staging", "prod"}
    assert not configs["dev"].retain
    assert configs["staging"].retain and configs["prod"].retain
    assert configs["prod"].serving.deploy_on == "promotion"
    assert configs["staging"].serving.deploy_on == "approval"
    # an override replaces one key and keeps its siblings from `defaults`
    assert configs["prod"].serving.max_capacity == 6
    assert configs["prod"].serving.canary_traffic_percent == 10


def test_default_environment_is_dev(context: dict[str, Any]) -> None:
    assert [c.name for c in select_environments(context, None)] == ["dev"]


def test_names_derive_from_project_and_environment() -> None:
    config = load_config("staging")
    assert config.pipeline_name == "mlops-loop-staging-training"
    assert config.model_package_group_name == "mlops-loop-staging-models"


def test_schema_round_trips_to_the_json_the_step_scripts_read() -> None:
    schema = load_config("dev").schema
    parsed = json.loads(schema.to_json())
    assert parsed["target"] == "is_fraud"
    assert [f["name"] for f in parsed["features"]] == list(schema.feature_names)


def _set(context: dict[str, Any], dotted: str, value: Any) -> None:
    node = context
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


@pytest.mark.parametrize(
    ("key", "value", "env", "message"),
    [
        (
            "environments.prod.account",
            "1234",
            "prod",
            "environments.prod.account = '1234' is not allowed: a 12-digit AWS account id",
        ),
        (
            "environments.prod.account",
            333333333333,
            "prod",
            "environments.prod.account = 333333333333 is not allowed",
        ),
        (
            "environments.dev.region",
            "eu-middle-7",
            "dev",
            "environments.dev.region = 'eu-middle-7' is not allowed: a region where SageMaker",
        ),
        (
            "environments.dev.pipeline",
            {"metric_floor": 1.5},
            "dev",
            "environments.dev.pipeline.metric_floor = 1.5 is not allowed: a number from 0 to 1",
        ),
        (
            "environments.dev.pipeline",
            {"champion_tolerance": "0.1"},
            "dev",
            "environments.dev.pipeline.champion_tolerance = '0.1' is not allowed",
        ),
        (
            "environments.dev.pipeline",
            {"training_instance_type": "m5.large"},
            "dev",
            "training_instance_type = 'm5.large' is not allowed: a SageMaker instance type",
        ),
        (
            "environments.dev.stateful_removal",
            "keep",
            "dev",
            "environments.dev.stateful_removal = 'keep' is not allowed: one of destroy, retain",
        ),
        (
            "environments.dev.monitoring",
            {"engine": "whylabs"},
            "dev",
            "monitoring.engine = 'whylabs' is not allowed: one of evidently, model-monitor",
        ),
        (
            "environments.dev.monitoring",
            {"engine": "model-monitor", "schedule": "rate(5 hours)"},
            "dev",
            "monitoring.schedule = 'rate(5 hours)' is not allowed with engine model-monitor: "
            "Model Monitor runs hourly, daily at an hour or every N hours",
        ),
        (
            "environments.dev.monitoring",
            {"drift_distance_threshold": 0},
            "dev",
            "monitoring.drift_distance_threshold = 0 is not allowed",
        ),
        (
            "environments.dev.monitoring",
            {"schedule": "every hour"},
            "dev",
            "monitoring.schedule = 'every hour' is not allowed: an EventBridge expression",
        ),
        (
            "environments.dev.serving",
            {"min_capacity": 3, "max_capacity": 2},
            "dev",
            "serving.max_capacity = 2 is not allowed: at least min_capacity (3)",
        ),
        (
            "environments.dev.notification_emails",
            ["not-an-email"],
            "dev",
            "notification_emails[0] = 'not-an-email' is not an email address",
        ),
        (
            "environments.dev.trigger",
            {"completion_mode": "eventually"},
            "dev",
            "trigger.completion_mode = 'eventually' is not allowed: one of marker, quiet-period",
        ),
        (
            "environments.dev.trigger",
            {"allow_reupload": "yes"},
            "dev",
            "trigger.allow_reupload = 'yes' is not allowed: true or false",
        ),
        (
            "environments.dev.pipeline",
            {"hyperparameters": {"max_depth": 0}},
            "dev",
            "pipeline.hyperparameters.max_depth = 0 is not allowed: an integer from 1 to 20",
        ),
        ("schema.target", "amount", "dev", "schema.target = 'amount' is also a feature"),
        ("schema.features", [], "dev", "schema.features = [] is not allowed"),
        ("project", "My Project", "dev", "project = 'My Project' is not allowed"),
    ],
)
def test_bad_value_names_key_value_and_rule(
    context: dict[str, Any], key: str, value: Any, env: str, message: str
) -> None:
    _set(context, key, value)
    with pytest.raises(ConfigError) as error:
        parse_environment(context, env)
    assert message in str(error.value)


def test_unknown_feature_type_lists_the_allowed_ones(context: dict[str, Any]) -> None:
    context["schema"]["features"][0]["type"] = "string"
    with pytest.raises(
        ConfigError,
        match=r"schema.features\[0\].type = 'string' is not allowed: "
        r"one of float, int, bool",
    ):
        parse_environment(context, "dev")


def test_missing_key_is_named(context: dict[str, Any]) -> None:
    del context["environments"]["prod"]["account"]
    with pytest.raises(ConfigError, match=r"environments.prod.account is missing"):
        parse_environment(context, "prod")


def test_unknown_environment_lists_the_known_ones(context: dict[str, Any]) -> None:
    with pytest.raises(
        ConfigError,
        match=r"env = 'qa' is not a known environment: one of "
        r"dev, prod, staging \(or 'all'\)",
    ):
        select_environments(context, "qa")


def test_spot_needs_a_wait_at_least_the_runtime(context: dict[str, Any]) -> None:
    _set(context, "environments.dev.pipeline", {"use_spot": True, "max_wait_seconds": 60})
    with pytest.raises(ConfigError, match="with use_spot it must be at least max_runtime"):
        parse_environment(context, "dev")


def test_bad_env_fails_the_cdk_app_before_synth_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "app.py"],
        env={
            "PATH": "/usr/bin:/bin",
            "CDK_CONTEXT_JSON": json.dumps({"env": "qa", **read_cdk_json_context()}),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "env = 'qa' is not a known environment" in result.stderr


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("cron(0 * * * ? *)", "cron(0 * ? * * *)"),
        ("rate(1 hour)", "cron(0 * ? * * *)"),
        ("cron(0 3 * * ? *)", "cron(0 3 ? * * *)"),
        ("rate(1 day)", "cron(0 0 ? * * *)"),
        ("rate(6 hours)", "cron(0 0/6 ? * * *)"),
        ("cron(0 17/12 * * ? *)", "cron(0 17/12 ? * * *)"),
        ("rate(30 minutes)", None),
        ("rate(5 hours)", None),
        ("rate(2 days)", None),
        ("cron(15 * * * ? *)", None),
        ("cron(0 3 ? * MON *)", None),
        ("cron(0 24 * * ? *)", None),
    ],
)
def test_model_monitor_runs_on_its_own_cron_forms(schedule: str, expected: str | None) -> None:
    from stacks.config import model_monitor_schedule

    assert model_monitor_schedule(schedule) == expected


def test_model_monitor_engine_is_refused_beyond_ten_features(context: dict[str, Any]) -> None:
    context["environments"]["dev"]["monitoring"] = {"engine": "model-monitor"}
    assert parse_environment(context, "dev").monitoring.engine == "model-monitor"
    features = context["schema"]["features"]
    features.append({"name": "eleventh", "type": "float"})
    with pytest.raises(ConfigError) as error:
        parse_environment(context, "dev")
    assert str(error.value) == (
        "environments.dev.monitoring.engine = 'model-monitor' is not allowed with 11 features: "
        "its drift alarm reads one metric per feature and CloudWatch alarms read at most 10 "
        "(use evidently)"
    )


@pytest.mark.parametrize(
    ("schedule", "hours"),
    [("cron(0 * ? * * *)", 1), ("cron(0 3 ? * * *)", 24), ("cron(0 0/6 ? * * *)", 6)],
)
def test_model_monitor_interval(schedule: str, hours: int) -> None:
    from stacks.config import model_monitor_interval_hours

    assert model_monitor_interval_hours(schedule) == hours
