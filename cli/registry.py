"""The Model Registry from the operator's side: find packages, change their approval and
lifecycle stage, and read their metrics.

Packages are named on the command line by ARN or by version number within the environment's
Model Package Group. A package of another group is refused (it belongs to another environment),
so `mlops --env dev approve <prod ARN>` cannot touch production.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cli.aws import CliError, Ops, describe_aws_error, is_not_found, listed, model_deployer
from pipeline_code.definition import EVALUATION_CONTRACT, read_string_constants

APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "PendingManualApproval"
MAX_REASON_LENGTH = 1024  # UpdateModelPackage ApprovalDescription

# CustomerMetadataProperties keys written by the Register step
# (pipeline_code/definition/registration.py).
META_VERSION_MANIFEST_URI = "version_manifest_uri"
META_DATASET_VERSION = "dataset_version"
META_DATA_DIGEST = "data_digest"
META_CODE_COMMIT = "code_commit"
META_EXECUTION_ID = "pipeline_execution_id"
META_METRIC = "metric"
META_CHALLENGER = "challenger"
# Packages registered before the version manifest's URI replaced it carry the raw input URI.
META_INPUT_DATA_URI = "input_data_uri"
# promote mode: keys the receiver adds to a copy (lambdas/receive_model/model_receiver.py).
META_PROMOTED_FROM = "promoted_from"
META_TRAINING_ACCOUNT = "training_account"
# The training job that wrote the model; with pipeline.tuning, the best trial of this tuning job.
META_TRAINING_JOB_NAME = "training_job_name"
META_TUNING_JOB_NAME = "tuning_job_name"
METADATA_KEYS = (
    META_VERSION_MANIFEST_URI,
    META_DATASET_VERSION,
    META_DATA_DIGEST,
    META_CODE_COMMIT,
    META_EXECUTION_ID,
    META_METRIC,
    META_CHALLENGER,
)

EVALUATE_SCRIPT = EVALUATION_CONTRACT
_VERSION = re.compile(r"^\d{1,9}$")
_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:\d{12}:model-package/.+$")


@dataclass(frozen=True)
class EvaluationKeys:
    """evaluation.json's layout, read from evaluate.py's constants (one source of truth)."""

    metrics: str
    gate: str
    test_rows: str
    # problem_type -> its metrics section (a report without problem_type is binary)
    typed_metrics: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, script: Path = EVALUATE_SCRIPT) -> EvaluationKeys:
        constants = read_string_constants(script)
        typed = {
            problem: read_string_constants(script.parent / f"metrics_{problem}.py")["SECTION"]
            for problem in ("multiclass", "regression")
        }
        return cls(
            metrics=constants["METRICS_KEY"],
            gate=constants["GATE_KEY"],
            test_rows=constants["GATE_TEST_ROWS"],
            typed_metrics=typed,
        )

    def metrics_section(self, report: Mapping[str, Any]) -> str:
        """The report's metrics section, by its problem_type."""
        return self.typed_metrics.get(str(report.get("problem_type")), self.metrics)


