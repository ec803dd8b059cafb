"""Start the scheduled drift job (pipeline_code/monitoring/drift_check.py) for the served model.

EventBridge Scheduler invokes the Lambda with `{"window_hours": 24, "scheduled_time":
"<aws.scheduler.scheduled-time>"}`. The job compares the traffic captured in
[scheduled_time - window_hours, scheduled_time) with the baseline of the model the endpoint
serves now, found as:

    DescribeEndpoint -> endpoint config -> variant with the highest current weight -> its model
    -> PrimaryContainer.ModelPackageName (the Serving stack builds the Model from the package)
    -> DescribeModelPackage -> CustomerMetadataProperties["baseline_s3_uri"], else the folder of
       DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri (prepare's baseline/ output)

The job reads the model's features (names in serving order, types) from that baseline folder,
so nothing per feature travels in the Lambda's environment or the job's arguments. The capture
location comes from the endpoint's own DataCaptureConfig. No endpoint (no model
approved yet), an endpoint that is not serving, or capture switched off -> nothing is started
and the result names the skip metric. The job name is derived from the endpoint and the
scheduled time, so a retried invocation finds the job it already started instead of starting a
second one.

Batch serving has no endpoint: an EventBridge rule sends each Completed scoring transform job
instead, and the job checks that run's rows (`--scored-rows-dir`) against the baseline of the
package version that scored them (`scored_version`), publishing the same metrics under the
EndpointName the Monitoring stack's alarm watches; the job is named after the transform job, so a
re-delivered event finds it.

Modules: `config` (the Lambda environment), `schedule` (the window), `served_model` (endpoint
to baseline, or a skip), `scored_version` (a scoring run's event), `processing_job` (the job's
name and request), `start` (one invocation). Functions take boto3 clients as arguments;
`handler.py` builds them.
"""

from __future__ import annotations

from .config import CLIENT_CONFIG, ConfigError, StarterConfig
from .processing_job import job_name, processing_job_request, scored_job_name, scored_rows_request
from .schedule import METRIC_INVALID_EVENT, InvalidEventError, Window, parse_event
from .scored_version import ScoredVersion, is_transform_event, parse_transform_event
from .served_model import ServedModel, ServedModelError, Skip, find_served_model
from .start import StartResult, start_drift_job, start_scored_drift_job

__all__ = [
    "CLIENT_CONFIG",
    "METRIC_INVALID_EVENT",
    "ConfigError",
    "InvalidEventError",
    "ScoredVersion",
    "ServedModel",
    "ServedModelError",
    "Skip",
    "StartResult",
    "StarterConfig",
    "Window",
    "find_served_model",
    "is_transform_event",
    "job_name",
    "parse_event",
    "parse_transform_event",
    "processing_job_request",
    "scored_job_name",
    "scored_rows_request",
    "start_drift_job",
    "start_scored_drift_job",
]
