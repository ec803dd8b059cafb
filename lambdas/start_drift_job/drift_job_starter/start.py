"""One invocation: find the served model, then start its drift job for the window once (a
retry finds the job it already started), or skip."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from .config import ConfigError, StarterConfig
from .processing_job import (
    iso,
    job_name,
    processing_job_request,
    scored_job_name,
    scored_rows_request,
)
from .schedule import Window
from .scored_version import ScoredVersion
from .served_model import Skip, baseline_uri, find_served_model

METRIC_STARTED = "DriftJobsStarted"
METRIC_ALREADY_STARTED = "DriftJobsAlreadyStarted"


@dataclass(frozen=True)
class StartResult:
    """What one invocation did; `metric` is the count to record."""

    status: Literal["started", "already_started", "skipped"]
    metric: str
    message: str
    job_name: str | None = None
    window_start: str | None = None
    window_end: str | None = None
    model_package_arn: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def start_drift_job(
    sagemaker: Any, config: StarterConfig, window: Window, region: str
) -> StartResult:
    """Start the drift job for `window`, or skip (no endpoint / not serving / no capture).

    A retry for the same window finds the job by its name and reports "already_started".
    Raises ServedModelError, and ClientError for AWS failures other than that duplicate.
    """
    served = find_served_model(sagemaker, config.endpoint_name)
    if isinstance(served, Skip):
        return StartResult("skipped", served.metric, served.reason)
    name = job_name(config.endpoint_name, window.end)
    details: dict[str, Any] = {
        "job_name": name,
        "window_start": iso(window.start),
        "window_end": iso(window.end),
        "model_package_arn": served.model_package_arn,
    }
    return _start_once(
        sagemaker,
        processing_job_request(config, served, window, name, region),
        details,
        started=f"started {name} for model package version {served.model_version}",
        started_before="this window was started before",
    )


def start_scored_drift_job(
    sagemaker: Any, config: StarterConfig, scored: ScoredVersion, region: str
) -> StartResult:
    """Start the drift check of one scoring run's rows against the baseline of the package
    version that scored them. A re-delivered event finds the job by its name and reports
    "already_started". Raises ConfigError without MODEL_PACKAGE_GROUP, ServedModelError when the
    package has no baseline, ClientError for other AWS failures."""
    if not config.model_package_group:
        raise ConfigError("MODEL_PACKAGE_GROUP is required to check a scoring run's drift")
    package = sagemaker.describe_model_package(ModelPackageName=scored.model_package_arn)
    name = scored_job_name(scored.transform_job_name)
    details: dict[str, Any] = {"job_name": name, "model_package_arn": scored.model_package_arn}
    return _start_once(
        sagemaker,
        scored_rows_request(config, scored, baseline_uri(package), name, region),
        details,
        started=f"started {name} for {scored.dataset_version} scored by model package version "
        f"{scored.model_version}",
        started_before="this scoring run was checked before",
    )


def _start_once(
    sagemaker: Any,
    request: dict[str, Any],
    details: dict[str, Any],
    *,
    started: str,
    started_before: str,
) -> StartResult:
    """Create the processing job `request` names; if that fails because a retry already
    created it (`started_before` says when), report "already_started" instead."""
    name = details["job_name"]
    try:
        sagemaker.create_processing_job(**request)
    except ClientError as error:
        if not _job_exists(sagemaker, name):
            raise
        message = f"{name} already exists: {started_before} ({_code(error)})"
        return StartResult("already_started", METRIC_ALREADY_STARTED, message, **details)
    return StartResult("started", METRIC_STARTED, started, **details)


def _job_exists(sagemaker: Any, name: str) -> bool:
    try:
        sagemaker.describe_processing_job(ProcessingJobName=name)
    except ClientError:
        return False
    return True


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "error"))
