"""`mlops cost`: estimates checked against cases computed by hand."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cli.cost import PRICES_FILE, PriceTable, job_usage
from tests.cli.conftest import ACCOUNT, NOW, PIPELINE, REGION, Aws, execution_arn, price_file

JOB = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


@pytest.fixture()
def prices(tmp_path: Path) -> Path:
    """$0.36 per instance-hour = $0.0001 per instance-second: easy to compute by hand."""
    rates = {"ml.m5.xlarge": 0.36, "ml.m5.2xlarge": 0.72}
    return price_file(tmp_path, {"training": rates, "processing": rates})


def _steps(aws: Aws, execution_id: str, *steps: dict[str, Any]) -> None:
    aws.stub("sagemaker").add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": list(steps)},
        {"PipelineExecutionArn": execution_arn(execution_id), "SortOrder": "Ascending"},
    )


def _step(name: str, *, job: str | None = None, cached_from: str | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {"StepName": name, "StepStatus": "Succeeded"}
    if job and job.startswith("processing"):
        step["Metadata"] = {"ProcessingJob": {"Arn": f"{JOB}:processing-job/{job}"}}
    elif job and job.startswith("train"):
        step["Metadata"] = {"TrainingJob": {"Arn": f"{JOB}:training-job/{job}"}}
    elif name == "Gate":
        step["Metadata"] = {"Condition": {"Outcome": "True"}}
    elif name == "Register":
        step["Metadata"] = {"RegisterModel": {"Arn": f"{JOB}:model-package/g/1"}}
    if cached_from:
        step["CacheHitResult"] = {"SourcePipelineExecutionArn": execution_arn(cached_from)}
    return step


def _processing(aws: Aws, name: str, seconds: int, instance: str = "ml.m5.xlarge") -> None:
    aws.stub("sagemaker").add_response(
        "describe_processing_job",
        {
            "ProcessingJobName": name,
            "ProcessingJobArn": f"{JOB}:processing-job/{name}",
            "ProcessingJobStatus": "Completed",
            "CreationTime": NOW,
            "AppSpecification": {"ImageUri": "image"},
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": instance,
                    "VolumeSizeInGB": 30,
                }
            },
            "ProcessingStartTime": NOW,
            "ProcessingEndTime": NOW + timedelta(seconds=seconds),
        },
        {"ProcessingJobName": name},
    )


def _training(
    aws: Aws,
    name: str,
    *,
    run: int,
    billable: int,
    spot: bool,
    count: int = 1,
    instance: str = "ml.m5.xlarge",
) -> None:
    aws.stub("sagemaker").add_response(
        "describe_training_job",
        {
            "TrainingJobName": name,
            "TrainingJobArn": f"{JOB}:training-job/{name}",
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "CreationTime": NOW,
            "ModelArtifacts": {"S3ModelArtifacts": "s3://artifacts/model.tar.gz"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "ResourceConfig": {
                "InstanceType": instance,
                "InstanceCount": count,
                "VolumeSizeInGB": 30,
            },
            "EnableManagedSpotTraining": spot,
            "TrainingStartTime": NOW,
            "TrainingEndTime": NOW + timedelta(seconds=run),
            "TrainingTimeInSeconds": run,
            "BillableTimeInSeconds": billable,
        },
        {"TrainingJobName": name},
    )


def test_cost_of_a_run_matches_the_hand_computed_estimate(aws: Aws, prices: Path) -> None:
    # Prepare:  processing, 1 x ml.m5.xlarge, 300 s      -> 300 s x $0.0001        = $0.0300
    # Train:    spot training, 1 x ml.m5.xlarge, ran 600 s, billable 240 s
    #                                                     -> 240 s x $0.0001        = $0.0240
    #           spot saving (600 - 240) s x $0.0001                                 = $0.0360
    # Evaluate: processing, 1 x ml.m5.xlarge, 300 s      -> 300 s x $0.0001        = $0.0300
    # Gate, Register: no instances                                                  = $0
    # Total $0.0840, spot savings $0.0360, no cache hits.
    _steps(
        aws,
        "cost1",
        _step("Prepare", job="processing-prep-1"),
        _step("Train", job="train-1"),
        _step("Evaluate", job="processing-eval-1"),
        _step("Gate"),
        _step("Register"),
    )
    _processing(aws, "processing-prep-1", 300)
    _training(aws, "train-1", run=600, billable=240, spot=True)
    _processing(aws, "processing-eval-1", 300)
    result = aws.run("cost", execution_arn("cost1"), "--prices", str(prices), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["total"] == pytest.approx(0.084)
    assert report["spot_savings"] == pytest.approx(0.036)
    assert (report["cache_hits"], report["unpriced_steps"]) == (0, [])
    by_step = {s["step"]: s for s in report["steps"]}
    assert by_step["Prepare"]["cost"] == pytest.approx(0.03)
    assert by_step["Train"]["cost"] == pytest.approx(0.024)
    assert (by_step["Train"]["run_seconds"], by_step["Train"]["billed_seconds"]) == (600, 240)
    assert by_step["Gate"]["cost"] == 0 and by_step["Gate"]["job"] is None
    aws.assert_done()


def test_cost_table_output(aws: Aws, prices: Path) -> None:
    _steps(
        aws,
        "cost1",
        _step("Prepare", job="processing-prep-1"),
        _step("Train", job="train-1"),
        _step("Gate"),
    )
    _processing(aws, "processing-prep-1", 300)
    _training(aws, "train-1", run=600, billable=240, spot=True)
    result = aws.run("cost", execution_arn("cost1"), "--prices", str(prices))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"execution {execution_arn('cost1')}"
    assert lines[1].startswith(f"on-demand USD in {REGION}, prices compiled 2026-01-01")
    assert lines[3].split() == [
        "Prepare", "Succeeded", "processing", "ml.m5.xlarge", "1", "300", "300", "$0.0300",
    ]  # fmt: skip
    assert lines[4].split()[:9] == [
        "Train", "Succeeded", "training", "(spot)", "ml.m5.xlarge", "1", "600", "240", "$0.0240",
    ]  # fmt: skip
    assert lines[4].endswith("spot saved $0.0360")
    assert lines[-1] == "total $0.0540; spot savings $0.0360; cache hits 0"


def test_cache_hits_cost_nothing_and_report_what_they_saved(aws: Aws, prices: Path) -> None:
    # Prepare and Evaluate reuse run cost1 (300 s each on 1 x ml.m5.xlarge: $0.0300 each).
    # Train runs: on-demand, 2 x ml.m5.2xlarge ($0.72/h), 600 s -> 600 x 2 x 0.72 / 3600 = $0.24.
    _steps(
        aws,
        "cost2",
        _step("Prepare", job="processing-prep-2", cached_from="cost1"),
        _step("Train", job="train-2"),
        _step("Evaluate", job="processing-eval-2", cached_from="cost1"),
    )
    _steps(
        aws,
        "cost1",
        _step("Prepare", job="processing-prep-1"),
        _step("Train", job="train-1"),
        _step("Evaluate", job="processing-eval-1"),
    )
    _processing(aws, "processing-prep-1", 300)
    _training(aws, "train-2", run=600, billable=600, spot=False, count=2, instance="ml.m5.2xlarge")
    _processing(aws, "processing-eval-1", 300)  # cost1's steps are listed once, not twice
    result = aws.run("cost", execution_arn("cost2"), "--prices", str(prices))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "total $0.2400; spot savings $0.0000; cache hits 2 (saved $0.0600)"
    )
    assert "cache hit, saved $0.0300" in result.stdout
    aws.assert_done()


def test_cache_hit_whose_source_cannot_be_read_is_counted(aws: Aws, prices: Path) -> None:
    _steps(aws, "cost3", _step("Prepare", job="processing-prep-3", cached_from="gone"))
    aws.stub("sagemaker").add_client_error(
        "list_pipeline_execution_steps",
        service_error_code="AccessDeniedException",
        service_message="no",
        http_status_code=400,
    )
    result = aws.run("cost", execution_arn("cost3"), "--prices", str(prices))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "total $0.0000; spot savings $0.0000; cache hits 1 (saved $0.0000 + 1 step(s) not "
        "estimated)"
    )


def test_unpriced_instance_type_is_left_out_with_a_warning(aws: Aws, prices: Path) -> None:
    _steps(
        aws,
        "cost4",
        _step("Prepare", job="processing-prep-4"),
        _step("Evaluate", job="processing-eval-4"),
    )
    _processing(aws, "processing-prep-4", 300, instance="ml.p4d.24xlarge")
    _processing(aws, "processing-eval-4", 300)
    result = aws.run("cost", execution_arn("cost4"), "--prices", str(prices))
    assert result.exit_code == 0, result.output
    assert "no processing price for ml.p4d.24xlarge in eu-west-1" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("total $0.0300;")
    assert result.stderr.strip() == (
        "warning: 1 step(s) without a price are not in the total: Prepare (add them to the "
        "price table)"
    )


def test_cost_uses_the_pinned_table_for_the_environments_region(aws: Aws) -> None:
    table = PriceTable.load()
    rate = table.rate(REGION, "processing", "ml.m5.xlarge")
    assert rate is not None
    _steps(aws, "cost5", _step("Prepare", job="processing-prep-5"))
    _processing(aws, "processing-prep-5", 3600)
    result = aws.run("cost", execution_arn("cost5"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["total"] == pytest.approx(rate)  # one instance-hour costs the hourly rate
    assert report["prices"]["file"] == str(PRICES_FILE)


def test_pinned_table_covers_the_projects_instance_types_in_both_regions() -> None:
    raw = json.loads(PRICES_FILE.read_text())
    assert raw["compiled"] and raw["source"] and raw["refresh"]
    table = PriceTable.load()
    types = [f"ml.m5.{s}" for s in ("large", "xlarge", "2xlarge", "4xlarge")]
    types += [f"ml.c5.{s}" for s in ("xlarge", "2xlarge", "4xlarge")] + ["ml.g4dn.xlarge"]
    for region in ("eu-west-1", "us-east-1"):
        for kind in ("training", "processing"):
            for instance_type in types:
                assert table.rate(region, kind, instance_type), (region, kind, instance_type)
    # region-aware: the same type costs more in Ireland than in N. Virginia
    assert table.rate("us-east-1", "training", "ml.m5.xlarge") == 0.23
    eu = table.rate("eu-west-1", "training", "ml.m5.xlarge")
    assert eu is not None and eu > 0.23


def test_cost_by_execution_id(aws: Aws, prices: Path) -> None:
    aws.stub("sagemaker").add_response(
        "list_pipeline_executions",
        {"PipelineExecutionSummaries": [{"PipelineExecutionArn": execution_arn("cost6")}]},
        {"PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending"},
    )
    _steps(aws, "cost6", _step("Gate"))
    result = aws.run("cost", "cost6", "--prices", str(prices))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"execution {execution_arn('cost6')}"


def test_cost_refuses_an_execution_of_another_environment(aws: Aws) -> None:
    other = execution_arn("x1", pipeline="mlops-loop-prod-training")
    result = aws.run("cost", other)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: execution {other} belongs to pipeline 'mlops-loop-prod-training', not "
        f"'{PIPELINE}' or 'mlops-loop-dev-evaluation' of env 'dev': wrong --env?"
    )


def test_cost_of_an_unknown_execution_id(aws: Aws) -> None:
    # an id is looked up in both pipelines of the environment
    for name in (PIPELINE, "mlops-loop-dev-evaluation"):
        aws.stub("sagemaker").add_response(
            "list_pipeline_executions",
            {"PipelineExecutionSummaries": []},
            {"PipelineName": name, "SortBy": "CreationTime", "SortOrder": "Descending"},
        )
    result = aws.run("cost", "nope")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: no execution 'nope' of pipeline {PIPELINE!r} or 'mlops-loop-dev-evaluation' "
        "(see `mlops status`)"
    )
    aws.assert_done()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{", "Expecting property name"),
        ('{"compiled": "x"}', "'regions'"),
        ('{"regions": {"eu-west-1": {"training": {"ml.m5.large": -1}}}}', "non-negative"),
    ],
)
def test_bad_price_table_is_named(aws: Aws, tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    result = aws.run("cost", execution_arn("x"), "--prices", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: price table {path}: ")
    assert problem in result.stderr


def test_running_processing_job_counts_until_now() -> None:
    from botocore.stub import Stubber

    from tests.cli.conftest import SESSION

    client = SESSION.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_processing_job",
            {
                "ProcessingJobName": "p",
                "ProcessingJobArn": f"{JOB}:processing-job/p",
                "ProcessingJobStatus": "InProgress",
                "CreationTime": NOW,
                "AppSpecification": {"ImageUri": "image"},
                "ProcessingResources": {
                    "ClusterConfig": {
                        "InstanceCount": 2,
                        "InstanceType": "ml.m5.xlarge",
                        "VolumeSizeInGB": 30,
                    }
                },
                "ProcessingStartTime": NOW,
            },
        )
        usage = job_usage(
            client, "processing", f"{JOB}:processing-job/p", NOW + timedelta(seconds=90)
        )
    assert (usage.billed_seconds, usage.instance_count, usage.running) == (90.0, 2, True)


def _tuning(aws: Aws, name: str, trials: list[str], best: str) -> None:
    stub = aws.stub("sagemaker")
    stub.add_response(
        "describe_hyper_parameter_tuning_job",
        {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobArn": f"{JOB}:hyper-parameter-tuning-job/{name}",
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
            },
            "HyperParameterTuningJobStatus": "Completed",
            "CreationTime": NOW,
            "TrainingJobStatusCounters": {"Completed": len(trials)},
            "ObjectiveStatusCounters": {"Succeeded": len(trials)},
            "BestTrainingJob": {
                "TrainingJobName": best,
                "TrainingJobArn": f"{JOB}:training-job/{best}",
                "CreationTime": NOW,
                "TrainingJobStatus": "Completed",
                "TunedHyperParameters": {"eta": "0.1"},
            },
        },
        {"HyperParameterTuningJobName": name},
    )
    stub.add_response(
        "list_training_jobs_for_hyper_parameter_tuning_job",
        {
            "TrainingJobSummaries": [
                {
                    "TrainingJobName": trial,
                    "TrainingJobArn": f"{JOB}:training-job/{trial}",
                    "CreationTime": NOW,
                    "TrainingJobStatus": "Completed",
                    "TunedHyperParameters": {"eta": "0.1"},
                }
                for trial in trials
            ]
        },
        {"HyperParameterTuningJobName": name},
    )


def test_a_tuning_step_costs_the_training_jobs_it_ran(aws: Aws, prices: Path) -> None:
    # Train is a tuning job of two trials on ml.m5.xlarge ($0.0001 per instance-second):
    #   trial 1: spot, ran 600 s, billable 240 s        -> $0.0240, spot saving $0.0360
    #   trial 2: on-demand, 2 instances, 300 s           -> 600 instance-s = $0.0600
    # Train $0.0840, spot savings $0.0360.
    tuning_arn = f"{JOB}:hyper-parameter-tuning-job/pipelines-tune-1"
    _steps(
        aws,
        "tune1",
        {
            "StepName": "Train",
            "StepStatus": "Succeeded",
            "Metadata": {"TuningJob": {"Arn": tuning_arn}},
        },
    )
    _tuning(aws, "pipelines-tune-1", ["pipelines-tune-1-001-a", "pipelines-tune-1-002-b"], "b")
    _training(aws, "pipelines-tune-1-001-a", run=600, billable=240, spot=True)
    _training(aws, "pipelines-tune-1-002-b", run=300, billable=300, spot=False, count=2)
    result = aws.run("cost", execution_arn("tune1"), "--prices", str(prices), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    [train] = report["steps"]
    assert (train["kind"], train["job"]) == ("tuning", "pipelines-tune-1")
    assert train["cost"] == pytest.approx(0.084)
    assert train["spot_savings"] == pytest.approx(0.036)
    assert (train["run_seconds"], train["billed_seconds"]) == (1200, 840)
    assert train["note"] == "tuning: 2 training jobs, instance-seconds summed; best b"
    assert report["total"] == pytest.approx(0.084) and report["unpriced_steps"] == []
    aws.assert_done()
