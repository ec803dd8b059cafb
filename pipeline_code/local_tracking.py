"""The local run's experiment tracking: each `make local-run` execution becomes one MLflow run in
a local store in the checkout (`mlruns/`: sqlite database and artifacts, git-ignored), through
the very logger the run tracker Lambda uses (lambdas/track_runs/run_logger.py), so comparing
runs offline looks the same as on the tracking server.

    mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db      # then http://127.0.0.1:5000

The step scripts runner (`RUNNER=scripts`, `FAST=1`, `TUNE=N`; pipeline_code.local_run) logs
to the experiment `local-run-scripts` (`log_scripts_run`), its random search's trials as child
runs of the run, as the run tracker logs a tuning job's trials (lambdas/track_runs/trials.py).

The record is read from what the local execution left: its parameters, each step's properties
(the Describe* responses the local jobs answer: output URIs, code locations, the registered
package) and the files under the local buckets. The `mlflow` package (a dev dependency) is
imported only here, and only when tracking is on.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import urllib.parse
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline_code.local_pipeline.aws_stand_in import ACCOUNT
from pipeline_code.local_pipeline.bucket import LocalS3
from pipeline_code.local_pipeline.execution import ExecutionResult

LAMBDA_DIR = Path(__file__).resolve().parent.parent / "lambdas" / "track_runs"
DEFAULT_STORE = Path("mlruns")
DATABASE = "mlflow.db"


def tracker_module(name: str) -> ModuleType:
    """lambdas/track_runs/<name>.py, imported as the Lambda runtime does (bare module name)."""
    if str(LAMBDA_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDA_DIR))
    return importlib.import_module(name)


def store_uri(store: Path) -> str:
    return f"sqlite:///{store.resolve() / DATABASE}"


class LocalStore:
    """The run logger's tracking calls on a local MLflow store (mlflow's own client), answering
    in the REST API's shapes the logger reads."""

    def __init__(self, store: Path) -> None:
        from mlflow.tracking import MlflowClient

        store.mkdir(parents=True, exist_ok=True)
        self.store = store.resolve()
        self.client = MlflowClient(tracking_uri=store_uri(store))

    @staticmethod
    def _run(run: Any) -> dict[str, Any]:
        info = run.info
        return {
            "info": {
                "run_id": info.run_id,
                "start_time": info.start_time,
                "artifact_uri": info.artifact_uri,
                "status": info.status,
            },
            "data": {"tags": [{"key": k, "value": v} for k, v in run.data.tags.items()]},
        }

    def experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = (self.store / "artifacts" / name).as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    def search_runs(
        self, experiment_id: str, filter_string: str, max_results: int | None = 10
    ) -> list[dict[str, Any]]:
        found: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                filter_string,
                max_results=1000 if max_results is None else max_results - len(found),
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            found += list(page)
            token = page.token
            if not token or (max_results is not None and len(found) >= max_results):
                return [self._run(run) for run in found]

    def create_run(
        self, experiment_id: str, run_name: str, start_time_ms: int, tags: dict[str, str]
    ) -> dict[str, Any]:
        run = self.client.create_run(
            experiment_id, start_time=start_time_ms, tags=tags, run_name=run_name
        )
        return self._run(run)

    def log_batch(
        self,
        run_id: str,
        *,
        params: dict[str, str],
        metrics: list[dict[str, Any]],
        tags: dict[str, str],
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        self.client.log_batch(
            run_id,
            metrics=[Metric(m["key"], m["value"], m["timestamp"], m["step"]) for m in metrics],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )

    def finish_run(self, run_id: str, status: str, end_time_ms: int) -> None:
        self.client.set_terminated(run_id, status=status, end_time=end_time_ms)

    def log_artifact(self, artifact_uri: str, name: str, content: bytes) -> None:
        target = Path(urllib.parse.urlparse(artifact_uri).path) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _output_files(s3: LocalS3, step: dict[str, Any] | None, output: str) -> Path | None:
    """Where the step's output is in the local bucket (the reader's own lookup)."""
    uri = tracker_module("execution_reader").output_uri(step, output)
    return s3.path(uri) if uri else None


def execution_record(result: ExecutionResult, s3: LocalS3, region: str) -> Any:
    """The run tracker's ExecutionRecord of one local execution."""
    record = tracker_module("run_record")
    now = int(time.time() * 1000)
    evaluation_dir = _output_files(s3, result.properties.get("Evaluate"), "evaluation")
    report_dir = _output_files(s3, result.properties.get("Prepare"), "report")
    evaluation = result.property_files.get("Evaluate.EvaluationReport")
    if evaluation is None and evaluation_dir and (evaluation_dir / "evaluation.json").is_file():
        evaluation = json.loads((evaluation_dir / "evaluation.json").read_text("utf-8"))
    report = report_dir / "split_report.json" if report_dir else None
    plots = (
        {p.name: p.read_bytes() for p in sorted(evaluation_dir.glob("*.png"))}
        if evaluation_dir and evaluation_dir.is_dir()
        else {}
    )
    reader = tracker_module("execution_reader")
    step_code = {
        name: hashes
        for name, properties in result.properties.items()
        if (hashes := reader.code_hashes(properties))
    }
    package = (result.properties.get("Register") or {}).get("ModelPackageArn")
    arn = (
        f"arn:aws:sagemaker:{region}:{ACCOUNT}:pipeline/{result.pipeline.lower()}"
        f"/execution/{result.execution_id}"
    )
    started = now - int(sum(step.seconds for step in result.steps) * 1000)
    return record.ExecutionRecord(
        pipeline_name=result.pipeline,
        execution_arn=arn,
        status=result.status,
        start_ms=started,
        end_ms=now,
        parameters={k: str(v) for k, v in result.parameters.items()},
        evaluation=evaluation,
        split_report=(
            json.loads(report.read_text("utf-8")) if report and report.is_file() else None
        ),
        plots=plots,
        step_code=step_code,
        model_package_arn=str(package) if package else None,
        failure_reason=result.failure_reason or None,
    )


def log_local_run(result: ExecutionResult, s3: LocalS3, region: str, store: Path) -> str:
    """Log one local execution; returns a line saying where it went."""
    logger = tracker_module("run_logger")
    logged = logger.log_execution(LocalStore(store), execution_record(result, s3, region))
    return (
        f"mlflow: run {logged.run_id} in experiment {result.pipeline} "
        f"(mlflow ui --backend-store-uri {store_uri(store)})"
    )


#: The experiment of `make local-run RUNNER=scripts|FAST=1|TUNE=N` (the step scripts runner).
SCRIPTS_EXPERIMENT = "local-run-scripts"
SPLIT_REPORT = Path("prepare/opt/ml/processing/output/report/split_report.json")
EVALUATION_DIR = Path("evaluate/opt/ml/processing/evaluation")
TUNING_DIR = Path("tune")
TRAINED_MODEL = Path("train/opt/ml/model")


def _local_tuning(workdir: Path, execution_id: str, end_ms: int) -> Any:
    """The scripts run's random search (`tune/trials.json`, local_tuning) as the tracker's
    Tuning: each trial one completed 'training job' named trial-N; None without a search."""
    from pipeline_code.local_tuning import TRIALS_FILE

    path = workdir / TUNING_DIR / TRIALS_FILE
    if not path.is_file():
        return None
    search = json.loads(path.read_text("utf-8"))
    trials = tracker_module("trials")
    metric, direction = search["objective_metric"], search["objective_type"]
    [best] = [t for t in search["trials"] if t["number"] == search["best"]]
    return trials.Tuning(
        tuning_job_name=f"local-{execution_id}",
        objective_metric=metric,
        objective_type=direction,
        strategy=str(search["search"]).title(),
        best_training_job=f"trial-{search['best']}",
        trials=tuple(
            trials.Trial(
                training_job_name=f"trial-{trial['number']}",
                training_job_arn=f"{workdir.resolve() / TUNING_DIR}/trial-{trial['number']}",
                status="Completed",
                hyperparameters={k: str(v) for k, v in trial["hyperparameters"].items()},
                objective=float(trial["objective"]),
                objective_status="Succeeded",
                start_ms=end_ms,
                end_ms=end_ms,
            )
            for trial in search["trials"]
        ),
        best_hyperparameters={k: str(v) for k, v in best["hyperparameters"].items()},
    )


def _trained_with(workdir: Path) -> dict[str, str]:
    """The hyperparameters the run's model was trained with (its metadata)."""
    from pipeline_code.steps import load

    files = load("common", "model_files")
    metadata = workdir / TRAINED_MODEL / files.METADATA_DIR / files.METADATA_FILE
    if not metadata.is_file():
        return {}
    values = json.loads(metadata.read_text("utf-8")).get("hyperparameters") or {}
    return {name: str(value) for name, value in sorted(values.items())}


def log_scripts_run(
    workdir: Path,
    evaluation: dict[str, Any],
    seconds: float,
    store: Path,
    region: str = "eu-west-1",
) -> str:
    """Log one step-scripts run (pipeline_code.local_run) as one run of the experiment
    `local-run-scripts`, its search's trials (TUNE=N) as child runs; returns where it went."""
    import uuid

    record = tracker_module("run_record")
    now = int(time.time() * 1000)
    execution_id = uuid.uuid4().hex[:12]
    report = workdir / SPLIT_REPORT
    plots_dir = workdir / EVALUATION_DIR
    execution = record.ExecutionRecord(
        pipeline_name=SCRIPTS_EXPERIMENT,
        execution_arn=(
            f"arn:aws:sagemaker:{region}:{ACCOUNT}:pipeline/{SCRIPTS_EXPERIMENT}"
            f"/execution/{execution_id}"
        ),
        status="Succeeded",
        start_ms=now - int(seconds * 1000),
        end_ms=now,
        parameters=_trained_with(workdir),
        evaluation=evaluation,
        split_report=json.loads(report.read_text("utf-8")) if report.is_file() else None,
        plots={p.name: p.read_bytes() for p in sorted(plots_dir.glob("*.png"))},
        tuning=_local_tuning(workdir, execution_id, now),
    )
    logged = tracker_module("run_logger").log_execution(LocalStore(store), execution)
    trials = (
        f" with {len(execution.tuning.trials)} trials as child runs" if execution.tuning else ""
    )
    return (
        f"mlflow: run {logged.run_id}{trials} in experiment {SCRIPTS_EXPERIMENT} "
        f"(mlflow ui --backend-store-uri {store_uri(store)})"
    )
