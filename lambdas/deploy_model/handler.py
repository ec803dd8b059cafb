"""Approval/promotion/rollback → Serving stack update; rolled-back deployment → package
marked Rejected (the rules: the model_deployer package).

Invoked by EventBridge directly (one event) or through an SQS queue (a batch of EventBridge
events as message bodies; failed records are reported back so only they are retried).

Environment: SERVING_STACK_NAME, MODEL_PACKAGE_GROUP_NAME, DEPLOY_ON (approval | promotion),
CFN_SERVICE_ROLE_ARN, ARTIFACT_BUCKET, MODEL_ARTIFACT_PREFIX, POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE (default "MlopsLoop/Serving").

Metrics (dimension `service` = POWERTOOLS_SERVICE_NAME on each): DeploymentsStarted;
PackagesMarkedRolledBack; IgnoredEvents with a Reason dimension (see IgnoreReason);
DeployFailures with an Error dimension (FailureKind: StackBusy, StackNeedsOperator, AwsError,
ArtifactIntegrity; the Serving stack alarms on all but StackBusy).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import model_deployer
import sqs_records
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MlopsLoop/Serving")

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Reused across warm invocations; tests put stubbed clients here.
clients: dict[str, Any] = {}


def _client(service: str) -> Any:
    if service not in clients:
        clients[service] = boto3.client(service, config=model_deployer.CLIENT_CONFIG)
    return clients[service]


def process_event(event: Any) -> dict[str, Any]:
    """Handle one EventBridge event, log the outcome and record its metric."""
    config = model_deployer.DeployerConfig.from_env(os.environ)
    try:
        outcome = model_deployer.handle_event(
            event,
            sagemaker=_client("sagemaker"),
            cloudformation=_client("cloudformation"),
            s3=_client("s3"),
            config=config,
        )
    except model_deployer.DeployError as err:
        error = str(model_deployer.failure_kind(err))
        logger.exception("deployment failed", extra={"error": error, "stack": config.stack_name})
        _count("DeployFailures", {"Error": error})
        raise
    result = outcome.as_dict()
    # "message" is a reserved LogRecord attribute: it goes in as the log message itself.
    details = {key: value for key, value in result.items() if key != "message"}
    if outcome.action == "refused":
        logger.error(f"refused: {outcome.message}", extra=details)
        _count("DeployFailures", {"Error": str(outcome.failure)})
    elif outcome.action == "ignored":
        logger.info(f"ignored: {outcome.message}", extra=details)
        _count("IgnoredEvents", {"Reason": str(outcome.reason)})
    elif outcome.action == "marked_rolled_back":
        logger.warning(outcome.message, extra=details)
        _count("PackagesMarkedRolledBack", {})
    else:
        logger.info(outcome.message, extra=details)
        _count("DeploymentsStarted", {})
    return result


def _record_handler(record: SQSRecord) -> dict[str, Any]:
    return process_event(sqs_records.record_event(record))


def _count(name: str, dimensions: dict[str, str]) -> None:
    sqs_records.count(name, dimensions, METRICS_NAMESPACE)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: `handler.lambda_handler`."""
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        return dict(
            process_partial_response(
                event=event, record_handler=_record_handler, processor=processor, context=context
            )
        )
    return process_event(event)
