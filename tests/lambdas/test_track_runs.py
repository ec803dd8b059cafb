"""Run tracker: a finished execution -> exactly one MLflow run, against a real local MLflow
server (tests/mlflow_server.py), read back with mlflow's own client.

SageMaker calls go through botocore's Stubber (requests and responses validated against the
service model); S3 is moto. The event is shaped like the example of "SageMaker Model Building
Pipeline Execution Status Change" in the SageMaker developer guide (Automating SageMaker with
EventBridge). evaluation.json is built from evaluate's contract names (evaluation_contract.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from mlflow.tracking import MlflowClient as Reader
from moto import mock_aws

from tests.lambda_loader import emf_documents, handler_with, lambda_context, load_lambda_module
from tests.mlflow_server import LocalMlflow, mlflow_server
from tests.tracking_world import (
    CODE_HASH,
    END,
    SPLIT_REPORT,
    START,
    evaluation,
    put_outputs,
    queue_execution_reads,
)

pytestmark = [pytest.mark.usefixtures("aws_credentials"), pytest.mark.xdist_group("mlflow")]
__all__ = ["mlflow_server"]

rest = load_lambda_module("track_runs", "mlflow_rest")
record_module = load_lambda_module("track_runs", "run_record")
logger_module = load_lambda_module("track_runs", "run_logger")
reader_module = load_lambda_module("track_runs", "execution_reader")
tracker = load_lambda_module("track_runs", "run_tracker")

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "mlops-dev-artifacts"
PACKAGE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/mlops-dev-models/7"


def execution_arn(pipeline: str, execution_id: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{pipeline}/execution/{execution_id}"


def record(execution_id: str = "a1b2c3d4e5f6", **overrides: Any) -> Any:
    pipeline = overrides.pop("pipeline_name", "mlops-dev-training")
    values: dict[str, Any] = {
        "pipeline_name": pipeline,
        "execution_arn": execution_arn(pipeline, execution_id),
        "status": "Succeeded",
        "start_ms": int(START.timestamp() * 1000),
        "end_ms": int(END.timestamp() * 1000),
        "parameters": {"DatasetVersion": "2026-11-20", "DataDigest": "d" * 64, "NumRound": "300"},
        "evaluation": evaluation(),
        "split_report": SPLIT_REPORT,
        "plots": {"roc.png": b"\x89PNG roc"},
        "step_code": {"Evaluate": (CODE_HASH,)},
        "model_package_arn": PACKAGE_ARN,
    }
    return record_module.ExecutionRecord(**{**values, **overrides})


@pytest.fixture()
def client(mlflow_server: LocalMlflow) -> Any:
    return rest.MlflowClient(rest.Server.from_uri(mlflow_server.url))


@pytest.fixture()
def reader(mlflow_server: LocalMlflow) -> Reader:
    return Reader(tracking_uri=mlflow_server.url)


def runs_of(reader: Reader, experiment: str, arn: str) -> list[Any]:
    found = reader.get_experiment_by_name(experiment)
    if found is None:
        return []
    return list(
        reader.search_runs(
            [found.experiment_id], logger_module.execution_filter(arn), max_results=50
        )
    )


def test_an_execution_is_one_run_with_params_metrics_tags_and_artifacts(
    client: Any, reader: Reader, mlflow_server: LocalMlflow
) -> None:
    execution = record("run1")
    logged = logger_module.log_execution(client, execution)
    assert logged.logged_now
    (run,) = runs_of(reader, "mlops-dev-training", execution.execution_arn)
    assert run.info.run_id == logged.run_id and run.info.status == "FINISHED"
    assert run.info.run_name == "run1"
    assert run.data.params["DatasetVersion"] == "2026-11-20"
    assert run.data.params["NumRound"] == "300"
    assert run.data.params["gate.metric"] == "auc" and run.data.params["gate.floor"] == "0.8"
    metrics = run.data.metrics
    assert metrics["challenger.auc"] == pytest.approx(0.91)
    assert metrics["champion.auc"] == pytest.approx(0.90)
    assert metrics["challenger.auc.ci95_low"] == pytest.approx(0.91 - 1.96 * 0.01, abs=1e-4)
    assert metrics["gate.delta.lower_97_5"] == pytest.approx(0.002)
    assert metrics["split.rows"] == 30000 and metrics["calibration.brier_score"] == 0.026
    tags = run.data.tags
    assert tags["mlops.model_package_arn"] == PACKAGE_ARN
    assert tags["mlops.gate_decision"] == "register"
    assert tags["mlops.dataset_version"] == "2026-11-20"
    assert tags["mlops.data_digest"] == "d" * 64
    assert tags["mlops.code.Evaluate"] == CODE_HASH
    names = {a.path for a in reader.list_artifacts(run.info.run_id)}
    assert names == {"evaluation.json", "split_report.json", "plots"}
    local = reader.download_artifacts(run.info.run_id, "evaluation.json")
    assert json.loads(Path(local).read_text("utf-8"))["gate"]["decision"] == "register"


def test_a_redelivery_or_a_backfill_logs_nothing_twice(client: Any, reader: Reader) -> None:
    execution = record("run2")
    first = logger_module.log_execution(client, execution)
    again = logger_module.log_execution(client, execution)
    assert not again.logged_now and again.run_id == first.run_id
    assert len(runs_of(reader, "mlops-dev-training", execution.execution_arn)) == 1


def test_an_interrupted_attempt_is_finished_not_duplicated(client: Any, reader: Reader) -> None:
    execution = record("run3")
    experiment = client.experiment_id("mlops-dev-training")
    # an earlier attempt created the run and failed before logging anything
    started = client.create_run(
        experiment, "run3", execution.start_ms, {"mlops.execution_arn": execution.execution_arn}
    )
    logged = logger_module.log_execution(client, execution)
    assert logged.run_id == started["info"]["run_id"] and logged.logged_now
    (run,) = runs_of(reader, "mlops-dev-training", execution.execution_arn)
    assert run.info.status == "FINISHED" and run.data.metrics["challenger.auc"] > 0


def racing(client: Any) -> Any:
    """`client` whose first search sees no run: the interleaving where another delivery
    creates its run after this one looked."""
    racer = rest.MlflowClient(client.server, s3=client.s3)
    first_look = iter([[]])

    def search(experiment_id: str, filter_string: str) -> list[dict[str, Any]]:
        seen = next(first_look, None)
        return seen if seen is not None else client.search_runs(experiment_id, filter_string)

    racer.search_runs = search  # type: ignore[method-assign]
    return racer


def assert_one_winner(reader: Reader, arn: str, winner: str) -> None:
    """One live run, the first by (start time, run id); every other retired, not deleted."""
    runs = sorted(runs_of(reader, "mlops-dev-training", arn), key=lambda r: r.info.run_id)
    assert len(runs) >= 2  # nothing deleted
    assert winner == runs[0].info.run_id  # equal start times: the smaller run id
    (live,) = [r for r in runs if "mlops.duplicate_of" not in r.data.tags]
    assert live.info.run_id == winner and live.info.status == "FINISHED"
    assert live.data.tags["mlops.logged"] == "true"
    for retired in runs[1:]:
        assert retired.data.tags["mlops.duplicate_of"] == winner
        assert retired.info.status == "KILLED"


def test_a_run_created_by_another_delivery_while_this_one_logs_leaves_one_winner(
    client: Any, reader: Reader
) -> None:
    execution = record("run4")
    experiment = client.experiment_id("mlops-dev-training")
    # the other delivery created its run (same start time) after this one's first look
    other = client.create_run(
        experiment, "run4", execution.start_ms, {"mlops.execution_arn": execution.execution_arn}
    )
    logged = logger_module.log_execution(racing(client), execution)
    assert logged.logged_now == (logged.run_id != other["info"]["run_id"])
    # the other delivery now goes on: it agrees on the winner (finishing it if it is its own)
    again = logger_module.log_execution(client, execution)
    assert again.run_id == logged.run_id
    assert_one_winner(reader, execution.execution_arn, logged.run_id)


def test_a_delivery_that_looked_before_a_complete_run_existed_leaves_one_winner(
    client: Any, reader: Reader
) -> None:
    execution = record("run4b")
    first = logger_module.log_execution(client, execution)  # saw no other run: kept its own
    second = logger_module.log_execution(racing(client), execution)  # looked before it existed
    assert_one_winner(reader, execution.execution_arn, second.run_id)
    # whichever run wins, both deliveries end up agreeing on it
    assert logger_module.log_execution(client, execution).run_id == second.run_id
    assert second.logged_now == (second.run_id != first.run_id)


def test_several_interrupted_attempts_keep_only_the_winner(client: Any, reader: Reader) -> None:
    execution = record("run4c")
    experiment = client.experiment_id("mlops-dev-training")
    tags = {"mlops.execution_arn": execution.execution_arn}
    for _ in range(3):
        client.create_run(experiment, "run4c", execution.start_ms, tags)
    logged = logger_module.log_execution(client, execution)
    assert logged.logged_now
    assert_one_winner(reader, execution.execution_arn, logged.run_id)


def _metrics(evaluation_report: dict[str, Any]) -> dict[str, float]:
    content = record_module.run_content(record("pure", evaluation=evaluation_report))
    return {m["key"]: m["value"] for m in content.metrics}


def test_the_gates_paired_numbers_are_logged_and_an_unpaired_champion_block_is_not() -> None:
    paired = _metrics(evaluation(compared_rows=4562))
    assert paired["gate.challenger"] == pytest.approx(0.908)  # on the compared rows
    assert paired["gate.champion"] == pytest.approx(0.898)
    assert paired["gate.compared_rows"] == 4562
    assert paired["champion.auc"] == pytest.approx(0.90)  # every test row: pairs with challenger
    partial_report = evaluation(compared_rows=3000)
    partial = _metrics(partial_report)
    assert not [key for key in partial if key.startswith("champion.")]
    assert partial["gate.compared_rows"] == 3000 and partial["challenger.auc"] == 0.91
    tags = record_module.run_content(record("pure", evaluation=partial_report)).tags
    assert tags["mlops.champion_rows"].startswith("the champion scored 3000 of 4562 test rows")


def test_intervals_are_clipped_to_the_metrics_range_and_skipped_without_a_spread() -> None:
    report = evaluation(auc=0.995)
    report["binary_classification_metrics"]["auc"]["standard_deviation"] = 0.01
    report["binary_classification_metrics"]["f1"]["standard_deviation"] = 0.0
    metrics = _metrics(report)
    assert metrics["challenger.auc.ci95_high"] == 1.0  # not 1.0146
    assert metrics["challenger.auc.ci95_low"] == pytest.approx(0.995 - 1.96 * 0.01, abs=1e-4)
    assert "challenger.f1.ci95_low" not in metrics and "challenger.f1.ci95_high" not in metrics
    assert metrics["challenger.f1.std"] == 0.0


def test_eval_only_runs_log_under_their_own_experiment(client: Any, reader: Reader) -> None:
    execution = record("run5", pipeline_name="mlops-dev-evaluation", model_package_arn=None)
    logger_module.log_execution(client, execution)
    assert len(runs_of(reader, "mlops-dev-evaluation", execution.execution_arn)) == 1
    assert runs_of(reader, "mlops-dev-training", execution.execution_arn) == []


def test_a_failed_execution_without_evaluation_is_still_one_failed_run(
    client: Any, reader: Reader
) -> None:
    execution = record(
        "run6",
        status="Failed",
        evaluation=None,
        split_report=None,
        plots={},
        model_package_arn=None,
        failure_reason="Step Prepare failed: target column missing",
    )
    logger_module.log_execution(client, execution)
    (run,) = runs_of(reader, "mlops-dev-training", execution.execution_arn)
    assert run.info.status == "FAILED"
    assert run.data.tags["mlops.failure_reason"].startswith("Step Prepare failed")
    assert "mlops.gate_decision" not in run.data.tags


def test_an_unreachable_server_is_a_tracking_error() -> None:
    client = rest.MlflowClient(rest.Server.from_uri("http://127.0.0.1:9"))
    with pytest.raises(rest.TrackingError, match="unreachable"):
        logger_module.log_execution(client, record("run7"))


def test_a_managed_server_is_called_at_its_regional_url_and_signed_for_sagemaker_mlflow() -> None:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-tracking-server/mlops-dev-mlflow"
    server = rest.Server.from_uri(arn)
    # the host the sagemaker-mlflow plugin calls (aws/sagemaker-mlflow, get_tracking_server_url)
    assert server.url == f"https://{REGION}.experiments.sagemaker.aws"
    gov = arn.replace("arn:aws:", "arn:aws-us-gov:").replace(REGION, "us-gov-west-1")
    assert rest.Server.from_uri(gov).url == "https://us-gov-west-1.experiments.sagemaker.aws"
    with pytest.raises(rest.TrackingError, match="partition aws-cn"):
        rest.Server.from_uri(arn.replace("arn:aws:", "arn:aws-cn:"))
    signer = rest.sigv4_signer(boto3.Session(region_name=REGION), REGION)
    headers = signer("POST", f"{server.url}/api/2.0/mlflow/runs/search", {"a": "b"}, b"{}")
    assert f"/{REGION}/sagemaker-mlflow/aws4_request" in headers["Authorization"]
    assert "x-amz-content-sha256" in headers["Authorization"]  # the payload hash is signed
    with pytest.raises(rest.TrackingError, match="not a SageMaker MLflow tracking server ARN"):
        rest.Server.from_uri(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/x/1")


# --- the Lambda: event -> SageMaker and S3 reads -> run -> package tag -----------------------

PIPELINE = "mlops-dev-training"
# its experiment's artifact location is s3:// (as a managed server's): the S3 artifact branch
S3_PIPELINE = "mlops-dev-s3store"
EXECUTION_ID = "2em6x0jjthgb"
EXECUTION_ARN = execution_arn(PIPELINE, EXECUTION_ID)


def status_event(status: str = "Succeeded", arn: str = EXECUTION_ARN) -> dict[str, Any]:
    pipeline_arn = arn.split("/execution/")[0]
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2026-11-20T09:52:00Z",
        "region": REGION,
        "resources": [pipeline_arn, arn],
        "detail": {
            "executionStartTime": "2026-11-20T09:30:00Z",
            "executionEndTime": "2026-11-20T09:52:00Z",
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
            "pipelineExecutionDisplayName": f"execution-{EXECUTION_ID}",
            "pipelineArn": pipeline_arn,
            "pipelineExecutionArn": arn,
        },
    }


@pytest.fixture()
def world(mlflow_server: LocalMlflow) -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        put_outputs(s3, BUCKET, EXECUTION_ARN, evaluation(champion=False))
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        with Stubber(sagemaker) as stubber:
            sagemaker.stubber = stubber  # type: ignore[attr-defined]
            yield sagemaker, s3
            stubber.assert_no_pending_responses()


def run_handler(
    monkeypatch: pytest.MonkeyPatch,
    world: tuple[Any, Any],
    url: str,
    event: dict[str, Any],
    *,
    copy_artifacts: bool = True,
    artifact_s3: Any = None,
) -> dict[str, Any]:
    sagemaker, s3 = world
    tracking = rest.MlflowClient(rest.Server.from_uri(url), s3=artifact_s3 or s3)
    environment = {
        "TRACKING_SERVER": url,
        "PIPELINE_NAMES": f"{PIPELINE},mlops-dev-evaluation,{S3_PIPELINE}",
        "COPY_ARTIFACTS": "true" if copy_artifacts else "false",
    }
    handler = handler_with(
        "track_runs", monkeypatch, environment, sagemaker=sagemaker, s3=s3, mlflow=tracking
    )
    result: dict[str, Any] = handler.lambda_handler(
        event, lambda_context("track-runs", REGION, ACCOUNT)
    )
    return result


def test_the_lambda_logs_the_execution_and_tags_the_package_with_the_run(
    monkeypatch: pytest.MonkeyPatch,
    world: tuple[Any, Any],
    mlflow_server: LocalMlflow,
    reader: Reader,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sagemaker, _ = world
    queue_execution_reads(sagemaker.stubber, EXECUTION_ARN, BUCKET, package_arn=PACKAGE_ARN)
    sagemaker.stubber.add_response(
        "add_tags",
        {"Tags": []},
        {"ResourceArn": PACKAGE_ARN, "Tags": [{"Key": "mlflow-run-id", "Value": ANY}]},
    )
    result = run_handler(monkeypatch, world, mlflow_server.url, status_event())
    assert result["status"] == "logged"
    (run,) = runs_of(reader, PIPELINE, EXECUTION_ARN)
    assert run.info.run_id == result["run_id"]
    assert run.data.tags["mlops.model_package_arn"] == PACKAGE_ARN
    assert run.data.tags["mlops.code_commit"] == "c0ffee0"
    assert run.data.tags["mlops.code.Evaluate"] == CODE_HASH
    assert run.data.params["DatasetVersion"] == "2026-11-20"
    assert "champion.auc" not in run.data.metrics  # first model: no champion
    assert [a.path for a in reader.list_artifacts(run.info.run_id, "plots")] == ["plots/roc.png"]
    documents = emf_documents(capsys.readouterr().out)
    assert [doc.get("RunsLogged") for doc in documents] == [[1.0]]


def test_an_unfinished_or_foreign_execution_is_skipped_and_a_bad_event_rejected(
    monkeypatch: pytest.MonkeyPatch, world: tuple[Any, Any], mlflow_server: LocalMlflow
) -> None:
    executing = run_handler(monkeypatch, world, mlflow_server.url, status_event("Executing"))
    assert executing["status"] == "skipped"
    other = execution_arn("someone-elses-pipeline", "zz9")
    foreign = run_handler(monkeypatch, world, mlflow_server.url, status_event(arn=other))
    assert foreign["status"] == "skipped"
    bad = status_event()
    del bad["detail"]["pipelineExecutionArn"]
    assert run_handler(monkeypatch, world, mlflow_server.url, bad)["status"] == "rejected"


def test_an_unreachable_server_counts_a_failure_and_raises_for_the_retry_and_dlq(
    monkeypatch: pytest.MonkeyPatch,
    world: tuple[Any, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sagemaker, _ = world
    queue_execution_reads(sagemaker.stubber, EXECUTION_ARN, BUCKET, package_arn=PACKAGE_ARN)
    with pytest.raises(rest.TrackingError):
        run_handler(monkeypatch, world, "http://127.0.0.1:9", status_event())
    documents = emf_documents(capsys.readouterr().out)
    assert [doc.get("TrackingFailures") for doc in documents] == [[1.0]]


def test_an_execution_described_as_still_running_is_skipped_not_logged(
    monkeypatch: pytest.MonkeyPatch, world: tuple[Any, Any], mlflow_server: LocalMlflow
) -> None:
    sagemaker, _ = world
    arn = execution_arn(PIPELINE, "stillrunning1")
    queue_execution_reads(sagemaker.stubber, arn, BUCKET, status="Executing")
    result = run_handler(monkeypatch, world, mlflow_server.url, status_event(arn=arn))
    assert result["status"] == "skipped" and "is Executing" in result["message"]
    assert runs_of(Reader(tracking_uri=mlflow_server.url), PIPELINE, arn) == []
