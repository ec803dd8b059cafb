"""What the deployer reads from the Model Registry: a package's description, whether it is
promoted or deployable, and the newest deployable package older than a given one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import no_answer_is_deploy_error
from .rollbacks import rolled_back_note

APPROVED = "Approved"
PACKAGE_COMPLETED = "Completed"
PROMOTED_LIFE_CYCLE: Mapping[str, str] = {"Stage": "Production", "StageStatus": "Approved"}
# DescribeModelPackage of a package that no longer exists. SageMaker (a JSON protocol service)
# names its validation errors ValidationException (moto answers so); ValidationError, the
# Query-protocol spelling, is accepted too so a gateway or older stub using it can't block.
PACKAGE_GONE_CODES = frozenset({"ValidationException", "ValidationError"})

MODEL_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]{9,16}:[0-9]{12}:model-package/\S{1,2048}$"
)
MODEL_PACKAGE_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def is_promoted(life_cycle: Any) -> bool:
    """True when a ModelLifeCycle is Stage "Production" with StageStatus "Approved"."""
    return isinstance(life_cycle, Mapping) and all(
        life_cycle.get(key) == value for key, value in PROMOTED_LIFE_CYCLE.items()
    )


def describe_model_package(sagemaker: Any, model_package_arn: str) -> Mapping[str, Any]:
    """DescribeModelPackage; AWS error answers raise ClientError, no answer raises DeployError."""
    with no_answer_is_deploy_error("DescribeModelPackage"):
        package: Mapping[str, Any] = sagemaker.describe_model_package(
            ModelPackageName=model_package_arn
        )
    return package


def deployable_refusal(
    package: Mapping[str, Any], group: str, *, require_promotion: bool
) -> tuple[str, str] | None:
    """Why the registry says `package` (a DescribeModelPackage answer) is not deployable, as
    (reason, message), or None: it belongs to `group`, is Approved, Completed, promoted when
    `require_promotion`, and carries no rollback mark (see rollbacks). The reasons are
    IgnoreReason values: ForeignGroup, NotApproved, PackageNotCompleted, NotPromoted,
    RolledBack."""
    arn = package["ModelPackageArn"]
    if package.get("ModelPackageGroupName") != group:
        return "ForeignGroup", f"{arn} belongs to group {package.get('ModelPackageGroupName')!r}"
    if package.get("ModelApprovalStatus") != APPROVED:
        status = package.get("ModelApprovalStatus")
        return "NotApproved", f"{arn} is {status} in the registry now, not {APPROVED}"
    if package.get("ModelPackageStatus") != PACKAGE_COMPLETED:
        return (
            "PackageNotCompleted",
            f"{arn} has ModelPackageStatus {package.get('ModelPackageStatus')}",
        )
    if require_promotion and not is_promoted(package.get("ModelLifeCycle")):
        return (
            "NotPromoted",
            f"{arn} is approved but not promoted (ModelLifeCycle "
            f"{package.get('ModelLifeCycle')}, need {dict(PROMOTED_LIFE_CYCLE)})",
        )
    note = rolled_back_note(package)
    if note:
        return "RolledBack", f"{arn} {note}; an approver must re-approve it with a new reason"
    return None


def find_previous_deployable(
    sm_client: Any, group: str, current_arn: str, *, require_promotion: bool = False
) -> str | None:
    """The ARN of `previous_deployable` (same arguments), or None."""
    found = previous_deployable(sm_client, group, current_arn, require_promotion=require_promotion)
    return None if found is None else str(found["ModelPackageArn"])


def previous_deployable(
    sm_client: Any, group: str, current_arn: str, *, require_promotion: bool = False
) -> Mapping[str, Any] | None:
    """The newest deployable package of `group` with a lower ModelPackageVersion than
    `current_arn`: Approved, Completed, promoted when `require_promotion`, never rolled back
    (`deployable_refusal`). This is what a rollback request without a target deploys.

    Args:
        sm_client: boto3 SageMaker client.
        group: Model Package Group name.
        current_arn: the package now serving (it may have been rejected since).
        require_promotion: also require ModelLifeCycle Stage "Production" / StageStatus
            "Approved" (production); default False.

    Returns:
        The package's description, or None when no older package qualifies.

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
    older: list[tuple[int, str]] = []
    # Pages are fetched while iterating: the loop is where ListModelPackages can fail.
    with no_answer_is_deploy_error("ListModelPackages"):
        for page in pages:
            for summary in page["ModelPackageSummaryList"]:
                version = summary.get("ModelPackageVersion")
                if version is None or version >= current_version:
                    continue
                if require_promotion and not is_promoted(summary.get("ModelLifeCycle")):
                    continue
                older.append((version, summary["ModelPackageArn"]))
    # The summaries lack ApprovalDescription (the rollback mark): describe, newest first.
    for _, arn in sorted(older, reverse=True):
        candidate = describe_model_package(sm_client, arn)
        if deployable_refusal(candidate, group, require_promotion=require_promotion) is None:
            return candidate
    return None
