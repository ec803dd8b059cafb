"""Log one pipeline execution as exactly one MLflow run, in the experiment named after its
pipeline (the training pipeline's runs in one experiment, the eval-only pipeline's in another).

Exactly once, whatever the number of deliveries (EventBridge may deliver twice; a retry follows
a failure; `mlops runs backfill` may log an execution the Lambda already logged):

    experiment id (created if missing)
    runs tagged mlops.execution_arn = <ARN>, less those retired (tagged mlops.duplicate_of)
        the winner: the first by (start time, run id): deterministic, every caller agrees
        the winner has mlops.logged = true   -> nothing to log
        the winner has not (interrupted)     -> finish it
        none                                 -> create a run
        every other run                      -> retired (below)
    log-batch params, metrics (fixed timestamps: a repeat writes the same values), tags
    artifacts to the run's artifact URI (only with copy_artifacts: an external server's
    store is not ours to write; its runs keep the mlops.artifact.<name> links to our bucket)
    a tuning step's trials as child runs (trials.py), each exactly once
    tag mlops.logged = true, mark the run finished (FINISHED, FAILED or KILLED)
    settle: search again, the winner by the same rule, every other run retired

Retiring marks a run (never deletes it: DeleteRun can only be granted on the whole server, a
shared one holds other teams' runs): tag mlops.duplicate_of = <winner run id>, status KILLED.
Two concurrent first deliveries each create a run; whichever settles after both exist retires
the one that is not the winner, and the caller tags the package with the winner (`settle` once
more after tagging, and re-tag if the winner changed).

Takes an `mlflow_rest.MlflowClient` (or anything with its methods); raises its TrackingError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from run_record import (
    COMPLETE_TAG,
    DUPLICATE_TAG,
    EXECUTION_TAG,
    ExecutionRecord,
    RunContent,
    run_content,
)
from trials import log_trials, parent_content


class Tracking(Protocol):
    def experiment_id(self, name: str) -> str: ...
    def search_runs(
        self, experiment_id: str, filter_string: str, max_results: int | None = 10
    ) -> list[dict[str, Any]]: ...
    def create_run(
        self, experiment_id: str, run_name: str, start_time_ms: int, tags: dict[str, str]
    ) -> dict[str, Any]: ...
    def log_batch(
        self,
        run_id: str,
        *,
        params: dict[str, str],
        metrics: list[dict[str, Any]],
        tags: dict[str, str],
    ) -> None: ...
    def finish_run(self, run_id: str, status: str, end_time_ms: int) -> None: ...
    def log_artifact(self, artifact_uri: str, name: str, content: bytes) -> None: ...


@dataclass(frozen=True)
class Logged:
    """The outcome: the run's id and experiment, and whether this call logged it (False: an
    earlier delivery had)."""

    run_id: str
    experiment_id: str
    logged_now: bool


def execution_filter(execution_arn: str) -> str:
    """MLflow's search filter for the runs of one execution."""
    if "'" in execution_arn:
        raise ValueError(f"{execution_arn} is not a pipeline execution ARN")
    return f"tags.`{EXECUTION_TAG}` = '{execution_arn}'"


def _tags(run: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag.get("value", "") for tag in run.get("data", {}).get("tags", [])}


def _order(run: dict[str, Any]) -> tuple[int, str]:
    info = run["info"]
    return int(info.get("start_time", 0)), str(info["run_id"])


def _id(run: dict[str, Any]) -> str:
    return str(run["info"]["run_id"])


def live_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`runs` less the retired ones, the winner first."""
    return sorted((run for run in runs if DUPLICATE_TAG not in _tags(run)), key=_order)


def settle(client: Tracking, experiment: str, wanted: str, end_ms: int) -> dict[str, Any] | None:
    """The winner among the execution's runs (the first by start time, then run id, of those
    not retired), every other run retired (tagged `mlops.duplicate_of`, KILLED); None if no
    run."""
    runs = sorted(client.search_runs(experiment, wanted), key=_order)
    candidates = [run for run in runs if DUPLICATE_TAG not in _tags(run)]
    if not candidates:
        return None
    winner = candidates[0]
    for run in runs:
        retired = _tags(run).get(DUPLICATE_TAG) == _id(winner)
        if run is winner or (retired and run["info"].get("status") == "KILLED"):
            continue
        client.log_batch(_id(run), params={}, metrics=[], tags={DUPLICATE_TAG: _id(winner)})
        client.finish_run(_id(run), "KILLED", end_ms)
    return winner


def execution_content(record: ExecutionRecord) -> RunContent:
    """The execution's run content (`run_content`) with what its tuning step adds, when it
    tuned: the best trial's tuned values as params, the tuning tags and metrics (what
    `log_execution` logs and `mlops runs compare` shows, from MLflow or the artifacts alike)."""
    content = run_content(record)
    if record.tuning is not None:
        tuning_params, tuning_tags, tuning_metrics = parent_content(record.tuning)
        content.params.update(tuning_params)
        content.tags.update(tuning_tags)
        content.metrics.extend(
            {"key": k, "value": v, "timestamp": record.end_ms, "step": 0}
            for k, v in sorted(tuning_metrics.items())
        )
    return content


def log_execution(
    client: Tracking, record: ExecutionRecord, *, copy_artifacts: bool = True
) -> Logged:
    """Log `record` as its one run (see the module doc)."""
    experiment = client.experiment_id(record.pipeline_name)
    wanted = execution_filter(record.execution_arn)
    winner = settle(client, experiment, wanted, record.end_ms)
    if winner is not None and _tags(winner).get(COMPLETE_TAG) == "true":
        return Logged(_id(winner), experiment, logged_now=False)
    content = execution_content(record)
    if winner is not None:
        info = winner["info"]
    else:
        created = client.create_run(
            experiment,
            record.run_name,
            record.start_ms,
            {EXECUTION_TAG: record.execution_arn, "mlflow.runName": record.run_name},
        )
        info = created["info"]
    run_id = str(info["run_id"])
    client.log_batch(run_id, params=content.params, metrics=content.metrics, tags=content.tags)
    for name, data in content.artifacts.items() if copy_artifacts else ():
        client.log_artifact(str(info["artifact_uri"]), name, data)
    if record.tuning is not None:  # before the logged tag: a logged run has all its trials
        log_trials(client, experiment, run_id, record.tuning, record.end_ms)
    client.log_batch(run_id, params={}, metrics=[], tags={COMPLETE_TAG: "true"})
    client.finish_run(run_id, record.run_status, record.end_ms)

    final = settle(client, experiment, wanted, record.end_ms)
    kept = _id(final) if final is not None else run_id
    return Logged(kept, experiment, logged_now=kept == run_id)
