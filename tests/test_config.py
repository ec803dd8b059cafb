"""Config: every bad value fails before synth with one message naming key, value and rule."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import boto3
import pytest

from mlops_config import (
    ConfigError,
    load_config,
    model_monitor_interval_hours,
    model_monitor_schedule,
    parse_environment,
    read_cdk_json_context,
    select_environments,
)


@pytest.fixture()
def context() -> dict[str, Any]:
    return copy.deepcopy(read_cdk_json_context())


def set_key(node: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` below `node`, creating the objects on the way."""
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def config_error(context: dict[str, Any], env: str = "dev") -> str:
    """The message of the ConfigError that parsing `env` raises."""
    with pytest.raises(ConfigError) as error:
        parse_environment(context, env)
    return str(error.value)


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
    assert configs["staging"].trigger.retrain_schedule == "cron(0 3 ? * MON *)"
    assert configs["dev"].trigger.retrain_schedule is None
    assert configs["prod"].notification_emails == ("ml-team@example.com", "oncall@example.com")


def test_default_environment_is_dev(context: dict[str, Any]) -> None:
    assert [c.name for c in select_environments(context, None)] == ["dev"]


def test_names_derive_from_project_and_environment() -> None:
    config = load_config("staging")
    assert config.prefix == "mlops-loop-staging"
    assert config.pipeline_name == "mlops-loop-staging-training"
    assert config.evaluation_pipeline_name == "mlops-loop-staging-evaluation"
    assert config.model_package_group_name == "mlops-loop-staging-models"
    assert config.model_quality_namespace == "mlops-loop-staging/ModelQuality"
    assert config.tags == {"project": "mlops-loop", "environment": "staging"}


def test_schema_round_trips_to_the_json_the_step_scripts_read() -> None:
    schema = load_config("dev").schema
    parsed = json.loads(schema.to_json())
    assert parsed["target"] == "is_fraud"
    assert [f["name"] for f in parsed["features"]] == list(schema.feature_names)
    assert parsed["features"][0] == {"name": "amount", "type": "float"}
    assert parsed["max_missing_fraction"] == 0.05


def test_a_setting_missing_everywhere_takes_the_documented_default(
    context: dict[str, Any],
) -> None:
    """The model's defaults are the values cdk.json ships (the README's default column)."""
    shipped = select_environments(context, "all")
    context["defaults"] = {}
    del context["schema"]["max_missing_fraction"]
    assert select_environments(context, "all") == shipped


def test_integers_stay_integers_and_settings_are_frozen() -> None:
    config = load_config("dev")
    # an integer reaches the pipeline definition as written (1, not 1.0)
    assert type(config.pipeline.hyperparameters.min_child_weight) is int
    assert type(config.pipeline.hyperparameters.eta) is float
    with pytest.raises(ValueError, match="frozen"):
        config.serving.max_capacity = 5  # type: ignore[misc]


def test_a_null_retrain_schedule_means_none(context: dict[str, Any]) -> None:
    set_key(context, "environments.dev.trigger", {"retrain_schedule": None})
    assert parse_environment(context, "dev").trigger.retrain_schedule is None
    del context["defaults"]["trigger"]["retrain_schedule"]
    del context["environments"]["dev"]["trigger"]
    assert parse_environment(context, "dev").trigger.retrain_schedule is None


