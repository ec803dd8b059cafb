"""The scheduler's input: which window of captured traffic one invocation checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_WINDOW_HOURS = 24
MAX_WINDOW_HOURS = 24 * 14
METRIC_INVALID_EVENT = "InvalidEvents"


class InvalidEventError(ValueError):
    """The scheduler's input is not what the schedule should send."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def parse_event(event: Any, now: datetime) -> Window:
    """The window to check: `window_hours` (1..336, default 24) before `scheduled_time`
    (ISO-8601; default `now`). Raises InvalidEventError."""
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise InvalidEventError(f"expected a JSON object, got {type(event).__name__}")
    hours = event.get("window_hours", DEFAULT_WINDOW_HOURS)
    if isinstance(hours, bool) or not isinstance(hours, int | float):
        raise InvalidEventError(f"window_hours={hours!r:.50} is not a number")
    if not 1 <= hours <= MAX_WINDOW_HOURS:
        raise InvalidEventError(f"window_hours={hours} is outside [1, {MAX_WINDOW_HOURS}]")
    scheduled = event.get("scheduled_time")
    if scheduled is None:
        end = now
    else:
        try:
            end = datetime.fromisoformat(str(scheduled).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEventError(
                f"scheduled_time={scheduled!r:.80} is not an ISO-8601 time (the schedule "
                "should send <aws.scheduler.scheduled-time>)"
            ) from None
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
    end = end.astimezone(UTC).replace(microsecond=0)
    return Window(start=end - timedelta(hours=hours), end=end)
