"""THE rule for "which model package does the Serving stack serve now".

"Production", "the champion" and "the serving model" all mean the package this rule returns;
the deployer, the `mlops` CLI and (later) the training trigger ask it, never the registry's
newest Approved package. It reads one DescribeStacks answer of the Serving stack:

* a stable, completed stack (CREATE_COMPLETE, UPDATE_COMPLETE, UPDATE_ROLLBACK_COMPLETE,
  IMPORT_COMPLETE, IMPORT_ROLLBACK_COMPLETE) serves its `ModelPackageArn` parameter; after
  UPDATE_ROLLBACK_COMPLETE that parameter is the reverted one, i.e. the package that kept
  serving. An empty parameter means no endpoint: NONE.
* no stack, a stack whose creation rolled back (ROLLBACK_COMPLETE) or a deleted one: NONE.
* any other status (`*_IN_PROGRESS`, `*_FAILED`, REVIEW_IN_PROGRESS): UNSETTLED. The served
  package is changing (or, for `*_FAILED`, waits for an operator: README runbook); callers
  wait and retry instead of guessing.

`served_package` is pure (a `Stacks[0]` mapping, or None for a stack that does not exist);
`read_served_package` is the one AWS call around it. It lives once, in `lambdas/shared/`:
every function that asks (the deployer, the training trigger) gets it beside its handler in
its package (`PythonFunction(shared_modules=...)`), and imports it by bare name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

MODEL_PACKAGE_PARAMETER = "ModelPackageArn"
SERVING_STATUSES = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)
NOTHING_SERVED_STATUSES = frozenset({"ROLLBACK_COMPLETE", "DELETE_COMPLETE"})


class ServingState(StrEnum):
    SERVING = "serving"
    NONE = "none"
    UNSETTLED = "unsettled"


class NotAServingStackError(ValueError):
    """The stack has no ModelPackageArn parameter: it is not the Serving stack."""


@dataclass(frozen=True)
class ServedPackage:
    """What the Serving stack serves, by the rule in this module's docstring.

    Attributes:
        state: SERVING, NONE or UNSETTLED.
        model_package_arn: the served package; set only when `state` is SERVING.
        stack_status: the stack's status; None when the stack does not exist.
        parameter: the ModelPackageArn parameter as DescribeStacks reports it ("" when unset
            or no stack); while UNSETTLED, the value the stack is moving to or from.
    """

    state: ServingState
    model_package_arn: str | None = None
    stack_status: str | None = None
    parameter: str = ""

    @property
    def settled(self) -> bool:
        return self.state is not ServingState.UNSETTLED


def stack_parameter(stack: Mapping[str, Any]) -> str:
    """The stack's ModelPackageArn parameter ("" = empty). Raises NotAServingStackError."""
    for parameter in stack.get("Parameters") or []:
        if parameter.get("ParameterKey") == MODEL_PACKAGE_PARAMETER:
            return str(parameter.get("ParameterValue") or "")
    raise NotAServingStackError(
        f"stack {stack.get('StackName')} has no {MODEL_PACKAGE_PARAMETER} parameter: "
        "is it the Serving stack?"
    )


def served_package(stack: Mapping[str, Any] | None) -> ServedPackage:
    """Apply the rule to one DescribeStacks `Stacks[]` entry (None: the stack does not exist)."""
    if stack is None:
        return ServedPackage(ServingState.NONE)
    status = str(stack.get("StackStatus", ""))
    if status in NOTHING_SERVED_STATUSES:
        return ServedPackage(ServingState.NONE, stack_status=status)
    parameter = stack_parameter(stack)
    if status not in SERVING_STATUSES:
        return ServedPackage(ServingState.UNSETTLED, stack_status=status, parameter=parameter)
    if not parameter:
        return ServedPackage(ServingState.NONE, stack_status=status)
    return ServedPackage(
        ServingState.SERVING, model_package_arn=parameter, stack_status=status, parameter=parameter
    )


def read_served_package(cloudformation: Any, stack_name: str) -> ServedPackage:
    """DescribeStacks of `stack_name`, then the rule. A stack that does not exist serves
    nothing; any other AWS error propagates (ClientError / BotoCoreError)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        if "does not exist" in message:
            return served_package(None)
        raise
    return served_package(stacks[0] if stacks else None)
