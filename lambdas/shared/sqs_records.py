"""What the SQS-fed handlers that take one EventBridge event per record share: the event a
record carries, and a count in its own metric document. Used by the deploy handler and the
promotion receiver (constructs/python_function.py's `shared_modules` copies this file beside
each handler)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def record_event(record: SQSRecord) -> Any:
    """The EventBridge event in `record`'s body; a body that is not JSON is returned as the
    string it is, for the handler to report as malformed (not retried)."""
    try:
        return json.loads(record.body)
    except json.JSONDecodeError:
        return record.body


def count(name: str, dimensions: dict[str, str], namespace: str) -> None:
    """Count one `name` in `namespace` with `dimensions`, in an EMF document of its own: each
    metric keeps its own dimensions (Reason, Error)."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=namespace) as metric:
        for dimension, value in dimensions.items():
            metric.add_dimension(name=dimension, value=value)
