"""EventBridge -> the `_SUCCESS` marker of a scored version (see predictions_marker.py).

Input: "SageMaker Transform Job State Change" events (source "aws.sagemaker"); the rule sends
only Completed jobs whose output is under predictions/ of the data bucket, and the code checks
both again.

Environment: DATA_BUCKET, plus POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE.

Metrics (count 1 per invocation): MarkersWritten, NotCompleted, Skipped, InvalidEvents. A
malformed event is rejected without a retry; AWS failures raise, so the rule's retries, the
on-failure destination and the dead-letter queue apply.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import predictions_marker as marker
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MLOps/Predictions"))

# Reused across warm invocations; tests put a stubbed client here.
clients: dict[str, Any] = {}


def _s3() -> Any:
    if "s3" not in clients:
        clients["s3"] = boto3.client("s3", config=marker.CLIENT_CONFIG)
    return clients["s3"]


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Entry point: `handler.lambda_handler`."""
    config = marker.MarkerConfig.from_env(os.environ)
    try:
        job = marker.parse_event(event)
    except marker.InvalidEventError as error:
        outcome = marker.Outcome("InvalidEvents", str(error))
        logger.error("invalid event, no marker", extra={"error": outcome.message})
    else:
        outcome = marker.mark_completed(_s3(), config, job)
        logger.info(outcome.message, extra={"transform_job": job.name})
    metrics.add_metric(name=outcome.metric, unit=MetricUnit.Count, value=1)
    return outcome.as_dict()
