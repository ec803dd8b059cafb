"""Deploy approved model packages by updating the Serving stack, and request rollbacks.

The endpoint belongs to the Serving stack (CloudFormation), which takes the model package as its
`ModelPackageArn` parameter (empty = no endpoint). Deploying a package means one `UpdateStack`
with the previous template and that parameter changed, so the endpoint stays owned by
CloudFormation and its blue/green guardrails and rollback apply to every deploy. A stack built
with the model-monitor engine also takes the package's data-quality baselines
(`DataQualityStatisticsUri`, `DataQualityConstraintsUri`), set in the same update.

Two events lead here:

* `aws.sagemaker` / "SageMaker Model Package State Change" of this environment's Model Package
  Group: deploys the package once it is Approved (`DEPLOY_ON=approval`) or, in addition, promoted
  (`DEPLOY_ON=promotion`: its ModelLifeCycle is Stage "Production", StageStatus "Approved").
* `mlops.serving` / "Rollback Requested" (put by `request_rollback`): deploys the given package,
  or by default the latest deployable package older than the one now serving.

Events are at-least-once, may arrive late and may be stale, so every decision is re-checked
against the registry (DescribeModelPackage) and the stack (DescribeStacks): a package that is
already deployed, no longer approved, or older than an approved package now serving is never
(re)deployed by an approval event. Those cases, foreign and malformed events return an ignored
`Outcome` with a reason; nothing raises except AWS failures (`DeployError`) and a stack that is
busy with another operation (`StackBusyError`, retry later).

Functions take boto3 clients as arguments; `handler.py` builds them with `CLIENT_CONFIG`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

MODEL_PACKAGE_PARAMETER = "ModelPackageArn"
# Engine model-monitor: the Serving stack also takes the package's Model Monitor baselines
# (DriftCheckBaselines.ModelDataQuality); stacks without these parameters are left as they are.
BASELINE_PARAMETERS: Mapping[str, str] = {
    "DataQualityStatisticsUri": "Statistics",
    "DataQualityConstraintsUri": "Constraints",
}

SAGEMAKER_SOURCE = "aws.sagemaker"
STATE_CHANGE_DETAIL_TYPE = "SageMaker Model Package State Change"
ROLLBACK_SOURCE = "mlops.serving"
ROLLBACK_DETAIL_TYPE = "Rollback Requested"

APPROVED = "Approved"
PACKAGE_COMPLETED = "Completed"
PROMOTED_LIFE_CYCLE: Mapping[str, str] = {"Stage": "Production", "StageStatus": "Approved"}

DeployOn = Literal["approval", "promotion"]
DEPLOY_ON_VALUES: tuple[str, ...] = ("approval", "promotion")

# What `cdk deploy` acknowledges; the template is the one already deployed: nothing new granted.
STACK_CAPABILITIES: tuple[str, ...] = (
    "CAPABILITY_IAM",
    "CAPABILITY_NAMED_IAM",
    "CAPABILITY_AUTO_EXPAND",
)
NO_UPDATES_MESSAGE = "No updates are to be performed"
# UpdateStack's ValidationError when another operation started after DescribeStacks, e.g.
# "Stack:arn:... is in UPDATE_IN_PROGRESS state and can not be updated." Terminal states
# (ROLLBACK_COMPLETE, UPDATE_ROLLBACK_FAILED) get the same sentence but are no race: not matched.
STACK_BUSY_MESSAGE = re.compile(r"is in ([A-Z_]+_IN_PROGRESS) state and can not be updated")
# DescribeModelPackage of a package that no longer exists. SageMaker (a JSON protocol service)
# names its validation errors ValidationException (moto answers so); ValidationError, the
# Query-protocol spelling, is accepted too so a gateway or older stub using it can't block.
PACKAGE_GONE_CODES = frozenset({"ValidationException", "ValidationError"})

# Throttling and transient 5xx are retried by botocore (5 attempts in all, jittered backoff).
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})

MODEL_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]{9,16}:[0-9]{12}:model-package/\S{1,2048}$"
)
MODEL_PACKAGE_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
STACK_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]{0,127}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_TOKEN_UNSAFE = re.compile(r"[^-a-zA-Z0-9]")


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it, its value, the rule."""


class DeployError(RuntimeError):
    """An AWS call failed; the message carries the operation, AWS error code and AWS message."""


class StackBusyError(DeployError):
    """The Serving stack is in an *_IN_PROGRESS state: retry the event later."""


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


