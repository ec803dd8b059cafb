"""The one place that reads configuration.

`cdk.json` context holds a `defaults` block and one block per environment (`dev`, `staging`,
`prod`) that overrides it key by key. This module merges them and parses the result into frozen,
validated dataclasses. Anything wrong fails here, before any synth work, with one message naming
the key, the bad value and what is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
ALL_ENVIRONMENTS = "all"
DEFAULT_ENVIRONMENT = "dev"

FeatureType = Literal["float", "int", "bool"]
FEATURE_TYPES: tuple[str, ...] = ("float", "int", "bool")
METRICS: tuple[str, ...] = ("auc", "f1", "accuracy", "precision", "recall")

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,20}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MONITORING_ENGINES = ("evidently", "model-monitor")
_SCHEDULE = re.compile(r"^(cron\(\S+( \S+){5}\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$")
_ISO_DURATION = re.compile(r"^P(\d+D|T\d+H|\d+DT\d+H)$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class ConfigError(ValueError):
    """A configuration value is missing or not allowed. The message names key, value and rule."""


T = TypeVar("T")


class _Reader:
    """Typed access to one mapping of the merged context; every error carries the dotted key."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected an object, got {data!r}")
        self._data = data
        self._path = path

    def key(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def raw(self, name: str) -> Any:
        if name not in self._data:
            raise ConfigError(f"{self.key(name)} is missing (set it in cdk.json context)")
        return self._data[name]

    def child(self, name: str) -> _Reader:
        return _Reader(self.raw(name), self.key(name))

    def typed(self, name: str, kind: type[T] | tuple[type, ...], allowed: str) -> T:
        value = self.raw(name)
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise ConfigError(f"{self.key(name)} = {value!r} is not allowed: {allowed}")
        if not isinstance(value, kind):
            raise ConfigError(f"{self.key(name)} = {value!r} is not allowed: {allowed}")
        return cast(T, value)

    def string(self, name: str, pattern: re.Pattern[str], allowed: str) -> str:
        value = self.typed(name, str, allowed)
        if not pattern.match(value):
            raise ConfigError(f"{self.key(name)} = {value!r} is not allowed: {allowed}")
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value not in choices:
            raise ConfigError(
                f"{self.key(name)} = {value!r} is not allowed: one of {', '.join(choices)}"
            )
        return cast(str, value)

    def number(self, name: str, low: float, high: float, *, integer: bool = False) -> float:
        kind: tuple[type, ...] = (int,) if integer else (int, float)
        what = "an integer" if integer else "a number"
        value: float = self.typed(name, kind, f"{what} from {low:g} to {high:g}")
        if not low <= value <= high:
            raise ConfigError(
                f"{self.key(name)} = {value!r} is not allowed: {what} from {low:g} to {high:g}"
            )
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        return int(self.number(name, low, high, integer=True))

    def boolean(self, name: str) -> bool:
        return bool(self.typed(name, bool, "true or false"))

    def instance_type(self, name: str) -> str:
        return self.string(name, _INSTANCE_TYPE, "a SageMaker instance type such as ml.m5.xlarge")

    def schedule(self, name: str, *, optional: bool = False) -> str | None:
        if optional and self._data.get(name) is None:  # the CDK CLI drops null context values
            return None
        allowed = "an EventBridge expression: cron(m h dom mon dow y) or rate(N unit)"
        return self.string(name, _SCHEDULE, allowed + (", or null" if optional else ""))


@dataclass(frozen=True)
class Feature:
    name: str
    type: FeatureType


@dataclass(frozen=True)
class Schema:
    """The feature schema: defined once here, handed to the step scripts as JSON."""

    target: str
    features: tuple[Feature, ...]
    max_missing_fraction: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "features": [asdict(f) for f in self.features],
            "max_missing_fraction": self.max_missing_fraction,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)


@dataclass(frozen=True)
class DataConfig:
    noncurrent_version_expiration_days: int
    capture_expiration_days: int


@dataclass(frozen=True)
class Hyperparameters:
    num_round: int
    max_depth: int
    eta: float
    subsample: float
    colsample_bytree: float
    min_child_weight: float
    early_stopping_rounds: int


@dataclass(frozen=True)
class PipelineConfig:
    processing_instance_type: str
    processing_instance_count: int
    training_instance_type: str
    training_instance_count: int
    use_spot: bool
    max_runtime_seconds: int
    max_wait_seconds: int
    hyperparameters: Hyperparameters
    metric: str
    metric_floor: float
    champion_tolerance: float
    bootstrap_samples: int
    max_parallel_steps: int
    cache_expire_after: str
    xgboost_framework_version: str


