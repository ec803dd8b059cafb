"""How the approved model is served: a real-time endpoint (instances, autoscaling, capture and a
blue/green canary rollout), a serverless one (memory and concurrency, billed per use), or no
endpoint at all: batch scoring of data landing under `score/` (`serving.batch`, a transform job
per scoring version).

Each mode has keys of its own; a key of another mode must keep its default (an error names it
otherwise), as `network`'s vpc keys do in public mode.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import model_validator

from mlops_config.pipeline import InstanceType
from mlops_config.rules import (
    COLUMN,
    Integer,
    IntegerOneOf,
    OneOf,
    Section,
    Text,
    allowed,
    field_error,
)

Mode = Literal["realtime", "serverless", "batch"]
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
# What only an endpoint (realtime or serverless) uses: batch mode refuses these too.
ENDPOINT_KEYS = ("bake_minutes",)
BATCH_KEYS = ("batch",)
# CreateTransformJob.MaxPayloadInMB: 0 to 100 (0: no limit, for streamed payloads only);
# MaxConcurrentTransforms: 0 to 2^31 - 1, bounded here to what a scoring fleet uses.
MAX_PAYLOAD_MB = 100
MAX_CONCURRENT_TRANSFORMS = 64


class BatchScoringConfig(Section):
    """batch mode: how each scoring version under `score/` is scored (one transform job)."""

    instance_type: InstanceType = "ml.m5.large"
    """Transform job instance type."""
    instance_count: Annotated[int, Integer(1, 20)] = 1
    """Transform job instances; SageMaker splits the version's files between them."""
    id_column: Annotated[str, Text(COLUMN, "a column name (letters, digits, _)")] = "id"
    """The column identifying each row of the scoring data (not a feature): every prediction
    keeps it, with the features it was computed from."""
    max_payload_mb: Annotated[int, Integer(1, MAX_PAYLOAD_MB)] = 6
    """Largest request the transform job sends the model, in MB (a mini-batch of rows)."""
    max_concurrent_transforms: Annotated[int, Integer(1, MAX_CONCURRENT_TRANSFORMS)] = 1
    """Requests in flight to each instance's model container at once (times max_payload_mb:
    at most 100 MB)."""

    @model_validator(mode="after")
    def _in_flight(self) -> BatchScoringConfig:
        if self.max_concurrent_transforms * self.max_payload_mb > MAX_PAYLOAD_MB:
            raise field_error(
                "max_concurrent_transforms",
                self.max_concurrent_transforms,
                allowed(
                    f"at most {MAX_PAYLOAD_MB // self.max_payload_mb} with max_payload_mb "
                    f"{self.max_payload_mb} (SageMaker refuses more than {MAX_PAYLOAD_MB} MB in "
                    "flight per instance)"
                ),
            )
        return self


def _first_set(key: str, value: Any, default: Any) -> tuple[str, Any]:
    """(key, value) of the first setting under `key` that differs from its default (a block's
    own key, e.g. `batch.instance_type`), or ("", None) when all keep their defaults."""
    if isinstance(value, Section):
        for name in type(value).model_fields:
            found = _first_set(f"{key}.{name}", getattr(value, name), getattr(default, name))
            if found[0]:
                return found
        return "", None
    return (key, value) if value != default else ("", None)


class ServingConfig(Section):
    mode: Annotated[Mode, OneOf()] = "realtime"
    """`realtime`: an always-on endpoint on instances (autoscaling, data capture, blue/green
    canary). `serverless`: SageMaker Serverless Inference (billed per request and compute
    time, cold starts, no data capture, so no drift check; public network only). `batch`: no
    endpoint; each version landing under `score/` is scored by a transform job with the
    served package (`batch`)."""
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
    batch: BatchScoringConfig = BatchScoringConfig()
    """batch mode: the transform job that scores each version landing under `score/`."""

    @property
    def serverless(self) -> bool:
        return self.mode == "serverless"

    @property
    def is_batch(self) -> bool:
        """No endpoint: the served package scores data landing under `score/`."""
        return self.mode == "batch"

    @model_validator(mode="after")
    def _consistent(self) -> ServingConfig:
        modes_of: dict[str, tuple[str, ...]] = {
            **{key: ("realtime",) for key in REALTIME_KEYS},
            **{key: ("serverless",) for key in SERVERLESS_KEYS},
            **{key: ("realtime", "serverless") for key in ENDPOINT_KEYS},
            **{key: ("batch",) for key in BATCH_KEYS},
        }
        for key, modes in modes_of.items():
            key, value = _first_set(key, getattr(self, key), type(self).model_fields[key].default)
            if self.mode not in modes and key:
                raise field_error(
                    key,
                    value,
                    f"is not allowed: mode is {self.mode} (it applies to "
                    f"{' and '.join(modes)} mode{'s' if len(modes) > 1 else ''} only: remove it "
                    "or leave its default)",
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
