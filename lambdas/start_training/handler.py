"""Lambda entry point of the data-landing trigger (design: dataset_trigger's docstring).

Invocations
    - SQS batch (EventBridge `Object Created` events, quiet-period checks, deferred requests):
      each record is handled on its own; records whose handling raised are returned in
      `batchItemFailures` (the event source mapping must enable ReportBatchItemFailures), so
      only they are re-delivered. Rejected events are acknowledged.
    - Direct (EventBridge Scheduler `{"action": "retrain-latest", ...}`, an operator's
      `{"action": "retrain-version", "dataset_version": "<dataset>/<version>",
      "request_id": "...", "reason": "manual"}` re-run of one started version (`mlops start
      DATASET/VERSION --rerun`), EventBridge "CloudWatch Alarm State Change" events,
      CloudWatch alarm actions): handled at once; the decision is returned as a dict. Shapes:
      dataset_trigger's docstring ("Retraining").

Environment: see dataset_trigger.TriggerConfig.from_env, plus POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from dataset_trigger import DEFERRALS_ATTRIBUTE, METRICS_NAMESPACE, DatasetTrigger, TriggerConfig
from trigger_runs import LOOKUP_WORKERS

METRIC_FAILED_RECORDS = "FailedRecords"  # records returned for re-delivery

logger = Logger()
metrics = Metrics(namespace=METRICS_NAMESPACE)
# An all-failed batch is still a partial response: raising would make it look like a crash.
processor = BatchProcessor(
    event_type=EventType.SQS,
    raise_on_entire_batch_failure=False,
    logger=logger,  # type: ignore[arg-type]  # duck-typed: only .warning(exc_info=...) is used
)
# Throttling is retried in-process first (standard mode, exponential backoff with jitter);
# one connection per parallel checksum lookup (trigger_runs.LOOKUP_WORKERS).
AWS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=20,
    max_pool_connections=LOOKUP_WORKERS,
)
# Epoch seconds for leases, cooldowns and quiet periods; tests replace it to move time.
clock: Callable[[], float] = time.time


@functools.cache
def get_trigger() -> DatasetTrigger:
    """Build the trigger once per execution environment (config errors fail here, by name)."""
    config = TriggerConfig.from_env(os.environ)
    dynamodb = boto3.resource("dynamodb", config=AWS_CONFIG)
    return DatasetTrigger(
        config,
        s3=boto3.client("s3", config=AWS_CONFIG),
        sagemaker=boto3.client("sagemaker", config=AWS_CONFIG),
        sqs=boto3.client("sqs", config=AWS_CONFIG),
        table=dynamodb.Table(config.ledger_table),
        cloudformation=(
            boto3.client("cloudformation", config=AWS_CONFIG) if config.serving_stack_name else None
        ),
        clock=lambda: clock(),
        lookup_workers=LOOKUP_WORKERS,
    )


def record_handler(record: SQSRecord) -> None:
    """Handle one SQS record; an exception marks it as a batch item failure."""
    attribute = record.message_attributes[DEFERRALS_ATTRIBUTE]
    deferrals = int(attribute.string_value or 0) if attribute else 0
    logger.append_keys(message_id=record.message_id)
    try:
        get_trigger().handle_sqs_body(record.body, deferrals=deferrals)
    except Exception:
        metrics.add_metric(name=METRIC_FAILED_RECORDS, unit=MetricUnit.Count, value=1)
        raise
    finally:
        logger.remove_keys(["message_id"])


def is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        bool(records)
        and isinstance(records, list)
        and (isinstance(records[0], dict) and records[0].get("eventSource") == "aws:sqs")
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    trigger = get_trigger()
    trigger.begin_invocation()
    if is_sqs_batch(event):
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    return trigger.handle_direct(event).as_dict()
