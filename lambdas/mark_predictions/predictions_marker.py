"""The `_SUCCESS` marker of a scored version: written once its transform job completed.

Batch serving's Score step writes the predictions of `score/<dataset>/<version>/` under
`predictions/<dataset>/<version>/<model version>/<execution id>/` (one `<file>.out` per input
file): a prefix of its own per scoring run. A transform
job writes its outputs as it goes and may fail midway, so consumers must not read a prefix until
this marker exists: the same contract producers follow under `score/`. Only a "SageMaker
Transform Job State Change" event with status Completed writes it, and only under
`predictions/` of this environment's data bucket; a Failed or Stopped job leaves no marker, so
nothing partial is ever published.

The marker goes into the job's own TransformOutput.S3OutputPath and nowhere else, and only into a
run prefix (exactly four parts below `predictions/`): a late or re-driven event of an older job
can only mark that older job's prefix, never a parent prefix or a newer run's. A corrected
re-upload is scored by a new run into a new prefix; consumers read the run prefix with
`_SUCCESS` whose `created_at` is the latest (never by LastModified: a re-delivered event renews
it). The marker holds the transform job, its model and the job's creation and end times (the
event detail carries DescribeTransformJob's timestamps as JSON numbers, epoch milliseconds in
SageMaker's events; written as ISO 8601 UTC). Re-delivered events write the same content again:
harmless.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.config import Config
from scoring_runs import InvalidTransformEventError as InvalidEventError
from scoring_runs import parse_run_uri, transform_detail

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
MARKER = "_SUCCESS"
# Epoch timestamps above this are milliseconds (it is 1973 in milliseconds, 5138 in seconds).
_MILLISECONDS_FROM = 10**11


@dataclass(frozen=True)
class MarkerConfig:
    data_bucket: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MarkerConfig:
        bucket = env.get("DATA_BUCKET", "").strip()
        if not bucket:
            raise ValueError("DATA_BUCKET is required (environment variable is missing or empty)")
        return cls(data_bucket=bucket)


@dataclass(frozen=True)
class TransformJob:
    name: str
    arn: str
    status: str
    model_name: str
    output_uri: str
    created_at: str | None
    end_time: str | None


@dataclass(frozen=True)
class Outcome:
    metric: str
    message: str
    key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.metric, "message": self.message, "key": self.key}


def parse_event(event: Any) -> TransformJob:
    """The job of an EventBridge transform job state change (its detail is DescribeTransformJob's
    answer)."""
    detail = transform_detail(event)
    output = detail.get("TransformOutput")
    fields: dict[str, Any] = {
        "name": detail.get("TransformJobName"),
        "arn": detail.get("TransformJobArn"),
        "status": detail.get("TransformJobStatus"),
        "model_name": detail.get("ModelName"),
        "output_uri": output.get("S3OutputPath") if isinstance(output, dict) else None,
    }
    missing = sorted(k for k, v in fields.items() if not isinstance(v, str) or not v)
    if missing:
        raise InvalidEventError(f"the event's detail lacks {', '.join(missing)}")
    return TransformJob(
        **fields,
        created_at=timestamp(detail.get("CreationTime")),
        end_time=timestamp(detail.get("TransformEndTime")),
    )


def timestamp(value: Any) -> str | None:
    """An event timestamp (CreationTime, TransformEndTime) as ISO 8601 UTC: the event's JSON
    number (epoch milliseconds, or seconds), or an ISO 8601 string kept as sent; None when
    absent or of another type."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str):
        return value or None
    seconds = value / 1000 if abs(value) >= _MILLISECONDS_FROM else value
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def marker_key(config: MarkerConfig, output_uri: str) -> str | None:
    """The marker's key for an output `s3://<data bucket>/predictions/<d>/<v>/<m>/<run>/`, or
    None when the output is anywhere else (not a scoring run of this environment)."""
    run = parse_run_uri(output_uri, config.data_bucket)
    return None if run is None else run.key + MARKER


def mark_completed(s3: Any, config: MarkerConfig, job: TransformJob) -> Outcome:
    """Write the marker if `job` completed and wrote under predictions/ of the data bucket."""
    if job.status != "Completed":
        return Outcome("NotCompleted", f"{job.name} is {job.status}: no marker")
    key = marker_key(config, job.output_uri)
    if key is None:
        return Outcome("Skipped", f"{job.name} wrote {job.output_uri}: not a scored version")
    body = {
        "transform_job": job.arn,
        "model": job.model_name,
        "created_at": job.created_at,
        "completed_at": job.end_time,
    }
    s3.put_object(
        Bucket=config.data_bucket,
        Key=key,
        Body=(json.dumps(body, sort_keys=True) + "\n").encode(),
        ContentType="application/json",
    )
    return Outcome(
        "MarkersWritten", f"{job.name} completed: wrote s3://{config.data_bucket}/{key}", key
    )
