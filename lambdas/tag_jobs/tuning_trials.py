"""A tuning trial's pipeline execution: the execution ARN tag of the tuning job that ran it.

A training job a pipeline's Tuning step starts is a trial of the tuning job, not a job of the
pipeline, and nothing documents that SageMaker copies `sagemaker:pipeline-execution-arn` from
the tuning job to its trials. For a training job without that tag, DescribeTrainingJob's
`TuningJobArn` names the tuning job; only a tuning job SageMaker Pipelines named
(`pipelines-*`) is read (ListTags), so the tagger's role needs no more than that.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

#: Tuning jobs a pipeline starts (SageMaker Pipelines names them pipelines-<...>).
PIPELINE_TUNING_JOB = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:hyper-parameter-tuning-job/pipelines-[^/]+$"
)
_MISSING_CODES = frozenset({"ValidationException", "ResourceNotFound"})


def tuning_job_tags(
    sagemaker: Any, job_arn: str, tags_of: Callable[[Any, str], Mapping[str, str]]
) -> tuple[str | None, Mapping[str, str]]:
    """(the tuning job's ARN, its tags) of training job `job_arn`; (None, {}) when the job was
    not started by a pipeline's tuning job or is gone. Other AWS failures raise."""
    name = job_arn.rsplit("/", 1)[-1]
    try:
        described = sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING_CODES:
            return None, {}
        raise
    tuning_job = described.get("TuningJobArn")
    if not isinstance(tuning_job, str) or not PIPELINE_TUNING_JOB.match(tuning_job):
        return None, {}
    try:
        return tuning_job, tags_of(sagemaker, tuning_job)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING_CODES:
            return None, {}
        raise
