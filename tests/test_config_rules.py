"""Config rules that hold for every key: unknown keys name the nearest known one, numbers have
bounds and are never bools, each key lands in its own setting, and cdk.schema.json says the
same as the model."""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from typing import Annotated, Any

import jsonschema
import pytest
from pydantic import BaseModel, create_model

from mlops_config import EnvironmentConfig, parse_environment, read_cdk_json_context, rules
from mlops_config.json_schema import SCHEMA_FILE, render
from tests.test_config import config_error, set_key


@pytest.fixture()
def context() -> dict[str, Any]:
    return copy.deepcopy(read_cdk_json_context())


# ---- unknown keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "key", "message"),
    [
        (
            "environments.dev",
            "serving.instnace_type",
            "environments.dev.serving.instnace_type is not a known key: did you mean "
            "instance_type?",
        ),
        (
            "defaults",
            "serving.instnace_type",
            "defaults.serving.instnace_type is not a known key: did you mean instance_type?",
        ),
        (
            "environments.dev",
            "acount",
            "environments.dev.acount is not a known key: did you mean account?",
        ),
        (
            "defaults",
            "pipeline.hyperparameters.max_dpeth",
            "defaults.pipeline.hyperparameters.max_dpeth is not a known key: did you mean "
            "max_depth?",
        ),
        (
            "environments.prod",
            "monitoring.quality_floor",
            "environments.prod.monitoring.quality_floor is not a known key: did you mean "
            "quality_metric_floor?",
        ),
        (
            "schema",
            "max_missing",
            "schema.max_missing is not a known key: did you mean max_missing_fraction?",
        ),
        (
            "defaults",
            "data.lifecycle",
            "defaults.data.lifecycle is not a known key: the keys here are "
            "noncurrent_version_expiration_days, capture_expiration_days, producer_principals",
        ),
        (
            "defaults",
            "pipeline.hyperparameters.gamma",
            "defaults.pipeline.hyperparameters.gamma is not a known key: the keys here are "
            "num_round, max_depth, eta, subsample, colsample_bytree, min_child_weight, "
            "early_stopping_rounds",
        ),
    ],
)
def test_an_unknown_key_is_named_where_it_is_written_with_the_nearest_known_key(
    context: dict[str, Any], block: str, key: str, message: str
) -> None:
    node = context
    for part in block.split("."):
        node = node[part]
    set_key(node, key, 1)
    env = block.split(".")[1] if block.startswith("environments.") else "dev"
    assert config_error(context, env) == message


def test_an_unknown_key_inside_a_feature_is_named(context: dict[str, Any]) -> None:
    context["schema"]["features"][2]["typ"] = "int"
    assert config_error(context) == "schema.features[2].typ is not a known key: did you mean type?"


def test_an_unknown_key_is_reported_before_the_value_it_left_at_its_default(
    context: dict[str, Any],
) -> None:
    """`max_capcity: 6` left max_capacity at 2, below min_capacity 3: the typo is the cause."""
    set_key(context["environments"]["dev"], "serving", {"min_capacity": 3, "max_capcity": 6})
    assert config_error(context) == (
        "environments.dev.serving.max_capcity is not a known key: did you mean max_capacity?"
    )


def test_unknown_keys_of_another_environment_wait_for_its_own_synth(
    context: dict[str, Any],
) -> None:
    set_key(context["environments"]["prod"], "serving.instnace_type", "ml.m5.large")
    assert parse_environment(context, "dev").name == "dev"
    assert "environments.prod.serving.instnace_type" in config_error(context, "prod")


# ---- numbers: bounds, bools, zero ----------------------------------------------------------

