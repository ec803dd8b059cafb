"""Models from the SageMaker Model Registry: a package described, checked, its model data
downloaded from S3, verified against its recorded SHA-256 and loaded.

Checks (`check_package`), each failing the step with the reason:

* the package belongs to this environment's group (`--model-package-group`);
* a champion or production model (`deployable`) is Approved, Completed and carries no rollback
  mark: the deployer sets a package whose deployment rolled back to Rejected with an approval
  description starting "rolled back at " (lambdas/deploy_model/model_deployer/rollbacks.py),
  and only a re-approval with a new reason clears it;
* its `model.tar.gz` has the SHA-256 the registry recorded under `model_artifact_sha256` (the
  key the deployer verifies before every deploy: model_deployer/integrity.py). A package
  without one was registered before the pipeline recorded it: it is scored, and the report
  says "unverified". Refusing it would leave an environment upgraded in place with no way to
  train the model that replaces it (the deployer deploys only hashed packages, so such a
  package can only be the one already serving); the model file is loaded in XGBoost's own
  formats only, never unpickled, so an altered file can change numbers, not run code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.model_files import MODEL_ARCHIVE, MODEL_FILE
from model_loading import EvaluationError, LoadedModel, file_sha256, load_model_dir

LOG = logging.getLogger("evaluate")

#: A versioned model package's ARN (arn:<partition>:sagemaker:<region>:<account>:
#: model-package/<group>/<version>): what the trigger passes; never a bare name.
PACKAGE_NAME_RE = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:[0-9]{12}:model-package/"
    r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}/[0-9]{1,9}$"
)
APPROVED = "Approved"
COMPLETED = "Completed"
#: The deployer's mark on a package whose deployment rolled back (rollbacks.ROLLED_BACK_PREFIX).
ROLLED_BACK_PREFIX = "rolled back at "
#: The registry metadata key of the model artifact's SHA-256 (integrity.MODEL_ARTIFACT_SHA256_KEY).
MODEL_ARTIFACT_SHA256_KEY = "model_artifact_sha256"
VERIFIED = "verified"
UNVERIFIED = f"unverified: registered without {MODEL_ARTIFACT_SHA256_KEY}"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def describe_package(package_name: str, sagemaker_client: Any, role: str) -> dict[str, Any]:
    """DescribeModelPackage, with a clear error when the package is missing or unreadable."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        package: dict[str, Any] = sagemaker_client.describe_model_package(
            ModelPackageName=package_name
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("ValidationException", "ResourceNotFound"):
            raise EvaluationError(
                f"{role} model package {package_name} does not exist or is not visible to "
                f"this role: {error}"
            ) from error
        raise EvaluationError(
            f"cannot describe the {role} model package {package_name}: {error}"
        ) from error
    except BotoCoreError as error:
        raise EvaluationError(
            f"cannot describe the {role} model package {package_name}: {error}"
        ) from error
    return package


def check_package(
    package: Mapping[str, Any], *, role: str, group: str | None, deployable: bool
) -> None:
    """Raise EvaluationError unless the package may be used as `role` (module docstring)."""
    arn = package.get("ModelPackageArn", "?")
    found_group = package.get("ModelPackageGroupName")
    if group and found_group != group:
        raise EvaluationError(
            f"{role} {arn} is a package of model package group {found_group!r}, not of this "
            f"environment's group {group!r}"
        )
    if not deployable:
        return
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        raise EvaluationError(
            f"{role} {arn} is {status}, not {APPROVED}: only an approved package can be the {role}"
        )
    description = str(package.get("ApprovalDescription") or "")
    if description.startswith(ROLLED_BACK_PREFIX):
        raise EvaluationError(
            f"{role} {arn} is marked as rolled back ({description[:200]}): re-approve it with "
            "a new reason if it should serve again"
        )
    state = package.get("ModelPackageStatus")
    if state is not None and state != COMPLETED:
        raise EvaluationError(f"{role} {arn} is {state}, not {COMPLETED}")


def recorded_sha256(package: Mapping[str, Any], role: str) -> str | None:
    """The model artifact's SHA-256 the registry recorded (None if it recorded none)."""
    metadata = package.get("CustomerMetadataProperties") or {}
    value = str(metadata.get(MODEL_ARTIFACT_SHA256_KEY) or "").strip().lower()
    if not value:
        return None
    if not _SHA256.match(value):
        raise EvaluationError(
            f"{role} {package.get('ModelPackageArn')}: {MODEL_ARTIFACT_SHA256_KEY}="
            f"{value[:80]!r} is not a SHA-256 hex digest (64 hex digits)"
        )
    return value


