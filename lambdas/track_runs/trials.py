"""A tuning step's trials as MLflow child runs of the execution's run: read them from the tuning
job (`read_tuning`), turn each into a run's content (`trial_content`) and log them exactly once
(`log_trials`).

    DescribeHyperParameterTuningJob              the objective (metric, Maximize/Minimize), the
                                                 strategy, the best training job and its tuned
                                                 hyperparameters (BestTrainingJob)
    ListTrainingJobsForHyperParameterTuningJob   every trial (paginated, 100 a page): its tuned
                                                 hyperparameters, final objective value, status

Each trial is one run named after its training job, with the tag `mlflow.parentRunId` (MLflow's
convention: the UI nests it under the execution's run), `mlops.training_job_arn` (the trial's
idempotency key within its parent), `mlops.training_job_name`, `mlops.tuning_job_name`,
`mlops.trial_status` (SageMaker's TrainingJobStatus), `mlops.objective_status`,
`mlops.best_trial` (`true` for the tuning job's BestTrainingJob, else `false`) and
`mlops.failure_reason`; params: the tuned hyperparameters as SageMaker passed them; metrics:
`objective` and the objective under its own name (`validation:auc` -> `validation.auc`), at
the trial's end time, step 0. A trial without a final objective (failed, stopped early before
its summary) has no metric.

Exactly once per parent run: the parent's children are searched (`tags.mlflow.parentRunId`),
a child whose `mlops.logged` tag is `true` and whose status is final is left as it is, one
interrupted is finished, a missing one created; then, per trial, every child but the first (by
start time, run id) is retired as run_logger retires duplicate runs. The parent is marked
logged only after its trials (run_logger), so a logged parent has all of them. Two concurrent
first deliveries may each log a parent with its trials; the parent retired as the duplicate
keeps its trials under it (KILLED, tagged mlops.duplicate_of), the winner has its own.

The execution's run itself gets the best trial's tuned hyperparameters as params,
`tuned.<hyperparameter>` (BestTrainingJob.TunedHyperParameters): ranged hyperparameters are not
pipeline parameters, so without them the run would not say what the registered model was
trained with (`parent_content`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from run_record import COMPLETE_TAG, DUPLICATE_TAG, PARAM_MAX, TAG_MAX

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "mlops.training_job_arn"
# SageMaker's TrainingJobStatus of a trial -> its run's status (InProgress, Stopping: the
# pipeline ended before the trial did: KILLED, with the real status in mlops.trial_status).
TRIAL_STATUS = {"Completed": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
PAGE_SIZE = 100  # ListTrainingJobsForHyperParameterTuningJob's MaxResults limit
TUNED_PARAM_PREFIX = "tuned."  # the best trial's values on the execution's run


@dataclass(frozen=True)
class Trial:
    """One training job of a tuning job."""

    training_job_name: str
    training_job_arn: str
    status: str
    hyperparameters: Mapping[str, str]
    objective: float | None = None
    objective_status: str | None = None
    start_ms: int = 0
    end_ms: int = 0
    failure_reason: str | None = None


@dataclass(frozen=True)
class Tuning:
    """A tuning job and its trials (oldest first)."""

    tuning_job_name: str
    objective_metric: str
    objective_type: str  # Maximize or Minimize
    strategy: str
    best_training_job: str | None
    trials: tuple[Trial, ...] = field(default_factory=tuple)
    # BestTrainingJob.TunedHyperParameters: what the model that goes on was trained with
    best_hyperparameters: Mapping[str, str] = field(default_factory=dict)


def _ms(value: Any) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else 0


def read_tuning(sagemaker: Any, job: Mapping[str, Any]) -> Tuning:
    """The tuning job described by `job` (DescribeHyperParameterTuningJob's answer) and every
    trial it ran."""
    name = str(job["HyperParameterTuningJobName"])
    config = job.get("HyperParameterTuningJobConfig") or {}
    objective = config.get("HyperParameterTuningJobObjective") or {}
    pages = sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name,
        SortBy="CreationTime",
        SortOrder="Ascending",
        PaginationConfig={"PageSize": PAGE_SIZE},
    )
    best = job.get("BestTrainingJob") or {}
    trials = []
    for page in pages:
        for summary in page.get("TrainingJobSummaries", []):
            final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
            started = summary.get("TrainingStartTime") or summary.get("CreationTime")
            trials.append(
                Trial(
                    training_job_name=str(summary["TrainingJobName"]),
                    training_job_arn=str(summary["TrainingJobArn"]),
                    status=str(summary["TrainingJobStatus"]),
                    hyperparameters=dict(summary.get("TunedHyperParameters") or {}),
                    objective=float(final["Value"]) if "Value" in final else None,
                    objective_status=summary.get("ObjectiveStatus"),
                    start_ms=_ms(started),
                    end_ms=_ms(summary.get("TrainingEndTime")) or _ms(started),
                    failure_reason=summary.get("FailureReason"),
                )
            )
    return Tuning(
        tuning_job_name=name,
        objective_metric=str(objective.get("MetricName", "")),
        objective_type=str(objective.get("Type", "")),
        strategy=str(config.get("Strategy", "")),
        best_training_job=best.get("TrainingJobName"),
        trials=tuple(trials),
        best_hyperparameters={
            str(k): str(v) for k, v in (best.get("TunedHyperParameters") or {}).items()
        },
    )


def metric_key(name: str) -> str:
    """An objective's name as an MLflow metric key (`validation:auc` -> `validation.auc`)."""
    return name.replace(":", ".")


def parent_content(tuning: Tuning) -> tuple[dict[str, str], dict[str, str], dict[str, float]]:
    """What the execution's run says of its tuning job: params (the best trial's tuned
    hyperparameters, `tuned.<name>`), tags and metrics."""
    params = {
        f"{TUNED_PARAM_PREFIX}{k}": str(v)[:PARAM_MAX]
        for k, v in sorted(tuning.best_hyperparameters.items())
    }
    tags = {
        "mlops.tuning_job_name": tuning.tuning_job_name,
        "mlops.tuning.objective": f"{tuning.objective_type} {tuning.objective_metric}",
        "mlops.tuning.strategy": tuning.strategy,
    }
    if tuning.best_training_job:
        tags["mlops.tuning.best_training_job"] = tuning.best_training_job
    metrics = {"tuning.trials": float(len(tuning.trials))}
    best = [t for t in tuning.trials if t.training_job_name == tuning.best_training_job]
    if best and best[0].objective is not None:
        metrics["tuning.best_objective"] = best[0].objective
    return params, tags, metrics


@dataclass(frozen=True)
class TrialContent:
    run_name: str
    start_ms: int
    end_ms: int
    status: str
    params: dict[str, str]
    metrics: list[dict[str, Any]]
    tags: dict[str, str]


def trial_content(tuning: Tuning, trial: Trial, parent_run_id: str) -> TrialContent:
    """One trial's run (see the module doc)."""
    tags = {
        PARENT_TAG: parent_run_id,
        TRIAL_TAG: trial.training_job_arn,
        "mlops.training_job_name": trial.training_job_name,
        "mlops.tuning_job_name": tuning.tuning_job_name,
        "mlops.trial_status": trial.status,
        "mlops.best_trial": str(trial.training_job_name == tuning.best_training_job).lower(),
    }
    if trial.objective_status:
        tags["mlops.objective_status"] = trial.objective_status
    if trial.failure_reason:
        tags["mlops.failure_reason"] = trial.failure_reason[:TAG_MAX]
    metrics = []
    if trial.objective is not None:
        for key in ("objective", metric_key(tuning.objective_metric)):
            metrics.append(
                {"key": key, "value": trial.objective, "timestamp": trial.end_ms, "step": 0}
            )
    params = {k: str(v)[:PARAM_MAX] for k, v in sorted(trial.hyperparameters.items())}
    return TrialContent(
        run_name=trial.training_job_name,
        start_ms=trial.start_ms,
        end_ms=trial.end_ms,
        status=TRIAL_STATUS.get(trial.status, "KILLED"),
        params=params,
        metrics=metrics,
        tags=tags,
    )


def _tags(run: Mapping[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag.get("value", "") for tag in run.get("data", {}).get("tags", [])}


def _order(run: Mapping[str, Any]) -> tuple[int, str]:
    return int(run["info"].get("start_time", 0)), str(run["info"]["run_id"])


def children_filter(parent_run_id: str) -> str:
    if "'" in parent_run_id:
        raise ValueError(f"{parent_run_id!r} is not a run id")
    return f"tags.`{PARENT_TAG}` = '{parent_run_id}'"


def _by_trial(children: list[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in sorted(children, key=_order):
        groups.setdefault(_tags(run).get(TRIAL_TAG, ""), []).append(run)
    yield from groups.items()


def _retire_duplicates(client: Any, children: list[dict[str, Any]], end_ms: int) -> None:
    """Per trial, every child but the first live one retired (tagged, KILLED)."""
    for _, runs in _by_trial(children):
        live = [run for run in runs if DUPLICATE_TAG not in _tags(run)]
        if not live:
            continue
        winner = str(live[0]["info"]["run_id"])
        for run in runs:
            run_id = str(run["info"]["run_id"])
            retired = _tags(run).get(DUPLICATE_TAG) == winner
            if run_id == winner or (retired and run["info"].get("status") == "KILLED"):
                continue
            client.log_batch(run_id, params={}, metrics=[], tags={DUPLICATE_TAG: winner})
            client.finish_run(run_id, "KILLED", end_ms)


def log_trials(
    client: Any, experiment_id: str, parent_run_id: str, tuning: Tuning, end_ms: int
) -> int:
    """Log each trial of `tuning` as a child of `parent_run_id` once; returns how many this call
    logged (0: all were there)."""
    wanted = children_filter(parent_run_id)
    existing = {
        trial: next((r for r in runs if DUPLICATE_TAG not in _tags(r)), None)
        for trial, runs in _by_trial(client.search_runs(experiment_id, wanted, max_results=None))
    }
    logged = 0
    for trial in tuning.trials:
        content = trial_content(tuning, trial, parent_run_id)
        run = existing.get(trial.training_job_arn)
        if run is not None:
            done = _tags(run).get(COMPLETE_TAG) == "true"
            if done and run["info"].get("status") == content.status:
                continue
            run_id = str(run["info"]["run_id"])
        else:
            created = client.create_run(
                experiment_id,
                content.run_name,
                content.start_ms,
                {PARENT_TAG: parent_run_id, TRIAL_TAG: trial.training_job_arn},
            )
            run_id = str(created["info"]["run_id"])
        # one request (a trial's params and tags are far below log-batch's limits): the
        # logged tag arrives with the content; the status, last, makes the trial final
        tags = {**content.tags, COMPLETE_TAG: "true"}
        client.log_batch(run_id, params=content.params, metrics=content.metrics, tags=tags)
        client.finish_run(run_id, content.status, content.end_ms)
        logged += 1
    _retire_duplicates(client, client.search_runs(experiment_id, wanted, max_results=None), end_ms)
    return logged
