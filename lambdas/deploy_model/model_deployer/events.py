"""The events the deployer acts on: parsing them (`parse_event`), putting a rollback request
on the operator bus (`request_rollback`), and why an event leads to nothing (`IgnoreReason`).

* `aws.sagemaker` / "SageMaker Model Package State Change" (default bus): an approval or
  promotion to deploy.
* `mlops.serving` / "Rollback Requested" (the environment's operator event bus, whose policy
  admits only tagged operator principals): deploy an earlier package.
* `aws.cloudformation` / "CloudFormation Stack Status Change" (default bus), shaped as AWS
  documents it (`detail.stack-id`, `detail.status-details.status` and `status-reason`,
  `detail.client-request-token`): the Serving stack rolled a deployment back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from .errors import DeployError, client_error_message, no_answer_is_deploy_error
from .registry import MODEL_PACKAGE_ARN, MODEL_PACKAGE_GROUP_NAME

SAGEMAKER_SOURCE = "aws.sagemaker"
STATE_CHANGE_DETAIL_TYPE = "SageMaker Model Package State Change"
ROLLBACK_SOURCE = "mlops.serving"
ROLLBACK_DETAIL_TYPE = "Rollback Requested"
CLOUDFORMATION_SOURCE = "aws.cloudformation"
STACK_STATUS_DETAIL_TYPE = "CloudFormation Stack Status Change"
STACK_ID = re.compile(r"^arn:aws[a-z\-]*:cloudformation:[a-z0-9\-]+:\d{12}:stack/([-a-zA-Z0-9]+)/")


class IgnoreReason(StrEnum):
    """Why an event led to no deployment (the `Reason` dimension of the IgnoredEvents metric)."""

    MALFORMED_EVENT = "MalformedEvent"
    UNSUPPORTED_EVENT = "UnsupportedEvent"
    FOREIGN_GROUP = "ForeignGroup"
    NOT_APPROVED = "NotApproved"
    STALE_EVENT = "StaleEvent"
    PACKAGE_NOT_COMPLETED = "PackageNotCompleted"
    NOT_PROMOTED = "NotPromoted"
    ALREADY_DEPLOYED = "AlreadyDeployed"
    NO_UPDATES = "NoUpdatesToPerform"
    SUPERSEDED = "Superseded"
    NOTHING_DEPLOYED = "NothingDeployed"
    NO_PREVIOUS_PACKAGE = "NoPreviousApprovedPackage"
    ROLLED_BACK = "RolledBack"
    ALREADY_REQUESTED = "AlreadyRequested"
    FOREIGN_STACK = "ForeignStack"
    NOT_A_ROLLBACK = "NotARollback"
    NOT_A_MODEL_DEPLOY = "NotAModelDeploy"
    ALREADY_MARKED = "AlreadyMarked"
    REAPPROVED = "ReapprovedAfterRollback"


class EventIgnored(Exception):
    """An event that must not lead to a deployment; `reason` says why."""

    def __init__(self, reason: IgnoreReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class PackageStateChange:
    """The fields of a "SageMaker Model Package State Change" event this handler relies on."""

    group: str
    model_package_arn: str
    approval_status: str
    event_id: str | None = None


@dataclass(frozen=True)
class RollbackRequest:
    """A "Rollback Requested" event; `target_arn` None = the previous deployable package."""

    group: str
    reason: str
    target_arn: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class StackStatusChange:
    """A "CloudFormation Stack Status Change" event: `stack_name` is parsed from the stack id;
    `token` is the operation's ClientRequestToken when the event carries one."""

    stack_id: str
    stack_name: str
    status: str
    status_reason: str = ""
    token: str | None = None
    event_id: str | None = None


Request = PackageStateChange | RollbackRequest | StackStatusChange


def parse_event(event: Any) -> Request:
    """Validate an EventBridge event's envelope and detail.

    Raises:
        EventIgnored: unsupported source/detail-type, or a missing or mistyped field.
    """
    if not isinstance(event, Mapping):
        raise EventIgnored(IgnoreReason.MALFORMED_EVENT, f"event is not an object: {event!r:.200}")
    source, detail_type = event.get("source"), event.get("detail-type")
    event_id = event.get("id") if isinstance(event.get("id"), str) else None
    # A tuple, not a set: malformed events may carry unhashable values here.
    if (source, detail_type) not in (
        (SAGEMAKER_SOURCE, STATE_CHANGE_DETAIL_TYPE),
        (ROLLBACK_SOURCE, ROLLBACK_DETAIL_TYPE),
        (CLOUDFORMATION_SOURCE, STACK_STATUS_DETAIL_TYPE),
    ):
        raise EventIgnored(
            IgnoreReason.UNSUPPORTED_EVENT,
            f"unsupported event source={source!r:.100} detail-type={detail_type!r:.100}",
        )
    kind = str(detail_type)
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise EventIgnored(
            IgnoreReason.MALFORMED_EVENT, f"{kind}: detail is missing or not an object"
        )
    if source == CLOUDFORMATION_SOURCE:
        return _stack_status_change(detail, kind, event_id)
    if source == SAGEMAKER_SOURCE:
        return PackageStateChange(
            group=_field(detail, "ModelPackageGroupName", MODEL_PACKAGE_GROUP_NAME, kind),
            model_package_arn=_field(detail, "ModelPackageArn", MODEL_PACKAGE_ARN, kind),
            approval_status=_field(detail, "ModelApprovalStatus", None, kind),
            event_id=event_id,
        )
    target = detail.get("model_package_arn")
    return RollbackRequest(
        group=_field(detail, "model_package_group_name", MODEL_PACKAGE_GROUP_NAME, kind),
        reason=_field(detail, "reason", None, kind),
        target_arn=None
        if target is None
        else _field(detail, "model_package_arn", MODEL_PACKAGE_ARN, kind),
        event_id=event_id,
    )


