"""When a dataset version under `landing/` starts a run: completion, concurrency, re-uploads
and the scheduled retrain."""

from __future__ import annotations

from typing import Annotated, Literal

from mlops_config.rules import SCHEDULE, SCHEDULE_ALLOWED, Boolean, Integer, OneOf, Section, Text


class TriggerConfig(Section):
    completion_mode: Annotated[Literal["marker", "quiet-period"], OneOf()] = "marker"
    """`marker`: `_SUCCESS` or `manifest.json` closes a dataset version; `quiet-period`: a
    version is complete after quiet_period_seconds without new objects."""
    quiet_period_seconds: Annotated[int, Integer(30, 900)] = 300
    max_concurrent_executions: Annotated[int, Integer(1, 20)] = 2
    """Beyond it, versions wait in the queue."""
    allow_reupload: Annotated[bool, Boolean()] = False
    """A completed version re-uploaded with different content runs again."""
    retrain_schedule: Annotated[str | None, Text(SCHEDULE, SCHEDULE_ALLOWED, nullable=True)] = None
    """EventBridge Scheduler expression that re-runs the latest complete version."""
