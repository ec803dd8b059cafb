"""The messages the trigger understands: S3 `Object Created` events (and the EventBridge
patterns that route them), alarm events, and retrain requests.

EventBridge carries an object's key as it is (`detail.object.key`: `a b+c:d%e.csv` arrives
as `a b+c:d%e.csv`); only the classic S3 notification format (SNS, SQS, Lambda
destinations) form-encodes keys. The key is therefore used raw, never URL-decoded: decoding
would turn `+` into a space and `%2B` into `+`, naming objects that do not exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes.s3_event import (
    S3EventBridgeNotificationEvent,
)
from trigger_config import SAFE_PREFIX, TriggerConfig
from trigger_outcomes import Rejection

ACTION_RETRAIN = "retrain-latest"
ACTION_RETRAIN_VERSION = "retrain-version"
DEFAULT_VERSION_RERUN_REASON = "manual"
ACTION_QUIET_CHECK = "quiet-check"
S3_SOURCE = "aws.s3"
OBJECT_CREATED = "Object Created"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
DEFERRALS_ATTRIBUTE = "start_training_deferrals"


REQUEST_REASON = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MODEL_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:[0-9]{12}:model-package/"
    r"[A-Za-z0-9](-*[A-Za-z0-9]){0,62}/[0-9]+$"
)


def landing_event_pattern(bucket_name: str, prefix: str = "landing/") -> dict[str, Any]:
    """EventBridge pattern for `Object Created` events of `bucket_name` under `prefix`.

    Plain data, no dependencies: the routing test uses it. `prefix` is kept to folders of
    letters, digits and `_.-` (as LANDING_PREFIX is), so that it reads the same in event
    patterns, IAM resources and S3 URIs; default "landing/".
    """
    if not SAFE_PREFIX.match(prefix):
        raise ValueError(
            f"prefix {prefix!r} must be folders of letters, digits, '_', '.', '-' ending in '/'"
        )
    return {
        "source": [S3_SOURCE],
        "detail-type": [OBJECT_CREATED],
        "detail": {"bucket": {"name": [bucket_name]}, "object": {"key": [{"prefix": prefix}]}},
    }


def alarm_event_pattern(alarm_arns: list[str]) -> dict[str, Any]:
    """EventBridge pattern for transitions of the given alarms into ALARM."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": [ALARM_DETAIL_TYPE],
        "resources": list(alarm_arns),
        "detail": {"state": {"value": ["ALARM"]}},
    }


@dataclass(frozen=True)
class ObjectEvent:
    """The fields of an S3 `Object Created` event this handler uses (key as sent: raw)."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    sequencer: str | None
    reason: str | None
    time: int | None  # epoch seconds of the event

    @property
    def identity(self) -> str:
        """Identifies one object write; a re-delivered event has the same identity."""
        return f"{self.key}#{self.version_id or self.etag}#{self.sequencer or ''}"


def _event_time(value: Any) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return None
    return None


def retrain_request_key(
    message: Mapping[str, Any], action: str, default_reason: str
) -> tuple[str, str]:
    """`reason` and the idempotency key (`scheduled_time` or `request_id`) of a retrain request."""
    reason = message.get("reason", default_reason)
    request_id = message.get("scheduled_time") or message.get("request_id")
    if not isinstance(reason, str) or not REQUEST_REASON.match(reason):
        raise Rejection("malformed-retrain-request", "reason must match [A-Za-z0-9_-]{1,64}")
    if not isinstance(request_id, str) or not 0 < len(request_id) <= 256:
        raise Rejection(
            "malformed-retrain-request",
            f"{action} needs 'scheduled_time' (<aws.scheduler.scheduled-time>) or "
            "'request_id' (1-256 characters) so that a repeated request runs once",
        )
    return reason, request_id


def parse_object_event(message: Mapping[str, Any], config: TriggerConfig) -> ObjectEvent:
    """Validate an EventBridge S3 event for this bucket; raise Rejection otherwise."""
    event = S3EventBridgeNotificationEvent(dict(message))
    if event.detail_type != OBJECT_CREATED:
        raise Rejection(
            "unsupported-detail-type",
            f"S3 event of type {event.detail_type!r}; only {OBJECT_CREATED!r} starts training",
        )
    detail = message.get("detail")
    if not isinstance(detail, dict) or not isinstance(detail.get("object"), dict):
        raise Rejection("malformed-s3-event", "S3 event has no detail.object")
    raw = detail["object"]
    bucket = (
        detail.get("bucket", {}).get("name") if isinstance(detail.get("bucket"), dict) else None
    )
    key = raw.get("key")
    size = raw.get("size")
    if not isinstance(bucket, str) or not isinstance(key, str) or not key:
        raise Rejection("malformed-s3-event", "S3 event lacks detail.bucket.name or object.key")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise Rejection(
            "malformed-s3-event", f"object.size must be a non-negative integer, got {size!r}"
        )
    if bucket != config.data_bucket:
        raise Rejection(
            "foreign-bucket",
            f"event for bucket {bucket!r}; this trigger watches {config.data_bucket!r}",
            key=key,
        )
    obj = event.detail.object
    return ObjectEvent(
        bucket=bucket,
        key=key,
        size=size,
        # moto's EventBridge events spell it eTag; AWS sends etag
        etag=(obj.etag or str(raw.get("eTag") or "")).strip('"'),
        version_id=raw.get("version-id"),
        sequencer=raw.get("sequencer"),
        reason=event.detail.reason,
        time=_event_time(message.get("time")),
    )