@dataclass(frozen=True)
class Package:
    """The parts of DescribeModelPackage the CLI shows."""

    arn: str
    version: int
    group: str
    approval: str
    status: str
    created: datetime | None
    life_cycle: Mapping[str, Any] | None
    approval_description: str
    metadata: Mapping[str, str]
    metadata_properties: Mapping[str, str]
    evaluation_uri: str | None
    model_data_url: str | None
    image: str | None

    @classmethod
    def from_description(cls, described: Mapping[str, Any]) -> Package:
        containers = described.get("InferenceSpecification", {}).get("Containers", [])
        container = containers[0] if containers else {}
        statistics = described.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics")
        return cls(
            arn=described["ModelPackageArn"],
            version=int(described.get("ModelPackageVersion", 0)),
            group=described.get("ModelPackageGroupName", ""),
            approval=described.get("ModelApprovalStatus", ""),
            status=described.get("ModelPackageStatus", ""),
            created=described.get("CreationTime"),
            life_cycle=described.get("ModelLifeCycle"),
            approval_description=described.get("ApprovalDescription", ""),
            metadata=dict(described.get("CustomerMetadataProperties") or {}),
            metadata_properties=dict(described.get("MetadataProperties") or {}),
            evaluation_uri=statistics.get("S3Uri") if statistics else None,
            model_data_url=container.get("ModelDataUrl"),
            image=container.get("Image"),
        )

    @property
    def promoted(self) -> bool:
        return bool(model_deployer().is_promoted(self.life_cycle))

    @property
    def description(self) -> dict[str, Any]:
        """The DescribeModelPackage fields the deploy handler's rules read."""
        described: dict[str, Any] = {
            "ModelPackageArn": self.arn,
            "ModelPackageGroupName": self.group,
            "ModelPackageVersion": self.version,
            "ModelApprovalStatus": self.approval,
            "ModelPackageStatus": self.status,
            "ApprovalDescription": self.approval_description,
        }
        if self.life_cycle:
            described["ModelLifeCycle"] = dict(self.life_cycle)
        return described

    @property
    def rolled_back(self) -> str | None:
        """The rollback mark the deploy handler left ("rolled back at <time>: <reason>"), while
        it is the package's ApprovalDescription; None otherwise."""
        note = model_deployer().rolled_back_note({"ApprovalDescription": self.approval_description})
        return str(note) if note else None

    @property
    def stage(self) -> str:
        """`Stage/StageStatus` of the ModelLifeCycle, or "-" when none is set."""
        if not self.life_cycle:
            return "-"
        return f"{self.life_cycle.get('Stage', '?')}/{self.life_cycle.get('StageStatus', '?')}"

    @property
    def key_metric(self) -> str:
        """The gate metric the pipeline recorded, e.g. "auc=0.9132", or "-"."""
        name, value = self.metadata.get(META_METRIC), self.metadata.get(META_CHALLENGER)
        if not name or value is None:
            return "-"
        return f"{name}={_number(value)}"


def _number(value: Any) -> str:
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return str(value)


def describe(ops: Ops, arn: str) -> Package:
    """DescribeModelPackage of `arn`; refuses packages of another environment's group."""
    try:
        described = ops.client("sagemaker").describe_model_package(ModelPackageName=arn)
    except ClientError as error:
        if is_not_found(error):
            raise CliError(f"model package {arn} does not exist in {ops.config.region}") from error
        raise
    package = Package.from_description(described)
    group = ops.config.model_package_group_name
    if package.group != group:
        raise CliError(
            f"model package {arn} belongs to group {package.group!r}, not {group!r} of env "
            f"{ops.config.name!r}: wrong --env?"
        )
    return package


def summaries(ops: Ops, approval: str | None = None) -> Iterator[Mapping[str, Any]]:
    """ListModelPackages of the environment's group, newest first (every page)."""
    request: dict[str, Any] = {
        "ModelPackageGroupName": ops.config.model_package_group_name,
        "ModelPackageType": "Versioned",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
    }
    if approval:
        request["ModelApprovalStatus"] = approval
    missing = (
        f"model package group {ops.config.model_package_group_name} does not exist in "
        f"{ops.config.region}: is the data stack deployed (`make deploy ENV={ops.config.name}`)?"
    )
    yield from listed(ops, "list_model_packages", "ModelPackageSummaryList", missing, **request)


def resolve(ops: Ops, ref: str) -> Package:
    """A package named by ARN or by version number (e.g. "7") within the environment's group."""
    ref = ref.strip()
    if _ARN.match(ref):
        return describe(ops, ref)
    if not _VERSION.match(ref):
        raise CliError(
            f"{ref!r} is neither a model package ARN nor a version number of "
            f"{ops.config.model_package_group_name}"
        )
    version = int(ref)
    for summary in summaries(ops):
        if summary.get("ModelPackageVersion") == version:
            return describe(ops, summary["ModelPackageArn"])
    raise CliError(
        f"version {version} does not exist in {ops.config.model_package_group_name} "
        f"(see `mlops --env {ops.config.name} models`)"
    )


