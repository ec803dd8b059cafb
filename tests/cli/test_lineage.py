"""`mlops lineage`: endpoint -> package -> execution -> steps -> data."""

from __future__ import annotations

import json
from typing import Any

from tests.cli.conftest import (
    ACCOUNT,
    GROUP,
    NOW,
    REGION,
    SERVING_STACK,
    Aws,
    execution_arn,
    package_arn,
)

RUN = execution_arn("run7")
DATA = "s3://mlops-loop-dev-data/landing/fraud/2026-11-20/"
TRAIN_JOB = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/pipelines-run7-Train"
PREPARE_JOB = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-run6-Prepare"


def _package(version: int = 3, **metadata: str) -> dict[str, Any]:
    return {
        "ModelPackageArn": package_arn(version),
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": version,
        "ModelApprovalStatus": "Approved",
        "ApprovalDescription": "beats v2",
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "CreationTime": NOW,
        "ModelPackageName": GROUP,
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/xgboost:3.0-5",
                    "ModelDataUrl": "s3://artifacts/run7/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "MetadataProperties": {"CommitId": "abc1234", "GeneratedBy": RUN},
        "CustomerMetadataProperties": {
            "input_data_uri": DATA,
            "dataset_version": "fraud/2026-11-20",
            "data_digest": "sha256:d1g35t",
            "code_commit": "abc1234",
            "pipeline_execution_id": "run7",
            "sdk_version": "3.27.0",
            "metric": "auc",
            "challenger": "0.9132",
            **metadata,
        },
    }


def _chain(
    aws: Aws,
    package: dict[str, Any],
    *,
    execution_readable: bool = True,
    train_metadata: dict[str, Any] | None = None,
) -> None:
    sagemaker = aws.stub("sagemaker")
    sagemaker.add_response(
        "describe_model_package", package, {"ModelPackageName": package["ModelPackageArn"]}
    )
    if not execution_readable:
        sagemaker.add_client_error(
            "describe_pipeline_execution",
            service_error_code="ResourceNotFound",
            service_message="Pipeline execution run7 does not exist",
            http_status_code=400,
        )
        return
    sagemaker.add_response(
        "describe_pipeline_execution",
        {
            "PipelineExecutionArn": RUN,
            "PipelineExecutionStatus": "Succeeded",
            "PipelineExecutionDisplayName": "data-fraud-2026-11-20-g1",
            "CreationTime": NOW,
        },
        {"PipelineExecutionArn": RUN},
    )
    sagemaker.add_response(
        "list_pipeline_parameters_for_execution",
        {
            "PipelineParameters": [
                {"Name": "InputDataUri", "Value": DATA},
                {"Name": "DatasetVersion", "Value": "fraud/2026-11-20"},
                {"Name": "DataDigest", "Value": "sha256:d1g35t"},
                {"Name": "CodeCommit", "Value": "abc1234"},
            ]
        },
        {"PipelineExecutionArn": RUN},
    )
    sagemaker.add_response(
        "list_pipeline_execution_steps",
        {
            "PipelineExecutionSteps": [
                {
                    "StepName": "Prepare",
                    "StepStatus": "Succeeded",
                    "Metadata": {"ProcessingJob": {"Arn": PREPARE_JOB}},
                    "CacheHitResult": {"SourcePipelineExecutionArn": execution_arn("run6")},
                },
                {
                    "StepName": "Train",
                    "StepStatus": "Succeeded",
                    "Metadata": train_metadata or {"TrainingJob": {"Arn": TRAIN_JOB}},
                },
                {
                    "StepName": "Register",
                    "StepStatus": "Succeeded",
                    "Metadata": {"RegisterModel": {"Arn": package_arn(3)}},
                },
            ]
        },
        {"PipelineExecutionArn": RUN, "SortOrder": "Ascending"},
    )


def _endpoint(aws: Aws, status: str = "InService", **described: Any) -> None:
    aws.stub("sagemaker").add_response(
        "describe_endpoint",
        {
            "EndpointName": "mlops-loop-dev-endpoint",
            "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/mlops-loop-dev-endpoint",
            "EndpointStatus": status,
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
            **described,
        },
        {"EndpointName": "mlops-loop-dev-endpoint"},
    )


def _sections(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines() if not line.startswith(" ")]


def test_lineage_from_the_endpoint_prints_the_whole_chain(aws: Aws) -> None:
    aws.serving(package_arn(3))
    _endpoint(aws)
    _chain(aws, _package())
    result = aws.run("lineage", "--endpoint")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert _sections(out) == ["endpoint", "package", "execution", "steps", "data"]
    assert (
        f"endpoint   mlops-loop-dev-endpoint (InService), deployed by stack {SERVING_STACK}" in out
    )
    assert f"package    version 3 of {GROUP}: Approved, stage -" in out
    assert "approval: beats v2" in out
    assert f"GeneratedBy: {RUN}" in out
    assert "sdk_version = 3.27.0" in out
    assert f"execution  {RUN}" in out
    assert "Succeeded, started 2026-11-21 10:00, data-fraud-2026-11-20-g1" in out
    assert f"Train      Succeeded training {TRAIN_JOB}" in out
    assert (
        f"Prepare    Succeeded processing {PREPARE_JOB} (cache hit of {execution_arn('run6')})"
        in (out)
    )
    assert f"data       {DATA}" in out
    assert "dataset version fraud/2026-11-20" in out
    assert "data digest sha256:d1g35t" in out
    assert result.stderr == ""
    aws.assert_done()


def test_lineage_without_arguments_starts_from_the_endpoint(aws: Aws) -> None:
    aws.serving(package_arn(3))
    _endpoint(aws, status="Updating")
    _chain(aws, _package())
    result = aws.run("lineage")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("endpoint   mlops-loop-dev-endpoint (Updating)")
    assert result.stderr.strip() == "warning: endpoint mlops-loop-dev-endpoint is Updating"