@dataclass(frozen=True)
class TriggerConfig:
    completion_mode: Literal["marker", "quiet-period"]
    quiet_period_seconds: int
    max_concurrent_executions: int
    allow_reupload: bool
    retrain_schedule: str | None


@dataclass(frozen=True)
class ServingConfig:
    instance_type: str
    initial_instance_count: int
    min_capacity: int
    max_capacity: int
    target_invocations_per_instance: int
    capture_sampling_percent: int
    deploy_on: Literal["approval", "promotion"]
    canary_traffic_percent: int
    bake_minutes: int


# CloudWatch alarms on metric math reference at most 10 metrics: the model-monitor drift
# alarm reads one baseline-drift metric per feature.
MODEL_MONITOR_MAX_FEATURES = 10
_HOUR_FIELD = re.compile(r"^(\*|\d{1,2}|\d{1,2}/\d{1,2})$")


def model_monitor_schedule(expression: str) -> str | None:
    """The Model Monitor form (`cron(0 H ? * * *)`: hourly, daily at H, or every N hours) of an
    EventBridge schedule, or None when Model Monitor cannot run on that schedule."""
    inner = expression[expression.index("(") + 1 : -1].split()
    if expression.startswith("rate("):
        count, unit = int(inner[0]), inner[1].rstrip("s")
        hours = {"hour": count, "day": 24 * count}.get(unit)
        if hours == 1:
            return "cron(0 * ? * * *)"
        if hours == 24:
            return "cron(0 0 ? * * *)"
        if hours and 24 % hours == 0:
            return f"cron(0 0/{hours} ? * * *)"
        return None
    minute, hour, day, month, weekday, *year = inner
    every_day = {day, weekday} <= {"*", "?"} and month == "*" and year in ([], ["*"])
    if minute != "0" or not every_day or not _HOUR_FIELD.match(hour):
        return None
    numbers = [int(n) for n in hour.split("/") if n != "*"]
    if hour != "*" and (numbers[0] > 23 or (len(numbers) == 2 and not 1 <= numbers[1] <= 24)):
        return None
    return f"cron(0 {hour} ? * * *)"


def model_monitor_interval_hours(expression: str) -> int:
    """Hours between two runs of a schedule in Model Monitor's cron form (1, N or 24)."""
    hour = expression.split()[1]
    if hour == "*":
        return 1
    return int(hour.split("/")[1]) if "/" in hour else 24


