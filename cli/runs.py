"""Pipeline executions: recent runs with their step states, starting a run through the
pipeline's trigger Lambda, and waiting for a run to finish.

Both pipelines of an environment work the same way (`--pipeline training|evaluation`): the
training pipeline through the start-training Lambda on versions under `landing/`, the
evaluation pipeline through the evaluation trigger (the same code) on labelled versions under
`ground-truth/`; the evaluation trigger also takes `model_package_arn` (score that package
instead of the production model).

Runs are started only through the trigger Lambda (`lambda:InvokeFunction`,
RequestResponse), never with StartPipelineExecution directly: its ledger is the single record
of which dataset version ran as which execution, and its exactly-once rules and concurrency cap
apply to manual starts too.

* `start --latest` sends `{"action": "retrain-latest", "reason": "manual", "request_id": ...}`:
  a new run on the newest started dataset version (of `--dataset`, if given). The request id
  makes a retried command start one run, not two.
* `start DATASET/VERSION` re-announces the version's completion marker (`_SUCCESS` or
  `manifest.json`) as the S3 "Object Created" event the Lambda already handles: a version whose
  marker event was lost starts now; a version that already ran is reported with its execution
  (a marker never runs a version twice; land changed data as a new version). In quiet-period
  mode a version without a marker gets a quiet-period check instead.
* `start DATASET/VERSION --rerun` sends `{"action": "retrain-version", "dataset_version": ...,
  "reason": "manual", "request_id": ...}`: a new run of a version that already ran, on the
  parameters its ledger item recorded (InputDataUri, DatasetVersion, DataDigest). The request
  id makes a retried command start one run; a version that never ran is refused by the Lambda.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from cli.aws import CliError, Ops, dataset_completion, error_code, is_not_found

# The start-training Lambda's direct-invocation contract (lambdas/start_training/
# dataset_trigger.py; tests/cli checks these against it).
ACTION_RETRAIN = "retrain-latest"
ACTION_RETRAIN_VERSION = "retrain-version"
ACTION_QUIET_CHECK = "quiet-check"
S3_SOURCE = "aws.s3"
OBJECT_CREATED = "Object Created"
COMPLETION_MODE_QUIET = "quiet-period"
MANUAL_REASON = "manual"
FUNCTION_OUTPUT = "StartTrainingFunctionName"
EVALUATION_FUNCTION_OUTPUT = "EvaluationTriggerFunctionName"


class Pipeline(StrEnum):
    """The environment's two pipelines: `--pipeline training|evaluation`."""

    TRAINING = "training"
    EVALUATION = "evaluation"

    def name_in(self, ops: Ops) -> str:
        """This pipeline's name in the environment of `ops`."""
        config = ops.config
        return (
            config.pipeline_name if self is Pipeline.TRAINING else config.evaluation_pipeline_name
        )

    @property
    def function_output(self) -> str:
        """The Training-stack output naming the Lambda that starts this pipeline."""
        return FUNCTION_OUTPUT if self is Pipeline.TRAINING else EVALUATION_FUNCTION_OUTPUT


RUNNING = frozenset({"Executing", "Stopping"})
FAILED = frozenset({"Failed", "Stopped"})
# Outcomes of the Lambda that are not an error for the operator.
STARTED, DUPLICATE, DEFERRED, PENDING = "started", "duplicate", "deferred", "pending"


@dataclass(frozen=True)
class Step:
    """One step of an execution, as ListPipelineExecutionSteps reports it."""

    name: str
    status: str
    started: datetime | None
    ended: datetime | None
    job_arn: str | None
    job_kind: str | None
    cache_source: str | None
    failure: str | None

    @classmethod
    def from_summary(cls, raw: Mapping[str, Any]) -> Step:
        metadata = raw.get("Metadata") or {}
        kind, arn = None, None
        for key, label in (
            ("TrainingJob", "training"),
            ("ProcessingJob", "processing"),
            ("TransformJob", "transform"),
            ("TuningJob", "tuning"),
            ("RegisterModel", "register"),
            ("Model", "model"),
        ):
            if key in metadata:
                kind, arn = label, metadata[key].get("Arn")
                break
        else:
            if "Condition" in metadata:
                kind = "condition"
            elif "Fail" in metadata:
                kind = "fail"
        cache = raw.get("CacheHitResult") or {}
        return cls(
            name=raw.get("StepName", "?"),
            status=raw.get("StepStatus", "?"),
            started=raw.get("StartTime"),
            ended=raw.get("EndTime"),
            job_arn=arn,
            job_kind=kind,
            cache_source=cache.get("SourcePipelineExecutionArn"),
            failure=raw.get("FailureReason"),
        )

    @property
    def label(self) -> str:
        return f"{self.name}:{self.status}" + (" (cached)" if self.cache_source else "")


@dataclass
class Execution:
    arn: str
    status: str
    display_name: str
    started: datetime | None
    failure: str | None
    parameters: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


