"""A package the previous environment of the promotion chain approved → a verified copy in this
environment's registry (the rules: model_receiver).

Invoked through an SQS queue (a batch of EventBridge events as message bodies; failed records
are reported back so only they are retried, then land in the dead-letter queue).

Environment: SOURCE_ACCOUNT, SOURCE_REGION, SOURCE_MODEL_PACKAGE_GROUP_NAME,
SOURCE_PIPELINE_PREFIX, MODEL_PACKAGE_GROUP_NAME, ARTIFACT_BUCKET, PROMOTED_PREFIX, TOPIC_ARN,
POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE.

Metrics (dimension `service`): PackagesReceived; SourceRejections (a package copied here was
rejected in the sending environment: the notification topic was told); IgnoredEvents with a
Reason dimension; RefusedPackages (an artifact that does not match its recorded SHA-256: also
logged as an error and raised, so the message is retried and lands in the dead-letter queue,
which alarms).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import model_receiver
import sqs_records
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MlopsLoop/Promotion")
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Reused across warm invocations; tests put stubbed clients here.
clients: dict[str, Any] = {}


def _client(service: str, region: str | None = None) -> Any:
    key = f"{service}@{region or 'here'}"
    if key not in clients:
        clients[key] = boto3.client(service, region_name=region, config=CLIENT_CONFIG)
    return clients[key]


class ArtifactRefused(Exception):
    """The artifact did not verify: the record fails (retried, then dead-lettered)."""


def process_event(event: Any) -> dict[str, Any]:
    config = model_receiver.ReceiverConfig.from_env(os.environ)
    outcome = model_receiver.receive(
        event,
        source_sagemaker=_client("sagemaker", config.source_region),
        source_s3=_client("s3", config.source_region),
        sagemaker=_client("sagemaker"),
        s3=_client("s3"),
        sns=_client("sns"),
        config=config,
    )
    result = outcome.as_dict()
    details = {key: value for key, value in result.items() if key != "message"}
    if outcome.action == "refused":
        logger.error(f"refused: {outcome.message}", extra=details)
        _count("RefusedPackages", {})
        raise ArtifactRefused(outcome.message)
    if outcome.action == "ignored":
        logger.info(f"ignored: {outcome.message}", extra=details)
        _count("IgnoredEvents", {"Reason": str(outcome.reason)})
    elif outcome.action == "alerted":
        logger.warning(outcome.message, extra=details)
        _count("SourceRejections", {})
    else:
        logger.info(outcome.message, extra=details)
        _count("PackagesReceived", {})
    return result


def _record_handler(record: SQSRecord) -> dict[str, Any]:
    return process_event(sqs_records.record_event(record))


def _count(name: str, dimensions: dict[str, str]) -> None:
    sqs_records.count(name, dimensions, METRICS_NAMESPACE)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: `handler.lambda_handler` (an SQS batch)."""
    return dict(
        process_partial_response(
            event=event, record_handler=_record_handler, processor=processor, context=context
        )
    )