@pytest.mark.parametrize(
    ("key", "value", "env", "message"),
    [
        (
            "environments.prod.account",
            "1234",
            "prod",
            "environments.prod.account = '1234' is not allowed: a 12-digit AWS account id (quoted)",
        ),
        (
            "environments.prod.account",
            333333333333,
            "prod",
            "environments.prod.account = 333333333333 is not allowed: a 12-digit AWS account id "
            "(quoted)",
        ),
        (
            "environments.dev.region",
            7,
            "dev",
            "environments.dev.region = 7 is not allowed: an AWS region name",
        ),
        (
            "environments.dev.pipeline",
            {"champion_tolerance": "0.1"},
            "dev",
            "environments.dev.pipeline.champion_tolerance = '0.1' is not allowed: a number from "
            "0 to 0.5 (log_loss, rmse, mae, mse, r2: at least 0)",
        ),
        (
            "environments.dev.pipeline",
            {"training_instance_type": "m5.large"},
            "dev",
            "environments.dev.pipeline.training_instance_type = 'm5.large' is not allowed: a "
            "SageMaker instance type such as ml.m5.xlarge",
        ),
        (
            "environments.dev.pipeline",
            {"metric": "rmse"},
            "dev",
            "environments.dev.pipeline.metric = 'rmse' is not allowed with schema.problem_type = "
            "'binary': one of auc, f1, accuracy, precision, recall",
        ),
        (
            "environments.dev.pipeline",
            {"cache_expire_after": "30 days"},
            "dev",
            "environments.dev.pipeline.cache_expire_after = '30 days' is not allowed: an ISO 8601 "
            "duration such as P30D or PT12H",
        ),
        (
            "environments.dev.pipeline",
            {"xgboost_framework_version": "1.7-1"},
            "dev",
            "environments.dev.pipeline.xgboost_framework_version = '1.7-1' is not allowed: one "
            "of 3.0-5",
        ),
        (
            "environments.dev.pipeline",
            {"hyperparameters": 5},
            "dev",
            "environments.dev.pipeline.hyperparameters: expected an object, got 5",
        ),
        (
            "environments.dev.pipeline",
            {"decision_threshold": 1.0},
            "dev",
            "environments.dev.pipeline.decision_threshold = 1.0 is not allowed: a number above 0 "
            "and below 1, or max-f1, max-gate-metric",
        ),
        (
            "environments.dev.pipeline",
            {"decision_threshold": "max-gate-metric"},
            "dev",
            "environments.dev.pipeline.decision_threshold = 'max-gate-metric' is not allowed: "
            "with metric auc: maximising needs a threshold metric (f1, accuracy); use max-f1 or "
            "a number",
        ),
        (
            "environments.dev.pipeline",
            {"scale_pos_weight": "auto"},
            "dev",
            "environments.dev.pipeline.scale_pos_weight = 'auto' is not allowed: a number above 0 "
            "and below 10000, or balanced",
        ),
        (
            "environments.dev.pipeline",
            {"scale_pos_weight": "2"},
            "dev",
            "environments.dev.pipeline.scale_pos_weight = '2' is not allowed: a number above 0 "
            "and below 10000, or balanced",
        ),
        (
            "environments.dev.pipeline",
            {"decision_threshold": "0.5"},
            "dev",
            "environments.dev.pipeline.decision_threshold = '0.5' is not allowed: a number above "
            "0 and below 1, or max-f1, max-gate-metric",
        ),
        (
            "environments.dev.pipeline",
            {"gate_method": "wald"},
            "dev",
            "environments.dev.pipeline.gate_method = 'wald' is not allowed: one of delong, "
            "bootstrap",
        ),
        (
            "environments.dev.split",
            {"id_column": "txn_id", "time_column": "ts"},
            "dev",
            "environments.dev.split.time_column = 'ts' is not allowed: with id_column 'txn_id' "
            "set: split by id or by time, not both",
        ),
        (
            "environments.dev.split",
            {"id_column": "amount"},
            "dev",
            "environments.dev.split.id_column = 'amount' is not allowed: it is the target or a "
            "feature; the split key must be a column of its own",
        ),
        (
            "environments.dev.split",
            {"time_column": "txn time"},
            "dev",
            "environments.dev.split.time_column = 'txn time' is not allowed: a column name "
            "(letters, digits, _), or null",
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
            "environments.dev.monitoring.engine = 'whylabs' is not allowed: one of evidently, "
            "model-monitor",
        ),
        (
            "environments.dev.monitoring",
            {"schedule": "every hour"},
            "dev",
            "environments.dev.monitoring.schedule = 'every hour' is not allowed: an EventBridge "
            "expression: cron(m h dom mon dow y) or rate(N unit)",
        ),
        (
            "environments.dev.monitoring",
            {"instance_type": "large"},
            "dev",
            "environments.dev.monitoring.instance_type = 'large' is not allowed: a SageMaker "
            "instance type such as ml.m5.xlarge",
        ),
        (
            "environments.dev.serving",
            {"min_capacity": 3, "max_capacity": 2},
            "dev",
            "environments.dev.serving.max_capacity = 2 is not allowed: at least min_capacity (3)",
        ),
        (
            "environments.dev.serving",
            {"deploy_on": "merge"},
            "dev",
            "environments.dev.serving.deploy_on = 'merge' is not allowed: one of approval, "
            "promotion",
        ),
        (
            "environments.dev.serving",
            "big",
            "dev",
            "environments.dev.serving: expected an object, got 'big'",
        ),
        (
            "environments.dev.notification_emails",
            ["ops@example.com", "not-an-email"],
            "dev",
            "environments.dev.notification_emails[1] = 'not-an-email' is not an email address",
        ),
        (
            "environments.dev.notification_emails",
            "ops@example.com",
            "dev",
            "environments.dev.notification_emails = 'ops@example.com' is not allowed: a list of "
            "email addresses",
        ),
        (
            "environments.dev.security",
            {"key_administrators": ["arn:aws:iam::111111111111:group/admins"]},
            "dev",
            "environments.dev.security.key_administrators[0] = "
            "'arn:aws:iam::111111111111:group/admins' is not allowed: an IAM role or user ARN, "
            "e.g. arn:aws:iam::111111111111:role/name",
        ),
        (
            "environments.dev.data",
            {"producer_principals": "arn:aws:iam::111111111111:role/producer"},
            "dev",
            "environments.dev.data.producer_principals = "
            "'arn:aws:iam::111111111111:role/producer' is not allowed: a list of IAM role or "
            "user ARNs",
        ),
        (
            "environments.dev.trigger",
            {"completion_mode": "eventually"},
            "dev",
            "environments.dev.trigger.completion_mode = 'eventually' is not allowed: one of "
            "marker, quiet-period",
        ),
        (
            "environments.dev.trigger",
            {"allow_reupload": "yes"},
            "dev",
            "environments.dev.trigger.allow_reupload = 'yes' is not allowed: true or false",
        ),
        (
            "environments.dev.trigger",
            {"retrain_schedule": "weekly"},
            "dev",
            "environments.dev.trigger.retrain_schedule = 'weekly' is not allowed: an EventBridge "
            "expression: cron(m h dom mon dow y) or rate(N unit), or null",
        ),
        (
            "environments.dev.monitoring",
            {"retrain_on_alarm": 1},
            "dev",
            "environments.dev.monitoring.retrain_on_alarm = 1 is not allowed: true or false",
        ),
        (
            "schema.target",
            "amount",
            "dev",
            "schema.target = 'amount' is also a feature: keep it out",
        ),
        (
            "schema.target",
            "is fraud",
            "dev",
            "schema.target = 'is fraud' is not allowed: a column name (letters, digits, _)",
        ),
        ("schema.features", [], "dev", "schema.features = [] is not allowed: at least one feature"),
        (
            "schema.features",
            {"amount": "float"},
            "dev",
            "schema.features = {'amount': 'float'} is not allowed: a non-empty list of "
            "{name, type}",
        ),
        (
            "schema.features",
            [{"name": "a", "type": "float"}, {"name": "a", "type": "int"}],
            "dev",
            "schema.features has duplicate names ['a']: names are unique",
        ),
        (
            "schema.features",
            [{"type": "int"}],
            "dev",
            "schema.features[0].name is missing (set it in cdk.json context)",
        ),
        (
            "project",
            "My Project",
            "dev",
            "project = 'My Project' is not allowed: lowercase letters, digits and '-', 2 to 21 "
            "chars",
        ),
        ("defaults", [], "dev", "defaults: expected an object, got []"),
        ("environments.dev", "x", "dev", "environments.dev: expected an object, got 'x'"),
    ],
)
def test_bad_value_names_key_value_and_rule(
    context: dict[str, Any], key: str, value: Any, env: str, message: str
) -> None:
    set_key(context, key, value)
    assert config_error(context, env) == message