def _stack_status_change(
    detail: Mapping[str, Any], kind: str, event_id: str | None
) -> StackStatusChange:
    stack_id = _field(detail, "stack-id", STACK_ID, kind)
    status_details = detail.get("status-details")
    if not isinstance(status_details, Mapping):
        raise EventIgnored(
            IgnoreReason.MALFORMED_EVENT, f"{kind}: detail.status-details is not an object"
        )
    reason = status_details.get("status-reason")
    token = detail.get("client-request-token")
    match = STACK_ID.match(stack_id)
    assert match is not None  # _field checked the pattern
    return StackStatusChange(
        stack_id=stack_id,
        stack_name=match.group(1),
        status=_field(status_details, "status", None, kind),
        status_reason=reason if isinstance(reason, str) else "",
        token=token if isinstance(token, str) and token else None,
        event_id=event_id,
    )


def _field(
    detail: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None, detail_type: str
) -> str:
    value = detail.get(name)
    if not isinstance(value, str) or not value.strip():
        raise EventIgnored(
            IgnoreReason.MALFORMED_EVENT,
            f"{detail_type}: detail.{name} must be a non-empty string, got {value!r:.200}",
        )
    if pattern is not None and not pattern.match(value):
        raise EventIgnored(
            IgnoreReason.MALFORMED_EVENT, f"{detail_type}: detail.{name}={value!r:.200} is invalid"
        )
    return value


def request_rollback(
    events_client: Any,
    reason: str,
    model_package_arn: str | None = None,
    *,
    event_bus: str,
    model_package_group_name: str,
) -> str:
    """Put a "Rollback Requested" event for the deploy handler of `model_package_group_name`.

    Args:
        events_client: boto3 EventBridge client (credentials of a tagged operator principal:
            the bus refuses anyone else).
        reason: why (free text, required; lands in the handler's logs).
        model_package_arn: package to deploy; default None = the previous deployable package
            (see `find_previous_deployable`).
        event_bus: the environment's operator event bus (name or ARN; the Serving stack's
            output OperatorEventBusName).
        model_package_group_name: the environment's group (routes the event to its handler).

    Returns:
        The EventBridge event id.

    Raises:
        ValueError: bad arguments (nothing is sent).
        DeployError: EventBridge rejected the event or could not be reached.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason must be a non-empty string saying why the rollback is needed")
    if not isinstance(event_bus, str) or not event_bus.strip() or event_bus == "default":
        raise ValueError(
            f"event_bus={event_bus!r}: rollback requests go to the environment's operator "
            "event bus (Serving stack output OperatorEventBusName), not the default bus"
        )
    if not MODEL_PACKAGE_GROUP_NAME.match(model_package_group_name or ""):
        raise ValueError(
            f"model_package_group_name={model_package_group_name!r} is not a group name"
        )
    if model_package_arn is not None and not MODEL_PACKAGE_ARN.match(model_package_arn):
        raise ValueError(f"model_package_arn={model_package_arn!r} is not a model package ARN")
    detail: dict[str, str] = {
        "reason": reason.strip(),
        "model_package_group_name": model_package_group_name,
    }
    entry: dict[str, Any] = {
        "Source": ROLLBACK_SOURCE,
        "DetailType": ROLLBACK_DETAIL_TYPE,
        "EventBusName": event_bus,
    }
    if model_package_arn is not None:
        detail["model_package_arn"] = model_package_arn
        entry["Resources"] = [model_package_arn]
    entry["Detail"] = json.dumps(detail)
    try:
        with no_answer_is_deploy_error("PutEvents"):
            result = events_client.put_events(Entries=[entry])["Entries"][0]
    except ClientError as err:
        raise DeployError(client_error_message(err)) from err
    if "EventId" not in result:
        raise DeployError(
            f"PutEvents rejected the rollback request: {result.get('ErrorCode')}: "
            f"{result.get('ErrorMessage')}"
        )
    return result["EventId"]
