"""`mlops runs compare A B` (side by side, from MLflow or from what the executions wrote) and
`mlops runs backfill EXECUTION` (one run, never two), against moto's S3, Stubber-checked
SageMaker calls and a real local MLflow server."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.stub import ANY
from mlflow.tracking import MlflowClient as Reader

from cli.runs import tracking
from tests.cli.conftest import DEV, NOW, REGION, Aws, execution_arn, package_arn
from tests.mlflow_server import LocalMlflow, mlflow_server
from tests.tracking_world import (
    BEST,
    TRIALS,
    evaluation,
    put_outputs,
    queue_execution_reads,
    tuning_job,
)

pytestmark = pytest.mark.xdist_group("mlflow")
__all__ = ["mlflow_server"]

BUCKET = "mlops-loop-dev-artifacts-1x2y3z"
FIRST, SECOND = execution_arn("aaaa11112222"), execution_arn("bbbb33334444")


def _world(aws: Aws) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    put_outputs(s3, BUCKET, FIRST, evaluation(auc=0.91))
    put_outputs(s3, BUCKET, SECOND, evaluation(auc=0.93))


def _params(num_round: str) -> dict[str, str]:
    return {"DatasetVersion": "fraud/v1", "CodeCommit": "c0ffee0", "NumRound": num_round}


def _exists(stub: Any, arn: str) -> None:
    """DescribePipelineExecution finds `arn` (a bare id's probe)."""
    pipeline = arn.split("/execution/")[0]
    stub.add_response(
        "describe_pipeline_execution",
        {
            "PipelineArn": pipeline,
            "PipelineExecutionArn": arn,
            "PipelineExecutionStatus": "Succeeded",
        },
        {"PipelineExecutionArn": arn},
    )


def _missing(
    stub: Any,
    arn: str,
    code: str = "ResourceNotFound",
    message: str = "Pipeline execution not found",
) -> None:
    """DescribePipelineExecution does not know `arn` (by default the error botocore's model
    names)."""
    stub.add_client_error(
        "describe_pipeline_execution",
        service_error_code=code,
        service_message=message,
        http_status_code=400,
        expected_params={"PipelineExecutionArn": arn},
    )


def _row(out: str, key: str) -> list[str]:
    (line,) = [line for line in out.splitlines() if line.split()[:1] == [key]]
    return line.split()


def test_compare_prints_two_runs_side_by_side_from_what_they_wrote(aws: Aws) -> None:
    _world(aws)
    stub = aws.stub("sagemaker")
    _exists(stub, FIRST)  # the bare id: the training pipeline has it
    queue_execution_reads(stub, FIRST, BUCKET, parameters=_params("300"))
    queue_execution_reads(stub, SECOND, BUCKET, parameters=_params("500"))
    result = aws.run("runs", "compare", "aaaa11112222", SECOND)
    assert result.exit_code == 0, result.output
    assert _row(result.output, "execution")[1:] == ["aaaa11112222", "bbbb33334444"]
    assert _row(result.output, "challenger.auc")[1:] == ["0.9100", "0.9300", "+0.0200"]
    assert _row(result.output, "NumRound")[1:] == ["300", "500", "differs"]
    assert _row(result.output, "DatasetVersion")[1:] == ["fraud/v1", "fraud/v1"]
    # counts are whole numbers (tracking_world: 30000 rows split, 4562 test rows)
    assert _row(result.output, "split.rows")[1:] == ["30000", "30000", "+0"]
    assert _row(result.output, "gate.test_rows")[1:] == ["4562", "4562", "+0"]
    # the paired numbers the gate compared (both models on the same rows)
    assert _row(result.output, "gate.challenger")[1:] == ["0.9080", "0.9280", "+0.0200"]
    assert _row(result.output, "gate.champion")[1:] == ["0.8980", "0.9180", "+0.0200"]
    assert _row(result.output, "gate.compared_rows")[1:3] == ["4562", "4562"]
    aws.assert_done()


def test_compare_takes_package_versions_through_the_registry(aws: Aws) -> None:
    _world(aws)
    stub = aws.stub("sagemaker")
    for version, arn in ((3, FIRST), (4, SECOND)):
        stub.add_response(
            "describe_model_package",
            {
                "ModelPackageName": DEV.model_package_group_name,
                "ModelPackageArn": package_arn(version),
                "CreationTime": NOW,
                "ModelPackageStatus": "Completed",
                "ModelPackageStatusDetails": {"ValidationStatuses": []},
                "MetadataProperties": {"GeneratedBy": arn},
            },
            {"ModelPackageName": package_arn(version)},
        )
        queue_execution_reads(stub, arn, BUCKET)
    result = aws.run("runs", "compare", "3", "4")
    assert result.exit_code == 0, result.output
    assert _row(result.output, "execution")[1:] == ["aaaa11112222", "bbbb33334444"]
    aws.assert_done()


def test_backfill_logs_one_run_once_and_tags_the_package(
    aws: Aws, mlflow_server: LocalMlflow
) -> None:
    _world(aws)
    stub = aws.stub("sagemaker")
    package = package_arn(7)
    for _ in range(2):
        queue_execution_reads(stub, FIRST, BUCKET, package_arn=package)
        stub.add_response(
            "add_tags",
            {"Tags": []},
            {"ResourceArn": package, "Tags": [{"Key": "mlflow-run-id", "Value": ANY}]},
        )
    first = aws.run("runs", "backfill", FIRST, "--tracking-uri", mlflow_server.url)
    assert first.exit_code == 0, first.output
    assert "logged as run" in first.output and "already" not in first.output
    again = aws.run("runs", "backfill", FIRST, "--tracking-uri", mlflow_server.url)
    assert "already logged as run" in again.output
    reader = Reader(tracking_uri=mlflow_server.url)
    experiment = reader.get_experiment_by_name(DEV.pipeline_name)
    assert experiment is not None
    runs = reader.search_runs([experiment.experiment_id], f"tags.`mlops.execution_arn` = '{FIRST}'")
    assert len(runs) == 1 and runs[0].data.tags["mlops.model_package_arn"] == package
    aws.assert_done()

    # compare now reads the logged run from MLflow (the other side from its artifacts)
    queue_execution_reads(stub, SECOND, BUCKET)
    compared = aws.run("runs", "compare", FIRST, SECOND, "--tracking-uri", mlflow_server.url)
    assert compared.exit_code == 0, compared.output
    source = _row(compared.output, "from")
    assert source[1] == "mlflow" and source[2] == runs[0].info.run_id
    assert _row(compared.output, "challenger.auc")[1:] == ["0.9100", "0.9300", "+0.0200"]


def test_backfill_of_a_tuned_execution_logs_each_trial_as_a_child_run(
    aws: Aws, mlflow_server: LocalMlflow
) -> None:
    _world(aws)
    tuned = execution_arn("dddd77778888")
    put_outputs(aws.client("s3"), BUCKET, tuned, evaluation())
    queue_execution_reads(aws.stub("sagemaker"), tuned, BUCKET, tuning=(tuning_job(), [TRIALS]))
    result = aws.run("runs", "backfill", tuned, "--tracking-uri", mlflow_server.url)
    assert result.exit_code == 0, result.output
    reader = Reader(tracking_uri=mlflow_server.url)
    experiment = reader.get_experiment_by_name(DEV.pipeline_name)
    assert experiment is not None
    (parent,) = reader.search_runs(
        [experiment.experiment_id], f"tags.`mlops.execution_arn` = '{tuned}'"
    )
    trials = reader.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert sorted(run.info.run_name for run in trials) == sorted(
        trial["TrainingJobName"] for trial in TRIALS
    )
    (best,) = [run for run in trials if run.data.tags["mlops.best_trial"] == "true"]
    assert best.info.run_name == BEST["TrainingJobName"]
    aws.assert_done()


def test_compare_from_the_artifacts_shows_a_tuned_runs_winning_values(aws: Aws) -> None:
    # tracking off: the run is rebuilt from what the execution wrote, tuning step included
    _world(aws)
    tuned = execution_arn("dddd77778888")
    put_outputs(aws.client("s3"), BUCKET, tuned, evaluation())
    stub = aws.stub("sagemaker")
    queue_execution_reads(stub, tuned, BUCKET, tuning=(tuning_job(), [TRIALS]))
    queue_execution_reads(stub, SECOND, BUCKET, parameters=_params("500"))
    result = aws.run("runs", "compare", tuned, SECOND)
    assert result.exit_code == 0, result.output
    # BestTrainingJob's TunedHyperParameters (DescribeHyperParameterTuningJob), not a trial's
    assert _row(result.output, "tuned.eta")[1:2] == [BEST["TunedHyperParameters"]["eta"]]
    assert _row(result.output, "tuned.max_depth")[1:2] == [
        BEST["TunedHyperParameters"]["max_depth"]
    ]
    assert _row(result.output, "tuning.trials")[1:2] == [str(len(TRIALS))]
    aws.assert_done()


def test_backfill_with_tracking_off_is_one_error_naming_the_key(aws: Aws) -> None:
    result = aws.run("runs", "backfill", FIRST)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: tracking.mlflow is off in dev: nothing to log to (set it to managed or external "
        "in cdk.json, or give --tracking-uri)"
    ]


def test_an_unreachable_tracking_server_is_one_error(aws: Aws) -> None:
    _world(aws)
    queue_execution_reads(aws.stub("sagemaker"), FIRST, BUCKET)
    result = aws.run("runs", "backfill", FIRST, "--tracking-uri", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "Error: the tracking server:" in result.output and "unreachable" in result.output


@pytest.mark.parametrize("status", ["Executing", "Stopping"])
def test_backfill_refuses_an_unfinished_execution_and_logs_nothing(
    aws: Aws, mlflow_server: LocalMlflow, status: str
) -> None:
    _world(aws)
    unfinished = execution_arn("cccc55556666")
    put_outputs(aws.client("s3"), BUCKET, unfinished, evaluation())
    queue_execution_reads(aws.stub("sagemaker"), unfinished, BUCKET, status=status)
    result = aws.run("runs", "backfill", unfinished, "--tracking-uri", mlflow_server.url)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {unfinished} is {status}: only a finished execution (Succeeded, Failed or "
        "Stopped) is logged: backfill it once it has finished"
    ]
    reader = Reader(tracking_uri=mlflow_server.url)
    experiment = reader.get_experiment_by_name(DEV.pipeline_name)
    filter_string = f"tags.`mlops.execution_arn` = '{unfinished}'"
    assert experiment is None or not reader.search_runs([experiment.experiment_id], filter_string)
    aws.assert_done()


def test_compare_looks_the_experiment_up_and_never_creates_it() -> None:
    class LookupOnly:
        def find_experiment(self, name: str) -> None:
            return None

        def experiment_id(self, name: str) -> str:
            raise AssertionError("compare must not create an experiment")

    assert tracking._from_mlflow(LookupOnly(), FIRST) is None


@pytest.mark.parametrize(("region", "partition"), [("eu-west-1", "aws"), ("cn-north-1", "aws-cn")])
def test_arns_take_the_regions_partition(region: str, partition: str) -> None:
    ops = SimpleNamespace(
        clients=SimpleNamespace(session=None), config=SimpleNamespace(region=region)
    )
    assert tracking.partition(ops) == partition  # type: ignore[arg-type]


EVALUATION_PIPELINE = DEV.evaluation_pipeline_name


def test_compare_finds_a_bare_id_in_the_eval_only_pipeline_too(aws: Aws) -> None:
    _world(aws)
    evaluated = execution_arn("cccc55556666", EVALUATION_PIPELINE)
    put_outputs(aws.client("s3"), BUCKET, evaluated, evaluation(auc=0.88))
    stub = aws.stub("sagemaker")
    _missing(stub, execution_arn("cccc55556666"))  # not the training pipeline's
    _exists(stub, evaluated)
    queue_execution_reads(stub, evaluated, BUCKET, parameters=_params("300"))
    queue_execution_reads(stub, SECOND, BUCKET, parameters=_params("500"))
    result = aws.run("runs", "compare", "cccc55556666", SECOND)
    assert result.exit_code == 0, result.output
    assert _row(result.output, "execution")[1:] == ["cccc55556666", "bbbb33334444"]
    assert _row(result.output, "challenger.auc")[1:] == ["0.8800", "0.9300", "+0.0500"]
    aws.assert_done()


@pytest.mark.parametrize(
    ("code", "message", "missing"),
    [
        # SageMaker answers some Describe calls for a missing resource this way (aws/aws-sdk#165)
        ("ValidationException", "Pipeline execution arn:... does not exist.", True),
        ("ValidationException", "Could not find pipeline execution: not found", True),
        ("ValidationException", "1 validation error detected: Value at 'x'", False),
        ("AccessDeniedException", "not found", False),
    ],
)
def test_a_bare_ids_probe_takes_only_a_missing_execution_for_a_miss(
    aws: Aws, code: str, message: str, missing: bool
) -> None:
    _world(aws)
    evaluated = execution_arn("cccc55556666", EVALUATION_PIPELINE)
    put_outputs(aws.client("s3"), BUCKET, evaluated, evaluation(auc=0.88))
    stub = aws.stub("sagemaker")
    _missing(stub, execution_arn("cccc55556666"), code, message)
    if missing:
        _exists(stub, evaluated)
        queue_execution_reads(stub, evaluated, BUCKET, parameters=_params("300"))
        queue_execution_reads(stub, SECOND, BUCKET, parameters=_params("500"))
    result = aws.run("runs", "compare", "cccc55556666", SECOND)
    if missing:
        assert result.exit_code == 0, result.output
        assert _row(result.output, "challenger.auc")[1:] == ["0.8800", "0.9300", "+0.0500"]
    else:  # any other error is the caller's to see, not a miss
        assert result.exit_code != 0
        assert "DescribePipelineExecution" in result.output
        assert "is not an execution of" not in result.output
    aws.assert_done()


def test_a_bare_id_of_no_tracked_pipeline_is_one_error_naming_both(aws: Aws) -> None:
    stub = aws.stub("sagemaker")
    _missing(stub, execution_arn("dddd77778888"))
    _missing(stub, execution_arn("dddd77778888", EVALUATION_PIPELINE))
    result = aws.run("runs", "compare", "dddd77778888", SECOND)
    assert result.exit_code != 0
    assert (
        f"execution dddd77778888 is not an execution of {DEV.pipeline_name} or "
        f"{EVALUATION_PIPELINE}" in result.output
    )
    aws.assert_done()


def test_in_a_promotion_target_a_bare_id_is_the_eval_only_pipelines_without_a_call() -> None:
    def no_call(name: str) -> None:
        raise AssertionError(f"no {name} call: a target runs only its eval-only pipeline")

    config = SimpleNamespace(
        region="eu-west-1",
        account="222222222222",
        promotion=SimpleNamespace(trains=False),
        pipeline_name="mlops-loop-staging-training",
        evaluation_pipeline_name="mlops-loop-staging-evaluation",
    )
    ops = SimpleNamespace(clients=SimpleNamespace(session=None), config=config, client=no_call)
    assert tracking.resolve_execution(ops, "eeee99990000") == (  # type: ignore[arg-type]
        "arn:aws:sagemaker:eu-west-1:222222222222:pipeline/mlops-loop-staging-evaluation/"
        "execution/eeee99990000"
    )


def test_a_self_hosted_server_gets_the_operators_own_mlflow_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # MLflow's client reads MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN: so do we
    config = SimpleNamespace(
        tracking=SimpleNamespace(
            mlflow="external", server_arn=None, server_uri="https://mlflow.example.com"
        )
    )
    ops: Any = SimpleNamespace(config=config, client=lambda name: None)
    assert tracking.tracking_uri(ops, None) == "https://mlflow.example.com"
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-1")
    client = tracking.mlflow_client(ops, "https://mlflow.example.com")
    assert client.credentials.header() == "Bearer tok-1"
    # never to a plain-http URL (a local server) nor with a SageMaker server's SigV4
    assert tracking.mlflow_client(ops, "http://127.0.0.1:5000").credentials is None
