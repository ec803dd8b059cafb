"""The local model registry: `<registry>/<group>/<version>/`.

A RegisterModel step's CreateModelPackage request, as the definition resolves it, is checked
against botocore's model and stored as it is (`request.json`), with the package as
DescribeModelPackage would return it (`package.json`: version, ARN, status, approval) and the
local file behind every S3 URI it names (`local-paths.json`). Every URI must name an object a
step wrote: a package whose metrics, baselines or model point nowhere is an error here (the
service does not look). Approving (`approve`) is what a reviewer's UpdateModelPackage does;
the newest Approved package is what the next run compares against (see `trigger`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_code.local_pipeline import aws_stand_in
from pipeline_code.local_pipeline.bucket import LocalS3, S3UriError
from pipeline_code.local_pipeline.errors import LocalPipelineError, StepError
from pipeline_code.local_pipeline.jobs import RunContext, StepOutcome, unsupported, validate_request
from pipeline_code.local_pipeline.properties import operation_model

OPERATION = "CreateModelPackage"
REQUEST_FILE = "request.json"
LOCAL_PATHS_FILE = "local-paths.json"
DEFAULT_APPROVAL = "PendingManualApproval"


def s3_uris(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(JSON path, URI) of every s3:// string in `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from s3_uris(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from s3_uris(item, f"{path}[{index}]")
    elif isinstance(value, str) and value.startswith("s3://"):
        yield path, value


def _local_file(s3: LocalS3, uri: str) -> Path | None:
    try:
        if s3.object_exists(uri):
            return s3.path(uri)
        return s3.path(uri) if s3.objects(uri) else None
    except S3UriError:
        return None


def register(step: str, request: dict[str, Any], context: RunContext) -> StepOutcome:
    """Store the package of `step`'s resolved CreateModelPackage `request`; StepError naming
    what is wrong."""
    validate_request(step, OPERATION, request)
    group = request.get("ModelPackageGroupName")
    if not group:
        raise unsupported(step, "an unversioned model package", "give ModelPackageGroupName")
    local_paths: dict[str, str] = {}
    for path, uri in s3_uris(request):
        found = _local_file(context.s3, uri)
        if found is None:
            raise StepError(
                step,
                f"{path} = {uri}: no such object in the local bucket (no step wrote it)",
            )
        local_paths[path] = str(found)
    registry = context.world.registry
    versions = [int(p["ModelPackageVersion"]) for p in aws_stand_in.list_packages(registry, group)]
    version = max(versions, default=0) + 1
    now = datetime.now(UTC).isoformat()
    describe = operation_model("DescribeModelPackage").output_shape.members
    package = {key: value for key, value in request.items() if key in describe}
    package.update(
        {
            # A versioned package's ModelPackageName is its group's name.
            "ModelPackageName": group,
            "ModelPackageArn": aws_stand_in.package_arn(context.world.region, group, version),
            "ModelPackageVersion": version,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "ModelApprovalStatus": request.get("ModelApprovalStatus", DEFAULT_APPROVAL),
            "CreationTime": now,
            "LastModifiedTime": now,
        }
    )
    folder = aws_stand_in.write_package(registry, package)
    (folder / REQUEST_FILE).write_text(json.dumps(request, indent=2, sort_keys=True) + "\n")
    (folder / LOCAL_PATHS_FILE).write_text(json.dumps(local_paths, indent=2, sort_keys=True) + "\n")
    return StepOutcome(package, notes=[f"registered {package['ModelPackageArn']} in {folder}"])


def newest_approved(registry: Path, group: str) -> str | None:
    """ARN of the group's newest Approved package (what the trigger calls the champion)."""
    approved = [
        p
        for p in aws_stand_in.list_packages(registry, group)
        if p["ModelApprovalStatus"] == "Approved"
    ]
    return str(approved[-1]["ModelPackageArn"]) if approved else None


def approve(registry: Path, group: str, version: str = "latest") -> dict[str, Any]:
    """Set a package's ModelApprovalStatus to Approved (`latest`: the newest package)."""
    packages = aws_stand_in.list_packages(registry, group)
    if not packages:
        raise LocalPipelineError(
            f"no model package in the local registry's group {group} ({registry / group}): "
            "run the training pipeline first"
        )
    if version == "latest":
        package = packages[-1]
    else:
        chosen = [p for p in packages if str(p["ModelPackageVersion"]) == version]
        if not chosen:
            have = ", ".join(str(p["ModelPackageVersion"]) for p in packages)
            raise LocalPipelineError(f"group {group} has no version {version} (versions: {have})")
        package = chosen[0]
    package["ModelApprovalStatus"] = "Approved"
    package["LastModifiedTime"] = datetime.now(UTC).isoformat()
    aws_stand_in.write_package(registry, package)
    return package