def test_an_unknown_region_names_some_known_ones(context: dict[str, Any]) -> None:
    set_key(context, "environments.dev.region", "eu-middle-7")
    message = config_error(context)
    assert message.startswith(
        "environments.dev.region = 'eu-middle-7' is not allowed: a region where SageMaker "
        "exists, e.g. af-south-1, "
    )
    # a one-line error: four examples, each a SageMaker region in botocore's endpoint data
    examples = message.split("e.g. ")[1].removesuffix(", ...").split(", ")
    assert len(examples) == 4
    assert set(examples) <= set(boto3.session.Session().get_available_regions("sagemaker"))


def test_unknown_feature_type_lists_the_allowed_ones(context: dict[str, Any]) -> None:
    context["schema"]["features"][0]["type"] = "string"
    assert config_error(context) == (
        "schema.features[0].type = 'string' is not allowed: one of float, int, bool, category"
    )


def test_a_category_feature_and_a_positive_class_reach_the_step_scripts_schema(
    context: dict[str, Any],
) -> None:
    context["schema"]["features"][2]["type"] = "category"
    context["schema"]["positive_class"] = "fraud"
    schema = json.loads(parse_environment(context, "dev").schema.to_json())
    assert schema["features"][2]["type"] == "category"
    assert schema["positive_class"] == "fraud"