@dataclass(frozen=True)
class DeployerConfig:
    """What the deploy handler acts on, read from the Lambda environment.

    Attributes:
        stack_name: the Serving stack (env SERVING_STACK_NAME).
        model_package_group_name: this environment's group (env MODEL_PACKAGE_GROUP_NAME).
        deploy_on: "approval" (dev, staging) or "promotion" (prod) (env DEPLOY_ON).
        execution_role_arn: role CloudFormation assumes for the update (env
            CFN_EXECUTION_ROLE_ARN); default None = the role already associated with the stack.
    """

    stack_name: str
    model_package_group_name: str
    deploy_on: DeployOn
    execution_role_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeployerConfig:
        """Parse and validate the environment; raises ConfigError naming the bad variable."""
        stack_name = _required(env, "SERVING_STACK_NAME", STACK_NAME, "a CloudFormation stack name")
        group = _required(
            env, "MODEL_PACKAGE_GROUP_NAME", MODEL_PACKAGE_GROUP_NAME, "a model package group name"
        )
        deploy_on = env.get("DEPLOY_ON", "")
        if deploy_on not in DEPLOY_ON_VALUES:
            raise ConfigError(
                f"DEPLOY_ON={deploy_on!r} is not allowed: use one of {DEPLOY_ON_VALUES}"
            )
        role_arn = env.get("CFN_EXECUTION_ROLE_ARN") or None
        if role_arn is not None and not ROLE_ARN.match(role_arn):
            raise ConfigError(
                f"CFN_EXECUTION_ROLE_ARN={role_arn!r} is not an IAM role ARN (leave it unset to "
                "use the role already associated with the stack)"
            )
        return cls(stack_name, group, deploy_on, role_arn)  # type: ignore[arg-type]

    @property
    def requires_promotion(self) -> bool:
        return self.deploy_on == "promotion"


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


