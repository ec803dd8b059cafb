"""onEvent handler of the SageMaker pipeline custom resource (CDK Provider framework).

Thin: parses the CloudFormation event, builds the clients and calls `pipeline_resource`.
An exception's message becomes the reason CloudFormation shows for the failed resource.
"""

from __future__ import annotations

from typing import Any

import boto3
import pipeline_resource
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import (
    CloudFormationCustomResourceEvent,
    event_source,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service=pipeline_resource.SERVICE_NAME)


# log_event stays off: the event carries the pre-signed CloudFormation ResponseURL.
@logger.inject_lambda_context(log_event=False, clear_state=True)
@event_source(data_class=CloudFormationCustomResourceEvent)
def lambda_handler(
    event: CloudFormationCustomResourceEvent, context: LambdaContext
) -> dict[str, Any]:
    logger.append_keys(
        request_type=event.get("RequestType"),
        logical_resource_id=event.get("LogicalResourceId"),
        stack_id=event.get("StackId"),
    )
    config = pipeline_resource.client_config()
    try:
        result = pipeline_resource.handle_event(
            request_type=str(event.get("RequestType") or ""),
            properties=event.resource_properties,
            old_properties=event.old_resource_properties,
            physical_resource_id=event.physical_resource_id or None,
            request_id=str(event.get("RequestId") or ""),
            sagemaker=boto3.client("sagemaker", config=config),
            s3=boto3.client("s3", config=config),
        )
    except Exception:
        # Re-raised: the Provider framework turns the message into the CloudFormation reason.
        logger.exception("Failed")
        raise
    logger.info("Done", extra={"physical_resource_id": result.get("PhysicalResourceId")})
    return result