# (key, low, high, integer): the bounds users read in the error message. A key under `schema.`
# lives in the top-level schema, every other one in an environment's settings.
NUMBERS = [
    ("data.noncurrent_version_expiration_days", 1, 3650, True),
    ("data.capture_expiration_days", 1, 3650, True),
    ("pipeline.training_instance_count", 1, 10, True),
    ("pipeline.max_runtime_seconds", 60, 432000, True),
    ("pipeline.max_wait_seconds", 60, 432000, True),
    ("pipeline.hyperparameters.num_round", 1, 10000, True),
    ("pipeline.hyperparameters.max_depth", 1, 20, True),
    ("pipeline.hyperparameters.eta", 0.0001, 1, False),
    ("pipeline.hyperparameters.subsample", 0.1, 1, False),
    ("pipeline.hyperparameters.colsample_bytree", 0.1, 1, False),
    ("pipeline.hyperparameters.min_child_weight", 0, 1000, False),
    ("pipeline.hyperparameters.early_stopping_rounds", 1, 1000, True),
    # pipeline.metric_floor and champion_tolerance: their range depends on the metric
    # (tests/test_config_problem_types.py)
    ("pipeline.min_positives", 1, 100000, True),
    ("pipeline.bootstrap_samples", 100, 100000, True),
    ("pipeline.max_parallel_steps", 1, 50, True),
    ("split.validation_fraction", 0.05, 0.45, False),
    ("split.test_fraction", 0.05, 0.45, False),
    ("trigger.quiet_period_seconds", 30, 900, True),
    ("trigger.max_concurrent_executions", 1, 20, True),
    ("serving.initial_instance_count", 1, 20, True),
    ("serving.min_capacity", 1, 20, True),
    ("serving.max_capacity", 1, 100, True),
    ("serving.target_invocations_per_instance", 1, 100000, True),
    ("serving.capture_sampling_percent", 0, 100, True),
    ("serving.canary_traffic_percent", 1, 50, True),
    ("serving.bake_minutes", 0, 60, True),
    ("monitoring.drift_share_threshold", 0.01, 1, False),
    ("monitoring.missing_share_threshold", 0.01, 1, False),
    ("monitoring.drift_distance_threshold", 0.01, 1, False),
    # monitoring.quality_metric_floor: its range depends on pipeline.metric
    # (tests/test_config_problem_types.py)
    ("monitoring.latency_p99_ms", 1, 60000, True),
    ("monitoring.error_5xx_rate_percent", 0.1, 100, False),
    ("monitoring.retrain_cooldown_hours", 1, 720, True),
    ("schema.max_missing_fraction", 0, 0.5, False),
]


def _with(context: dict[str, Any], key: str, value: Any) -> tuple[dict[str, Any], str]:
    """Set `key` in dev's block (or the schema); return the context and the key's full name."""
    if key.startswith("schema."):
        set_key(context, key, value)
        return context, key
    set_key(context["environments"]["dev"], key, value)
    return context, f"environments.dev.{key}"


def _bad_values(low: float, high: float, integer: bool) -> list[Any]:
    below = 0 if low > 0 else -1
    above = high + 1 if integer else high * 2
    return [below, above, True, False, str(low)] + ([float(low)] if integer else [])


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        (key, value, f"{'an integer' if integer else 'a number'} from {low:g} to {high:g}")
        for key, low, high, integer in NUMBERS
        for value in _bad_values(low, high, integer)
    ],
)
def test_a_number_out_of_bounds_a_bool_or_a_string_is_refused(
    context: dict[str, Any], key: str, value: Any, allowed: str
) -> None:
    context, full = _with(context, key, value)
    assert config_error(context) == f"{full} = {value!r} is not allowed: {allowed}"


@pytest.mark.parametrize(
    ("key", "value"),
    [(key, bound) for key, low, high, _ in NUMBERS for bound in (low, high)],
)
def test_both_bounds_are_allowed(context: dict[str, Any], key: str, value: float) -> None:
    if key == "serving.min_capacity":  # the max_capacity must still be at least this
        set_key(context["environments"]["dev"], "serving.max_capacity", 100)
    context, _ = _with(context, key, value)
    assert _flat(parse_environment(context, "dev"))[key] == value


# ---- every key lands in its own setting ----------------------------------------------------


