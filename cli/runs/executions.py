"""Pipeline executions: the environment's pipelines (training, evaluation and, in batch
serving, scoring), recent runs with their step states, and waiting for a run to finish."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cli.aws import CliError, Ops, listed

# Training-stack outputs naming the Lambda that starts each pipeline.
FUNCTION_OUTPUT = "StartTrainingFunctionName"
EVALUATION_FUNCTION_OUTPUT = "EvaluationTriggerFunctionName"
SCORING_FUNCTION_OUTPUT = "ScoringTriggerFunctionName"


class Pipeline(StrEnum):
    """The environment's pipelines: `--pipeline training|evaluation|scoring` (scoring: batch
    serving only)."""

    TRAINING = "training"
    EVALUATION = "evaluation"
    SCORING = "scoring"

    def name_in(self, ops: Ops) -> str:
        """This pipeline's name in the environment of `ops`."""
        config = ops.config
        if self is Pipeline.SCORING and not config.serving.is_batch:
            raise CliError(
                f"--pipeline scoring: environment {config.name} serves in "
                f"{config.serving.mode} mode; only serving.mode = batch has a scoring pipeline"
            )
        return {
            Pipeline.TRAINING: config.pipeline_name,
            Pipeline.EVALUATION: config.evaluation_pipeline_name,
            Pipeline.SCORING: config.scoring_pipeline_name,
        }[self]

    @classmethod
    def of(cls, ops: Ops) -> list[Pipeline]:
        """The pipelines the environment of `ops` has (scoring only in batch serving)."""
        return [p for p in cls if p is not Pipeline.SCORING or ops.config.serving.is_batch]

    @property
    def function_output(self) -> str:
        """The Training-stack output naming the Lambda that starts this pipeline."""
        return {
            Pipeline.TRAINING: FUNCTION_OUTPUT,
            Pipeline.EVALUATION: EVALUATION_FUNCTION_OUTPUT,
            Pipeline.SCORING: SCORING_FUNCTION_OUTPUT,
        }[self]


RUNNING = frozenset({"Executing", "Stopping"})
FAILED = frozenset({"Failed", "Stopped"})


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
    """An execution ARN of this environment's `pipeline` (default: any of its pipelines), from
    an ARN or an execution id."""
    ref = ref.strip()
    candidates = [pipeline] if pipeline else Pipeline.of(ops)
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
    missing = (
        f"pipeline {name} does not exist in {ops.config.region}: "
        f"deploy the training stack (`make deploy ENV={ops.config.name}`)"
    )
    yield from listed(
        ops, "list_pipeline_executions", "PipelineExecutionSummaries", missing, **request
    )


def steps(ops: Ops, execution_arn: str) -> list[Step]:
    """Every step of an execution, in the order they started."""
    found = listed(
        ops,
        "list_pipeline_execution_steps",
        "PipelineExecutionSteps",
        f"execution {execution_arn} does not exist",
        PipelineExecutionArn=execution_arn,
        SortOrder="Ascending",
    )
    return [Step.from_summary(raw) for raw in found]


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
