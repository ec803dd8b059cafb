"""What one event leads to: the rules that decide whether a package is deployed, and the
Serving stack update that deploys it (see the package docstring for the contract)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from .config import DeployerConfig
from .errors import DeployError, StackBusyError, client_error_message
from .events import EventIgnored, IgnoreReason, PackageStateChange, RollbackRequest, parse_event
from .registry import (
    APPROVED,
    PACKAGE_COMPLETED,
    PACKAGE_GONE_CODES,
    PROMOTED_LIFE_CYCLE,
    describe_model_package,
    find_previous_approved,
    is_promoted,
)
from .serving_stack import (
    NO_UPDATES_MESSAGE,
    STACK_BUSY_MESSAGE,
    current_model_package_arn,
    data_quality_baselines,
    describe_stack,
    update_model_package_parameter,
)


@dataclass(frozen=True)
class Outcome:
    """What handling one event did: started a deployment, or ignored the event and why."""

    action: Literal["deployment_started", "ignored"]
    message: str
    reason: IgnoreReason | None = None
    model_package_arn: str | None = None
    previous_model_package_arn: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": None if self.reason is None else str(self.reason),
            "message": self.message,
            "model_package_arn": self.model_package_arn,
            "previous_model_package_arn": self.previous_model_package_arn,
        }


def handle_event(
    event: Any, *, sagemaker: Any, cloudformation: Any, config: DeployerConfig
) -> Outcome:
    """Handle one EventBridge event (model package state change or rollback request).

    Args:
        event: the EventBridge event as delivered to Lambda.
        sagemaker: boto3 SageMaker client.
        cloudformation: boto3 CloudFormation client.
        config: the handler's configuration.

    Returns:
        The outcome; ignored events (foreign, malformed, stale, duplicate...) carry a reason.

    Raises:
        StackBusyError: the stack is being updated; retrying later will succeed.
        DeployError: an AWS call failed (message has the operation, the AWS error code and
            message, or the botocore exception for a call that got no answer).
    """
    try:
        request = parse_event(event)
        if request.group != config.model_package_group_name:
            raise EventIgnored(
                IgnoreReason.FOREIGN_GROUP,
                f"event is for group {request.group!r}, this handler deploys "
                f"{config.model_package_group_name!r}",
            )
        if isinstance(request, PackageStateChange):
            return _deploy_state_change(request, sagemaker, cloudformation, config)
        return _deploy_rollback(request, sagemaker, cloudformation, config)
    except EventIgnored as ignored:
        return Outcome("ignored", str(ignored), reason=ignored.reason)
    except ClientError as err:
        raise DeployError(client_error_message(err)) from err


def _deploy_state_change(
    change: PackageStateChange, sagemaker: Any, cloudformation: Any, config: DeployerConfig
) -> Outcome:
    if change.approval_status != APPROVED:
        raise EventIgnored(
            IgnoreReason.NOT_APPROVED,
            f"{change.model_package_arn} is {change.approval_status}: nothing to deploy",
        )
    package = describe_model_package(sagemaker, change.model_package_arn)
    _check_deployable(package, config, stale_reason=IgnoreReason.STALE_EVENT)
    arn = package["ModelPackageArn"]
    stack = describe_stack(cloudformation, config.stack_name)
    current = current_model_package_arn(stack)
    if current == arn:
        raise EventIgnored(
            IgnoreReason.ALREADY_DEPLOYED, f"{arn} is already deployed (duplicate event)"
        )
    if current:
        _check_not_superseded(sagemaker, package, current, config)
    return _update(cloudformation, stack, package, current, config, change.event_id)


def _deploy_rollback(
    request: RollbackRequest, sagemaker: Any, cloudformation: Any, config: DeployerConfig
) -> Outcome:
    stack = describe_stack(cloudformation, config.stack_name)
    current = current_model_package_arn(stack)
    target = request.target_arn
    if target is None:
        if not current:
            raise EventIgnored(
                IgnoreReason.NOTHING_DEPLOYED, "rollback requested but no model is deployed"
            )
        try:
            target = find_previous_approved(
                sagemaker,
                config.model_package_group_name,
                current,
                require_promotion=config.requires_promotion,
            )
        except ValueError as err:
            raise EventIgnored(IgnoreReason.NO_PREVIOUS_PACKAGE, str(err)) from err
        if target is None:
            raise EventIgnored(
                IgnoreReason.NO_PREVIOUS_PACKAGE,
                f"rollback requested but no deployable package is older than {current}",
            )
    package = describe_model_package(sagemaker, target)
    # A rollback never deploys what the approval path would refuse.
    _check_deployable(package, config, stale_reason=IgnoreReason.NOT_APPROVED)
    arn = package["ModelPackageArn"]
    if current == arn:
        raise EventIgnored(
            IgnoreReason.ALREADY_DEPLOYED, f"rollback target {arn} is already deployed"
        )
    return _update(cloudformation, stack, package, current, config, request.event_id)


def _check_deployable(
    package: Mapping[str, Any], config: DeployerConfig, *, stale_reason: IgnoreReason
) -> None:
    arn = package["ModelPackageArn"]
    group = package.get("ModelPackageGroupName")
    if group != config.model_package_group_name:
        raise EventIgnored(IgnoreReason.FOREIGN_GROUP, f"{arn} belongs to group {group!r}")
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        raise EventIgnored(stale_reason, f"{arn} is {status} in the registry now, not {APPROVED}")
    if package.get("ModelPackageStatus") != PACKAGE_COMPLETED:
        raise EventIgnored(
            IgnoreReason.PACKAGE_NOT_COMPLETED,
            f"{arn} has ModelPackageStatus {package.get('ModelPackageStatus')}",
        )
    if config.requires_promotion and not is_promoted(package.get("ModelLifeCycle")):
        raise EventIgnored(
            IgnoreReason.NOT_PROMOTED,
            f"{arn} is approved but not promoted (ModelLifeCycle "
            f"{package.get('ModelLifeCycle')}, need {dict(PROMOTED_LIFE_CYCLE)})",
        )


def _check_not_superseded(
    sagemaker: Any, package: Mapping[str, Any], current_arn: str, config: DeployerConfig
) -> None:
    """A late or retried approval of an older version must not replace a newer approved one."""
    try:
        current = describe_model_package(sagemaker, current_arn)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in PACKAGE_GONE_CODES:
            return  # the serving package no longer exists: nothing to protect
        raise
    try:
        _check_deployable(current, config, stale_reason=IgnoreReason.NOT_APPROVED)
    except EventIgnored:
        return
    if current.get("ModelPackageVersion", 0) > package.get("ModelPackageVersion", 0):
        raise EventIgnored(
            IgnoreReason.SUPERSEDED,
            f"{package['ModelPackageArn']} is older than the approved {current_arn} now serving "
            "(use a rollback request to deploy an older version)",
        )


def _update(
    cloudformation: Any,
    stack: Mapping[str, Any],
    package: Mapping[str, Any],
    current: str,
    config: DeployerConfig,
    event_id: str | None,
) -> Outcome:
    arn = package["ModelPackageArn"]
    status = stack["StackStatus"]
    if status.endswith("_IN_PROGRESS"):
        raise StackBusyError(
            f"stack {stack['StackName']} is {status}; deploying {arn} must wait until it settles"
        )
    try:
        update_model_package_parameter(
            cloudformation,
            stack,
            arn,
            baselines=data_quality_baselines(package),
            role_arn=config.execution_role_arn,
            client_request_token=None if event_id is None else f"deploy-{event_id}",
        )
    except ClientError as err:
        error = err.response.get("Error", {})
        message = str(error.get("Message", ""))
        if NO_UPDATES_MESSAGE in message:
            raise EventIgnored(
                IgnoreReason.NO_UPDATES, f"{arn}: CloudFormation has no updates"
            ) from err
        busy = STACK_BUSY_MESSAGE.search(message)
        if error.get("Code") == "ValidationError" and busy:
            # Another operation started after DescribeStacks: the same race as a busy status.
            raise StackBusyError(
                f"stack {stack['StackName']} turned {busy.group(1)} before UpdateStack; "
                f"deploying {arn} must wait until it settles"
            ) from err
        raise
    return Outcome(
        "deployment_started",
        f"updating stack {stack['StackName']} to {arn} (was {current or 'no model'})",
        model_package_arn=arn,
        previous_model_package_arn=current or None,
    )
