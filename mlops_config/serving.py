"""The endpoint of the approved model: its size, autoscaling, capture and blue/green rollout."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import model_validator

from mlops_config.pipeline import InstanceType
from mlops_config.rules import Integer, OneOf, Section, allowed, field_error


class ServingConfig(Section):
    instance_type: InstanceType = "ml.m5.large"
    """Endpoint instance type."""
    initial_instance_count: Annotated[int, Integer(1, 20)] = 1
    min_capacity: Annotated[int, Integer(1, 20)] = 1
    """Autoscaling lower bound."""
    max_capacity: Annotated[int, Integer(1, 100)] = 2
    """Autoscaling upper bound (at least min_capacity)."""
    target_invocations_per_instance: Annotated[int, Integer(1, 100_000)] = 200
    """Target-tracking autoscaling target, per minute."""
    capture_sampling_percent: Annotated[int, Integer(0, 100)] = 100
    """Share of requests captured to `capture/`."""
    deploy_on: Annotated[Literal["approval", "promotion"], OneOf()] = "approval"
    """Which model registry event deploys."""
    canary_traffic_percent: Annotated[int, Integer(1, 50)] = 10
    """Blue/green canary size."""
    bake_minutes: Annotated[int, Integer(0, 60)] = 10
    """Bake time before the full traffic shift."""

    @model_validator(mode="after")
    def _capacity_bounds_are_ordered(self) -> ServingConfig:
        if self.max_capacity < self.min_capacity:
            raise field_error(
                "max_capacity",
                self.max_capacity,
                allowed(f"at least min_capacity ({self.min_capacity})"),
            )
        return self
