"""Create, update and delete a SageMaker Pipeline from a definition stored as an S3 object.

The logic of the pipeline custom resource (CDK Provider framework, `onEvent` only). The
definition is generated offline with `${Placeholders}` (see AWS-FACTS) and shipped as a CDK
asset; every deploy downloads it, checks its SHA-256, substitutes the placeholders and calls
the SageMaker API directly (never `Pipeline.upsert`, which drops `ParallelismConfiguration`
on update: boto3#4384).

The physical resource ID is the pipeline **name**: it is unique per account and Region (the
scope of a stack), it is what DeletePipeline and StartPipelineExecution take (DeletePipeline
does not accept an ARN), and a rename changes it, which is exactly when CloudFormation must
replace the resource. The ARN is returned as the `PipelineArn` attribute.

Every failure raises `PipelineResourceError` whose message is the reason CloudFormation shows
(the Provider framework reports it), e.g. `CreatePipeline failed: ValidationException: ...`,
or for a call that got no answer after botocore's retries (timeouts, connection failures)
`CreatePipeline failed: ReadTimeoutError: Read timeout on endpoint URL: ...`.

Modules: `properties` (ResourceProperties and their validation), `definition` (download, verify,
substitute), `pipeline_api` (the SageMaker calls), `lifecycle` (Create/Update/Delete),
`failures` (the reported errors and the retry config), `log` (the shared child logger).
"""

from __future__ import annotations

from .definition import MAX_DEFINITION_CHARS, render_definition
from .failures import (
    MAX_ATTEMPTS,
    MAX_REASON_CHARS,
    PipelineResourceError,
    aws_failure,
    client_config,
    is_pipeline_not_found,
)
from .lifecycle import CREATE_FAILED_MARKER, handle_event
from .log import SERVICE_NAME
from .pipeline_api import client_request_token
from .properties import DEFAULT_MAX_PARALLEL_EXECUTION_STEPS, PropertiesError, parse_properties

__all__ = [
    "CREATE_FAILED_MARKER",
    "DEFAULT_MAX_PARALLEL_EXECUTION_STEPS",
    "MAX_ATTEMPTS",
    "MAX_DEFINITION_CHARS",
    "MAX_REASON_CHARS",
    "SERVICE_NAME",
    "PipelineResourceError",
    "PropertiesError",
    "aws_failure",
    "client_config",
    "client_request_token",
    "handle_event",
    "is_pipeline_not_found",
    "parse_properties",
    "render_definition",
]
