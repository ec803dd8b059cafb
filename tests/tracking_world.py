"""What a finished training execution leaves behind, for the run tracker's tests (the Lambda's
and the CLI's): SageMaker's answers, queued on a botocore Stubber (validated against the service
model), and the steps' outputs in S3 (moto). evaluation.json is built from evaluate's contract
names (evaluation_contract.py), not copied from a run."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from botocore.stub import Stubber

from pipeline_code.steps import load

contract = load("evaluate", "evaluation_contract")

START = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
END = dt.datetime(2026, 11, 20, 9, 52, tzinfo=dt.UTC)
CODE_HASH = "ab" * 32
SPLIT_REPORT = {"input": {"rows": 30000}, "fractions": {"train": 0.7, "test": 0.15}}


def evaluation(
    champion: bool = True, auc: float = 0.91, compared_rows: int = 4562
) -> dict[str, Any]:
    """evaluation.json of a run on 4562 test rows; the champion (if any) scored on
    `compared_rows` of them (the gate's paired numbers are on those rows)."""

    def metrics(value: float) -> dict[str, Any]:
        return {
            "auc": {"value": value, "standard_deviation": 0.01},
            "f1": {"value": value - 0.4, "standard_deviation": 0.03},
        }

    return {
        contract.METRICS_KEY: metrics(auc),
        contract.CHAMPION_METRICS_KEY: metrics(auc - 0.01) if champion else None,
        contract.GATE_KEY: {
            contract.GATE_METRIC: "auc",
            "method": "delong",
            "floor": 0.8,
            "tolerance": 0.01,
            "min_positives": 100,
            contract.GATE_DELTA: 0.01 if champion else None,
            contract.GATE_STANDARD_ERROR: 0.004 if champion else None,
            contract.GATE_LOWER_BOUND: 0.002 if champion else None,
            contract.GATE_UPPER_BOUND: 0.018 if champion else None,
            contract.GATE_TEST_ROWS: 4562,
            contract.GATE_CHALLENGER: auc,
            contract.GATE_CHAMPION: auc - 0.012 if champion else None,
            "comparison": {
                "compared": champion,
                "challenger": auc - 0.002 if champion else None,
                "rows": compared_rows if champion else None,
            },
            contract.GATE_DECISION: contract.GATE_REGISTER,
            contract.GATE_REASON: f"register: challenger auc {auc:.4f} >= floor 0.8000",
        },
        contract.CALIBRATION_KEY: {"brier_score": 0.026, "ece_scheme": "equal-count"},
    }


def _parts(arn: str) -> tuple[str, str, str, str]:
    """(region, account, pipeline, execution id) of an execution ARN."""
    head, execution_id = arn.split("/execution/")
    _, _, _, region, account, rest = head.split(":", 5)
    return region, account, rest.removeprefix("pipeline/"), execution_id


def output_prefix(arn: str) -> str:
    _, _, pipeline, execution_id = _parts(arn)
    return f"pipelines/{pipeline}/executions/{execution_id}"


def job_names(arn: str) -> dict[str, str]:
    execution_id = _parts(arn)[3]
    return {
        "Evaluate": f"pipelines-{execution_id}-Evaluate-AbC987xYz",
        "Prepare": f"pipelines-{execution_id}-Prepare-XyZ123aBc",
    }


def processing_job(arn: str, bucket: str, step: str, output: str) -> dict[str, Any]:
    region, account, _, _ = _parts(arn)
    name = job_names(arn)[step]
    return {
        "ProcessingJobName": name,
        "ProcessingJobArn": f"arn:aws:sagemaker:{region}:{account}:processing-job/{name.lower()}",
        "ProcessingJobStatus": "Completed",
        "CreationTime": START,
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "VolumeSizeInGB": 30,
            }
        },
        "AppSpecification": {"ImageUri": "123.dkr.ecr.eu-west-1.amazonaws.com/sklearn:1.2-1"},
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{bucket}/pipeline-code/{CODE_HASH}/{step.lower()}",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": output,
                    "S3Output": {
                        "S3Uri": f"s3://{bucket}/{output_prefix(arn)}/{step}/{output}",
                        "LocalPath": f"/opt/ml/processing/{output}",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }


def queue_execution_reads(
    stubber: Stubber,
    arn: str,
    bucket: str,
    *,
    package_arn: str | None = None,
    parameters: dict[str, str] | None = None,
    status: str = "Succeeded",
    tuning: tuple[dict[str, Any], list[list[dict[str, Any]]]] | None = None,
) -> None:
    """The SageMaker calls execution_reader.read_execution makes, in its order; with `tuning`
    (a DescribeHyperParameterTuningJob answer, and the trial summaries of each page of
    ListTrainingJobsForHyperParameterTuningJob) the Train step was a tuning step."""
    region, account, pipeline, _ = _parts(arn)
    by_arn = {"PipelineExecutionArn": arn}
    stubber.add_response(
        "describe_pipeline_execution",
        {
            "PipelineArn": f"arn:aws:sagemaker:{region}:{account}:pipeline/{pipeline}",
            "PipelineExecutionArn": arn,
            "PipelineExecutionStatus": status,
            "CreationTime": START,
            "LastModifiedTime": END,
        },
        by_arn,
    )
    jobs = job_names(arn)
    job_arn = f"arn:aws:sagemaker:{region}:{account}:processing-job/"
    steps: list[dict[str, Any]] = [
        {
            "StepName": step,
            "StepStatus": "Succeeded",
            "Metadata": {"ProcessingJob": {"Arn": job_arn + jobs[step].lower()}},
        }
        for step in ("Evaluate", "Prepare")
    ]
    if tuning is not None:
        tuning_arn = str(tuning[0]["HyperParameterTuningJobArn"])
        train = {"TuningJob": {"Arn": tuning_arn}}
        steps.append({"StepName": "Train", "StepStatus": "Succeeded", "Metadata": train})
    if package_arn:
        register = {"RegisterModel": {"Arn": package_arn}}
        steps.insert(0, {"StepName": "Register", "StepStatus": "Succeeded", "Metadata": register})
    stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps}, by_arn)
    for step, output in (("Evaluate", "evaluation"), ("Prepare", "report")):
        stubber.add_response(
            "describe_processing_job",
            processing_job(arn, bucket, step, output),
            {"ProcessingJobName": jobs[step].lower()},
        )
    if tuning is not None:
        job, pages = tuning
        name = str(job["HyperParameterTuningJobName"])
        stubber.add_response(
            "describe_hyper_parameter_tuning_job", job, {"HyperParameterTuningJobName": name}
        )
        for number, page in enumerate(pages):
            request = {
                "HyperParameterTuningJobName": name,
                "SortBy": "CreationTime",
                "SortOrder": "Ascending",
                "MaxResults": 100,
                **({"NextToken": f"page-{number}"} if number else {}),
            }
            more = {"NextToken": f"page-{number + 1}"} if number + 1 < len(pages) else {}
            stubber.add_response(
                "list_training_jobs_for_hyper_parameter_tuning_job",
                {"TrainingJobSummaries": page, **more},
                request,
            )
    values = parameters or {"DatasetVersion": "2026-11-20", "CodeCommit": "c0ffee0"}
    stubber.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": k, "Value": v} for k, v in values.items()]},
        by_arn,
    )


def put_outputs(s3: Any, bucket: str, arn: str, report: dict[str, Any]) -> None:
    """Evaluate's evaluation.json and a plot, Prepare's split report, where the jobs wrote them."""
    prefix = output_prefix(arn)
    folder = f"{prefix}/Evaluate/evaluation"
    s3.put_object(Bucket=bucket, Key=f"{folder}/evaluation.json", Body=json.dumps(report).encode())
    s3.put_object(Bucket=bucket, Key=f"{folder}/roc.png", Body=b"png")
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}/Prepare/report/split_report.json",
        Body=json.dumps(SPLIT_REPORT).encode(),
    )


# --- a tuning step: its tuning job and three trials (the best is the second) ---

TUNING_JOB = "pipelines-a1b2c3d4e5f6"
TUNING_REGION, TUNING_ACCOUNT, TUNING_BUCKET = "eu-west-1", "123456789012", "mlops-dev-artifacts"
SAGEMAKER = f"arn:aws:sagemaker:{TUNING_REGION}:{TUNING_ACCOUNT}"
TUNING_ARN = f"{SAGEMAKER}:hyper-parameter-tuning-job/{TUNING_JOB}"


def trial(number: int, status: str, auc: float | None, eta: str) -> dict[str, Any]:
    """A HyperParameterTrainingJobSummary as SageMaker lists it."""
    name = f"{TUNING_JOB}-{number:03d}-0a1b2c3d"
    started = START + dt.timedelta(minutes=number)
    summary: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobArn": f"{SAGEMAKER}:training-job/{name}",
        "TuningJobName": TUNING_JOB,
        "CreationTime": started,
        "TrainingStartTime": started,
        "TrainingEndTime": started + dt.timedelta(minutes=4),
        "TrainingJobStatus": status,
        "TunedHyperParameters": {"eta": eta, "max_depth": str(3 + number)},
        "ObjectiveStatus": "Succeeded" if auc is not None else "Failed",
    }
    if auc is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": "Maximize",
            "MetricName": "validation:auc",
            "Value": auc,
        }
    if status == "Failed":
        summary["FailureReason"] = "AlgorithmError: out of memory"
    return summary


TRIALS = [
    trial(1, "Completed", 0.912, "0.05"),
    trial(2, "Completed", 0.934, "0.1"),
    trial(3, "Failed", None, "0.3"),
]
BEST = TRIALS[1]


def tuning_job() -> dict[str, Any]:
    """DescribeHyperParameterTuningJob's answer (the trials' code channel under pipeline-code)."""
    return {
        "HyperParameterTuningJobName": TUNING_JOB,
        "HyperParameterTuningJobArn": TUNING_ARN,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {
                "Type": "Maximize",
                "MetricName": "validation:auc",
            },
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 2},
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingImage": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/xgboost:1.7-1",
                "TrainingInputMode": "File",
            },
            "RoleArn": f"arn:aws:iam::{TUNING_ACCOUNT}:role/training",
            "InputDataConfig": [
                {
                    "ChannelName": "code",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"s3://{TUNING_BUCKET}/pipeline-code/{CODE_HASH}/train",
                        }
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{TUNING_BUCKET}/pipelines/models"},
            "ResourceConfig": {
                "InstanceType": "ml.m5.xlarge",
                "InstanceCount": 1,
                "VolumeSizeInGB": 30,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
        "HyperParameterTuningJobStatus": "Completed",
        "CreationTime": START,
        "TrainingJobStatusCounters": {"Completed": 2, "NonRetryableError": 1},
        "ObjectiveStatusCounters": {"Succeeded": 2, "Failed": 1},
        "BestTrainingJob": {
            k: BEST[k]
            for k in (
                "TrainingJobName",
                "TrainingJobArn",
                "CreationTime",
                "TrainingJobStatus",
                "TunedHyperParameters",
                "FinalHyperParameterTuningJobObjectiveMetric",
            )
        },
    }
