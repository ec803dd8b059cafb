"""What one event leads to: the rules that decide whether a package is deployed, the Serving
stack update that deploys it, and the mark left on a package whose deployment rolled back
(see the package docstring for the contract)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError
from served_package import NotAServingStackError, ServedPackage, served_package, stack_parameter

from .config import DeployerConfig
from .errors import (
    DeployError,
    FailureKind,
    StackBusyError,
    StackNeedsOperatorError,
    client_error_message,
)
from .events import (
    EventIgnored,
    IgnoreReason,
    PackageStateChange,
    RollbackRequest,
    StackStatusChange,
    parse_event,
)
from .integrity import IntegrityError, verify_model_artifact
from .registry import (
    APPROVED,
    PACKAGE_GONE_CODES,
    deployable_refusal,
    describe_model_package,
    previous_deployable,
)
from .rollbacks import (
    REJECTED,
    ROLLBACK_COMPLETE,
    RolledBack,
    deploy_token,
    deployed_version,
    find_rolled_back,
    mark_rolled_back,
    rollback_refusal,
    rolled_back_note,
)
from .serving_stack import (
    NO_UPDATES_MESSAGE,
    STACK_BUSY_MESSAGE,
    TOKEN_ALREADY_EXISTS,
    data_quality_baselines,
    describe_stack,
    update_model_package_parameter,
)

Action = Literal["deployment_started", "ignored", "refused", "marked_rolled_back"]


@dataclass(frozen=True)
class Outcome:
    """What handling one event did: started a deployment, ignored the event (and why),
    refused to deploy (a failure that retrying cannot fix), or marked a rolled-back package."""

    action: Action
    message: str
    reason: IgnoreReason | None = None
    failure: FailureKind | None = None
    model_package_arn: str | None = None
    previous_model_package_arn: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": None if self.reason is None else str(self.reason),
            "failure": None if self.failure is None else str(self.failure),
            "message": self.message,
            "model_package_arn": self.model_package_arn,
            "previous_model_package_arn": self.previous_model_package_arn,
        }


@dataclass(frozen=True)
class _Aws:
    sagemaker: Any
    cloudformation: Any
    s3: Any


def handle_event(
    event: Any, *, sagemaker: Any, cloudformation: Any, s3: Any, config: DeployerConfig
) -> Outcome:
    """Handle one EventBridge event (package state change, rollback request, stack rollback).

    Args:
        event: the EventBridge event as delivered to Lambda.
        sagemaker: boto3 SageMaker client.
        cloudformation: boto3 CloudFormation client.
        s3: boto3 S3 client (reads model artifacts to verify them).
        config: the handler's configuration.

    Returns:
        The outcome; ignored events (foreign, malformed, stale, duplicate...) carry a reason,
        refused deployments (model artifact not verified) a failure kind.

    Raises:
        StackBusyError: the stack is being updated; retrying later will succeed.
        StackNeedsOperatorError: the stack is in a *_FAILED state; an operator must act.
        DeployError: an AWS call failed (message has the operation, the AWS error code and
            message, or the botocore exception for a call that got no answer).
    """
    aws = _Aws(sagemaker, cloudformation, s3)
    try:
        request = parse_event(event)
        if isinstance(request, StackStatusChange):
            return _mark_rolled_back(request, aws, config)
        if request.group != config.model_package_group_name:
            raise EventIgnored(
                IgnoreReason.FOREIGN_GROUP,
                f"event is for group {request.group!r}, this handler deploys "
                f"{config.model_package_group_name!r}",
            )
        if isinstance(request, PackageStateChange):
            return _deploy_state_change(request, aws, config)
        return _deploy_rollback(request, aws, config)
    except EventIgnored as ignored:
        return Outcome("ignored", str(ignored), reason=ignored.reason)
    except IntegrityError as refused:
        return Outcome("refused", str(refused), failure=FailureKind.ARTIFACT_INTEGRITY)
    except NotAServingStackError as err:
        raise DeployError(f"{err} (check SERVING_STACK_NAME)") from err
    except ClientError as err:
        raise DeployError(client_error_message(err)) from err


def _deploy_state_change(change: PackageStateChange, aws: _Aws, config: DeployerConfig) -> Outcome:
    if change.approval_status != APPROVED:
        raise EventIgnored(
            IgnoreReason.NOT_APPROVED,
            f"{change.model_package_arn} is {change.approval_status}: nothing to deploy",
        )
    package = describe_model_package(aws.sagemaker, change.model_package_arn)
    _check_deployable(package, config, not_approved=IgnoreReason.STALE_EVENT)
    arn = package["ModelPackageArn"]
    stack = describe_stack(aws.cloudformation, config.stack_name)
    if stack_parameter(stack) == arn:
        raise EventIgnored(
            IgnoreReason.ALREADY_DEPLOYED, f"{arn} is already deployed (duplicate event)"
        )
    served = _settled(served_package(stack), stack, arn)
    _check_not_rolled_back(package, stack, aws)
    current = served.model_package_arn or ""
    if current:
        _check_not_superseded(aws.sagemaker, package, current, config)
    return _update(aws, stack, package, current, config, change.event_id)


def _deploy_rollback(request: RollbackRequest, aws: _Aws, config: DeployerConfig) -> Outcome:
    stack = describe_stack(aws.cloudformation, config.stack_name)
    served = _settled(served_package(stack), stack, request.target_arn or "a rollback")
    current = served.model_package_arn or ""
    if request.target_arn is not None:
        package = describe_model_package(aws.sagemaker, request.target_arn)
    else:
        if not current:
            raise EventIgnored(
                IgnoreReason.NOTHING_DEPLOYED, "rollback requested but no model is deployed"
            )
        try:
            previous = previous_deployable(
                aws.sagemaker,
                config.model_package_group_name,
                current,
                require_promotion=config.requires_promotion,
            )
        except ValueError as err:
            raise EventIgnored(IgnoreReason.NO_PREVIOUS_PACKAGE, str(err)) from err
        if previous is None:
            raise EventIgnored(
                IgnoreReason.NO_PREVIOUS_PACKAGE,
                f"rollback requested but no deployable package is older than {current}",
            )
        package = previous
    # A rollback never deploys what the approval path would refuse.
    _check_deployable(package, config, not_approved=IgnoreReason.NOT_APPROVED)
    arn = package["ModelPackageArn"]
    if current == arn:
        raise EventIgnored(
            IgnoreReason.ALREADY_DEPLOYED, f"rollback target {arn} is already deployed"
        )
    _check_not_rolled_back(package, stack, aws)
    return _update(aws, stack, package, current, config, request.event_id)


def _settled(served: ServedPackage, stack: Mapping[str, Any], what: str) -> ServedPackage:
    """The served package, or the error that makes the event wait for a settled stack."""
    if served.settled:
        return served
    status = str(served.stack_status)
    if status.endswith("_IN_PROGRESS"):
        raise StackBusyError(
            f"stack {stack['StackName']} is {status}; deploying {what} must wait until it settles"
        )
    raise StackNeedsOperatorError(
        f"stack {stack['StackName']} is {status}: deploying {what} waits until an operator "
        "settles the stack (README runbook: aws cloudformation continue-update-rollback)"
    )


def _check_deployable(
    package: Mapping[str, Any], config: DeployerConfig, *, not_approved: IgnoreReason
) -> None:
    refusal = deployable_refusal(
        package, config.model_package_group_name, require_promotion=config.requires_promotion
    )
    if refusal is not None:
        kind, message = refusal
        reason = IgnoreReason(kind)
        raise EventIgnored(not_approved if reason is IgnoreReason.NOT_APPROVED else reason, message)


def _last_rollback(stack: Mapping[str, Any], aws: _Aws) -> RolledBack | None:
    """The deployment the stack last rolled back, while the stack still shows that rollback."""
    if stack.get("StackStatus") != ROLLBACK_COMPLETE:
        return None
    return find_rolled_back(aws.cloudformation, stack.get("StackId") or stack["StackName"])


def _check_not_rolled_back(package: Mapping[str, Any], stack: Mapping[str, Any], aws: _Aws) -> None:
    last = _last_rollback(stack, aws)
    refusal = rollback_refusal(package, last)
    if refusal is None:
        return
    if last is not None and not rolled_back_note(package):
        # The rollback event has not marked it yet (events are unordered): mark it now.
        mark_rolled_back(aws.sagemaker, package["ModelPackageArn"], last)
    raise EventIgnored(IgnoreReason.ROLLED_BACK, refusal)


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
    group = config.model_package_group_name
    if deployable_refusal(current, group, require_promotion=config.requires_promotion):
        return
    if current.get("ModelPackageVersion", 0) > package.get("ModelPackageVersion", 0):
        raise EventIgnored(
            IgnoreReason.SUPERSEDED,
            f"{package['ModelPackageArn']} is older than the approved {current_arn} now serving "
            "(use a rollback request to deploy an older version)",
        )


def _update(
    aws: _Aws,
    stack: Mapping[str, Any],
    package: Mapping[str, Any],
    current: str,
    config: DeployerConfig,
    event_id: str | None,
) -> Outcome:
    arn = package["ModelPackageArn"]
    verify_model_artifact(
        aws.s3, package, bucket=config.artifact_bucket, prefix=config.model_artifact_prefix
    )
    token = deploy_token(int(package.get("ModelPackageVersion", 0)), event_id)
    try:
        update_model_package_parameter(
            aws.cloudformation,
            stack,
            arn,
            role_arn=config.service_role_arn,
            client_request_token=token,
            baselines=data_quality_baselines(package),
        )
    except ClientError as err:
        error = err.response.get("Error", {})
        message = str(error.get("Message", ""))
        if NO_UPDATES_MESSAGE in message:
            raise EventIgnored(
                IgnoreReason.NO_UPDATES, f"{arn}: CloudFormation has no updates"
            ) from err
        if error.get("Code") == TOKEN_ALREADY_EXISTS:
            raise _already_requested(aws, config, arn, token) from err
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


def _already_requested(aws: _Aws, config: DeployerConfig, arn: str, token: str) -> EventIgnored:
    """A redelivered event whose UpdateStack (same token) CloudFormation already took: the
    update ran (or runs); sending it again would redeploy what may have rolled back."""
    stack = describe_stack(aws.cloudformation, config.stack_name)
    return EventIgnored(
        IgnoreReason.ALREADY_REQUESTED,
        f"the deployment of {arn} was already requested (token {token}); stack "
        f"{stack['StackName']} is {stack.get('StackStatus')} with ModelPackageArn "
        f"{stack_parameter(stack) or '(none)'}: not requested again",
    )


def _mark_rolled_back(change: StackStatusChange, aws: _Aws, config: DeployerConfig) -> Outcome:
    if change.stack_name != config.stack_name:
        raise EventIgnored(
            IgnoreReason.FOREIGN_STACK,
            f"event is for stack {change.stack_name!r}, this handler deploys {config.stack_name!r}",
        )
    if change.status != ROLLBACK_COMPLETE:
        raise EventIgnored(
            IgnoreReason.NOT_A_ROLLBACK, f"stack {change.stack_name} is {change.status}"
        )
    if change.token is not None and deployed_version(change.token) is None:
        raise EventIgnored(
            IgnoreReason.NOT_A_MODEL_DEPLOY,
            f"the update that rolled back (token {change.token}) was not a model deployment",
        )
    rolled = find_rolled_back(aws.cloudformation, change.stack_id, change.token)
    if rolled is None:
        raise EventIgnored(
            IgnoreReason.NOT_A_MODEL_DEPLOY,
            f"the stack events name no model deployment that rolled back ({change.stack_id})",
        )
    name = f"{config.model_package_group_name}/{rolled.version}"
    try:
        package = describe_model_package(aws.sagemaker, name)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in PACKAGE_GONE_CODES:
            raise EventIgnored(IgnoreReason.STALE_EVENT, f"{name} no longer exists") from err
        raise
    arn = package["ModelPackageArn"]
    status = package.get("ModelApprovalStatus")
    if rolled_back_note(package) or status == REJECTED:
        raise EventIgnored(IgnoreReason.ALREADY_MARKED, f"{arn} is already Rejected")
    modified = package.get("LastModifiedTime")
    if status == APPROVED and modified is not None and modified > rolled.at:
        raise EventIgnored(
            IgnoreReason.REAPPROVED,
            f"{arn} was approved again at {modified.isoformat()}, after its deployment rolled "
            f"back at {rolled.at.isoformat()}: left as the approver decided",
        )
    mark_rolled_back(aws.sagemaker, arn, rolled)
    return Outcome(
        "marked_rolled_back",
        f"{arn} set Rejected: its deployment rolled back at {rolled.at.isoformat()}: "
        f"{rolled.reason}",
        model_package_arn=arn,
    )