def list_packages(ops: Ops, limit: int, approval: str | None = None) -> list[Package]:
    """The `limit` newest packages (by version), described."""
    found: list[Mapping[str, Any]] = []
    for summary in summaries(ops, approval):
        found.append(summary)
    found.sort(key=lambda s: s.get("ModelPackageVersion", 0), reverse=True)
    return [describe(ops, s["ModelPackageArn"]) for s in found[:limit]]


def check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise CliError("--reason must say why (it is stored with the package)")
    if len(reason) > MAX_REASON_LENGTH:
        raise CliError(f"--reason is {len(reason)} characters; at most {MAX_REASON_LENGTH}")
    return reason


def set_approval(ops: Ops, package: Package, status: str, reason: str) -> bool:
    """UpdateModelPackage ModelApprovalStatus + ApprovalDescription. False if already `status`."""
    reason = check_reason(reason)
    if package.approval == status:
        return False
    ops.client("sagemaker").update_model_package(
        ModelPackageArn=package.arn, ModelApprovalStatus=status, ApprovalDescription=reason
    )
    return True


def promote(ops: Ops, package: Package, reason: str | None) -> bool:
    """Set ModelLifeCycle to Production/Approved. False if it already is.

    Raises:
        CliError: the package is not Approved (promotion never bypasses approval).
    """
    if package.approval != APPROVED:
        raise CliError(
            f"version {package.version} is {package.approval}: approve it first "
            f"(`mlops --env {ops.config.name} approve {package.version} --reason ...`)"
        )
    if package.promoted:
        return False
    life_cycle = dict(model_deployer().PROMOTED_LIFE_CYCLE)
    if reason:
        life_cycle["StageDescription"] = check_reason(reason)
    ops.client("sagemaker").update_model_package(
        ModelPackageArn=package.arn, ModelLifeCycle=life_cycle
    )
    return True


@dataclass
class Metrics:
    """A package's metrics: the evaluation report's scalars, or the gate metric only."""

    values: dict[str, float] = field(default_factory=dict)
    test_rows: int | None = None
    source: str = ""
    problem: str | None = None


def read_metrics(ops: Ops, package: Package, keys: EvaluationKeys | None = None) -> Metrics:
    """Scalar metrics from the package's ModelQuality statistics (evaluation.json in S3).

    Falls back to the gate metric in CustomerMetadataProperties when the report cannot be read
    (the reason is kept in `problem`).
    """
    keys = keys or EvaluationKeys.load()
    problem = "the package has no ModelQuality statistics"
    if package.evaluation_uri:
        try:
            report = _read_json(ops, package.evaluation_uri)
            section = report.get(keys.metrics_section(report)) or {}
            scalars = {
                name: float(entry["value"])
                for name, entry in section.items()
                if isinstance(entry, Mapping) and isinstance(entry.get("value"), int | float)
            }
            rows = (report.get(keys.gate) or {}).get(keys.test_rows)
            return Metrics(scalars, rows if isinstance(rows, int) else None, package.evaluation_uri)
        except ClientError as error:
            problem = describe_aws_error(error)
        except (ValueError, AttributeError) as error:
            problem = f"{package.evaluation_uri} is not an evaluation report: {error}"
    name, value = package.metadata.get(META_METRIC), package.metadata.get(META_CHALLENGER)
    values: dict[str, float] = {}
    if name and value is not None:
        with contextlib.suppress(ValueError):
            values[name] = float(value)
    return Metrics(values, None, "CustomerMetadataProperties", problem)


def _read_json(ops: Ops, uri: str) -> Mapping[str, Any]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    body = ops.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    report = json.loads(body)
    if not isinstance(report, Mapping):
        raise ValueError("the top level is not an object")
    return report