def test_without_a_positive_class_the_step_scripts_schema_has_none() -> None:
    """The default schema JSON (in the pipeline definition) does not change: no null key."""
    assert "positive_class" not in json.loads(load_config("dev").schema.to_json())


@pytest.mark.parametrize("bad", ["", "a,b", 'say "yes"', "two\nlines", 1, True])
def test_a_positive_class_that_is_not_a_label_value_is_refused(
    context: dict[str, Any], bad: Any
) -> None:
    context["schema"]["positive_class"] = bad
    message = config_error(context)
    assert message.startswith(f"schema.positive_class = {bad!r} is not allowed: a label value")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("environments.prod.account", "environments.prod.account is missing"),
        ("defaults", "defaults is missing"),
        ("schema", "schema is missing"),
        ("project", "project is missing"),
    ],
)
def test_missing_key_is_named(context: dict[str, Any], where: str, message: str) -> None:
    *parents, last = where.split(".")
    node = context
    for part in parents:
        node = node[part]
    del node[last]
    assert config_error(context, "prod") == f"{message} (set it in cdk.json context)"


def test_unknown_environment_lists_the_known_ones(context: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as error:
        select_environments(context, "qa")
    assert str(error.value) == (
        "env = 'qa' is not a known environment: one of dev, prod, staging (or 'all')"
    )


def test_several_problems_report_the_first_and_count_the_others(
    context: dict[str, Any],
) -> None:
    set_key(context, "environments.dev.serving", {"canary_traffic_percent": 0, "bake_minutes": 99})
    assert config_error(context) == (
        "environments.dev.serving.canary_traffic_percent = 0 is not allowed: an integer from 1 "
        "to 50 (and 1 more)"
    )


@pytest.mark.parametrize(
    ("wait", "ok"), [(3600, False), (3599, False), (60, False), (3601, True), (7200, True)]
)
def test_spot_needs_a_wait_longer_than_the_runtime(
    context: dict[str, Any], wait: int, ok: bool
) -> None:
    set_key(context, "environments.dev.pipeline", {"use_spot": True, "max_wait_seconds": wait})
    if ok:
        assert parse_environment(context, "dev").pipeline.max_wait_seconds == wait
        return
    assert config_error(context) == (
        f"environments.dev.pipeline.max_wait_seconds = {wait} is not allowed: with use_spot it "
        "must exceed max_runtime_seconds (3600) by the time to wait for spot capacity"
    )


def test_without_spot_the_wait_is_not_checked(context: dict[str, Any]) -> None:
    set_key(context, "environments.dev.pipeline", {"use_spot": False, "max_wait_seconds": 60})
    assert parse_environment(context, "dev").pipeline.max_wait_seconds == 60


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
    assert result.stderr.strip().splitlines()[-1] == (
        "cdk.json configuration error: env = 'qa' is not a known environment: one of dev, "
        "prod, staging (or 'all')"
    )


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("cron(0 * * * ? *)", "cron(0 * ? * * *)"),
        ("rate(1 hour)", "cron(0 * ? * * *)"),
        ("cron(0 3 * * ? *)", "cron(0 3 ? * * *)"),
        ("cron(0 3 ? * * *)", "cron(0 3 ? * * *)"),
        ("cron(0 3 * * ? 2027)", None),
        ("rate(1 day)", "cron(0 0 ? * * *)"),
        ("rate(6 hours)", "cron(0 0/6 ? * * *)"),
        ("rate(12 hours)", "cron(0 0/12 ? * * *)"),
        ("cron(0 17/12 * * ? *)", "cron(0 17/12 ? * * *)"),
        ("cron(0 23 * * ? *)", "cron(0 23 ? * * *)"),
        ("cron(0 0/24 * * ? *)", "cron(0 0/24 ? * * *)"),
        ("rate(30 minutes)", None),
        ("rate(5 hours)", None),
        ("rate(2 days)", None),
        ("cron(15 * * * ? *)", None),
        ("cron(0 3 ? * MON *)", None),
        ("cron(0 3 1 * ? *)", None),
        ("cron(0 3 * 1 ? *)", None),
        ("cron(0 3 * JAN-MAR ? *)", None),
        ("cron(0 24 * * ? *)", None),
        ("cron(0 0/25 * * ? *)", None),
        ("cron(0 0/0 * * ? *)", None),
        ("cron(0 1-5 * * ? *)", None),
    ],
)
def test_model_monitor_runs_on_its_own_cron_forms(schedule: str, expected: str | None) -> None:
    assert model_monitor_schedule(schedule) == expected


