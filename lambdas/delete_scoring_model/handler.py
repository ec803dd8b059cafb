"""EventBridge -> delete a finished scoring run's model (see scoring_model_cleanup.py).

Input: "SageMaker Transform Job State Change" events (source "aws.sagemaker"); the rule sends
only Completed, Failed and Stopped jobs of `pipelines-*` models, and the code checks both again.
Also the scoring pipeline's "SageMaker Model Building Pipeline Execution Status Change" to Failed
or Stopped: the model its Model step created is deleted (its transform job may never have run).

Environment: POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE.

Metrics (count 1 per invocation): ModelsDeleted, AlreadyDeleted, NotFinished, Skipped,
NotOurs (AccessDenied: a model not tagged with this environment's scoring pipeline), NoModel
(an ended execution that created no model), InvalidEvents. A malformed event is rejected
without a retry; AWS failures raise, so the rules' retries, the on-failure destination and the
dead-letter queue apply.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import scoring_model_cleanup as cleanup
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MLOps/Scoring"))

# Reused across warm invocations; tests put a stubbed client here.
clients: dict[str, Any] = {}


def _sagemaker() -> Any:
    if "sagemaker" not in clients:
        clients["sagemaker"] = boto3.client("sagemaker", config=cleanup.CLIENT_CONFIG)
    return clients["sagemaker"]


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Entry point: `handler.lambda_handler`."""
    try:
        finished = cleanup.parse_event(event)
    except cleanup.InvalidEventError as error:
        outcome = cleanup.Outcome("InvalidEvents", str(error))
        logger.error("invalid event, nothing deleted", extra={"error": outcome.message})
    else:
        outcome = cleanup.clean_up(_sagemaker(), finished)
        logger.info(outcome.message, extra={"finished": finished.__dict__})
    metrics.add_metric(name=outcome.metric, unit=MetricUnit.Count, value=1)
    return outcome.as_dict()
