"""The deployer's failures: an AWS call that failed (`DeployError`) or a busy stack
(`StackBusyError`), and the helpers that turn botocore's exceptions into them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError


class DeployError(RuntimeError):
    """An AWS call failed; the message carries the operation, AWS error code and AWS message."""


class StackBusyError(DeployError):
    """The Serving stack is in an *_IN_PROGRESS state: retry the event later."""


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