def _flat(config: EnvironmentConfig) -> dict[str, Any]:
    """Every setting of an environment by its cdk.json key (the schema's under `schema.`)."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(f"{prefix}{name}.", getattr(value, name))
        else:
            flat[prefix.rstrip(".")] = value

    for field in fields(config):
        walk(f"{field.name}.", getattr(config, field.name))
    return flat


# One value per key, distinct from its default and from every key sharing that default
# (metric_floor and quality_metric_floor, the two instance types, the two 10s of serving).
DISTINCT = {
    "account": "444444444444",
    "region": "us-east-1",
    "retain": True,
    "notification_emails": ("ops@example.com",),
    "data.noncurrent_version_expiration_days": 31,
    "data.capture_expiration_days": 91,
    "data.producer_principals": ("arn:aws:iam::111111111111:role/producer",),
    "pipeline.processing_instance_type": "ml.c5.2xlarge",
    "pipeline.training_instance_type": "ml.m5.4xlarge",
    "pipeline.training_instance_count": 3,
    "pipeline.use_spot": True,
    "pipeline.max_runtime_seconds": 1800,
    "pipeline.max_wait_seconds": 5400,
    "pipeline.hyperparameters.num_round": 301,
    "pipeline.hyperparameters.max_depth": 7,
    "pipeline.hyperparameters.eta": 0.11,
    "pipeline.hyperparameters.subsample": 0.81,
    "pipeline.hyperparameters.colsample_bytree": 0.82,
    "pipeline.hyperparameters.min_child_weight": 2.5,
    "pipeline.hyperparameters.early_stopping_rounds": 21,
    "pipeline.metric": "f1",
    "pipeline.metric_floor": 0.71,
    "pipeline.champion_tolerance": 0.02,
    "pipeline.bootstrap_samples": 1001,
    "pipeline.min_positives": 101,
    "pipeline.gate_method": "bootstrap",
    "pipeline.decision_threshold": 0.3,
    "pipeline.scale_pos_weight": "balanced",
    "split.id_column": "txn_id",
    "split.validation_fraction": 0.16,
    "split.test_fraction": 0.2,
    "pipeline.max_parallel_steps": 5,
    "pipeline.cache_expire_after": "PT12H",
    "trigger.completion_mode": "quiet-period",
    "trigger.quiet_period_seconds": 301,
    "trigger.max_concurrent_executions": 3,
    "trigger.allow_reupload": True,
    "trigger.retrain_schedule": "rate(7 days)",
    "serving.instance_type": "ml.c5.large",
    "serving.initial_instance_count": 2,
    "serving.min_capacity": 2,
    "serving.max_capacity": 3,
    "serving.target_invocations_per_instance": 201,
    "serving.capture_sampling_percent": 99,
    "serving.deploy_on": "promotion",
    "serving.canary_traffic_percent": 11,
    "serving.bake_minutes": 12,
    "monitoring.engine": "model-monitor",
    "monitoring.schedule": "rate(6 hours)",
    "monitoring.instance_type": "ml.m5.2xlarge",
    "monitoring.drift_share_threshold": 0.31,
    "monitoring.missing_share_threshold": 0.13,
    "monitoring.drift_distance_threshold": 0.12,
    "monitoring.quality_metric_floor": 0.62,
    "monitoring.latency_p99_ms": 501,
    "monitoring.error_5xx_rate_percent": 6.5,
    "monitoring.retrain_on_alarm": False,
    "monitoring.retrain_cooldown_hours": 25,
    "security.key_administrators": ("arn:aws:iam::111111111111:role/key-admin",),
    "security.break_glass_principals": ("arn:aws:iam::111111111111:user/break-glass",),
    "security.own_job_log_groups": True,
    "schema.target": "label",
    "schema.positive_class": "female",
    "schema.max_missing_fraction": 0.06,
}
# Settings whose cdk.json key and value differ from the attribute's.
CDK_JSON_KEY = {"retain": ("stateful_removal", "retain")}


def test_the_distinct_values_cover_every_setting() -> None:
    settings = set(_flat(parse_environment(read_cdk_json_context(), "dev")))
    assert set(DISTINCT) == settings - {
        "name",  # the environment's name is its key in cdk.json
        "project",  # its rule has its own tests
        "schema.features",  # a list, tested on its own
        "pipeline.xgboost_framework_version",  # one allowed value: nothing to swap with
        # excludes positive_class (in DISTINCT): test_several_processing_instances_*
        "pipeline.processing_instance_count",
        "split.time_column",  # excludes id_column: test_the_time_column_sets_only_itself
        "promotion",  # cdk.json's top-level promotion block: tests/test_config_promotion.py
        "pipeline.tuning",  # a block of ranges, absent by default: tests/test_config_tuning.py
        # sklearn and custom exclude 3 training instances and tuning: test_config_trainer.py
        "pipeline.trainer",
        "pipeline.sklearn",
        "pipeline.custom",
        "schema.problem_type",  # needs its own metric: tests/test_config_problem_types.py
    } - {
        # serverless mode excludes the realtime keys and their values above, and its own keys
        # need it: tests/test_config_serving.py
        "serving.mode",
        "serving.memory_size_mb",
        "serving.max_concurrency",
        "serving.provisioned_concurrency",
    } - {
        # batch mode excludes the endpoint keys: tests/test_config_batch.py
        name
        for name in settings
        if name.startswith("serving.batch.")
    } - {
        # network keys hold together (vpc_id needs mode vpc): tests/test_config_network.py
        name
        for name in settings
        if name.startswith("network.")
    } - set(TRACKING_COMBINATIONS_KEYS)


# tracking keys hold together (server_size and mlflow_version need managed, server_arn needs
# external): each combination is fed whole, and every key is in one.
TRACKING_COMBINATIONS: list[dict[str, Any]] = [
    {"tracking.mlflow": "managed"},
    {
        "tracking.mlflow": "managed",
        "tracking.server_size": "Medium",
        "tracking.mlflow_version": "3.0",
    },
    {
        "tracking.mlflow": "external",
        "tracking.server_arn": "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/t",
    },
    {
        "tracking.mlflow": "external",
        "tracking.server_uri": "https://mlflow.example.com",
        "tracking.credentials_secret_arn": (
            "arn:aws:secretsmanager:eu-west-1:111111111111:secret:mlflow-a1B2c3"
        ),
    },
]
TRACKING_COMBINATIONS_KEYS = {key for combination in TRACKING_COMBINATIONS for key in combination}


@pytest.mark.parametrize("combination", TRACKING_COMBINATIONS)
def test_each_tracking_combination_sets_its_own_settings_and_no_other(
    context: dict[str, Any], combination: dict[str, Any]
) -> None:
    before = _flat(parse_environment(context, "dev"))
    for key, value in combination.items():
        context, _ = _with(context, key, value)
    after = _flat(parse_environment(context, "dev"))
    assert {name for name in after if after[name] != before[name]} == set(combination)
    assert {name: after[name] for name in combination} == combination


def test_the_time_column_sets_only_itself(context: dict[str, Any]) -> None:
    before = _flat(parse_environment(context, "dev"))
    context, _ = _with(context, "split.time_column", "event_time")
    after = _flat(parse_environment(context, "dev"))
    assert {name for name in after if after[name] != before[name]} == {"split.time_column"}
    assert after["split.time_column"] == "event_time"


@pytest.mark.parametrize("value", [0.5, 1, 2.5, "balanced"])
def test_a_class_weight_is_a_positive_number_or_balanced(
    context: dict[str, Any], value: Any
) -> None:
    context, _ = _with(context, "pipeline.scale_pos_weight", value)
    parsed = parse_environment(context, "dev").pipeline.scale_pos_weight
    # as written in cdk.json: 1 stays the integer 1 (a pipeline parameter gets "1", not "1.0")
    assert (parsed, type(parsed)) == (value, type(value))


# ---- the rules themselves ------------------------------------------------------------------

RULES: list[tuple[Any, Any, Any]] = [
    (rules.Allowed("a list of names"), list[str], ["a"]),
    (rules.Integer(1, 20), int, 20),
    (rules.Number(0, 1), float, 0.5),
    (rules.NumberOr(0, 1, ("max-f1",)), float | str, "max-f1"),
    (rules.Boolean(), bool, True),
    (rules.Text(r"^[a-z]+$", "lowercase letters"), str, "abc"),
    (rules.Region(), str, "eu-west-1"),
]


@pytest.mark.parametrize(("rule", "kind", "good"), RULES, ids=lambda r: type(r).__name__)
def test_every_rule_can_annotate_an_optional_field(rule: Any, kind: Any, good: Any) -> None:
    """`Annotated[X, rule] | None` (as network.vpc_id is written) hashes the rule: typing
    deduplicates a union's members in a set, so a rule that cannot be hashed breaks the
    import of the module that declares the field."""
    optional = Annotated[kind, rule] | None  # type: ignore[valid-type]
    model = create_model("Optional", value=(optional, None), __base__=rules.Section)
    assert model().value is None
    assert model(value=good).value == good


# Settings whose unset default follows another's (gate_method: delong for auc, else bootstrap).
FOLLOWS = {"pipeline.metric": {"pipeline.gate_method"}}


@pytest.mark.parametrize("setting", sorted(DISTINCT))
def test_each_key_sets_its_own_setting_and_no_other(context: dict[str, Any], setting: str) -> None:
    before = _flat(parse_environment(context, "dev"))
    key, value = CDK_JSON_KEY.get(setting, (setting, DISTINCT[setting]))
    if isinstance(value, tuple):
        value = list(value)
    context, _ = _with(context, key, value)
    after = _flat(parse_environment(context, "dev"))
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {setting} | FOLLOWS.get(setting, set())
    assert after[setting] == DISTINCT[setting]


def test_all_distinct_values_together(context: dict[str, Any]) -> None:
    for setting, value in DISTINCT.items():
        key, raw = CDK_JSON_KEY.get(setting, (setting, value))
        _with(context, key, list(raw) if isinstance(raw, tuple) else raw)
    after = _flat(parse_environment(context, "dev"))
    assert {name: after[name] for name in DISTINCT} == DISTINCT


# ---- cdk.schema.json ---------------------------------------------------------------------


def test_the_committed_json_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text() == render(), "regenerate it: make schema"


def test_cdk_json_names_its_schema_and_passes_it() -> None:
    cdk_json = json.loads((SCHEMA_FILE.parent / "cdk.json").read_text())
    assert cdk_json["$schema"] == "./cdk.schema.json"
    jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).validate(cdk_json)


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (["environments", "dev", "serving", "instnace_type"], "ml.m5.large", "'instnace_type'"),
        (["defaults", "pipeline", "use_spot"], 1, "1 is not of type 'boolean'"),
        (["defaults", "serving", "max_capacity"], 101, "101 is greater than the maximum of 100"),
        (["environments", "prod", "account"], "3333", "does not match"),
        (["defaults", "monitoring", "engine"], "whylabs", "'whylabs' is not one of"),
    ],
)
def test_editors_flag_what_the_app_refuses(path: list[str], value: Any, complaint: str) -> None:
    cdk_json = json.loads((SCHEMA_FILE.parent / "cdk.json").read_text())
    node = cdk_json["context"]
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    messages = [error.message for error in validator.iter_errors(cdk_json)]
    assert len(messages) == 1 and complaint in messages[0]


@pytest.mark.parametrize("count", [2, 10])
def test_several_processing_instances_set_only_themselves(
    context: dict[str, Any], count: int
) -> None:
    before = _flat(parse_environment(context, "dev"))
    context, _ = _with(context, "pipeline.processing_instance_count", count)
    after = _flat(parse_environment(context, "dev"))
    assert {name for name in after if after[name] != before[name]} == {
        "pipeline.processing_instance_count"
    }
    assert after["pipeline.processing_instance_count"] == count


@pytest.mark.parametrize("count", [0, 11])
def test_processing_instances_out_of_range_are_refused_naming_the_key(
    context: dict[str, Any], count: int
) -> None:
    context, _ = _with(context, "pipeline.processing_instance_count", count)
    assert "pipeline.processing_instance_count" in config_error(context, "dev")


@pytest.mark.parametrize(
    ("key", "value"), [("split.time_column", "event_time"), ("schema.positive_class", "yes")]
)
def test_several_processing_instances_take_a_time_split_and_a_text_target(
    context: dict[str, Any], key: str, value: str
) -> None:
    """The merge decides what needs every row (the time cut-offs, the label mapping)."""
    context, _ = _with(context, "pipeline.processing_instance_count", 3)
    if key.startswith("schema."):
        context["schema"]["positive_class"] = value
    else:
        context, _ = _with(context, key, value)
    settings = parse_environment(context, "dev")
    assert settings.pipeline.processing_instance_count == 3


def test_category_features_train_on_one_instance(context: dict[str, Any]) -> None:
    """Each host fits category codes on its own shard, so several would disagree."""
    context["schema"]["features"][0]["type"] = "category"
    name = context["schema"]["features"][0]["name"]
    context, _ = _with(context, "pipeline.training_instance_count", 3)
    assert config_error(context, "dev") == (
        "environments.dev.pipeline.training_instance_count = 3 is not allowed with category "
        f"features ({name}): each host would encode its own shard's categories differently "
        "(train on 1 instance)"
    )
    context["environments"]["dev"]["pipeline"]["training_instance_count"] = 1
    parse_environment(context, "dev")


@pytest.mark.parametrize("instance_type", ["ml.g5.xlarge", "ml.p3.2xlarge", "ml.g4dn.xlarge"])
def test_several_gpu_training_instances_are_refused_at_synth(
    context: dict[str, Any], instance_type: str
) -> None:
    """train.py refuses several GPU hosts when the job runs: the config says so first."""
    context, _ = _with(context, "pipeline.training_instance_type", instance_type)
    context["environments"]["dev"]["pipeline"]["training_instance_count"] = 2
    assert config_error(context, "dev") == (
        "environments.dev.pipeline.training_instance_count = 2 is not allowed: with GPU "
        f"instance type {instance_type}: training on several GPU instances is untested (use 1 "
        "GPU instance or CPU instances)"
    )
    context["environments"]["dev"]["pipeline"]["training_instance_count"] = 1
    assert parse_environment(context, "dev").pipeline.training_instance_type == instance_type
    context, _ = _with(context, "pipeline.training_instance_type", "ml.m5.4xlarge")
    context["environments"]["dev"]["pipeline"]["training_instance_count"] = 2
    assert parse_environment(context, "dev").pipeline.training_instance_count == 2


# ---- keys whose meaning depends on pipeline.metric ------------------------------------------

#: Their value is in the metric's units (or, for gate_method, valid for AUC alone): cdk.json's
#: defaults leave them unset, so the default follows the metric and a metric in other units
#: must set them (a 0.8 written for AUC would pass an RMSE of 0.8 grams as a ceiling).
METRIC_DEPENDENT = {
    "pipeline": ("metric_floor", "champion_tolerance", "gate_method"),
    "monitoring": ("quality_metric_floor",),
}


def test_cdk_json_leaves_the_metric_dependent_keys_unset() -> None:
    defaults = read_cdk_json_context()["defaults"]
    for block, keys in METRIC_DEPENDENT.items():
        assert not set(keys) & set(defaults[block]), block


@pytest.mark.parametrize(
    ("problem", "metric", "method"),
    [("binary", "auc", "delong"), ("binary", "f1", "bootstrap"),
     ("multiclass", "macro_f1", "bootstrap"), ("regression", "r2", "bootstrap")],
)  # fmt: skip
def test_an_unset_gate_method_follows_the_metric(
    context: dict[str, Any], problem: str, metric: str, method: str
) -> None:
    context["schema"]["problem_type"] = problem
    set_key(context, "defaults.pipeline.metric", metric)
    _set_floors(context, problem)
    assert parse_environment(context, "dev").pipeline.gate_method == method
    # written as null (the schema's default), it follows the metric too
    set_key(context, "environments.dev.pipeline.gate_method", None)
    assert parse_environment(context, "dev").pipeline.gate_method == method


def test_the_schema_says_the_gate_method_default_follows_the_metric() -> None:
    field = json.loads(SCHEMA_FILE.read_text())["$defs"]["PipelineConfig"]["properties"][
        "gate_method"
    ]
    assert field["default"] is None
    assert "The default follows the metric: delong for auc, else bootstrap" in " ".join(
        field["description"].split()
    )


@pytest.mark.parametrize(
    ("problem", "metric"), [("binary", "f1"), ("binary", "recall"), ("multiclass", "accuracy")]
)
def test_delong_is_refused_for_a_metric_other_than_auc(
    context: dict[str, Any], problem: str, metric: str
) -> None:
    context["schema"]["problem_type"] = problem
    set_key(context, "defaults.pipeline.metric", metric)
    _set_floors(context, problem)
    set_key(context, "environments.dev.pipeline.gate_method", "delong")
    assert config_error(context) == (
        f"environments.dev.pipeline.gate_method = 'delong' is not allowed: with metric {metric}: "
        "DeLong's standard error is AUC's; use bootstrap (or leave gate_method unset)"
    )
    set_key(context, "environments.dev.pipeline.gate_method", "bootstrap")
    assert parse_environment(context, "dev").pipeline.gate_method == "bootstrap"


def _set_floors(context: dict[str, Any], problem: str) -> None:
    """A multiclass or regression config's floors, which have no default (a binary AUC's 0.8
    does not carry over)."""
    if problem != "binary":
        set_key(context, "defaults.pipeline.metric_floor", 0.6)
        set_key(context, "defaults.monitoring.quality_metric_floor", 0.55)


def test_delong_stays_allowed_for_auc(context: dict[str, Any]) -> None:
    set_key(context, "environments.dev.pipeline.gate_method", "delong")
    assert parse_environment(context, "dev").pipeline.gate_method == "delong"


@pytest.mark.parametrize(
    ("problem", "metric", "values"),
    [("regression", "rmse", (400.0, 25.0, 450.0)),
     ("multiclass", "log_loss", (0.6, 0.05, 0.7)),
     ("regression", "r2", (0.5, None, 0.4)),
     ("multiclass", "macro_f1", (0.6, None, 0.55)),
     ("multiclass", "accuracy", (0.7, None, 0.65))],
)  # fmt: skip
def test_a_typed_config_on_the_shipped_cdk_json_must_set_each_key_in_its_metrics_units(
    context: dict[str, Any], problem: str, metric: str, values: tuple[float, Any, float]
) -> None:
    """Only the problem type and the metric changed from the shipped cdk.json: each key in the
    metric's units is required in turn, with a one-line error naming it. A unit-free metric
    (r2, macro_f1, accuracy) keeps the tolerance's default 0.01 but has no floor default: the
    0.8 of a binary AUC would be arbitrary for K classes (chance 1/K) or an R²."""
    context["schema"]["problem_type"] = problem
    context["schema"].pop("positive_class", None)
    set_key(context, "defaults.pipeline.metric", metric)
    steps = [
        ("pipeline.metric_floor", values[0]),
        ("pipeline.champion_tolerance", values[1]),
        ("monitoring.quality_metric_floor", values[2]),
    ]
    if values[1] is None:
        steps.pop(1)
        values = (values[0], 0.01, values[2])
    for key, value in steps:
        message = config_error(context)
        assert message.startswith(f"environments.dev.{key} is required with")
        assert "\n" not in message and metric in message
        set_key(context, f"defaults.{key}", value)
    config = parse_environment(context, "dev")
    assert (config.pipeline.metric_floor, config.pipeline.champion_tolerance) == values[:2]
    assert config.monitoring.quality_metric_floor == values[2]
    assert config.pipeline.gate_method == "bootstrap"
