"""Run tracker: a pipeline execution's status-change event -> its one MLflow run, and the
registered model package tagged with that run's id.

Input: "SageMaker Model Building Pipeline Execution Status Change" events (source
"aws.sagemaker"): `detail.pipelineExecutionArn`, `detail.currentPipelineExecutionStatus`.
Only terminal statuses (Succeeded, Failed, Stopped) of the pipelines in PIPELINE_NAMES are
logged; other events are skipped (a foreign or malformed event is rejected: a retry would not
fix it).

The package gets the run id as a tag (`mlflow-run-id`, AddTags), never through
UpdateModelPackage: that API can change a package's approval status, and the tracker's role
may not approve anything. Tracking failures (unreachable server, rejected write) raise, so the
rule's retries, the dead-letter queue and the alarms apply; the pipeline never waits on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from execution_reader import NotAnExecutionError, pipeline_of, read_execution
from mlflow_rest import MlflowClient
from run_logger import Logged, execution_filter, log_execution, settle
from run_record import PACKAGE_RUN_TAG

EVENT_SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Status Change"
TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", "Stopped"})


class InvalidEventError(ValueError):
    """Not an execution status change the rule should have sent."""


class NotFinishedError(ValueError):
    """DescribePipelineExecution says the execution has not finished: logging it now would
    record a run that is not over (and mark it logged, so its real end would be skipped)."""


@dataclass(frozen=True)
class StatusChange:
    execution_arn: str
    pipeline_name: str
    status: str


@dataclass(frozen=True)
class Outcome:
    status: str  # logged, already-logged, skipped, rejected
    message: str
    run_id: str | None = None

    @property
    def metric(self) -> str:
        return {
            "logged": "RunsLogged",
            "already-logged": "RunsAlreadyLogged",
            "skipped": "Skipped",
        }.get(self.status, "InvalidEvents")


def parse_event(event: Any) -> StatusChange:
    if not isinstance(event, Mapping):
        raise InvalidEventError("the event is not a JSON object")
    if event.get("source") != EVENT_SOURCE or event.get("detail-type") != DETAIL_TYPE:
        raise InvalidEventError(
            f"not a pipeline execution status change: {event.get('source')!r}, "
            f"{event.get('detail-type')!r}"
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidEventError("the event has no detail object")
    arn, status = detail.get("pipelineExecutionArn"), detail.get("currentPipelineExecutionStatus")
    if not isinstance(arn, str) or not isinstance(status, str):
        raise InvalidEventError(
            "detail lacks pipelineExecutionArn or currentPipelineExecutionStatus"
        )
    try:
        pipeline = pipeline_of(arn)
    except NotAnExecutionError as error:
        raise InvalidEventError(str(error)) from error
    return StatusChange(execution_arn=arn, pipeline_name=pipeline, status=status)


def tag_package(sagemaker: Any, package_arn: str, run_id: str) -> None:
    """The package names its run: AddTags only (UpdateModelPackage could approve it)."""
    sagemaker.add_tags(ResourceArn=package_arn, Tags=[{"Key": PACKAGE_RUN_TAG, "Value": run_id}])


def track_execution(
    sagemaker: Any,
    s3: Any,
    tracking: MlflowClient,
    execution_arn: str,
    *,
    copy_artifacts: bool = True,
) -> tuple[Logged, str | None]:
    """Log one finished execution (also `mlops runs backfill`); tag its package, if any.
    Raises NotFinishedError unless the execution is Succeeded, Failed or Stopped."""
    record = read_execution(sagemaker, s3, execution_arn)
    if record.status not in TERMINAL_STATUSES:
        raise NotFinishedError(
            f"{execution_arn} is {record.status}: only a finished execution (Succeeded, Failed "
            "or Stopped) is logged"
        )
    logged = log_execution(tracking, record, copy_artifacts=copy_artifacts)
    if record.model_package_arn:
        tag_package(sagemaker, record.model_package_arn, logged.run_id)
        # a concurrent delivery may have settled on another winner meanwhile: follow it
        wanted = execution_filter(record.execution_arn)
        final = settle(tracking, logged.experiment_id, wanted, record.end_ms)
        if final is not None and str(final["info"]["run_id"]) != logged.run_id:
            winner = str(final["info"]["run_id"])
            tag_package(sagemaker, record.model_package_arn, winner)
            logged = Logged(winner, logged.experiment_id, logged_now=False)
    return logged, record.model_package_arn


def track(
    sagemaker: Any,
    s3: Any,
    tracking: MlflowClient,
    pipeline_names: frozenset[str],
    event: Any,
    *,
    copy_artifacts: bool = True,
) -> Outcome:
    change = parse_event(event)
    if change.pipeline_name not in pipeline_names:
        return Outcome("skipped", f"{change.pipeline_name} is not a tracked pipeline")
    if change.status not in TERMINAL_STATUSES:
        return Outcome("skipped", f"{change.status}: not finished yet")
    try:
        logged, package = track_execution(
            sagemaker, s3, tracking, change.execution_arn, copy_artifacts=copy_artifacts
        )
    except NotFinishedError as error:
        return Outcome("skipped", str(error))
    status = "logged" if logged.logged_now else "already-logged"
    where = f" (package {package})" if package else ""
    return Outcome(status, f"run {logged.run_id} of {change.execution_arn}{where}", logged.run_id)