def execution_arn_pipeline(arn: str) -> str:
    """The pipeline name inside `arn:...:pipeline/<name>/execution/<id>` ("" if not one)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("pipeline/") or "/execution/" not in parts[5]:
        return ""
    return parts[5][len("pipeline/") :].split("/execution/", 1)[0]


def check_execution(ops: Ops, ref: str, pipeline: Pipeline | None = None) -> str:
    """An execution ARN of this environment's `pipeline` (default: either pipeline), from an
    ARN or an execution id."""
    ref = ref.strip()
    candidates = [pipeline] if pipeline else list(Pipeline)
    names = {each.name_in(ops).lower(): each for each in candidates}
    described = " or ".join(repr(each.name_in(ops)) for each in candidates)
    if ref.startswith("arn:"):
        owner = execution_arn_pipeline(ref)
        if not owner:
            raise CliError(f"{ref!r} is not a pipeline execution ARN")
        if owner.lower() not in names:
            raise CliError(
                f"execution {ref} belongs to pipeline {owner!r}, not {described} of env "
                f"{ops.config.name!r}: wrong --env?"
            )
        return ref
    for each in candidates:
        for summary in _summaries(ops, pipeline=each):
            arn = summary["PipelineExecutionArn"]
            if arn.rsplit("/", 1)[-1] == ref:
                return str(arn)
    raise CliError(f"no execution {ref!r} of pipeline {described} (see `mlops status`)")


def _summaries(
    ops: Ops, limit: int | None = None, *, pipeline: Pipeline = Pipeline.TRAINING
) -> Iterator[Mapping[str, Any]]:
    name = pipeline.name_in(ops)
    request: dict[str, Any] = {
        "PipelineName": name,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
    }
    if limit:
        request["PaginationConfig"] = {"MaxItems": limit, "PageSize": min(limit, 100)}
    try:
        pages = ops.client("sagemaker").get_paginator("list_pipeline_executions")
        for page in pages.paginate(**request):
            yield from page.get("PipelineExecutionSummaries", [])
    except ClientError as error:
        if is_not_found(error):
            raise CliError(
                f"pipeline {name} does not exist in {ops.config.region}: "
                f"deploy the training stack (`make deploy ENV={ops.config.name}`)"
            ) from error
        raise


def steps(ops: Ops, execution_arn: str) -> list[Step]:
    """Every step of an execution, in the order they started."""
    try:
        pages = ops.client("sagemaker").get_paginator("list_pipeline_execution_steps")
        found = [
            Step.from_summary(raw)
            for page in pages.paginate(PipelineExecutionArn=execution_arn, SortOrder="Ascending")
            for raw in page.get("PipelineExecutionSteps", [])
        ]
    except ClientError as error:
        if is_not_found(error):
            raise CliError(f"execution {execution_arn} does not exist") from error
        raise
    return found


def parameters(ops: Ops, execution_arn: str) -> dict[str, str]:
    """The execution's pipeline parameters (name -> value)."""
    pages = ops.client("sagemaker").get_paginator("list_pipeline_parameters_for_execution")
    return {
        p["Name"]: p["Value"]
        for page in pages.paginate(PipelineExecutionArn=execution_arn)
        for p in page.get("PipelineParameters", [])
    }


def recent(
    ops: Ops,
    limit: int,
    *,
    with_parameters: bool = True,
    pipeline: Pipeline = Pipeline.TRAINING,
) -> list[Execution]:
    """The `limit` newest executions of `pipeline` with their steps (and parameters)."""
    executions = []
    for summary in _summaries(ops, limit, pipeline=pipeline):
        arn = summary["PipelineExecutionArn"]
        executions.append(
            Execution(
                arn=arn,
                status=summary.get("PipelineExecutionStatus", "?"),
                display_name=summary.get("PipelineExecutionDisplayName", ""),
                started=summary.get("StartTime"),
                failure=summary.get("PipelineExecutionFailureReason"),
                parameters=parameters(ops, arn) if with_parameters else {},
                steps=steps(ops, arn),
            )
        )
    return executions


# ---- start -------------------------------------------------------------------------------


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


# ---- wait --------------------------------------------------------------------------------


def wait(
    ops: Ops,
    execution_arn: str,
    *,
    report: Callable[[str], None],
    poll_seconds: float = 30.0,
    timeout_seconds: float = 6 * 3600,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Poll an execution until it leaves Executing/Stopping; report each change as one line.

    Args:
        report: receives one line per change of the execution's or a step's status.
        poll_seconds: pause between polls; default 30 s.
        timeout_seconds: give up after this long; default 6 h.

    Returns:
        The final status (Succeeded, Failed, Stopped).
    """
    sagemaker = ops.client("sagemaker")
    started = clock()
    seen: dict[str, str] = {}
    status = ""
    while True:
        described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        for step in steps(ops, execution_arn):
            state = step.status + (" (cache hit)" if step.cache_source else "")
            if seen.get(step.name) != state:
                seen[step.name] = state
                suffix = f": {step.failure}" if step.failure else ""
                report(f"{_elapsed(clock() - started)}  {step.name} {state}{suffix}")
        new_status = described.get("PipelineExecutionStatus", "?")
        if new_status != status:
            status = new_status
            report(f"{_elapsed(clock() - started)}  execution {status}")
        if status not in RUNNING:
            failure = described.get("FailureReason")
            if failure and status in FAILED:
                report(f"failure reason: {failure}")
            return status
        if clock() - started >= timeout_seconds:
            raise CliError(
                f"gave up waiting after {_elapsed(timeout_seconds)}: {execution_arn} is still "
                f"{status} (check again with `mlops --env {ops.config.name} status`)"
            )
        sleep(poll_seconds)


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"[{minutes:3d}m{secs:02d}s]"
