"""How the approved model is served: a real-time endpoint (instances, autoscaling, capture and a
blue/green canary rollout) or a serverless one (memory and concurrency, billed per use).

Each mode has keys of its own; a key of the other mode must keep its default (an error names
it otherwise), as `network`'s vpc keys do in public mode. Batch scoring (#16) is not built yet.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import field_validator, model_validator

from mlops_config.pipeline import InstanceType
from mlops_config.rules import (
    Integer,
    IntegerOneOf,
    OneOf,
    Section,
    allowed,
    field_error,
    rule_error,
)

Mode = Literal["realtime", "serverless"]
SERVING_MODES: tuple[str, ...] = get_args(Mode)
# ProductionVariantServerlessConfig.MemorySizeInMB: 1 GB steps from 1024 to 6144 MB.
MemorySize = Literal[1024, 2048, 3072, 4096, 5120, 6144]
# ProductionVariantServerlessConfig.MaxConcurrency and ProvisionedConcurrency: 1 to 200.
MAX_SERVERLESS_CONCURRENCY = 200
REALTIME_KEYS = (
    "instance_type",
    "initial_instance_count",
    "min_capacity",
    "max_capacity",
    "target_invocations_per_instance",
    "capture_sampling_percent",
    "canary_traffic_percent",
)
SERVERLESS_KEYS = ("memory_size_mb", "max_concurrency", "provisioned_concurrency")


class ServingConfig(Section):
    mode: Annotated[Mode, OneOf()] = "realtime"
    """`realtime`: an always-on endpoint on instances (autoscaling, data capture, blue/green
    canary). `serverless`: SageMaker Serverless Inference (billed per request and compute
    time, cold starts, no data capture, so no drift check; public network only)."""
    instance_type: InstanceType = "ml.m5.large"
    """realtime mode: endpoint instance type."""
    initial_instance_count: Annotated[int, Integer(1, 20)] = 1
    """realtime mode: instances at creation."""
    min_capacity: Annotated[int, Integer(1, 20)] = 1
    """realtime mode: autoscaling lower bound."""
    max_capacity: Annotated[int, Integer(1, 100)] = 2
    """realtime mode: autoscaling upper bound (at least min_capacity)."""
    target_invocations_per_instance: Annotated[int, Integer(1, 100_000)] = 200
    """realtime mode: target-tracking autoscaling target, per minute."""
    capture_sampling_percent: Annotated[int, Integer(0, 100)] = 100
    """realtime mode: share of requests captured to `capture/`."""
    memory_size_mb: Annotated[MemorySize, IntegerOneOf()] = 2048
    """serverless mode: memory of each concurrent invocation's container, in MB (1024 to 6144
    in 1024 steps; vCPUs grow with it)."""
    max_concurrency: Annotated[int, Integer(1, MAX_SERVERLESS_CONCURRENCY)] = 5
    """serverless mode: concurrent invocations at most; more are throttled (the account's
    total serverless concurrency is a regional quota)."""
    provisioned_concurrency: Annotated[int, Integer(0, MAX_SERVERLESS_CONCURRENCY)] = 0
    """serverless mode: invocations kept warm (no cold start), billed while provisioned;
    0 = on demand only. At most max_concurrency."""
    deploy_on: Annotated[Literal["approval", "promotion"], OneOf()] = "approval"
    """Which model registry event deploys."""
    canary_traffic_percent: Annotated[int, Integer(1, 50)] = 10
    """realtime mode: blue/green canary size (serverless shifts all traffic at once)."""
    bake_minutes: Annotated[int, Integer(0, 60)] = 10
    """Bake time after the canary (realtime) or the all-at-once shift (serverless), while
    the rollback alarms watch the new model."""

    @field_validator("mode", mode="before")
    @classmethod
    def _batch_is_not_built_yet(cls, value: Any) -> Any:
        if value == "batch":
            raise rule_error(
                allowed(
                    "batch serving is not available yet (issue #16); one of "
                    + ", ".join(SERVING_MODES)
                )
            )
        return value

    @property
    def serverless(self) -> bool:
        return self.mode == "serverless"

    @model_validator(mode="after")
    def _consistent(self) -> ServingConfig:
        other_keys = REALTIME_KEYS if self.serverless else SERVERLESS_KEYS
        for key in other_keys:
            value = getattr(self, key)
            if value != type(self).model_fields[key].default:
                raise field_error(
                    key,
                    value,
                    f"is not allowed: mode is {self.mode} (it applies to "
                    f"{'realtime' if self.serverless else 'serverless'} mode only: remove it or "
                    "leave its default)",
                )
        if self.max_capacity < self.min_capacity:
            raise field_error(
                "max_capacity",
                self.max_capacity,
                allowed(f"at least min_capacity ({self.min_capacity})"),
            )
        if self.provisioned_concurrency > self.max_concurrency:
            raise field_error(
                "provisioned_concurrency",
                self.provisioned_concurrency,
                allowed(f"at most max_concurrency ({self.max_concurrency})"),
            )
        return self
