"""Run tracker and a tuning step: each trial of the Train step's tuning job becomes one child run
of the execution's run (MLflow's `mlflow.parentRunId` tag), exactly once, on a real local
MLflow server read back with mlflow's own client. The tuning job's answers are queued on a
botocore Stubber (validated against the sagemaker service model, two pages of trials); the
expected runs are written from those answers, not from what the logger produced."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from botocore.stub import ANY
from mlflow.tracking import MlflowClient as Reader

from tests.lambda_loader import load_lambda_module
from tests.lambdas.test_track_runs import (
    BUCKET,
    EXECUTION_ARN,
    PACKAGE_ARN,
    PIPELINE,
    client,
    execution_arn,
    logger_module,
    reader,
    record,
    rest,
    run_handler,
    runs_of,
    status_event,
    world,
)
from tests.mlflow_server import LocalMlflow, mlflow_server
from tests.tracking_world import (
    BEST,
    CODE_HASH,
    TRIALS,
    TUNING_JOB,
    queue_execution_reads,
    tuning_job,
)

pytestmark = [pytest.mark.usefixtures("aws_credentials"), pytest.mark.xdist_group("mlflow")]
__all__ = ["client", "mlflow_server", "reader", "world"]

trials_module = load_lambda_module("track_runs", "trials")


def children(reader: Reader, parent: Any) -> list[Any]:
    return list(
        reader.search_runs(
            [parent.info.experiment_id],
            f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
            max_results=100,
        )
    )


def queue_tuned_execution(sagemaker: Any, arn: str) -> None:
    queue_execution_reads(
        sagemaker.stubber,
        arn,
        BUCKET,
        package_arn=PACKAGE_ARN,
        tuning=(tuning_job(), [TRIALS[:2], TRIALS[2:]]),
    )
    sagemaker.stubber.add_response(
        "add_tags",
        {"Tags": []},
        {"ResourceArn": PACKAGE_ARN, "Tags": [{"Key": "mlflow-run-id", "Value": ANY}]},
    )


def test_each_trial_of_the_tuning_step_is_a_child_run_of_the_executions_run(
    monkeypatch: pytest.MonkeyPatch,
    world: tuple[Any, Any],
    mlflow_server: LocalMlflow,
    reader: Reader,
) -> None:
    sagemaker, _ = world
    queue_tuned_execution(sagemaker, EXECUTION_ARN)
    result = run_handler(monkeypatch, world, mlflow_server.url, status_event())
    assert result["status"] == "logged"
    (parent,) = runs_of(reader, PIPELINE, EXECUTION_ARN)
    assert parent.data.tags["mlops.tuning_job_name"] == TUNING_JOB
    assert parent.data.tags["mlops.tuning.best_training_job"] == BEST["TrainingJobName"]
    assert parent.data.tags["mlops.tuning.objective"] == "Maximize validation:auc"
    assert parent.data.tags["mlops.code.Train"] == CODE_HASH  # the trials' code channel
    assert parent.data.metrics["tuning.trials"] == 3
    assert parent.data.metrics["tuning.best_objective"] == pytest.approx(0.934)
    # the winning values (DescribeHyperParameterTuningJob's BestTrainingJob), which no pipeline
    # parameter carries, are the run's params: here trial 2's eta 0.1 and max_depth 5
    tuned = {k: v for k, v in parent.data.params.items() if k.startswith("tuned.")}
    assert tuned == {"tuned.eta": "0.1", "tuned.max_depth": "5"}
    assert tuned == {f"tuned.{k}": v for k, v in BEST["TunedHyperParameters"].items()}

    runs = {run.info.run_name: run for run in children(reader, parent)}
    assert set(runs) == {t["TrainingJobName"] for t in TRIALS}
    for summary in TRIALS:
        run = runs[summary["TrainingJobName"]]
        assert run.data.params == summary["TunedHyperParameters"]
        assert run.data.tags["mlops.training_job_arn"] == summary["TrainingJobArn"]
        assert run.data.tags["mlops.trial_status"] == summary["TrainingJobStatus"]
        assert run.data.tags["mlops.best_trial"] == str(summary is BEST).lower()
        assert run.info.start_time == int(summary["TrainingStartTime"].timestamp() * 1000)
        assert run.info.end_time == int(summary["TrainingEndTime"].timestamp() * 1000)
    best = runs[BEST["TrainingJobName"]]
    assert best.info.status == "FINISHED"
    assert best.data.metrics == {"objective": 0.934, "validation.auc": 0.934}
    failed = runs[TRIALS[2]["TrainingJobName"]]
    assert failed.info.status == "FAILED" and failed.data.metrics == {}
    assert failed.data.tags["mlops.failure_reason"] == "AlgorithmError: out of memory"
    assert failed.data.tags["mlops.objective_status"] == "Failed"


def test_a_redelivered_tuned_execution_logs_no_trial_twice(
    monkeypatch: pytest.MonkeyPatch,
    world: tuple[Any, Any],
    mlflow_server: LocalMlflow,
    reader: Reader,
) -> None:
    sagemaker, _ = world
    monkeypatch.setattr(rest, "SEARCH_PAGE", 2)  # the trials' search takes two pages
    arn = execution_arn(PIPELINE, "tunedtwice1")
    for _ in range(2):
        queue_tuned_execution(sagemaker, arn)
    first = run_handler(monkeypatch, world, mlflow_server.url, status_event(arn=arn))
    again = run_handler(monkeypatch, world, mlflow_server.url, status_event(arn=arn))
    assert first["status"] == "logged" and again["status"] == "already-logged"
    (parent,) = runs_of(reader, PIPELINE, arn)
    assert len(children(reader, parent)) == len(TRIALS)


def test_interrupted_and_duplicate_trials_are_finished_and_retired_not_doubled(
    client: Any, reader: Reader
) -> None:
    execution = record("tuned3")
    experiment = client.experiment_id(execution.pipeline_name)
    # an earlier attempt logged the parent's start and two copies of trial 1, then stopped
    parent = client.create_run(
        experiment, "tuned3", execution.start_ms, {"mlops.execution_arn": execution.execution_arn}
    )
    parent_id = parent["info"]["run_id"]
    for _ in range(2):
        client.create_run(
            experiment,
            "copy",
            execution.start_ms,
            {
                "mlflow.parentRunId": parent_id,
                "mlops.training_job_arn": TRIALS[0]["TrainingJobArn"],
            },
        )

    class Pages:
        def get_paginator(self, _: str) -> Any:
            return self

        def paginate(self, **_: Any) -> list[dict[str, Any]]:
            return [{"TrainingJobSummaries": TRIALS}]

    tuning = trials_module.read_tuning(Pages(), tuning_job())
    logged = logger_module.log_execution(client, dataclasses.replace(execution, tuning=tuning))
    assert logged.run_id == parent_id
    runs = children(reader, reader.get_run(parent_id))
    live = [r for r in runs if "mlops.duplicate_of" not in r.data.tags]
    assert sorted(r.data.tags["mlops.training_job_arn"] for r in live) == sorted(
        t["TrainingJobArn"] for t in TRIALS
    )
    (retired,) = [r for r in runs if "mlops.duplicate_of" in r.data.tags]
    assert retired.info.status == "KILLED"
    kept = next(
        r for r in live if r.data.tags["mlops.training_job_arn"] == TRIALS[0]["TrainingJobArn"]
    )
    assert retired.data.tags["mlops.duplicate_of"] == kept.info.run_id
    assert kept.data.metrics["objective"] == pytest.approx(0.912)
