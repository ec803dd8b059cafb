"""Delete the SageMaker model a scoring run created, once its transform job has finished.

Batch serving's scoring pipeline creates one model per run (its Model step: a network-isolated
model of the served package, named `pipelines-<execution id>-Model-<suffix>` by SageMaker
Pipelines) and uses it in exactly one transform job. Nothing else reads that model afterwards
(the `_SUCCESS` marker records its name, the drift check finds the package from the output
prefix), so once the transform job is Completed, Failed or Stopped, this deletes it: models cost
nothing, but one per scoring run would pile up in the account's model list and its quota.

A run whose transform job never started (CreateTransformJob refused, the run stopped or failed
between its Model and Score steps) sends no transform event: the scoring pipeline's own "SageMaker
Model Building Pipeline Execution Status Change" to Failed or Stopped also reaches this, which
finds that execution's model in its Model step's metadata (ListPipelineExecutionSteps) and
deletes it (a model the transform event already deleted is AlreadyDeleted; no Model step that
created one is NoModel).

Only "SageMaker Transform Job State Change" events from aws.sagemaker with a terminal status
and a `pipelines-*` model are acted on (the rule sends only those; the code checks again); IAM
lets the function delete only `pipelines-*` models tagged with this environment's scoring
pipeline. A model already gone (a re-delivered event) is success; AccessDenied means the model
is not tagged with this environment's scoring pipeline (not ours: another pipeline's job that
wrote under predictions/), a counted skip (NotOurs), not a failure. Consequence: a failed scoring
run cannot be resumed with RetryPipelineExecution (its Model step would not run again); score
the version again with a new run (`mlops start --pipeline scoring <version> --rerun`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError
from scoring_runs import InvalidTransformEventError as InvalidEventError
from scoring_runs import transform_detail

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
PIPELINE_DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Status Change"
PIPELINE_ENDED = frozenset({"Failed", "Stopped"})
FINISHED = frozenset({"Completed", "Failed", "Stopped"})
MODEL_PREFIX = "pipelines-"
ACCESS_DENIED = frozenset({"AccessDeniedException", "AccessDenied"})


@dataclass(frozen=True)
class FinishedJob:
    name: str
    status: str
    model_name: str


@dataclass(frozen=True)
class EndedExecution:
    arn: str
    status: str


@dataclass(frozen=True)
class Outcome:
    metric: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.metric, "message": self.message}


def parse_event(event: Any) -> FinishedJob | EndedExecution:
    """The transform job of an EventBridge state change (detail = DescribeTransformJob's
    answer), or the scoring pipeline execution of a status change."""
    if isinstance(event, dict) and event.get("detail-type") == PIPELINE_DETAIL_TYPE:
        if event.get("source") != "aws.sagemaker":
            raise InvalidEventError("not from aws.sagemaker")
        detail = event.get("detail")
        if not isinstance(detail, dict):
            raise InvalidEventError("the event has no detail")
        execution: dict[str, Any] = {
            "arn": detail.get("pipelineExecutionArn"),
            "status": detail.get("currentPipelineExecutionStatus"),
        }
        _require(execution, "execution ")
        return EndedExecution(**execution)
    detail = transform_detail(event)
    fields: dict[str, Any] = {
        "name": detail.get("TransformJobName"),
        "status": detail.get("TransformJobStatus"),
        "model_name": detail.get("ModelName"),
    }
    _require(fields, "")
    return FinishedJob(**fields)


def _require(fields: dict[str, Any], what: str) -> None:
    """InvalidEventError naming the fields that are not non-empty strings."""
    missing = sorted(k for k, v in fields.items() if not isinstance(v, str) or not v)
    if missing:
        raise InvalidEventError(f"the event's detail lacks {what}{', '.join(missing)}")


def clean_up(sagemaker: Any, finished: FinishedJob | EndedExecution) -> Outcome:
    """The outcome for either kind of event."""
    if isinstance(finished, EndedExecution):
        return delete_execution_model(sagemaker, finished)
    return delete_model(sagemaker, finished)


def execution_model(sagemaker: Any, execution_arn: str) -> str | None:
    """The name of the model a pipeline execution's Model step created, if it created one."""
    paginator = sagemaker.get_paginator("list_pipeline_execution_steps")
    for page in paginator.paginate(PipelineExecutionArn=execution_arn):
        for step in page.get("PipelineExecutionSteps", []):
            arn = step.get("Metadata", {}).get("Model", {}).get("Arn")
            if isinstance(arn, str) and ":model/" in arn:
                return arn.split(":model/", 1)[1]
    return None


def delete_execution_model(sagemaker: Any, execution: EndedExecution) -> Outcome:
    """DeleteModel of the model a Failed or Stopped scoring execution created (its transform
    job may never have run, so no transform event would delete it)."""
    if execution.status not in PIPELINE_ENDED:
        return Outcome("NotFinished", f"{execution.arn} is {execution.status}: not cleaned up")
    model = execution_model(sagemaker, execution.arn)
    if model is None:
        return Outcome("NoModel", f"{execution.arn} is {execution.status}: it created no model")
    job = FinishedJob(name=execution.arn, status=execution.status, model_name=model)
    return delete_model(sagemaker, job, finished=PIPELINE_ENDED)


def delete_model(sagemaker: Any, job: FinishedJob, finished: frozenset[str] = FINISHED) -> Outcome:
    """DeleteModel of a finished scoring job's model; anything else is left alone."""
    if job.status not in finished:
        return Outcome("NotFinished", f"{job.name} is {job.status}: its model is still in use")
    if not job.model_name.startswith(MODEL_PREFIX):
        return Outcome("Skipped", f"{job.name} ran {job.model_name}: not a scoring run's model")
    try:
        sagemaker.delete_model(ModelName=job.model_name)
    except ClientError as error:
        details = error.response.get("Error", {})
        if (
            details.get("Code") == "ValidationException"
            and "could not find" in str(details.get("Message", "")).lower()
        ):
            return Outcome("AlreadyDeleted", f"{job.model_name} is already deleted")
        if details.get("Code") in ACCESS_DENIED:
            # IAM lets us delete only models tagged with our scoring pipeline
            return Outcome(
                "NotOurs",
                f"{job.name} ran {job.model_name}: not tagged with this environment's scoring "
                "pipeline, left alone (AccessDenied)",
            )
        raise
    return Outcome("ModelsDeleted", f"{job.name} is {job.status}: deleted {job.model_name}")
