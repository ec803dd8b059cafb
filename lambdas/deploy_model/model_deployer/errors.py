"""The deployer's failures: an AWS call that failed (`DeployError`), a busy stack
(`StackBusyError`) or one waiting for an operator (`StackNeedsOperatorError`), the kinds they
are counted as (`FailureKind`), and the helpers that turn botocore's exceptions into them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

from botocore.exceptions import BotoCoreError, ClientError


class DeployError(RuntimeError):
    """An AWS call failed; the message carries the operation, AWS error code and AWS message."""


class StackBusyError(DeployError):
    """The Serving stack is in an *_IN_PROGRESS state: retry the event later."""


class StackNeedsOperatorError(DeployError):
    """The Serving stack is in a *_FAILED state (e.g. UPDATE_ROLLBACK_FAILED): nothing deploys
    until an operator settles it (README runbook); the event is retried meanwhile."""


class FailureKind(StrEnum):
    """The `Error` dimension of the DeployFailures metric. Every kind but STACK_BUSY (a
    deployment baking for minutes is normal) is alarmed."""

    STACK_BUSY = "StackBusy"
    STACK_NEEDS_OPERATOR = "StackNeedsOperator"
    AWS_ERROR = "AwsError"
    ARTIFACT_INTEGRITY = "ArtifactIntegrity"


def failure_kind(error: DeployError) -> FailureKind:
    if isinstance(error, StackBusyError):
        return FailureKind.STACK_BUSY
    if isinstance(error, StackNeedsOperatorError):
        return FailureKind.STACK_NEEDS_OPERATOR
    return FailureKind.AWS_ERROR


@contextmanager
def no_answer_is_deploy_error(operation: str) -> Iterator[None]:
    """Turn a call that got no answer after botocore's retries (BotoCoreError: read/connect
    timeout, connection failure, ...) into a DeployError naming `operation`; ClientError
    passes through for the callers that act on its code."""
    try:
        yield
    except BotoCoreError as err:
        raise DeployError(f"{operation} failed: {type(err).__name__}: {err}") from err


def client_error_message(err: ClientError) -> str:
    """`<Operation> failed: <AWS error code>: <AWS message>`."""
    error = err.response.get("Error", {})
    return f"{err.operation_name} failed: {error.get('Code')}: {error.get('Message')}"
