"""What the custom resource reports when something fails: the error CloudFormation shows, the
reason for a failed AWS call (after the retries configured here), and telling a missing
pipeline from other failures."""

from __future__ import annotations

from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

Client = Any  # a boto3 client; the Lambda runtime ships no type stubs for it

# What a boto3 call raises once botocore's retries are spent: an error answer (ClientError) or
# no answer at all (BotoCoreError: read/connect timeouts, connection failures, ...).
AWS_ERRORS = (ClientError, BotoCoreError)
# Standard retry mode backs off up to 20 s per attempt: 8 attempts stay well under a minute
# or two, far inside the custom resource's Lambda timeout.
MAX_ATTEMPTS = 8
# CloudFormation caps the whole custom resource response at 4 KB; keep the reason well under.
MAX_REASON_CHARS = 1500


class PipelineResourceError(Exception):
    """A failure to report to CloudFormation; the message is the reason the user sees."""


def client_config() -> Config:
    """botocore config for both clients: standard retry mode (throttling and transient errors
    retried with exponential backoff and jitter), `MAX_ATTEMPTS` attempts in total."""
    # Config's `max_attempts` counts retries only (botocore adds one); `total_max_attempts`
    # says what it means.
    return Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS})


def aws_failure(
    operation: str, error: ClientError | BotoCoreError, subject: str
) -> PipelineResourceError:
    """The CloudFormation reason for a failed AWS call: operation, AWS error code and message.

    A call that got no answer (BotoCoreError) names the botocore exception in place of the
    code, e.g. `UpdatePipeline failed: ReadTimeoutError: Read timeout on endpoint URL: ...`.
    """
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code") or "UnknownError"
        message = details.get("Message") or str(error)
    else:
        code, message = type(error).__name__, str(error)
    reason = f"{operation} failed: {code}: {message} [{subject}]"
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 15] + " ...(truncated)"
    return PipelineResourceError(reason)


def is_pipeline_not_found(error: ClientError | BotoCoreError, pipeline_name: str) -> bool:
    """True if SageMaker says the pipeline does not exist.

    botocore's model lists `ResourceNotFound` for DeletePipeline/UpdatePipeline/DescribePipeline
    (the service's message: "Pipeline '<arn>' does not exist"). Some endpoints and moto answer
    `ValidationException` instead ("Could not find pipeline with PipelineName <name>"), so that
    code counts only when the message says the pipeline itself is missing: a role or
    parameter that "does not exist" must not be mistaken for it.
    """
    if not isinstance(error, ClientError):
        return False  # no answer says nothing about the pipeline
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    if code in ("ResourceNotFound", "ResourceNotFoundException"):
        return True
    message = (details.get("Message") or "").lower()
    return (
        code == "ValidationException"
        and pipeline_name.lower() in message
        and ("does not exist" in message or "could not find" in message)
    )
