"""The CLI in batch serving: `cost` of a scoring run counts its transform job, `lineage
--predictions` follows a prediction set to its scoring run, model version, training run and data
version, and `lineage` without arguments starts from the package the scoring runs use.

SageMaker and CloudFormation answers go through botocore's Stubber (requests and responses
validated against the service models); S3 is moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from cli.cost import PriceTable
from tests.cli.conftest import (
    ACCOUNT,
    DEV,
    NOW,
    REGION,
    Aws,
    execution_arn,
    package_arn,
    price_file,
)
from tests.cli.test_lineage import RUN, _chain, _package

SCORING = "mlops-loop-dev-scoring"
JOB = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
BUCKET = "mlops-loop-dev-data"
SCORE_RUN = "k2x9q1w7e3r5"
PREFIX = f"predictions/transactions/2026-12-07 08:00+v%1/3/{SCORE_RUN}/"
TRANSFORM = f"{JOB}:transform-job/pipelines-{SCORE_RUN}-score-abc123"


@pytest.fixture()
def batch_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import cli.main
    from tests.conftest import BATCH, variant_config

    monkeypatch.setattr(cli.main, "load_config", lambda env: variant_config("dev", BATCH))
    yield


@pytest.fixture()
def prices(tmp_path: Path) -> Path:
    """$0.36 per instance-hour = $0.0001 per instance-second."""
    rates = {"ml.m5.xlarge": 0.36, "ml.c5.xlarge": 0.36}
    return price_file(tmp_path, {"processing": rates, "transform": rates})


def _scoring_steps(aws: Aws, execution: str) -> None:
    aws.stub("sagemaker").add_response(
        "list_pipeline_execution_steps",
        {
            "PipelineExecutionSteps": [
                {
                    "StepName": "Check",
                    "StepStatus": "Succeeded",
                    "Metadata": {"ProcessingJob": {"Arn": f"{JOB}:processing-job/check-1"}},
                },
                {
                    "StepName": "Model",
                    "StepStatus": "Succeeded",
                    "Metadata": {"Model": {"Arn": f"{JOB}:model/pipelines-{SCORE_RUN}-model-1"}},
                },
                {
                    "StepName": "Score",
                    "StepStatus": "Succeeded",
                    "Metadata": {"TransformJob": {"Arn": TRANSFORM}},
                },
            ]
        },
        {"PipelineExecutionArn": execution, "SortOrder": "Ascending"},
    )


def _transform(aws: Aws, seconds: int, count: int) -> None:
    name = TRANSFORM.rsplit("/", 1)[-1]
    aws.stub("sagemaker").add_response(
        "describe_transform_job",
        {
            "TransformJobName": name,
            "TransformJobArn": TRANSFORM,
            "TransformJobStatus": "Completed",
            "ModelName": f"pipelines-{SCORE_RUN}-model-1",
            "TransformInput": {
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://artifacts/rows"}
                }
            },
            "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/{PREFIX}"},
            "TransformResources": {"InstanceType": "ml.c5.xlarge", "InstanceCount": count},
            "CreationTime": NOW,
            "TransformStartTime": NOW,
            "TransformEndTime": NOW + timedelta(seconds=seconds),
        },
        {"TransformJobName": name},
    )


def _processing(aws: Aws, seconds: int) -> None:
    aws.stub("sagemaker").add_response(
        "describe_processing_job",
        {
            "ProcessingJobName": "check-1",
            "ProcessingJobArn": f"{JOB}:processing-job/check-1",
            "ProcessingJobStatus": "Completed",
            "CreationTime": NOW,
            "AppSpecification": {"ImageUri": "image"},
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": "ml.m5.xlarge",
                    "VolumeSizeInGB": 30,
                }
            },
            "ProcessingStartTime": NOW,
            "ProcessingEndTime": NOW + timedelta(seconds=seconds),
        },
        {"ProcessingJobName": "check-1"},
    )


def test_the_cost_of_a_scoring_run_counts_its_transform_job(
    aws: Aws, prices: Path, batch_env: None
) -> None:
    # Check: processing, 1 x ml.m5.xlarge, 300 s           -> 300 s x $0.0001  = $0.0300
    # Model: CreateModel, no instances                                          = $0
    # Score: transform, 2 x ml.c5.xlarge, 900 s             -> 1800 s x $0.0001 = $0.1800
    execution = execution_arn(SCORE_RUN, pipeline=SCORING)
    _scoring_steps(aws, execution)
    _processing(aws, 300)
    _transform(aws, 900, count=2)

    result = aws.run("cost", execution, "--prices", str(prices), "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["total"] == pytest.approx(0.21)
    by_step = {s["step"]: s for s in report["steps"]}
    assert by_step["Score"]["cost"] == pytest.approx(0.18)
    assert by_step["Score"]["kind"] == "transform"
    assert by_step["Model"]["cost"] == 0
    aws.assert_done()


def test_the_pinned_table_prices_transform_jobs_in_both_regions() -> None:
    table = PriceTable.load()
    for region in ("eu-west-1", "us-east-1"):
        for instance_type in ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge", "ml.c5.2xlarge"):
            assert table.rate(region, "transform", instance_type), (region, instance_type)
    # the README's cost table: a transform instance-hour of ml.m5.large in us-east-1
    assert table.rate("us-east-1", "transform", "ml.m5.large") == 0.115


def _marker(aws: Aws) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(
        Bucket=BUCKET,
        Key=PREFIX + "_SUCCESS",
        Body=json.dumps(
            {
                "transform_job": TRANSFORM,
                "model": f"pipelines-{SCORE_RUN}-model-1",
                "created_at": "2026-12-07T08:05:00.000+00:00",
                "completed_at": "2026-12-07T08:15:00.000+00:00",
            }
        ).encode(),
    )


def _scoring_run(aws: Aws, package_version: int = 3) -> str:
    execution = execution_arn(SCORE_RUN, pipeline=SCORING)
    sagemaker = aws.stub("sagemaker")
    sagemaker.add_response(
        "describe_pipeline_execution",
        {
            "PipelineExecutionArn": execution,
            "PipelineExecutionStatus": "Succeeded",
            "PipelineExecutionDisplayName": "score-transactions",
            "CreationTime": NOW,
        },
        {"PipelineExecutionArn": execution},
    )
    sagemaker.add_response(
        "list_pipeline_parameters_for_execution",
        {
            "PipelineParameters": [
                {
                    "Name": "InputDataUri",
                    "Value": f"s3://{BUCKET}/score/transactions/2026-12-07 08:00+v%1/",
                },
                {"Name": "ModelPackageArn", "Value": package_arn(package_version)},
            ]
        },
        {"PipelineExecutionArn": execution},
    )
    _scoring_steps(aws, execution)
    return execution


def test_lineage_of_a_prediction_set_reaches_the_data_version(aws: Aws, batch_env: None) -> None:
    _marker(aws)
    execution = _scoring_run(aws)
    _chain(aws, _package())  # package 3 -> training run -> data version

    result = aws.run("lineage", "--predictions", f"s3://{BUCKET}/{PREFIX}", "--json")

    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    predictions = found["predictions"]
    assert predictions["complete"] is True
    assert predictions["marker"]["transform_job"] == TRANSFORM
    assert (predictions["dataset_version"], predictions["model_version"]) == (
        "transactions/2026-12-07 08:00+v%1",
        "3",
    )
    assert found["scoring_run"]["arn"] == execution
    assert found["scoring_run"]["steps"][-1] == {
        "name": "Score",
        "status": "Succeeded",
        "kind": "transform",
        "job_arn": TRANSFORM,
    }
    assert found["model"]["package"]["arn"] == package_arn(3)
    assert found["model"]["execution"]["arn"] == RUN  # the training run
    assert found["model"]["data"]["dataset_version"] == "fraud/2026-11-20"
    assert found["warnings"] == []
    aws.assert_done()


def test_lineage_of_a_prediction_set_as_text(aws: Aws, batch_env: None) -> None:
    _marker(aws)
    _scoring_run(aws)
    _chain(aws, _package())

    result = aws.run("lineage", "--predictions", f"s3://{BUCKET}/{PREFIX}")

    assert result.exit_code == 0, result.output
    heads = [line.split()[0] for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert heads == ["predictions", "scoring", "package", "execution", "steps", "data"]
    assert f"Score      Succeeded transform {TRANSFORM}" in result.stdout


def test_an_incomplete_prediction_set_is_named_and_disagreements_warned(
    aws: Aws, batch_env: None
) -> None:
    aws.client("s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    _scoring_run(aws, package_version=4)  # the run says 4, the prefix says 3
    _chain(aws, {**_package(4), "ModelPackageArn": package_arn(4)})

    result = aws.run("lineage", "--predictions", f"s3://{BUCKET}/{PREFIX}", "--json")

    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["predictions"]["complete"] is False
    assert any("no _SUCCESS" in w and "never read" in w for w in found["warnings"])
    assert any("is not model version 3 of the prefix" in w for w in found["warnings"])


@pytest.mark.parametrize(
    "ref",
    [
        "predictions/transactions/v1/3",
        "predictions/transactions/v1/latest/run",
        "s3://b/score/transactions/v1/3/run/",
    ],
)
def test_a_bad_prediction_set_is_refused_in_one_line(aws: Aws, batch_env: None, ref: str) -> None:
    result = aws.run("lineage", "--predictions", ref)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1


def test_predictions_need_batch_serving(aws: Aws) -> None:
    result = aws.run("lineage", "--predictions", PREFIX)
    assert result.exit_code == 1
    assert "only serving.mode = batch writes prediction sets" in result.stderr


def test_lineage_in_batch_mode_starts_from_the_package_the_scoring_runs_use(
    aws: Aws, batch_env: None
) -> None:
    aws.serving(package_arn(3))
    aws.serving(package_arn(3))  # a clear error when missing, then the served package
    _chain(aws, _package())

    result = aws.run("lineage")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("package    version 3")
    assert result.stderr == ""


def test_models_in_batch_mode_say_what_serving_means(aws: Aws, batch_env: None) -> None:
    from tests.cli.conftest import register

    register(aws, approval="Approved")
    arn = package_arn(1)
    aws.serving(arn)

    result = aws.run("models")

    assert result.exit_code == 0, result.output
    assert "* = scores the next versions under score/" in result.stdout


def test_a_prediction_set_without_s3_takes_the_bucket_from_the_data_stack(
    aws: Aws, batch_env: None
) -> None:
    from tests.cli.conftest import stack

    _marker(aws)
    data_stack = f"{DEV.prefix}-data"
    aws.stub("cloudformation").add_response(
        "describe_stacks",
        stack(data_stack, outputs={"DataBucketName": BUCKET}),
        {"StackName": data_stack},
    )
    _scoring_run(aws)
    _chain(aws, _package())

    result = aws.run("lineage", "--predictions", PREFIX, "--json")

    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["predictions"]["uri"] == f"s3://{BUCKET}/{PREFIX}"
    assert found["predictions"]["complete"] is True
    assert found["warnings"] == []
    aws.assert_done()


def test_an_unreadable_scoring_run_falls_back_to_the_prefixs_model_version(
    aws: Aws, batch_env: None
) -> None:
    _marker(aws)
    execution = execution_arn(SCORE_RUN, pipeline=SCORING)
    aws.stub("sagemaker").add_client_error(
        "describe_pipeline_execution",
        service_error_code="ResourceNotFound",
        service_message=f"Pipeline execution {execution} does not exist",
        http_status_code=400,
        expected_params={"PipelineExecutionArn": execution},
    )
    _chain(aws, _package())  # package 3, from the prefix

    result = aws.run("lineage", "--predictions", f"s3://{BUCKET}/{PREFIX}", "--json")

    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["scoring_run"] is None
    assert found["model"]["package"]["arn"] == package_arn(3)
    assert any(f"scoring run {execution} is not readable" in w for w in found["warnings"])
    aws.assert_done()


def test_an_unreadable_marker_is_warned_like_a_missing_one(aws: Aws, batch_env: None) -> None:
    """S3 answers 403 for a key the caller cannot read, and for a missing key to a caller
    without s3:ListBucket: either way the set is not known complete."""
    aws.stub("s3").add_client_error(
        "get_object",
        service_error_code="AccessDenied",
        service_message="Access Denied",
        http_status_code=403,
        expected_params={"Bucket": BUCKET, "Key": PREFIX + "_SUCCESS"},
    )
    _scoring_run(aws)
    _chain(aws, _package())

    result = aws.run("lineage", "--predictions", f"s3://{BUCKET}/{PREFIX}", "--json")

    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["predictions"]["complete"] is False
    assert any("cannot read _SUCCESS" in w and "never read" in w for w in found["warnings"])


@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]
)
def test_scoring_arns_are_in_the_environments_partition(region: str, partition: str) -> None:
    import boto3

    from cli.prediction_lineage import _arn

    client = boto3.client("sagemaker", region_name=region)
    ops = SimpleNamespace(
        client=lambda service: client,
        config=SimpleNamespace(region=region, account=ACCOUNT),
    )
    arn = _arn(ops, "model-package/g/3")  # type: ignore[arg-type]
    assert arn == f"arn:{partition}:sagemaker:{region}:{ACCOUNT}:model-package/g/3"


def test_status_of_the_scoring_pipeline_shows_its_transform_step(aws: Aws, batch_env: None) -> None:
    execution = execution_arn(SCORE_RUN, pipeline=SCORING)
    sagemaker = aws.stub("sagemaker")
    sagemaker.add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                {
                    "PipelineExecutionArn": execution,
                    "PipelineExecutionStatus": "Failed",
                    "StartTime": NOW,
                    "PipelineExecutionDisplayName": "score-transactions",
                    "PipelineExecutionFailureReason": "Step failure: One or multiple steps failed.",
                }
            ]
        },
        {
            "PipelineName": SCORING,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 5,
        },
    )
    sagemaker.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": "DatasetVersion", "Value": "transactions/v1"}]},
        {"PipelineExecutionArn": execution},
    )
    sagemaker.add_response(
        "list_pipeline_execution_steps",
        {
            "PipelineExecutionSteps": [
                {"StepName": "Check", "StepStatus": "Succeeded"},
                {"StepName": "Model", "StepStatus": "Succeeded"},
                {
                    "StepName": "Score",
                    "StepStatus": "Failed",
                    "FailureReason": "ClientError: AlgorithmError: see the job's logs",
                    "Metadata": {"TransformJob": {"Arn": TRANSFORM}},
                },
            ]
        },
        {"PipelineExecutionArn": execution, "SortOrder": "Ascending"},
    )

    result = aws.run("status", "--pipeline", "scoring")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"pipeline {SCORING} ({REGION}), newest first:"
    assert "Check:Succeeded  Model:Succeeded  Score:Failed" in lines[2]
    assert "Score failed: ClientError: AlgorithmError: see the job's logs" in lines[3]
    aws.assert_done()
