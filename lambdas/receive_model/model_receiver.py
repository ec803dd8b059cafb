"""Copy a package the previous environment of the promotion chain approved into this one.

Contract (README, Promoting one model across accounts): an "aws.sagemaker" / "SageMaker Model
Package State Change" event of the sending account and group, Approved (or Rejected:
`alert_rejection`), arrives on this environment's promotions bus. The package is described
again in the sending account (events are at least once, unordered and may be stale: only a
package that is still Approved and Completed is copied), then:

1. its one model artifact is streamed from the sending bucket into this environment's artifact
   bucket under `PROMOTED_PREFIX<sending account>/<sha256>/model.tar.gz` (addressed by its
   content) as a multipart upload, hashed on the way; the upload is completed only when the
   SHA-256 equals the package's recorded `model_artifact_sha256`, else aborted (nothing
   appears; refused);
2. the files of its drift baseline folder (`baseline_s3_uri`, else the folder of its
   DriftCheckBaselines data-quality statistics: where the target's drift job looks) are
   copied beside it, in a folder of this package (`<sha256>/<package id>/baseline/`), and the
   copy's `baseline_s3_uri` names them;
3. a package is registered in this group as PendingManualApproval with the same inference
   containers (ModelDataUrl replaced), MetadataProperties and CustomerMetadataProperties
   (dataset version, data digest, execution, artifact digest...), plus `promoted_from`,
   `promoted_from_account`, `training_account` (kept from an earlier hop) and the source's
   approval (`source_approval_description`, `source_approved_by`); the files its ModelMetrics
   and DriftCheckBaselines name (evaluation report, statistics, constraints) are copied too and
   the copy names them. Its image URI stays the source's (hence one region per chain).

Only the sending pipeline's model, evaluation and baseline files are read (object_copy).
Idempotent: a package already copied (its description names the source ARN and CreationTime,
as a recreated group reuses ARNs) is not copied again; every object is written with
`If-None-Match: *`, an existing one counting as copied (object_copy); two deliveries racing
register one package, as CreateModelPackage's ClientToken derives from the same identity.
Functions take boto3 clients: `source_*` for the sending account's region, the others here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from object_copy import S3_URL, IntegrityError, copy_folder, copy_object, copy_report_files
from object_copy import source_object as _source_object

SAGEMAKER_SOURCE = "aws.sagemaker"
STATE_CHANGE = "SageMaker Model Package State Change"
APPROVED = "Approved"
REJECTED = "Rejected"
COMPLETED = "Completed"
PENDING = "PendingManualApproval"
SHA256_KEY = "model_artifact_sha256"  # the deployer's key (model_deployer.integrity)
BASELINE_KEY = "baseline_s3_uri"  # the drift job's key (pipeline_code contract)
PROMOTED_FROM_KEY = "promoted_from"
PROMOTED_FROM_ACCOUNT_KEY = "promoted_from_account"
TRAINING_ACCOUNT_KEY = "training_account"
APPROVAL_DESCRIPTION_KEY = "source_approval_description"
APPROVED_BY_KEY = "source_approved_by"
DESCRIPTION_PREFIX = "Promoted from "
MAX_METADATA_VALUE = 256  # CreateModelPackage CustomerMetadataProperties value length
MAX_METADATA_ENTRIES = 50  # CreateModelPackage CustomerMetadataProperties

PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:([a-z0-9\-]{9,16}):([0-9]{12}):model-package/"
    r"([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})/([0-9]+)$"
)
SHA256 = re.compile(r"^[0-9a-f]{64}$")
ACCOUNT = re.compile(r"^[0-9]{12}$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
PREFIX = re.compile(r"^[^/\s][^\s]{0,500}/$")
TOPIC = re.compile(r"^arn:aws[a-z\-]*:sns:[a-z0-9\-]+:[0-9]{12}:[A-Za-z0-9_\-]{1,256}$")
# Container fields that name the sending account's storage: not carried into the copy
CONTAINER_KEYS_DROPPED = ("ModelDataSource", "ModelDataETag", "AdditionalS3DataSource")


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class ReceiverConfig:
    source_account: str
    source_region: str
    source_group: str
    source_pipeline_prefix: str
    group: str
    bucket: str
    promoted_prefix: str
    topic_arn: str

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
            topic_arn=get("TOPIC_ARN", TOPIC),
        )


@dataclass(frozen=True)
class Outcome:
    """`received` (a copy registered), `alerted` (the source rejected a package copied here:
    the notification topic was told), or `ignored` / `refused` with the reason."""

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
    """The package's ARN, if the event is an approval or a rejection of the sending group in
    the sending account; Ignored otherwise."""
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
    if detail.get("ModelApprovalStatus") not in (APPROVED, REJECTED):
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


def package_identity(arn: str, package: Mapping[str, Any]) -> str:
    """The source package's ARN and CreationTime: a group recreated in the sending account
    numbers its versions from 1 again, so its ARN alone names two packages over time."""
    created = package.get("CreationTime")
    if isinstance(created, datetime):
        created = created.astimezone(UTC).isoformat()
    return f"{arn} created {created}"


def find_copy(sagemaker: Any, group: str, identity: str) -> Mapping[str, Any] | None:
    """The summary (ARN, approval status) of the package of `group` already copied from
    `identity` (its description names it)."""
    description = DESCRIPTION_PREFIX + identity
    pages = sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, ModelPackageType="VERSIONED"
    )
    for page in pages:
        for summary in page["ModelPackageSummaryList"]:
            if summary.get("ModelPackageDescription") == description:
                return dict(summary)
    return None


def baseline_folder(package: Mapping[str, Any]) -> str | None:
    """The drift baseline folder, as the target's drift job finds it (start_drift_job
    served_model.baseline_uri): `baseline_s3_uri`, else the folder of the data-quality
    statistics in DriftCheckBaselines (the evidently engine registers only those)."""
    explicit = (package.get("CustomerMetadataProperties") or {}).get(BASELINE_KEY)
    if explicit:
        return str(explicit).rstrip("/") + "/"
    statistics = (
        ((package.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}).get("Statistics")
        or {}
    ).get("S3Uri", "")
    if isinstance(statistics, str) and S3_URL.match(statistics):
        return statistics.rsplit("/", 1)[0] + "/"
    return None


def receive(
    event: Any, *, source_sagemaker: Any, source_s3: Any, sagemaker: Any, s3: Any, sns: Any,
    config: ReceiverConfig,
) -> Outcome:  # fmt: skip
    """Handle one event (module docstring). Raises AWS errors (retried by the queue)."""
    try:
        arn = source_arn_of(event, config)
        package = source_sagemaker.describe_model_package(ModelPackageName=arn)
        if event["detail"]["ModelApprovalStatus"] == REJECTED:
            return alert_rejection(arn, package, sagemaker=sagemaker, sns=sns, config=config)
        if package.get("ModelApprovalStatus") != APPROVED:
            raise Ignored(
                "StaleEvent", f"{arn} is {package.get('ModelApprovalStatus')} in the registry now"
            )
        if package.get("ModelPackageStatus") != COMPLETED:
            raise Ignored("PackageNotCompleted", f"{arn} is {package.get('ModelPackageStatus')}")
        identity = package_identity(arn, package)
        existing = find_copy(sagemaker, config.group, identity)
        if existing:
            raise Ignored(
                "AlreadyReceived",
                f"{identity} was already copied as {existing['ModelPackageArn']}",
            )
        return _copy(package, arn, source_s3=source_s3, sagemaker=sagemaker, s3=s3, config=config)
    except Ignored as ignored:
        return Outcome("ignored", str(ignored), reason=ignored.reason)
    except IntegrityError as refused:
        return Outcome("refused", str(refused), reason="ArtifactIntegrity")


def alert_rejection(
    arn: str, package: Mapping[str, Any], *, sagemaker: Any, sns: Any, config: ReceiverConfig
) -> Outcome:
    """The sending environment rejected (or rolled back) `arn`: if it was copied here, tell the
    notification topic which copy, in which state. Changes nothing: whether to reject or roll
    back here is this environment's decision (the receiver can approve or reject nothing)."""
    if package.get("ModelApprovalStatus") != REJECTED:
        raise Ignored(
            "StaleEvent", f"{arn} is {package.get('ModelApprovalStatus')} in the registry now"
        )
    identity = package_identity(arn, package)
    found = find_copy(sagemaker, config.group, identity)
    if found is None:
        raise Ignored("NotReceived", f"{arn} was rejected in {config.source_account}; not here")
    copy, status = str(found["ModelPackageArn"]), found.get("ModelApprovalStatus")
    why = package.get("ApprovalDescription") or "no reason given"
    message = (
        f"{arn} was rejected in account {config.source_account} ({why!s:.300}). Its copy in "
        f"{config.group} is {copy} ({status}). Nothing was changed here: if this environment "
        "serves or is about to approve it, decide here (mlops reject / rollback)."
    )
    sns.publish(
        TopicArn=config.topic_arn,
        Subject=f"Rejected upstream: {config.group} copy of {arn.rsplit('/', 2)[-2]}"[:100],
        Message=message,
    )
    return Outcome(
        "alerted",
        message,
        reason="SourceRejected",
        model_package_arn=copy,
        source_model_package_arn=arn,
    )


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
    prefix = config.source_pipeline_prefix
    artifact = _source_object(str(urls[0]), prefix, f"{arn}: model artifact")
    identity = package_identity(arn, package)
    token = str(uuid.uuid5(uuid.NAMESPACE_URL, identity))
    folder = f"{config.promoted_prefix}{config.source_account}/{sha256}/"
    key = f"{folder}model.tar.gz"
    copy_object(source_s3, s3, source=artifact, target=(config.bucket, key), sha256=sha256)
    baseline = baseline_folder(package)
    if baseline:
        metadata[BASELINE_KEY] = copy_folder(
            source_s3, s3, baseline, prefix, (config.bucket, f"{folder}{token}/baseline/")
        )
    metadata.setdefault(TRAINING_ACCOUNT_KEY, config.source_account)
    metadata[PROMOTED_FROM_KEY] = arn
    metadata[PROMOTED_FROM_ACCOUNT_KEY] = config.source_account
    metadata.update(_approval(package))
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise IntegrityError(f"{arn} carries {len(metadata)} metadata entries, over 50")
    container = {k: v for k, v in containers[0].items() if k not in CONTAINER_KEYS_DROPPED}
    container["ModelDataUrl"] = f"s3://{config.bucket}/{key}"
    specification = {**package["InferenceSpecification"], "Containers": [container]}
    request: dict[str, Any] = {
        "ModelPackageGroupName": config.group,
        "ModelPackageDescription": DESCRIPTION_PREFIX + identity,
        "InferenceSpecification": specification,
        "ModelApprovalStatus": PENDING,
        "CustomerMetadataProperties": metadata,
        "ClientToken": token,
    }
    for field in ("MetadataProperties", "Domain", "Task"):
        if package.get(field):
            request[field] = package[field]
    for field in ("ModelMetrics", "DriftCheckBaselines"):
        if package.get(field):
            request[field] = copy_report_files(
                source_s3, s3, package[field], prefix, (config.bucket, f"{folder}{token}/files/")
            )
    created = sagemaker.create_model_package(**request)["ModelPackageArn"]
    return Outcome(
        "received",
        f"{arn} copied as {created} (PendingManualApproval); artifact verified, SHA-256 {sha256}",
        model_package_arn=created,
        source_model_package_arn=arn,
    )


def _approval(package: Mapping[str, Any]) -> dict[str, str]:
    """Who approved the source package, and why (lineage; CustomerMetadataProperties values
    are at most 256 characters)."""
    modified = package.get("LastModifiedBy") or {}
    approver = (modified.get("IamIdentity") or {}).get("Arn") or modified.get("UserProfileName")
    found = {
        APPROVAL_DESCRIPTION_KEY: package.get("ApprovalDescription"),
        APPROVED_BY_KEY: approver,
    }
    return {k: str(v)[:MAX_METADATA_VALUE] for k, v in found.items() if v}
