"""Drift and quality monitoring: the engine, its schedule, the alarm thresholds and the
alarm-driven retrain; and the cron forms SageMaker Model Monitor accepts."""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import model_validator

from mlops_config.pipeline import InstanceType
from mlops_config.rules import (
    SCHEDULE,
    SCHEDULE_ALLOWED,
    Boolean,
    Integer,
    Number,
    NumberSaying,
    OneOf,
    Section,
    Text,
    field_error,
)

Engine = Literal["evidently", "model-monitor"]
MONITORING_ENGINES: tuple[str, ...] = get_args(Engine)
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


class MonitoringConfig(Section):
    engine: Annotated[Engine, OneOf()] = "evidently"
    """`evidently` (open source, every account) or `model-monitor` (SageMaker Model Monitor,
    for accounts that still have it; at most 10 features)."""
    schedule: Annotated[str, Text(SCHEDULE, SCHEDULE_ALLOWED)] = "cron(0 * * * ? *)"
    """Drift check schedule (model-monitor: hourly, daily at an hour or every N hours)."""
    instance_type: InstanceType = "ml.m5.large"
    """Drift job instance type."""
    drift_share_threshold: Annotated[float, Number(0.01, 1.0)] = 0.3
    """Alarm when this share of features drifted."""
    missing_share_threshold: Annotated[float, Number(0.01, 1.0)] = 0.1
    """evidently only: a feature drifted when its share of missing values in the window exceeds
    the baseline's by more than this (0.1 = 10 percentage points)."""
    drift_distance_threshold: Annotated[float, Number(0.01, 1.0)] = 0.1
    """model-monitor only: a feature drifted when its baseline drift distance reaches this."""
    quality_metric_floor: Annotated[
        float,
        NumberSaying(
            -1e12,
            1e12,
            "a number from 0 to 1 (log_loss, rmse, mae, mse: at least 0; r2: at most 1)",
        ),
    ] = 0.8
    """Alarm when the production model's gate metric (`pipeline.metric`) on newly labelled data
    falls below (from 0 to 1; r2 at most 1); for a lower-is-better metric, when it rises above
    (at least 0, in the metric's units). The default is a binary model's: a multiclass or
    regression config must set it."""
    latency_p99_ms: Annotated[int, Integer(1, 60_000)] = 500
    """Endpoint p99 latency alarm (also a deployment rollback alarm)."""
    error_5xx_rate_percent: Annotated[float, Number(0.1, 100.0)] = 5
    """Endpoint alarm on the share of invocations answered 5xx, in percent, in each of two
    consecutive minutes (also a deployment rollback alarm)."""
    retrain_on_alarm: Annotated[bool, Boolean()] = False
    """The drift and quality alarms start retraining on the latest complete version."""
    retrain_cooldown_hours: Annotated[int, Integer(1, 24 * 30)] = 24
    """At most one alarm-driven retrain per this period."""

    @model_validator(mode="after")
    def _model_monitor_can_run_on_schedule(self) -> MonitoringConfig:
        if self.engine == "model-monitor" and model_monitor_schedule(self.schedule) is None:
            raise field_error(
                "schedule",
                self.schedule,
                "is not allowed with engine model-monitor: Model Monitor runs hourly, daily at "
                "an hour or every N hours, e.g. cron(0 * * * ? *), cron(0 3 * * ? *), "
                "rate(6 hours)",
            )
        return self