@dataclass(frozen=True)
class MonitoringConfig:
    engine: Literal["evidently", "model-monitor"]
    schedule: str
    instance_type: str
    drift_share_threshold: float
    drift_distance_threshold: float
    quality_metric_floor: float
    latency_p99_ms: int
    error_5xx_threshold: int
    retrain_on_alarm: bool
    retrain_cooldown_hours: int


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything one environment is built from. `retain` drives removal policies and
    termination protection of the stateful stack."""

    project: str
    name: str
    account: str
    region: str
    retain: bool
    notification_emails: tuple[str, ...]
    schema: Schema
    data: DataConfig
    pipeline: PipelineConfig
    trigger: TriggerConfig
    serving: ServingConfig
    monitoring: MonitoringConfig

    @property
    def prefix(self) -> str:
        """`<project>-<env>`: the stem of every name that is part of the contract."""
        return f"{self.project}-{self.name}"

    @property
    def pipeline_name(self) -> str:
        return f"{self.prefix}-training"

    @property
    def evaluation_pipeline_name(self) -> str:
        return f"{self.prefix}-evaluation"

    @property
    def model_quality_namespace(self) -> str:
        return f"{self.prefix}/ModelQuality"

    @property
    def model_package_group_name(self) -> str:
        return f"{self.prefix}-models"

    @property
    def tags(self) -> dict[str, str]:
        return {"project": self.project, "environment": self.name}


@cache
def _known_regions() -> frozenset[str]:
    import boto3  # botocore's bundled endpoint data: no network, no credentials

    return frozenset(boto3.session.Session().get_available_regions("sagemaker"))


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_schema(r: _Reader) -> Schema:
    target = r.string("target", _COLUMN, "a column name (letters, digits, _)")
    raw_features = r.typed("features", list, "a non-empty list of {name, type}")
    if not raw_features:
        raise ConfigError(f"{r.key('features')} = [] is not allowed: at least one feature")
    features = []
    for i, raw in enumerate(raw_features):
        fr = _Reader(raw, f"{r.key('features')}[{i}]")
        name = fr.string("name", _COLUMN, "a column name (letters, digits, _)")
        features.append(
            Feature(name=name, type=cast(FeatureType, fr.choice("type", FEATURE_TYPES)))
        )
    names = [f.name for f in features]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"{r.key('features')} has duplicate names {duplicated}: names are unique")
    if target in names:
        raise ConfigError(f"{r.key('target')} = {target!r} is also a feature: keep it out")
    return Schema(
        target=target,
        features=tuple(features),
        max_missing_fraction=r.number("max_missing_fraction", 0.0, 0.5),
    )


def _parse_pipeline(r: _Reader) -> PipelineConfig:
    hp = r.child("hyperparameters")
    config = PipelineConfig(
        processing_instance_type=r.instance_type("processing_instance_type"),
        processing_instance_count=r.integer("processing_instance_count", 1, 10),
        training_instance_type=r.instance_type("training_instance_type"),
        training_instance_count=r.integer("training_instance_count", 1, 10),
        use_spot=r.boolean("use_spot"),
        max_runtime_seconds=r.integer("max_runtime_seconds", 60, 432_000),
        max_wait_seconds=r.integer("max_wait_seconds", 60, 432_000),
        hyperparameters=Hyperparameters(
            num_round=hp.integer("num_round", 1, 10_000),
            max_depth=hp.integer("max_depth", 1, 20),
            eta=hp.number("eta", 0.0001, 1.0),
            subsample=hp.number("subsample", 0.1, 1.0),
            colsample_bytree=hp.number("colsample_bytree", 0.1, 1.0),
            min_child_weight=hp.number("min_child_weight", 0.0, 1000.0),
            early_stopping_rounds=hp.integer("early_stopping_rounds", 1, 1000),
        ),
        metric=r.choice("metric", METRICS),
        metric_floor=r.number("metric_floor", 0.0, 1.0),
        champion_tolerance=r.number("champion_tolerance", 0.0, 0.5),
        bootstrap_samples=r.integer("bootstrap_samples", 100, 100_000),
        max_parallel_steps=r.integer("max_parallel_steps", 1, 50),
        cache_expire_after=r.string(
            "cache_expire_after", _ISO_DURATION, "an ISO 8601 duration such as P30D or PT12H"
        ),
        xgboost_framework_version=r.choice("xgboost_framework_version", ("3.0-5",)),
    )
    if config.use_spot and config.max_wait_seconds < config.max_runtime_seconds:
        raise ConfigError(
            f"{r.key('max_wait_seconds')} = {config.max_wait_seconds} is not allowed: with "
            f"use_spot it must be at least max_runtime_seconds ({config.max_runtime_seconds})"
        )
    return config


def _parse_serving(r: _Reader) -> ServingConfig:
    config = ServingConfig(
        instance_type=r.instance_type("instance_type"),
        initial_instance_count=r.integer("initial_instance_count", 1, 20),
        min_capacity=r.integer("min_capacity", 1, 20),
        max_capacity=r.integer("max_capacity", 1, 100),
        target_invocations_per_instance=r.integer("target_invocations_per_instance", 1, 100_000),
        capture_sampling_percent=r.integer("capture_sampling_percent", 0, 100),
        deploy_on=cast(Any, r.choice("deploy_on", ("approval", "promotion"))),
        canary_traffic_percent=r.integer("canary_traffic_percent", 1, 50),
        bake_minutes=r.integer("bake_minutes", 0, 60),
    )
    if config.max_capacity < config.min_capacity:
        raise ConfigError(
            f"{r.key('max_capacity')} = {config.max_capacity} is not allowed: at least "
            f"min_capacity ({config.min_capacity})"
        )
    return config


def parse_environment(context: Mapping[str, Any], name: str) -> EnvironmentConfig:
    """Merge `defaults` with `environments.<name>` and validate the result."""
    root = _Reader(context, "")
    environments = root.child("environments")
    if name not in environments._data:
        known = ", ".join(sorted(environments._data))
        raise ConfigError(
            f"env = {name!r} is not a known environment: one of {known} (or '{ALL_ENVIRONMENTS}')"
        )
    project = root.string("project", _NAME, "lowercase letters, digits and '-', 2 to 21 chars")
    merged = _merge(root.typed("defaults", dict, "an object"), environments.child(name)._data)
    r = _Reader(merged, f"environments.{name}")

    region = r.typed("region", str, "an AWS region name")
    if region not in _known_regions():
        raise ConfigError(
            f"{r.key('region')} = {region!r} is not allowed: a region where SageMaker exists, "
            f"e.g. {', '.join(sorted(_known_regions())[:4])}, ..."
        )
    emails = r.typed("notification_emails", list, "a list of email addresses")
    for i, email in enumerate(emails):
        if not isinstance(email, str) or not _EMAIL.match(email):
            raise ConfigError(
                f"{r.key('notification_emails')}[{i}] = {email!r} is not an email address"
            )
    data, trigger, mon = r.child("data"), r.child("trigger"), r.child("monitoring")
    schema = _parse_schema(root.child("schema"))
    engine = cast(Any, mon.choice("engine", MONITORING_ENGINES))
    if engine == "model-monitor":
        _check_model_monitor(mon, schema)
    return EnvironmentConfig(
        project=project,
        name=name,
        account=r.string("account", _ACCOUNT, "a 12-digit AWS account id (quoted)"),
        region=region,
        retain=r.choice("stateful_removal", ("destroy", "retain")) == "retain",
        notification_emails=tuple(emails),
        schema=schema,
        data=DataConfig(
            noncurrent_version_expiration_days=data.integer(
                "noncurrent_version_expiration_days", 1, 3650
            ),
            capture_expiration_days=data.integer("capture_expiration_days", 1, 3650),
        ),
        pipeline=_parse_pipeline(r.child("pipeline")),
        trigger=TriggerConfig(
            completion_mode=cast(
                Any, trigger.choice("completion_mode", ("marker", "quiet-period"))
            ),
            quiet_period_seconds=trigger.integer("quiet_period_seconds", 30, 900),
            max_concurrent_executions=trigger.integer("max_concurrent_executions", 1, 20),
            allow_reupload=trigger.boolean("allow_reupload"),
            retrain_schedule=trigger.schedule("retrain_schedule", optional=True),
        ),
        serving=_parse_serving(r.child("serving")),
        monitoring=MonitoringConfig(
            engine=engine,
            schedule=cast(str, mon.schedule("schedule")),
            instance_type=mon.instance_type("instance_type"),
            drift_share_threshold=mon.number("drift_share_threshold", 0.01, 1.0),
            drift_distance_threshold=mon.number("drift_distance_threshold", 0.01, 1.0),
            quality_metric_floor=mon.number("quality_metric_floor", 0.0, 1.0),
            latency_p99_ms=mon.integer("latency_p99_ms", 1, 60_000),
            error_5xx_threshold=mon.integer("error_5xx_threshold", 1, 100_000),
            retrain_on_alarm=mon.boolean("retrain_on_alarm"),
            retrain_cooldown_hours=mon.integer("retrain_cooldown_hours", 1, 24 * 30),
        ),
    )


def _check_model_monitor(mon: _Reader, schema: Schema) -> None:
    """What Model Monitor needs that Evidently does not: its schedule forms and a drift alarm
    within CloudWatch's metric-math limit."""
    schedule = cast(str, mon.schedule("schedule"))
    if model_monitor_schedule(schedule) is None:
        raise ConfigError(
            f"{mon.key('schedule')} = {schedule!r} is not allowed with engine model-monitor: "
            "Model Monitor runs hourly, daily at an hour or every N hours, e.g. "
            "cron(0 * * * ? *), cron(0 3 * * ? *), rate(6 hours)"
        )
    if len(schema.features) > MODEL_MONITOR_MAX_FEATURES:
        raise ConfigError(
            f"{mon.key('engine')} = 'model-monitor' is not allowed with "
            f"{len(schema.features)} features: its drift alarm reads one metric per feature "
            f"and CloudWatch alarms read at most {MODEL_MONITOR_MAX_FEATURES} (use evidently)"
        )


def select_environments(context: Mapping[str, Any], env: str | None) -> list[EnvironmentConfig]:
    """`env` from `-c env=NAME`: one name, `all`, or None for the default (`dev`)."""
    name = env or DEFAULT_ENVIRONMENT
    if name == ALL_ENVIRONMENTS:
        names = sorted(_Reader(context, "").child("environments")._data)
        return [parse_environment(context, n) for n in names]
    return [parse_environment(context, name)]


def read_cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], json.loads(path.read_text())["context"])
    except (OSError, KeyError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read the context of {path}: {error}") from error


@cache
def load_config(env: str = DEFAULT_ENVIRONMENT) -> EnvironmentConfig:
    """For tools outside the CDK app (local run, CLI): the same parsing, straight from cdk.json."""
    return parse_environment(read_cdk_json_context(), env)
