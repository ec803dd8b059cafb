"""Copy a package the previous environment of the promotion chain approved into this one.

Contract (README, Promoting one model across accounts): an "aws.sagemaker" / "SageMaker Model
Package State Change" event of the sending account and group, Approved, arrives on this
environment's promotions bus. The package is described again in the sending account (events
are at least once, unordered and may be stale: only a package that is still Approved and
Completed is copied), then:

1. its one model artifact is streamed from the sending bucket into this environment's artifact
   bucket under `PROMOTED_PREFIX<sending account>/<version>/model.tar.gz` as a multipart
   upload, hashed on the way; the upload is completed only when the SHA-256 equals the
   package's recorded `model_artifact_sha256`, else aborted (nothing appears; refused);
2. the files of its drift baseline folder (`baseline_s3_uri`) are copied beside it;
3. a package is registered in this group as PendingManualApproval with the same inference
   containers (ModelDataUrl replaced), MetadataProperties and CustomerMetadataProperties
   (dataset version, data digest, execution, artifact digest...), plus `promoted_from`,
   `promoted_from_account` and `training_account` (kept from an earlier hop); the files its
   ModelMetrics and DriftCheckBaselines name (evaluation report, Model Monitor statistics and
   constraints) are copied too and the copy names them: it never depends on another
   account's objects.

Idempotent: a package already copied (its description names the source ARN) is not copied
again; an artifact already at its key was completed only after verification (write-once, and
the completion is conditional: If-None-Match); two deliveries racing past that check register
one package, as CreateModelPackage's ClientToken is derived from the source ARN.
Functions take boto3 clients: `source_*` for the sending account's region, the others here.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

SAGEMAKER_SOURCE = "aws.sagemaker"
STATE_CHANGE = "SageMaker Model Package State Change"
APPROVED = "Approved"
COMPLETED = "Completed"
PENDING = "PendingManualApproval"
SHA256_KEY = "model_artifact_sha256"  # the deployer's key (model_deployer.integrity)
BASELINE_KEY = "baseline_s3_uri"  # the drift job's key (pipeline_code contract)
PROMOTED_FROM_KEY = "promoted_from"
PROMOTED_FROM_ACCOUNT_KEY = "promoted_from_account"
TRAINING_ACCOUNT_KEY = "training_account"
DESCRIPTION_PREFIX = "Promoted from "
PART_BYTES = 16 * 1024 * 1024
MAX_BASELINE_FILES = 100
MAX_METADATA_ENTRIES = 50  # CreateModelPackage CustomerMetadataProperties

PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:([a-z0-9\-]{9,16}):([0-9]{12}):model-package/"
    r"([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})/([0-9]+)$"
)
S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
ACCOUNT = re.compile(r"^[0-9]{12}$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
PREFIX = re.compile(r"^[^/\s][^\s]{0,500}/$")
# Container fields that name the sending account's storage: not carried into the copy
CONTAINER_KEYS_DROPPED = ("ModelDataSource", "ModelDataETag", "AdditionalS3DataSource")


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


class IntegrityError(Exception):
    """The artifact cannot be verified against the recorded digest: nothing is registered."""


@dataclass(frozen=True)
class ReceiverConfig:
    source_account: str
    source_region: str
    source_group: str
    source_pipeline_prefix: str
    group: str
    bucket: str
    promoted_prefix: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReceiverConfig:
        def get(name: str, pattern: re.Pattern[str]) -> str:
            value = env.get(name, "")
            if not pattern.match(value):
                raise ConfigError(f"{name}={value!r} is not allowed")
            return value

        return cls(
            source_account=get("SOURCE_ACCOUNT", ACCOUNT),
            source_region=get("SOURCE_REGION", re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")),
            source_group=get("SOURCE_MODEL_PACKAGE_GROUP_NAME", GROUP),
            source_pipeline_prefix=get("SOURCE_PIPELINE_PREFIX", PREFIX),
            group=get("MODEL_PACKAGE_GROUP_NAME", GROUP),
            bucket=get("ARTIFACT_BUCKET", BUCKET),
            promoted_prefix=get("PROMOTED_PREFIX", PREFIX),
        )


@dataclass(frozen=True)
class Outcome:
    """`received` (a copy registered), or `ignored` / `refused` with the reason."""

    action: str
    message: str
    reason: str | None = None
    model_package_arn: str | None = None
    source_model_package_arn: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Ignored(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def source_arn_of(event: Any, config: ReceiverConfig) -> str:
    """The approved package's ARN, if the event is an approval of the sending group in the
    sending account; Ignored otherwise."""
    if not isinstance(event, Mapping):
        raise Ignored("MalformedEvent", f"event is not an object: {event!r:.200}")
    if (event.get("source"), event.get("detail-type")) != (SAGEMAKER_SOURCE, STATE_CHANGE):
        raise Ignored(
            "UnsupportedEvent",
            f"unsupported source={event.get('source')!r:.80} "
            f"detail-type={event.get('detail-type')!r:.80}",
        )
    if event.get("account") != config.source_account:
        raise Ignored(
            "ForeignAccount",
            f"event of account {event.get('account')!r:.20}; this environment receives from "
            f"{config.source_account}",
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise Ignored("MalformedEvent", "detail is missing or not an object")
    if detail.get("ModelPackageGroupName") != config.source_group:
        raise Ignored(
            "ForeignGroup",
            f"event for group {detail.get('ModelPackageGroupName')!r:.80}, this environment "
            f"receives from {config.source_group}",
        )
    if detail.get("ModelApprovalStatus") != APPROVED:
        raise Ignored("NotApproved", f"package is {detail.get('ModelApprovalStatus')!r:.40}")
    arn = detail.get("ModelPackageArn")
    match = PACKAGE_ARN.match(arn) if isinstance(arn, str) else None
    if (
        not match
        or match.group(2) != config.source_account
        or match.group(3) != config.source_group
    ):
        raise Ignored("MalformedEvent", f"ModelPackageArn {arn!r:.200} is not of the sending group")
    return str(arn)


def find_copy(sagemaker: Any, group: str, source_arn: str) -> str | None:
    """The package of `group` already copied from `source_arn` (its description names it)."""
    description = DESCRIPTION_PREFIX + source_arn
    pages = sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, ModelPackageType="VERSIONED"
    )
    for page in pages:
        for summary in page["ModelPackageSummaryList"]:
            if summary.get("ModelPackageDescription") == description:
                return str(summary["ModelPackageArn"])
    return None


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:  # 404 when absent (the role may list its prefix)
        code = error.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def copy_verified(
    source_s3: Any, s3: Any, *, source: tuple[str, str], target: tuple[str, str], sha256: str
) -> None:
    """Stream `source` (bucket, key) to `target` as a multipart upload, hashing the bytes;
    complete only when the SHA-256 is `sha256` (else abort and raise IntegrityError)."""
    bucket, key = target
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    digest = hashlib.sha256()
    parts: list[dict[str, Any]] = []
    try:
        body = source_s3.get_object(Bucket=source[0], Key=source[1])["Body"]
        for number, chunk in enumerate(_parts(body), start=1):
            digest.update(chunk)
            etag = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk
            )["ETag"]
            parts.append({"ETag": etag, "PartNumber": number})
        actual = digest.hexdigest()
        if actual != sha256:
            raise IntegrityError(
                f"s3://{source[0]}/{source[1]} has SHA-256 {actual}, the sending registry "
                f"recorded {sha256}: not copied"
            )
        if not parts:  # an empty object is one empty part
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"")[
                "ETag"
            ]
            parts.append({"ETag": etag, "PartNumber": 1})
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            MultipartUpload={"Parts": parts},
            IfNoneMatch="*",
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        raise


def _parts(body: Any) -> Any:
    """Chunks of PART_BYTES (S3's minimum part is 5 MiB but for the last one)."""
    buffer = b""
    for chunk in body.iter_chunks(PART_BYTES):
        buffer += chunk
        while len(buffer) >= PART_BYTES:
            yield buffer[:PART_BYTES]
            buffer = buffer[PART_BYTES:]
    if buffer:
        yield buffer


def copy_baseline(
    source_s3: Any, s3: Any, url: str, config: ReceiverConfig, bucket: str, folder: str
) -> str:
    """Copy the files of the baseline folder `url` under `folder`; returns the new folder URI."""
    match = S3_URL.match(url.rstrip("/") + "/")
    if not match or not match.group(2).startswith(config.source_pipeline_prefix):
        raise IntegrityError(f"baseline {url} is not under the sending pipeline's prefix")
    source_bucket, prefix = match.group(1), match.group(2)
    listed = source_s3.list_objects_v2(
        Bucket=source_bucket, Prefix=prefix, MaxKeys=MAX_BASELINE_FILES
    )
    for item in listed.get("Contents", []):
        name = item["Key"][len(prefix) :]
        body = source_s3.get_object(Bucket=source_bucket, Key=item["Key"])["Body"].read()
        s3.put_object(Bucket=bucket, Key=f"{folder}{name}", Body=body)
    return f"s3://{bucket}/{folder}"


def copy_report_files(
    source_s3: Any, s3: Any, value: Any, config: ReceiverConfig, folder: str
) -> Any:
    """`value` (ModelMetrics or DriftCheckBaselines) with every file its `S3Uri`s name copied
    under `folder` (keeping its path below the sending pipeline's prefix) and renamed so."""
    if isinstance(value, list):
        return [copy_report_files(source_s3, s3, item, config, folder) for item in value]
    if not isinstance(value, Mapping):
        return value
    copied: dict[str, Any] = {}
    for name, item in value.items():
        if name == "S3Uri" and isinstance(item, str):
            copied[name] = _copy_file(source_s3, s3, item, config, folder)
        else:
            copied[name] = copy_report_files(source_s3, s3, item, config, folder)
    return copied


def _copy_file(source_s3: Any, s3: Any, url: str, config: ReceiverConfig, folder: str) -> str:
    match = S3_URL.match(url)
    if not match or not match.group(2).startswith(config.source_pipeline_prefix):
        raise IntegrityError(f"{url} is not under the sending pipeline's prefix: not copied")
    key = folder + match.group(2)[len(config.source_pipeline_prefix) :]
    body = source_s3.get_object(Bucket=match.group(1), Key=match.group(2))["Body"].read()
    s3.put_object(Bucket=config.bucket, Key=key, Body=body)
    return f"s3://{config.bucket}/{key}"


def receive(
    event: Any, *, source_sagemaker: Any, source_s3: Any, sagemaker: Any, s3: Any,
    config: ReceiverConfig,
) -> Outcome:  # fmt: skip
    """Handle one event (module docstring). Raises AWS errors (retried by the queue)."""
    try:
        arn = source_arn_of(event, config)
        package = source_sagemaker.describe_model_package(ModelPackageName=arn)
        if package.get("ModelApprovalStatus") != APPROVED:
            raise Ignored(
                "StaleEvent", f"{arn} is {package.get('ModelApprovalStatus')} in the registry now"
            )
        if package.get("ModelPackageStatus") != COMPLETED:
            raise Ignored("PackageNotCompleted", f"{arn} is {package.get('ModelPackageStatus')}")
        existing = find_copy(sagemaker, config.group, arn)
        if existing:
            raise Ignored("AlreadyReceived", f"{arn} was already copied as {existing}")
        return _copy(package, arn, source_s3=source_s3, sagemaker=sagemaker, s3=s3, config=config)
    except Ignored as ignored:
        return Outcome("ignored", str(ignored), reason=ignored.reason)
    except IntegrityError as refused:
        return Outcome("refused", str(refused), reason="ArtifactIntegrity")


def _copy(
    package: Mapping[str, Any], arn: str, *, source_s3: Any, sagemaker: Any, s3: Any,
    config: ReceiverConfig,
) -> Outcome:  # fmt: skip
    metadata = dict(package.get("CustomerMetadataProperties") or {})
    sha256 = str(metadata.get(SHA256_KEY, "")).strip().lower()
    if not SHA256.match(sha256):
        raise IntegrityError(
            f"{arn} records no valid {SHA256_KEY}: its artifact cannot be verified"
        )
    containers = list((package.get("InferenceSpecification") or {}).get("Containers") or [])
    urls = [c.get("ModelDataUrl") for c in containers if c.get("ModelDataUrl")]
    if len(urls) != 1 or len(containers) != 1:
        raise IntegrityError(f"{arn} has {len(urls)} model artifacts; exactly one is copied")
    match = S3_URL.match(str(urls[0]))
    if not match or not match.group(2).startswith(config.source_pipeline_prefix):
        raise IntegrityError(f"{arn}: {urls[0]} is not under the sending pipeline's prefix")
    version = PACKAGE_ARN.match(arn).group(5)  # type: ignore[union-attr]
    folder = f"{config.promoted_prefix}{config.source_account}/{version}/"
    key = f"{folder}model.tar.gz"
    if not _exists(s3, config.bucket, key):
        copy_verified(
            source_s3, s3, source=(match.group(1), match.group(2)),
            target=(config.bucket, key), sha256=sha256,
        )  # fmt: skip
    if metadata.get(BASELINE_KEY):
        metadata[BASELINE_KEY] = copy_baseline(
            source_s3, s3, str(metadata[BASELINE_KEY]), config, config.bucket, f"{folder}baseline/"
        )
    metadata.setdefault(TRAINING_ACCOUNT_KEY, config.source_account)
    metadata[PROMOTED_FROM_KEY] = arn
    metadata[PROMOTED_FROM_ACCOUNT_KEY] = config.source_account
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise IntegrityError(f"{arn} carries {len(metadata)} metadata entries, over 50")
    container = {k: v for k, v in containers[0].items() if k not in CONTAINER_KEYS_DROPPED}
    container["ModelDataUrl"] = f"s3://{config.bucket}/{key}"
    specification = {**package["InferenceSpecification"], "Containers": [container]}
    request: dict[str, Any] = {
        "ModelPackageGroupName": config.group,
        "ModelPackageDescription": DESCRIPTION_PREFIX + arn,
        "InferenceSpecification": specification,
        "ModelApprovalStatus": PENDING,
        "CustomerMetadataProperties": metadata,
        "ClientToken": str(uuid.uuid5(uuid.NAMESPACE_URL, arn)),
    }
    for field in ("MetadataProperties", "Domain", "Task"):
        if package.get(field):
            request[field] = package[field]
    for field in ("ModelMetrics", "DriftCheckBaselines"):
        if package.get(field):
            request[field] = copy_report_files(
                source_s3, s3, package[field], config, f"{folder}files/"
            )
    created = sagemaker.create_model_package(**request)["ModelPackageArn"]
    return Outcome(
        "received",
        f"{arn} copied as {created} (PendingManualApproval); artifact verified, SHA-256 {sha256}",
        model_package_arn=created,
        source_model_package_arn=arn,
    )
