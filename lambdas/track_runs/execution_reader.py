"""Read what one finished pipeline execution left behind into an ExecutionRecord, from the
SageMaker and S3 APIs (the steps' own outputs: training stays network-isolated, the tracker
reads after the fact).

    DescribePipelineExecution               status, times, failure reason, pipeline name
    ListPipelineParametersForExecution      every parameter (dataset version and digest,
                                            code commit, hyperparameters, champion)
    ListPipelineExecutionSteps              each step's job (a cache hit names the job of the
                                            execution it reused) and the registered package
    DescribeProcessingJob / DescribeTrainingJob / DescribeHyperParameterTuningJob
                                            the step's code location (content hash under
                                            pipeline-code/) and its output URIs
    ListTrainingJobsForHyperParameterTuningJob
                                            a tuning step's trials (trials.py)
    GetObject / ListObjectsV2               Evaluate's evaluation.json and plots, Prepare's
                                            split_report.json

A step that did not run (a failure before it) leaves its part empty; the run is still logged.
Functions take boto3 clients as arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.config import Config
from run_record import ExecutionRecord
from trials import read_tuning

# Throttling and transient 5xx are retried by botocore (5 attempts in all, jittered backoff).
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})
EVALUATE_STEP = "Evaluate"
PREPARE_STEP = "Prepare"
EVALUATION_OUTPUT = "evaluation"
REPORT_OUTPUT = "report"
EVALUATION_FILE = "evaluation.json"
SPLIT_REPORT_FILE = "split_report.json"
PLOT_SUFFIX = ".png"
# At most this many plots, of at most this size each: a run's page, not an archive.
MAX_PLOTS = 20
MAX_PLOT_BYTES = 5 * 1024 * 1024
_TUNING_KEY = "HyperParameterTuningJobName"  # a DescribeHyperParameterTuningJob answer
_CODE_HASH = re.compile(r"pipeline-code/([0-9a-f]{64})")
_EXECUTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:pipeline/([^/]+)/execution/([a-z0-9]+)$"
)


class NotAnExecutionError(ValueError):
    """The ARN is not a pipeline execution's."""


def pipeline_of(execution_arn: str) -> str:
    """The (lower-case) pipeline name in a pipeline execution ARN."""
    match = _EXECUTION_ARN.match(execution_arn)
    if match is None:
        raise NotAnExecutionError(f"{execution_arn!r} is not a pipeline execution ARN")
    return match.group(1)


def _ms(value: Any) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else 0


def _parameters(sagemaker: Any, execution_arn: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    pages = sagemaker.get_paginator("list_pipeline_parameters_for_execution").paginate(
        PipelineExecutionArn=execution_arn
    )
    for page in pages:
        for parameter in page.get("PipelineParameters", []):
            parameters[parameter["Name"]] = parameter["Value"]
    return parameters


def _steps(sagemaker: Any, execution_arn: str) -> dict[str, dict[str, Any]]:
    steps: dict[str, dict[str, Any]] = {}
    pages = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(
        PipelineExecutionArn=execution_arn
    )
    for page in pages:
        for step in page.get("PipelineExecutionSteps", []):
            steps.setdefault(step["StepName"], step)  # newest attempt first
    return steps


def _job_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _describe_job(sagemaker: Any, step: Mapping[str, Any]) -> dict[str, Any] | None:
    metadata = step.get("Metadata") or {}
    if "ProcessingJob" in metadata:
        name = _job_name(metadata["ProcessingJob"]["Arn"])
        return dict(sagemaker.describe_processing_job(ProcessingJobName=name))
    if "TrainingJob" in metadata:
        name = _job_name(metadata["TrainingJob"]["Arn"])
        return dict(sagemaker.describe_training_job(TrainingJobName=name))
    if "TuningJob" in metadata:
        name = _job_name(metadata["TuningJob"]["Arn"])
        return dict(sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))
    return None


def code_hashes(job: Mapping[str, Any]) -> tuple[str, ...]:
    """The content hashes of the code a job ran (its `pipeline-code/<sha256>` locations)."""
    text = json.dumps(job, default=str, sort_keys=True)
    return tuple(sorted(set(_CODE_HASH.findall(text))))


def output_uri(job: Mapping[str, Any] | None, output_name: str) -> str | None:
    """The S3 URI of a processing job's output `output_name` (no trailing slash)."""
    for output in ((job or {}).get("ProcessingOutputConfig") or {}).get("Outputs", []):
        if output.get("OutputName") == output_name and "S3Output" in output:
            return str(output["S3Output"]["S3Uri"]).rstrip("/")
    return None


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _read_json(s3: Any, uri: str) -> dict[str, Any] | None:
    bucket, key = _split(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return dict(json.loads(body))


def _plots(s3: Any, folder: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """The plots under `folder` (name -> content) and where each is (name -> s3 URI)."""
    bucket, prefix = _split(folder)
    plots: dict[str, bytes] = {}
    sources: dict[str, str] = {}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    for page in pages:
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith(PLOT_SUFFIX) or item.get("Size", 0) > MAX_PLOT_BYTES:
                continue
            if len(plots) < MAX_PLOTS:
                name = key[len(prefix) + 1 :]
                plots[name] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                sources[f"plots/{name}"] = f"s3://{bucket}/{key}"
    return plots, sources


def read_execution(sagemaker: Any, s3: Any, execution_arn: str) -> ExecutionRecord:
    """The record of the finished execution `execution_arn` (see the module doc)."""
    pipeline_of(execution_arn)
    execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    pipeline_name = str(execution["PipelineArn"]).rsplit("/", 1)[-1]
    steps = _steps(sagemaker, execution_arn)
    jobs = {name: _describe_job(sagemaker, step) for name, step in steps.items()}
    step_code = {name: hashes for name, job in jobs.items() if job and (hashes := code_hashes(job))}
    evaluation_folder = output_uri(jobs.get(EVALUATE_STEP), EVALUATION_OUTPUT)
    report_folder = output_uri(jobs.get(PREPARE_STEP), REPORT_OUTPUT)
    evaluation = (
        _read_json(s3, f"{evaluation_folder}/{EVALUATION_FILE}") if evaluation_folder else None
    )
    split_report = _read_json(s3, f"{report_folder}/{SPLIT_REPORT_FILE}") if report_folder else None
    plots, sources = _plots(s3, evaluation_folder) if evaluation_folder else ({}, {})
    if evaluation is not None:
        sources[EVALUATION_FILE] = f"{evaluation_folder}/{EVALUATION_FILE}"
    if split_report is not None:
        sources[SPLIT_REPORT_FILE] = f"{report_folder}/{SPLIT_REPORT_FILE}"
    tuning = next(
        (read_tuning(sagemaker, job) for job in jobs.values() if job and _TUNING_KEY in job), None
    )
    packages = [
        step["Metadata"]["RegisterModel"]["Arn"]
        for step in steps.values()
        if "RegisterModel" in (step.get("Metadata") or {})
    ]
    return ExecutionRecord(
        pipeline_name=pipeline_name,
        execution_arn=execution_arn,
        status=str(execution["PipelineExecutionStatus"]),
        start_ms=_ms(execution.get("CreationTime")),
        end_ms=_ms(execution.get("LastModifiedTime")),
        parameters=_parameters(sagemaker, execution_arn),
        evaluation=evaluation,
        split_report=split_report,
        plots=plots,
        step_code=step_code,
        model_package_arn=packages[0] if packages else None,
        failure_reason=execution.get("FailureReason"),
        artifact_sources=sources,
        tuning=tuning,
    )
