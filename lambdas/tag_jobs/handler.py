"""EventBridge -> tag a pipeline's SageMaker job with its run's execution id and dataset version
(see job_tagger.py).

Input: "SageMaker Training Job State Change", "SageMaker Processing Job State Change" and
"SageMaker Transform Job State Change" events (source "aws.sagemaker").

Environment: see `job_tagger.TaggerConfig` (PIPELINE_NAMES, optional DATASET_VERSION_TAG,
EXECUTION_ID_TAG) plus POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE (default
"MLOps/JobTags").

Metrics (count 1 per invocation): TagsAdded, AlreadyTagged, Skipped (not a pipeline job,
another pipeline's job, job gone), InvalidEvents. A malformed event is rejected without a
retry; AWS failures raise, so the rule's retry policy and DLQ apply.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import job_tagger as tagger
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MLOps/JobTags"))

# Reused across warm invocations; tests put a stubbed client here.
clients: dict[str, Any] = {}


def _sagemaker() -> Any:
    if "sagemaker" not in clients:
        clients["sagemaker"] = boto3.client("sagemaker", config=tagger.CLIENT_CONFIG)
    return clients["sagemaker"]


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Entry point: `handler.lambda_handler`."""
    config = tagger.TaggerConfig.from_env(os.environ)
    try:
        job = tagger.parse_event(event)
    except tagger.InvalidEventError as error:
        # The event is not what the rule should send: retrying would not fix it.
        outcome = tagger.Outcome.rejected(str(error))
        logger.error("invalid event, nothing tagged", extra={"error": outcome.message})
    else:
        outcome = tagger.tag_job(_sagemaker(), config, job)
        extra = {k: v for k, v in outcome.as_dict().items() if k != "message"}
        logger.info(outcome.message, extra={**extra, "kind": job.kind})
    metrics.add_metric(name=outcome.metric, unit=MetricUnit.Count, value=1)
    return outcome.as_dict()
