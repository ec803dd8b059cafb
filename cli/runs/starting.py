"""Starting a run through a pipeline's trigger Lambda: the requests it accepts, the marker
event that re-announces a dataset version, and the Lambda's answer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from cli.aws import CliError, Ops, dataset_completion, error_code

# The start-training Lambda's direct-invocation contract (lambdas/start_training/
# dataset_trigger.py; tests/cli checks these against it).
ACTION_RETRAIN = "retrain-latest"
ACTION_RETRAIN_VERSION = "retrain-version"
ACTION_QUIET_CHECK = "quiet-check"
S3_SOURCE = "aws.s3"
OBJECT_CREATED = "Object Created"
COMPLETION_MODE_QUIET = "quiet-period"
MANUAL_REASON = "manual"
# Outcomes of the Lambda that are not an error for the operator.
STARTED, DUPLICATE, DEFERRED, PENDING = "started", "duplicate", "deferred", "pending"


@dataclass(frozen=True)
class StartResult:
    """What the trigger Lambda decided (its Outcome.as_dict())."""

    outcome: str
    reason: str
    message: str
    execution_arn: str | None
    dataset_version: str | None
    rerun_of: str | None = None  # retrain-version: the version's previous execution

    @property
    def ok(self) -> bool:
        return self.outcome in (STARTED, DUPLICATE, DEFERRED, PENDING)


def parse_dataset_version(text: str) -> tuple[str, str]:
    """`(dataset, version)` of `DATASET/VERSION` (surrounding blanks and slashes ignored)."""
    dataset, _, version = text.strip().strip("/").partition("/")
    if not dataset or not version or "/" in version or {dataset, version} & {".", ".."}:
        raise CliError(f"{text!r} is not a dataset version: use DATASET/VERSION")
    return dataset, version


def _request_id(request_id: str | None) -> str:
    """The given idempotency key (the Lambda takes 1-256 characters) or a fresh one."""
    if request_id is not None and not 0 < len(request_id) <= 256:
        raise CliError(f"--request-id must be 1-256 characters, got {len(request_id)}")
    return request_id or f"cli-{uuid.uuid4()}"


def retrain_request(
    request_id: str | None, dataset: str | None, model_package_arn: str | None = None
) -> dict[str, Any]:
    """The Lambda's `retrain-latest` request for a manual run (the evaluation trigger also
    takes the package to score instead of the production model)."""
    payload: dict[str, Any] = {
        "action": ACTION_RETRAIN,
        "reason": MANUAL_REASON,
        "request_id": _request_id(request_id),
    }
    if dataset:
        payload["dataset"] = dataset
    if model_package_arn:
        payload["model_package_arn"] = model_package_arn
    return payload


def rerun_request(
    dataset_version: str, request_id: str | None, model_package_arn: str | None = None
) -> dict[str, Any]:
    """The Lambda's `retrain-version` request: a new run of a version that already ran.

    Args:
        dataset_version: `DATASET/VERSION`.
        request_id: idempotency key (1-256 characters); default a fresh `cli-<uuid4>`.
        model_package_arn: evaluation trigger only: the package to score.
    """
    dataset, version = parse_dataset_version(dataset_version)
    payload: dict[str, Any] = {
        "action": ACTION_RETRAIN_VERSION,
        "dataset_version": f"{dataset}/{version}",
        "reason": MANUAL_REASON,
        "request_id": _request_id(request_id),
    }
    if model_package_arn:
        payload["model_package_arn"] = model_package_arn
    return payload


def version_request(ops: Ops, function_name: str, dataset_version: str) -> dict[str, Any]:
    """The event that starts `dataset/version`: its marker's Object Created event, or (in
    quiet-period mode, without a marker) a quiet-period check."""
    dataset, version = parse_dataset_version(dataset_version)
    environment = (
        ops.client("lambda")
        .get_function_configuration(FunctionName=function_name)
        .get("Environment", {})
        .get("Variables", {})
    )
    bucket = environment.get("DATA_BUCKET")
    if not bucket:
        raise CliError(f"function {function_name} has no DATA_BUCKET: is it a trigger function?")
    prefix = f"{environment.get('LANDING_PREFIX') or 'landing/'}{dataset}/{version}/"
    completion = dataset_completion()
    s3 = ops.client("s3")
    for marker in sorted(completion.COMPLETION_MARKERS):
        key = prefix + marker
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                continue
            raise
        return _marker_event(bucket, key, head)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0)
    where = f"s3://{bucket}/{prefix}"
    if not listed:
        raise CliError(f"dataset version {dataset}/{version} has no objects under {where}")
    if environment.get("COMPLETION_MODE") == COMPLETION_MODE_QUIET:
        return {
            "action": ACTION_QUIET_CHECK,
            "bucket": bucket,
            "dataset": dataset,
            "version": version,
        }
    raise CliError(
        f"dataset version {dataset}/{version} is not complete: no "
        f"{' or '.join(sorted(completion.COMPLETION_MARKERS))} under {where} (upload the marker "
        "last; it starts the run)"
    )


def _marker_event(bucket: str, key: str, head: Mapping[str, Any]) -> dict[str, Any]:
    modified = head.get("LastModified")
    when = modified.astimezone(UTC) if isinstance(modified, datetime) else datetime.now(UTC)
    obj: dict[str, Any] = {
        "key": key,  # EventBridge carries keys as they are (not URL-encoded)
        "size": int(head.get("ContentLength", 0)),
        "etag": str(head.get("ETag", "")).strip('"'),
    }
    if head.get("VersionId"):
        obj["version-id"] = head["VersionId"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "source": S3_SOURCE,
        "detail-type": OBJECT_CREATED,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "reason": "PutObject",
            "requester": "mlops-cli",
        },
    }


def invoke_start(ops: Ops, function_name: str, payload: Mapping[str, Any]) -> StartResult:
    """Invoke a trigger Lambda synchronously and return its decision."""
    response = ops.client("lambda").invoke(
        FunctionName=function_name,
        InvocationType="RequestResponse",
        Payload=json.dumps(payload).encode(),
    )
    raw = response["Payload"].read()
    try:
        body = json.loads(raw or b"null")
    except json.JSONDecodeError:
        body = raw.decode(errors="replace")
    if response.get("FunctionError"):
        detail = (
            f"{body.get('errorType', 'Error')}: {body.get('errorMessage', '')}"
            if isinstance(body, dict)
            else str(body)[:500]
        )
        raise CliError(f"the trigger Lambda {function_name} failed: {detail}")
    if not isinstance(body, dict) or "outcome" not in body:
        raise CliError(f"unexpected answer from {function_name}: {str(body)[:500]}")
    return StartResult(
        outcome=str(body["outcome"]),
        reason=str(body.get("reason", "")),
        message=str(body.get("message", "")),
        execution_arn=body.get("execution_arn"),
        dataset_version=body.get("dataset_version"),
        rerun_of=body.get("rerun_of"),
    )