@pytest.mark.parametrize(
    "schedule", ["rate(5 hours)", "cron(0 3 * 1 ? *)", "cron(0 3 ? * MON *)", "cron(30 3 * * ? *)"]
)
def test_model_monitor_engine_refuses_schedules_it_cannot_run(
    context: dict[str, Any], schedule: str
) -> None:
    monitoring = {"engine": "model-monitor", "schedule": schedule}
    set_key(context, "environments.dev.monitoring", monitoring)
    assert config_error(context) == (
        f"environments.dev.monitoring.schedule = {schedule!r} is not allowed with engine "
        "model-monitor: Model Monitor runs hourly, daily at an hour or every N hours, e.g. "
        "cron(0 * * * ? *), cron(0 3 * * ? *), rate(6 hours)"
    )


def test_evidently_runs_on_any_eventbridge_schedule(context: dict[str, Any]) -> None:
    set_key(context, "environments.dev.monitoring", {"schedule": "cron(0 3 * 1 ? *)"})
    assert parse_environment(context, "dev").monitoring.schedule == "cron(0 3 * 1 ? *)"


def test_model_monitor_engine_is_refused_beyond_ten_features(context: dict[str, Any]) -> None:
    context["environments"]["dev"]["monitoring"] = {"engine": "model-monitor"}
    assert parse_environment(context, "dev").monitoring.engine == "model-monitor"
    features = context["schema"]["features"]
    features.append({"name": "eleventh", "type": "float"})
    assert config_error(context) == (
        "environments.dev.monitoring.engine = 'model-monitor' is not allowed with 11 features: "
        "its drift alarm reads one metric per feature and CloudWatch alarms read at most 10 "
        "(use evidently)"
    )


@pytest.mark.parametrize(
    ("schedule", "hours"),
    [("cron(0 * ? * * *)", 1), ("cron(0 3 ? * * *)", 24), ("cron(0 0/6 ? * * *)", 6)],
)
def test_model_monitor_interval(schedule: str, hours: int) -> None:
    assert model_monitor_interval_hours(schedule) == hours
