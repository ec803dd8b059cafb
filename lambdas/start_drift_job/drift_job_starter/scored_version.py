"""Batch serving: a completed scoring transform job -> what its drift check compares.

The scoring pipeline's Score step is a transform job whose input is the Check step's rows
(header-less CSV, the row id first, then the features in schema order: what `drift_check
--scored-rows-dir` reads) and whose output is
`s3://<data bucket>/predictions/<dataset>/<version>/<model version>/<execution id>/`. Its
"SageMaker Transform Job State Change" event (detail = DescribeTransformJob's answer) carries
both, so the check needs no other lookup of the run: the model version in the output path and
the package group name the package ARN (the transform job's own model may already be deleted
once the job has finished), and DescribeModelPackage gives its baseline, as for an endpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from scoring_runs import TRANSFORM_DETAIL_TYPE as DETAIL_TYPE
from scoring_runs import InvalidTransformEventError, parse_run_uri, transform_detail

from .schedule import InvalidEventError

_TRANSFORM_JOB_ARN = re.compile(r"^(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:\d{12}:)transform-job/")


@dataclass(frozen=True)
class ScoredVersion:
    """One completed scoring run: what it scored, with which package version, into where."""

    transform_job_name: str
    rows_s3_uri: str
    output_uri: str
    dataset_version: str  # <dataset>/<version>
    model_version: str
    model_package_arn: str


def is_transform_event(event: Any) -> bool:
    """True for an EventBridge transform job state change (the batch trigger), False for the
    scheduler's input."""
    return isinstance(event, dict) and event.get("detail-type") == DETAIL_TYPE


def parse_transform_event(event: Any, model_package_group: str) -> ScoredVersion:
    """The scored version of a Completed scoring transform job; raises InvalidEventError for
    anything else (another status, an output outside a run prefix under predictions/)."""
    try:
        detail = transform_detail(event)
    except InvalidTransformEventError as error:
        raise InvalidEventError(f"{error} (a {DETAIL_TYPE!r} event from aws.sagemaker)") from error
    if detail.get("TransformJobStatus") != "Completed":
        raise InvalidEventError(
            f"transform job {detail.get('TransformJobName')} is "
            f"{detail.get('TransformJobStatus')}, not Completed: nothing was scored"
        )
    name, arn = detail.get("TransformJobName"), detail.get("TransformJobArn")
    rows = _path(detail, "TransformInput", "DataSource", "S3DataSource", "S3Uri")
    output = _path(detail, "TransformOutput", "S3OutputPath")
    fields = {"TransformJobName": name, "TransformJobArn": arn, "input S3Uri": rows}
    missing = sorted(k for k, v in {**fields, "S3OutputPath": output}.items() if not v)
    if missing:
        raise InvalidEventError(f"the event's detail lacks {', '.join(missing)}")
    account = _TRANSFORM_JOB_ARN.match(str(arn))
    if account is None:
        raise InvalidEventError(f"TransformJobArn {arn!r} is not a transform job ARN")
    run = parse_run_uri(str(output))
    if run is None:
        raise InvalidEventError(
            f"{name} wrote {output}: not a scoring run "
            "(predictions/<dataset>/<version>/<model version>/<execution id>/)"
        )
    return ScoredVersion(
        transform_job_name=str(name),
        rows_s3_uri=str(rows),
        output_uri=str(output),
        dataset_version=run.dataset_version,
        model_version=run.model_version,
        model_package_arn=(
            f"{account.group(1)}model-package/{model_package_group}/{run.model_version}"
        ),
    )


def _path(detail: dict[str, Any], *keys: str) -> str | None:
    value: Any = detail
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) and value else None
