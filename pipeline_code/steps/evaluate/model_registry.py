"""Models from the SageMaker Model Registry: the newest Approved package of a group (the
champion, or the production model), described and its model data downloaded from S3."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from common.model_files import MODEL_ARCHIVE, MODEL_FILE
from model_loading import EvaluationError, LoadedModel, load_model_dir

LOG = logging.getLogger("evaluate")


#: DescribeModelPackage's ModelPackageName: an ARN or a name, optionally with "/<version>".
PACKAGE_NAME_RE = re.compile(
    r"^(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:model-package/)?"
    r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}(/[0-9]{1,9})?$"
)


def latest_approved_package(group: str, sagemaker_client: Any, role: str) -> str | None:
    """ARN of the newest Approved package of `group`, or None if it has none."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        listing = sagemaker_client.list_model_packages(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )
    except (ClientError, BotoCoreError) as error:
        raise EvaluationError(
            f"cannot look up the {role} in model package group {group!r}: {error}"
        ) from error
    summaries = listing.get("ModelPackageSummaryList", [])
    return str(summaries[0]["ModelPackageArn"]) if summaries else None


def load_registered_model(
    package_name: str, sagemaker_client: Any, s3_client: Any, scratch: Path, role: str
) -> LoadedModel:
    """Describe a model package, download its model data from S3 and load the booster."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        package = sagemaker_client.describe_model_package(ModelPackageName=package_name)
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
    arn = package.get("ModelPackageArn", package_name)
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
    bucket, _, key = url[len("s3://") :].partition("/")
    download_dir = scratch / f"{role}-download"
    download_dir.mkdir(parents=True, exist_ok=True)
    try:
        if key.endswith(".tar.gz") or source.get("CompressionType") == "Gzip":
            s3_client.download_file(bucket, key, str(download_dir / MODEL_ARCHIVE))
        else:
            # Uncompressed model data: an S3 prefix holding the model file.
            prefix = key.rstrip("/") + "/"
            s3_client.download_file(bucket, prefix + MODEL_FILE, str(download_dir / MODEL_FILE))
    except (ClientError, BotoCoreError) as error:
        raise EvaluationError(f"cannot download the {role} model {url}: {error}") from error
    LOG.info("%s: %s (%s)", role, arn, url)
    model = load_model_dir(download_dir, scratch, role)
    model.model_package_arn = arn
    model.model_package_group = package.get("ModelPackageGroupName")
    model.model_package_version = package.get("ModelPackageVersion")
    model.approval_status = package.get("ModelApprovalStatus")
    model.registry_metadata = dict(package.get("CustomerMetadataProperties") or {})
    model.source = url
    return model


def resolve_champion(
    group: str, sagemaker_client: Any, s3_client: Any, scratch: Path
) -> LoadedModel | None:
    """The newest Approved package of `group`, downloaded and loaded; None if there is none."""
    arn = latest_approved_package(group, sagemaker_client, "champion")
    if arn is None:
        LOG.info("no approved model package in %s: no champion", group)
        return None
    return load_registered_model(arn, sagemaker_client, s3_client, scratch, "champion")


def registry_clients(sagemaker_client: Any, s3_client: Any) -> tuple[Any, Any]:
    """The given SageMaker and S3 clients, or boto3's (created only for those not given)."""
    if sagemaker_client is None or s3_client is None:
        import boto3

        sagemaker_client = sagemaker_client or boto3.client("sagemaker")
        s3_client = s3_client or boto3.client("s3")
    return sagemaker_client, s3_client
