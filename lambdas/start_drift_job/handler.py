"""Start the drift job for the served model (package drift_job_starter).

Input, from EventBridge Scheduler (an endpoint's traffic):
    {"window_hours": 24, "scheduled_time": "<aws.scheduler.scheduled-time>"}
or, in batch serving, an EventBridge "SageMaker Transform Job State Change" event of a Completed
scoring run (its rows against the baseline of the package version that scored them).

Environment: see `drift_job_starter.StarterConfig` (ENDPOINT_NAME, DRIFT_IMAGE_URI, JOB_ROLE_ARN,
ARTIFACT_BUCKET, KMS_KEY_ARN, PROJECT_NAME, ENVIRONMENT_NAME, optional INSTANCE_TYPE,
VOLUME_SIZE_GB, MAX_RUNTIME_SECONDS, DRIFT_SHARE_THRESHOLD, MISSING_SHARE_THRESHOLD, MIN_ROWS,
METRICS_NAMESPACE, STATTEST; nothing per feature)
plus POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE (default "MLOps/Drift").

Metrics (count 1 per invocation): DriftJobsStarted, DriftJobsAlreadyStarted, SkippedNoEndpoint,
SkippedEndpointNotServing, SkippedNoCapture, InvalidEvents. AWS failures and a served model
without a package or baseline raise, so the scheduler's retry policy and DLQ apply.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import boto3
import drift_job_starter as starter
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MLOps/Drift"))

# Reused across warm invocations; tests put a stubbed client here.
clients: dict[str, Any] = {}


def _sagemaker() -> Any:
    if "sagemaker" not in clients:
        clients["sagemaker"] = boto3.client("sagemaker", config=starter.CLIENT_CONFIG)
    return clients["sagemaker"]


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Entry point: `handler.lambda_handler`."""
    config = starter.StarterConfig.from_env(os.environ)
    scored = starter.is_transform_event(event)
    try:
        if scored:
            run = starter.parse_transform_event(event, config.model_package_group)
        else:
            window = starter.parse_event(event, now=datetime.now(UTC))
    except starter.InvalidEventError as error:
        # A malformed input is the schedule's (or the rule's) configuration: retrying would not
        # fix it.
        logger.error("invalid input, nothing started", extra={"error": str(error)})
        metrics.add_metric(name=starter.METRIC_INVALID_EVENT, unit=MetricUnit.Count, value=1)
        return {"status": "rejected", "message": str(error)}
    sagemaker = _sagemaker()
    region = sagemaker.meta.region_name
    if scored:
        result = starter.start_scored_drift_job(sagemaker, config, run, region)
    else:
        result = starter.start_drift_job(sagemaker, config, window, region)
    logger.info(result.message, extra={k: v for k, v in result.as_dict().items() if k != "message"})
    metrics.add_metric(name=result.metric, unit=MetricUnit.Count, value=1)
    return result.as_dict()
