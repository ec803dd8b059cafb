"""Deployments that rolled back: which package failed, marking it, and refusing it later.

Every UpdateStack the deployer sends carries a ClientRequestToken `deploy-v<version>-<id>`
(`deploy_token`). CloudFormation gives every stack event of an operation that operation's
token, the stack-level UPDATE_ROLLBACK_COMPLETE event included, so after a rollback
DescribeStackEvents names the package version whose deployment failed (`find_rolled_back`);
updates by anyone else (`cdk deploy`, the console) carry other tokens and are never blamed
on a package.

A rolled-back package is set Rejected with ApprovalDescription "rolled back at <time>: <the
first failure's reason>" (`mark_rolled_back`). The deployer's role may set only Rejected, so
the package is Approved again only if an approver re-approves it. That re-approval is
recognised honestly by what it leaves in the registry (`rollback_refusal`):

* the ApprovalDescription no longer starts with "rolled back at " (a re-approval states its
  own reason; the CLI requires one), and
* when the stack's last operation is the rollback of this very package, the package was
  modified after the rollback (LastModifiedTime): this closes the window in which a late
  duplicate approval event arrives before the rollback event marked the package.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import no_answer_is_deploy_error

REJECTED = "Rejected"
ROLLED_BACK_PREFIX = "rolled back at "
MAX_DESCRIPTION = 1024  # UpdateModelPackage ApprovalDescription
ROLLBACK_COMPLETE = "UPDATE_ROLLBACK_COMPLETE"
STACK_RESOURCE_TYPE = "AWS::CloudFormation::Stack"
# An update of the Serving stack touches at most a dozen resources (a few events each):
# 5 pages of stack events reach back far beyond the start of the operation that rolled back.
MAX_EVENT_PAGES = 5

_TOKEN = re.compile(r"^deploy-v(\d{1,9})-")
_TOKEN_UNSAFE = re.compile(r"[^-a-zA-Z0-9]")


def deploy_token(version: int, event_id: str | None) -> str:
    """The ClientRequestToken of the deployment of package `version` for one event (a random
    suffix when the event has no id): at most 128 characters of `[-a-zA-Z0-9]`."""
    suffix = _TOKEN_UNSAFE.sub("-", event_id) if event_id else uuid.uuid4().hex
    return f"deploy-v{version}-{suffix}"[:128]


def deployed_version(token: str | None) -> int | None:
    """The package version a deployer token deployed; None for anyone else's token."""
    match = _TOKEN.match(token or "")
    return int(match.group(1)) if match else None


def rollback_description(rolled_back_at: datetime, reason: str) -> str:
    """The ApprovalDescription that marks a rolled-back package (at most 1,024 characters)."""
    return f"{ROLLED_BACK_PREFIX}{rolled_back_at.isoformat()}: {reason}"[:MAX_DESCRIPTION]


def rolled_back_note(package: Mapping[str, Any]) -> str | None:
    """The rollback mark in a DescribeModelPackage answer, or None when it carries none."""
    description = str(package.get("ApprovalDescription") or "")
    return description if description.startswith(ROLLED_BACK_PREFIX) else None


@dataclass(frozen=True)
class RolledBack:
    """A deployment of package `version` that CloudFormation rolled back at `at`."""

    version: int
    token: str
    at: datetime
    reason: str


def _stack_events(cloudformation: Any, stack: str) -> Iterator[Mapping[str, Any]]:
    pages = cloudformation.get_paginator("describe_stack_events").paginate(
        StackName=stack, PaginationConfig={"MaxItems": MAX_EVENT_PAGES * 100}
    )
    with no_answer_is_deploy_error("DescribeStackEvents"):
        for page in pages:
            yield from page["StackEvents"]


def find_rolled_back(
    cloudformation: Any, stack: str, token: str | None = None
) -> RolledBack | None:
    """The deployment whose rollback is the stack's latest UPDATE_ROLLBACK_COMPLETE (the one
    with `token`, when given), with the first failure's reason; None when that rollback
    undid an update the deployer did not make, or no such event is found.

    Args:
        cloudformation: boto3 CloudFormation client.
        stack: the stack's name or id.
        token: the ClientRequestToken of the rolled-back operation, when the event said it.
    """
    rolled_back: Mapping[str, Any] | None = None
    first_failure = ""
    rollback_started = ""
    for event in _stack_events(cloudformation, stack):
        is_stack = event.get("ResourceType") == STACK_RESOURCE_TYPE
        status = event.get("ResourceStatus", "")
        if rolled_back is None:
            ours = token is None or event.get("ClientRequestToken") == token
            if is_stack and status == ROLLBACK_COMPLETE and ours:
                rolled_back = event
            continue
        if event.get("ClientRequestToken") != rolled_back.get("ClientRequestToken"):
            continue
        reason = str(event.get("ResourceStatusReason") or "")
        if is_stack and status == "UPDATE_IN_PROGRESS":
            break  # the start of the operation that rolled back
        if is_stack and status == "UPDATE_ROLLBACK_IN_PROGRESS":
            rollback_started = reason
        elif status.endswith("_FAILED") and reason:
            first_failure = f"{event.get('LogicalResourceId')}: {reason}"  # older wins
    if rolled_back is None:
        return None
    found_token = rolled_back.get("ClientRequestToken")
    version = deployed_version(found_token)
    if version is None:
        return None
    return RolledBack(
        version=version,
        token=str(found_token),
        at=rolled_back["Timestamp"],
        reason=first_failure or rollback_started or "no failure reason in the stack events",
    )


def mark_rolled_back(sagemaker: Any, package_arn: str, rolled_back: RolledBack) -> None:
    """Set the package Rejected, the rollback's time and reason as its ApprovalDescription."""
    with no_answer_is_deploy_error("UpdateModelPackage"):
        sagemaker.update_model_package(
            ModelPackageArn=package_arn,
            ModelApprovalStatus=REJECTED,
            ApprovalDescription=rollback_description(rolled_back.at, rolled_back.reason),
        )


def rollback_refusal(package: Mapping[str, Any], last: RolledBack | None) -> str | None:
    """Why `package` (a DescribeModelPackage answer) must not be deployed because a deployment
    of it rolled back and no approver re-approved it since; None when nothing stands against it.

    Args:
        package: the package as the registry describes it now.
        last: the stack's latest rolled-back deployment, when the stack is
            UPDATE_ROLLBACK_COMPLETE (else None).
    """
    arn = package["ModelPackageArn"]
    note = rolled_back_note(package)
    if note:
        return f"{arn} {note}; an approver must re-approve it with a new reason to deploy it again"
    if last is not None and last.version == package.get("ModelPackageVersion"):
        modified = package.get("LastModifiedTime")
        if not isinstance(modified, datetime) or modified <= last.at:
            return f"{arn}'s deployment rolled back at {last.at.isoformat()}: {last.reason}"
    return None