def test_lineage_of_a_package_as_json(aws: Aws) -> None:
    _chain(aws, _package())
    result = aws.run("lineage", package_arn(3), "--json")
    assert result.exit_code == 0, result.output
    chain = json.loads(result.stdout)
    assert chain["endpoint"] is None
    assert chain["package"]["version"] == 3
    assert chain["execution"]["arn"] == RUN
    assert chain["parameters"]["DatasetVersion"] == "fraud/2026-11-20"
    assert [s["name"] for s in chain["steps"]] == ["Prepare", "Train", "Register"]
    assert chain["data"] == {
        "input_uri": DATA,
        "dataset_version": "fraud/2026-11-20",
        "data_digest": "sha256:d1g35t",
    }
    assert chain["warnings"] == []


def test_lineage_warns_when_package_and_execution_disagree(aws: Aws) -> None:
    _chain(aws, _package(data_digest="sha256:other"))
    result = aws.run("lineage", package_arn(3))
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        "warning: package metadata data_digest='sha256:other' differs from the execution's "
        "DataDigest='sha256:d1g35t'"
    )


def test_lineage_survives_a_deleted_execution(aws: Aws) -> None:
    _chain(aws, _package(), execution_readable=False)
    result = aws.run("lineage", package_arn(3))
    assert result.exit_code == 0, result.output
    assert _sections(result.stdout) == ["package", "data"]
    assert f"data       {DATA}" in result.stdout  # from the package's own metadata
    assert f"warning: execution {RUN} is not readable: DescribePipelineExecution failed" in (
        result.stderr
    )


def test_lineage_with_nothing_deployed(aws: Aws) -> None:
    aws.serving("")
    result = aws.run("lineage", "--endpoint")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: nothing is deployed: stack {SERVING_STACK} has an empty ModelPackageArn "
        f"(approve a package of {GROUP} to deploy one)"
    )


def test_lineage_takes_a_package_or_the_endpoint_not_both(aws: Aws) -> None:
    result = aws.run("lineage", "3", "--endpoint")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: give one of a package, --endpoint or --predictions"


def test_lineage_falls_back_to_the_execution_id_in_the_metadata(aws: Aws) -> None:
    package = _package()
    package["MetadataProperties"] = {"CommitId": "abc1234"}
    _chain(aws, package)
    result = aws.run("lineage", package_arn(3), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["execution"]["arn"] == RUN


def test_lineage_reads_a_serverless_endpoint_like_any_other(aws: Aws) -> None:
    """serving.mode serverless: DescribeEndpoint reports a serverless variant (its memory and
    concurrency, no instance count); the CLI needs only the status."""
    aws.serving(package_arn(3))
    _endpoint(
        aws,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "CurrentWeight": 1.0,
                "DesiredWeight": 1.0,
                "CurrentServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                "DesiredServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
            }
        ],
    )
    _chain(aws, _package())
    result = aws.run("lineage", "--endpoint")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("endpoint   mlops-loop-dev-endpoint (InService)")
    aws.assert_done()


def test_lineage_of_a_promoted_copy_names_the_training_account_and_reads_nothing_there(
    aws: Aws,
) -> None:
    """promote mode: the copy's GeneratedBy is the execution of the account that trained it;
    the data (dataset version, digest) come from the copy's own metadata."""
    trained_by = RUN.replace(f":{ACCOUNT}:", ":999999999999:")
    source = "arn:aws:sagemaker:eu-west-1:999999999999:model-package/mlops-loop-build-models/4"
    package = _package(promoted_from=source, training_account="999999999999")
    package["MetadataProperties"] = {"CommitId": "abc1234", "GeneratedBy": trained_by}
    aws.stub("sagemaker").add_response(
        "describe_model_package", package, {"ModelPackageName": package["ModelPackageArn"]}
    )  # and no DescribePipelineExecution: the stub fails any call it does not expect
    result = aws.run("lineage", package_arn(3), "--json")
    assert result.exit_code == 0, result.output
    lineage = json.loads(result.stdout)
    assert lineage["data"]["dataset_version"] == "fraud/2026-11-20"
    assert lineage["data"]["data_digest"] == "sha256:d1g35t"
    assert lineage["package"]["customer_metadata"]["training_account"] == "999999999999"
    (warning,) = lineage["warnings"]
    assert warning.startswith(
        f"execution {trained_by} ran in account 999999999999, which trained this package "
        f"(promoted from {source})"
    )


TUNING_JOB = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/pipelines-run7"


def test_lineage_of_a_tuned_model_names_the_best_training_job(aws: Aws) -> None:
    best = "pipelines-run7-004-1a2b3c4d"
    package = _package(training_job_name=best, tuning_job_name="pipelines-run7")
    _chain(aws, package, train_metadata={"TuningJob": {"Arn": TUNING_JOB}})
    result = aws.run("lineage", package_arn(3))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    at = lines.index(f"           Train      Succeeded tuning {TUNING_JOB}")
    assert lines[at + 1] == f"                      best training job {best}"
    aws.assert_done()
    _chain(aws, package, train_metadata={"TuningJob": {"Arn": TUNING_JOB}})
    chain = json.loads(aws.run("lineage", package_arn(3), "--json").stdout)
    assert chain["best_training_job"] == best
    assert chain["steps"][1]["kind"] == "tuning"


def test_lineage_without_tuning_names_no_best_training_job(aws: Aws) -> None:
    _chain(aws, _package(training_job_name="pipelines-run7-Train-x"))
    chain = json.loads(aws.run("lineage", package_arn(3), "--json").stdout)
    assert chain["best_training_job"] is None
    aws.assert_done()
