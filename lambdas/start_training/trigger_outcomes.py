"""What the trigger decided for one event (Outcome), the two exceptions that end a decision
early (Rejection, Deferral), and how every decision is logged and counted."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

# Set by the CDK construct; the default only matters outside Lambda (tests, benchmarks).
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MLOps/Trigger")
logger = Logger(child=True)
metrics = Metrics(namespace=METRICS_NAMESPACE)

METRIC_EVENTS = "EventsHandled"
METRIC_REJECTED = "RejectedEvents"  # dimension Reason
METRIC_STARTED = "ExecutionsStarted"  # dimension Trigger
METRIC_RETRAINS_SKIPPED = "RetrainsSkipped"  # dimension Reason
METRIC_DUPLICATES = "DuplicateEvents"
METRIC_LATE = "LateObjects"
METRIC_REUPLOADS_IGNORED = "ReuploadsIgnored"
METRIC_DEFERRED = "DeferredStarts"


class Kind(StrEnum):
    """What happened to one event."""

    STARTED = "started"
    DUPLICATE = "duplicate"
    PENDING = "pending"
    LATE = "late"
    REUPLOAD_IGNORED = "reupload-ignored"
    DEFERRED = "deferred"
    SKIPPED = "skipped"
    REJECTED = "rejected"


@dataclass
class Outcome:
    """The decision taken for one event; `reason` is a short slug, `message` says why."""

    kind: Kind
    reason: str
    message: str
    dataset_version: str | None = None
    key: str | None = None
    execution_arn: str | None = None
    trigger: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        fields = {
            "outcome": str(self.kind),
            "reason": self.reason,
            "message": self.message,
            "dataset_version": self.dataset_version,
            "key": self.key,
            "execution_arn": self.execution_arn,
            "trigger": self.trigger,
        }
        return {k: v for k, v in fields.items() if v is not None} | self.details


class Rejection(Exception):
    """An event that can never succeed: acknowledged, logged and counted, not retried."""

    def __init__(self, reason: str, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.key = key


class Deferral(Exception):
    """No execution slot now: the message goes back to the queue with a delay."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def report(outcome: Outcome) -> Outcome:
    """Log the decision and count it; every event ends here, none silently."""
    metrics.add_metric(name=METRIC_EVENTS, unit=MetricUnit.Count, value=1)
    fields = outcome.as_dict()
    del fields["message"]  # the log line's own message; LogRecord reserves the name
    if outcome.kind is Kind.REJECTED:
        logger.warning(f"rejected event: {outcome.message}", extra=fields)
        dimensioned_metric(METRIC_REJECTED, "Reason", outcome.reason)
    elif outcome.kind is Kind.PENDING:
        logger.debug(outcome.message, extra=fields)
    else:
        logger.info(outcome.message, extra=fields)
    if outcome.kind is Kind.STARTED:
        dimensioned_metric(METRIC_STARTED, "Trigger", outcome.trigger or "data")
    elif outcome.kind is Kind.SKIPPED:
        dimensioned_metric(METRIC_RETRAINS_SKIPPED, "Reason", outcome.reason)
    elif outcome.kind is Kind.DUPLICATE:
        metrics.add_metric(name=METRIC_DUPLICATES, unit=MetricUnit.Count, value=1)
    elif outcome.kind is Kind.LATE:
        metrics.add_metric(name=METRIC_LATE, unit=MetricUnit.Count, value=1)
    elif outcome.kind is Kind.REUPLOAD_IGNORED:
        metrics.add_metric(name=METRIC_REUPLOADS_IGNORED, unit=MetricUnit.Count, value=1)
    elif outcome.kind is Kind.DEFERRED:
        metrics.add_metric(name=METRIC_DEFERRED, unit=MetricUnit.Count, value=1)
    return outcome


def dimensioned_metric(name: str, dimension: str, value: str) -> None:
    """Count one `name` with the single dimension `dimension`=`value`."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=METRICS_NAMESPACE,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        metric.add_dimension(name=dimension, value=value)