def verify_artifact(digest: str | None, package: Mapping[str, Any], url: str, role: str) -> str:
    """Compare the downloaded artifact's SHA-256 (None: not an archive) with the recorded
    digest; the integrity note."""
    expected = recorded_sha256(package, role)
    arn = package.get("ModelPackageArn")
    if expected is None:
        LOG.warning("%s %s: %s; its model is scored unverified", role, arn, UNVERIFIED)
        return UNVERIFIED
    if digest != expected:
        found = digest or f"no {MODEL_ARCHIVE} to hash"
        raise EvaluationError(
            f"{role} {arn}: model artifact {url} has SHA-256 {found}, the registry recorded "
            f"{expected}: it changed after registration"
        )
    return VERIFIED


def _model_data_url(package: Mapping[str, Any], role: str) -> tuple[str, bool]:
    """The package's S3 model data and whether it is an archive."""
    arn = package.get("ModelPackageArn")
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    if not containers:
        raise EvaluationError(f"{role} {arn} has no inference container to take a model from")
    container = containers[0]
    url = container.get("ModelDataUrl")
    source = container.get("ModelDataSource", {}).get("S3DataSource", {})
    if not url and source.get("S3Uri"):
        url = source["S3Uri"]
    if not url or not url.startswith("s3://"):
        raise EvaluationError(f"{role} {arn} has no S3 model data (ModelDataUrl = {url!r})")
    return url, url.endswith(".tar.gz") or source.get("CompressionType") == "Gzip"


def load_registered_model(
    package_name: str,
    sagemaker_client: Any,
    s3_client: Any,
    scratch: Path,
    role: str,
    *,
    group: str | None,
    deployable: bool,
    trainer: str,
) -> LoadedModel:
    """Describe and check a model package, download its model data from S3, verify it and
    load the booster (`role` names it in messages: "champion", "evaluated", ...)."""
    from botocore.exceptions import BotoCoreError, ClientError

    package = describe_package(package_name, sagemaker_client, role)
    check_package(package, role=role, group=group, deployable=deployable)
    arn = package.get("ModelPackageArn", package_name)
    url, archive = _model_data_url(package, role)
    bucket, _, key = url[len("s3://") :].partition("/")
    download_dir = scratch / f"{role}-download"
    download_dir.mkdir(parents=True, exist_ok=True)
    try:
        if archive:
            s3_client.download_file(bucket, key, str(download_dir / MODEL_ARCHIVE))
        else:
            # Uncompressed model data: an S3 prefix holding the model file.
            prefix = key.rstrip("/") + "/"
            s3_client.download_file(bucket, prefix + MODEL_FILE, str(download_dir / MODEL_FILE))
    except (ClientError, BotoCoreError) as error:
        raise EvaluationError(f"cannot download the {role} model {url}: {error}") from error
    downloaded = download_dir / MODEL_ARCHIVE
    digest = file_sha256(downloaded) if downloaded.is_file() else None
    integrity = verify_artifact(digest, package, url, role)  # before anything is unpacked
    model = load_model_dir(
        download_dir, scratch, role, verified=integrity == VERIFIED, trainer=trainer
    )
    model.integrity = integrity
    LOG.info("%s: %s (%s, %s)", role, arn, url, model.integrity)
    model.model_package_arn = arn
    model.model_package_group = package.get("ModelPackageGroupName")
    model.model_package_version = package.get("ModelPackageVersion")
    model.approval_status = package.get("ModelApprovalStatus")
    model.registry_metadata = dict(package.get("CustomerMetadataProperties") or {})
    model.source = url
    return model


def registry_clients(sagemaker_client: Any, s3_client: Any) -> tuple[Any, Any]:
    """The given SageMaker and S3 clients, or boto3's (created only for those not given)."""
    if sagemaker_client is None or s3_client is None:
        import boto3

        sagemaker_client = sagemaker_client or boto3.client("sagemaker")
        s3_client = s3_client or boto3.client("s3")
    return sagemaker_client, s3_client