class EventIgnored(Exception):
    """An event that must not lead to a deployment; `reason` says why."""

    def __init__(self, reason: IgnoreReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


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
        raise DeployError(_client_error_message(err)) from err


def parse_event(event: Any) -> PackageStateChange | RollbackRequest:
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


def is_promoted(life_cycle: Any) -> bool:
    """True when a ModelLifeCycle is Stage "Production" with StageStatus "Approved"."""
    return isinstance(life_cycle, Mapping) and all(
        life_cycle.get(key) == value for key, value in PROMOTED_LIFE_CYCLE.items()
    )


def describe_model_package(sagemaker: Any, model_package_arn: str) -> Mapping[str, Any]:
    """DescribeModelPackage; AWS error answers raise ClientError, no answer raises DeployError."""
    with _no_answer_is_deploy_error("DescribeModelPackage"):
        package: Mapping[str, Any] = sagemaker.describe_model_package(
            ModelPackageName=model_package_arn
        )
    return package


def describe_stack(cloudformation: Any, stack_name: str) -> Mapping[str, Any]:
    """The Serving stack's description (DescribeStacks)."""
    with _no_answer_is_deploy_error("DescribeStacks"):
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    if not stacks:
        raise DeployError(f"DescribeStacks returned no stack named {stack_name!r}")
    return stacks[0]


def current_model_package_arn(stack: Mapping[str, Any]) -> str:
    """The stack's ModelPackageArn parameter ("" = no model deployed)."""
    for parameter in stack.get("Parameters", []):
        if parameter["ParameterKey"] == MODEL_PACKAGE_PARAMETER:
            return parameter.get("ParameterValue", "")
    raise DeployError(
        f"stack {stack['StackName']} has no {MODEL_PACKAGE_PARAMETER} parameter: "
        "is SERVING_STACK_NAME the Serving stack?"
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


def data_quality_baselines(package: Mapping[str, Any]) -> dict[str, str]:
    """The Serving stack's baseline parameters for `package`: the S3 URIs of its Model Monitor
    statistics and constraints (DriftCheckBaselines.ModelDataQuality, else
    ModelMetrics.ModelDataQuality); "" for what the package does not have."""
    sources = [
        (package.get(field) or {}).get("ModelDataQuality") or {}
        for field in ("DriftCheckBaselines", "ModelMetrics")
    ]
    values = {}
    for parameter, part in BASELINE_PARAMETERS.items():
        uris = [str((source.get(part) or {}).get("S3Uri") or "") for source in sources]
        values[parameter] = next((uri for uri in uris if uri), "")
    return values


def update_model_package_parameter(
    cloudformation: Any,
    stack: Mapping[str, Any],
    model_package_arn: str,
    *,
    baselines: Mapping[str, str] | None = None,
    role_arn: str | None = None,
    client_request_token: str | None = None,
) -> str:
    """UpdateStack with the previous template, the new ModelPackageArn (and the package's
    baselines, where the stack takes them) and every other parameter unchanged. Returns the
    stack id.

    Args:
        cloudformation: boto3 CloudFormation client.
        stack: the stack as returned by DescribeStacks.
        model_package_arn: the package to deploy.
        baselines: values of the baseline parameters (`data_quality_baselines`); set only on
            a stack that has them. Default None = leave them unchanged.
        role_arn: CloudFormation service role; default None = the role associated with the stack.
        client_request_token: idempotency token (sanitized, at most 128 characters); default None.
    """
    values = {MODEL_PACKAGE_PARAMETER: model_package_arn}
    existing = {parameter["ParameterKey"] for parameter in stack.get("Parameters", [])}
    values.update({k: v for k, v in (baselines or {}).items() if k in existing})
    parameters: list[dict[str, Any]] = [
        {"ParameterKey": key, "ParameterValue": value} for key, value in values.items()
    ]
    parameters += [
        {"ParameterKey": key, "UsePreviousValue": True}
        for key in sorted(existing)
        if key not in values
    ]
    request: dict[str, Any] = {
        "StackName": stack.get("StackId") or stack["StackName"],
        "UsePreviousTemplate": True,
        "Parameters": parameters,
        "Capabilities": list(STACK_CAPABILITIES),
    }
    if role_arn:
        request["RoleARN"] = role_arn
    if client_request_token:
        request["ClientRequestToken"] = _TOKEN_UNSAFE.sub("-", client_request_token)[:128]
    with _no_answer_is_deploy_error("UpdateStack"):
        stack_id: str = cloudformation.update_stack(**request)["StackId"]
    return stack_id


def find_previous_approved(
    sm_client: Any, group: str, current_arn: str, *, require_promotion: bool = False
) -> str | None:
    """The latest Approved package of `group` with a lower ModelPackageVersion than `current_arn`.

    Args:
        sm_client: boto3 SageMaker client.
        group: Model Package Group name.
        current_arn: the package now deployed (it may have been rejected since).
        require_promotion: also require ModelLifeCycle Stage "Production" / StageStatus
            "Approved" (production); default False.

    Returns:
        The package ARN, or None when no older package qualifies.

    Raises:
        ValueError: `current_arn` is not a versioned package of `group`.
    """
    current = describe_model_package(sm_client, current_arn)
    if current.get("ModelPackageGroupName") != group or "ModelPackageVersion" not in current:
        raise ValueError(
            f"{current_arn} is not a versioned package of group {group!r} "
            f"(its group: {current.get('ModelPackageGroupName')!r})"
        )
    current_version = current["ModelPackageVersion"]
    pages = sm_client.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group,
        ModelApprovalStatus=APPROVED,
        ModelPackageType="VERSIONED",
        SortBy="CreationTime",
        SortOrder="Descending",
    )
    best: tuple[int, str] | None = None
    # Pages are fetched while iterating: the loop is where ListModelPackages can fail.
    with _no_answer_is_deploy_error("ListModelPackages"):
        for page in pages:
            for summary in page["ModelPackageSummaryList"]:
                version = summary.get("ModelPackageVersion")
                if version is None or version >= current_version:
                    continue
                if require_promotion and not is_promoted(summary.get("ModelLifeCycle")):
                    continue
                if best is None or version > best[0]:
                    best = (version, summary["ModelPackageArn"])
    return None if best is None else best[1]


def request_rollback(
    events_client: Any,
    reason: str,
    model_package_arn: str | None = None,
    event_bus: str = "default",
    *,
    model_package_group_name: str,
) -> str:
    """Put a "Rollback Requested" event for the deploy handler of `model_package_group_name`.

    Args:
        events_client: boto3 EventBridge client.
        reason: why (free text, required; lands in the handler's logs).
        model_package_arn: package to deploy; default None = the latest approved (and, in
            production, promoted) package older than the one serving.
        event_bus: event bus name or ARN; default "default".
        model_package_group_name: the environment's group (routes the event to its handler).

    Returns:
        The EventBridge event id.

    Raises:
        ValueError: bad arguments (nothing is sent).
        DeployError: EventBridge rejected the event or could not be reached.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason must be a non-empty string saying why the rollback is needed")
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
        with _no_answer_is_deploy_error("PutEvents"):
            result = events_client.put_events(Entries=[entry])["Entries"][0]
    except ClientError as err:
        raise DeployError(_client_error_message(err)) from err
    if "EventId" not in result:
        raise DeployError(
            f"PutEvents rejected the rollback request: {result.get('ErrorCode')}: "
            f"{result.get('ErrorMessage')}"
        )
    return result["EventId"]


def _required(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = env.get(name, "")
    if not pattern.match(value):
        raise ConfigError(f"{name}={value!r} is not allowed: set it to {what}")
    return value


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


@contextmanager
def _no_answer_is_deploy_error(operation: str) -> Iterator[None]:
    """Turn a call that got no answer after botocore's retries (BotoCoreError: read/connect
    timeout, connection failure, ...) into a DeployError naming `operation`; ClientError
    passes through for the callers that act on its code."""
    try:
        yield
    except BotoCoreError as err:
        raise DeployError(f"{operation} failed: {type(err).__name__}: {err}") from err


def _client_error_message(err: ClientError) -> str:
    error = err.response.get("Error", {})
    return f"{err.operation_name} failed: {error.get('Code')}: {error.get('Message')}"
