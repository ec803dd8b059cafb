"""What the deployer reads from the Model Registry: a package's description, whether it is
promoted, and the latest deployable package older than a given one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import no_answer_is_deploy_error

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
    with no_answer_is_deploy_error("ListModelPackages"):
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
