"""Start the scheduled drift job (pipeline_code/monitoring/drift_check.py) for the served model.

EventBridge Scheduler invokes the Lambda with `{"window_hours": 24, "scheduled_time":
"<aws.scheduler.scheduled-time>"}`. The job compares the traffic captured in
[scheduled_time - window_hours, scheduled_time) with the baseline of the model the endpoint
serves now, found as:

    DescribeEndpoint -> endpoint config -> variant with the highest current weight -> its model
    -> PrimaryContainer.ModelPackageName (the Serving stack builds the Model from the package)
    -> DescribeModelPackage -> CustomerMetadataProperties["baseline_s3_uri"], else the folder of
       DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri (prepare's baseline/ output)

The capture location comes from the endpoint's own DataCaptureConfig. No endpoint (no model
approved yet), an endpoint that is not serving, or capture switched off -> nothing is started
and the result names the skip metric. The job name is derived from the endpoint and the
scheduled time, so a retried invocation finds the job it already started instead of starting a
second one.

Functions take boto3 clients as arguments; `handler.py` builds them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.config import Config
from botocore.exceptions import ClientError

# Throttling and transient 5xx are retried by botocore (5 attempts in all, jittered backoff).
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})

BASELINE_METADATA_KEY = "baseline_s3_uri"
FEATURE_TYPES = ("float", "int", "bool")
# Where drift_check.py reads and writes inside the container (its defaults).
CAPTURE_LOCAL_PATH = "/opt/ml/processing/input/capture"
BASELINE_LOCAL_PATH = "/opt/ml/processing/input/baseline"
OUTPUT_LOCAL_PATH = "/opt/ml/processing/output"

# ContainerArguments holds at most 100 items: 18 for the fixed options, two per feature.
MAX_FEATURES = 41
DEFAULT_WINDOW_HOURS = 24
MAX_WINDOW_HOURS = 24 * 14
# Statuses in which the endpoint serves no traffic to check.
NOT_SERVING = frozenset({"Creating", "Deleting", "Failed", "OutOfService"})

METRIC_STARTED = "DriftJobsStarted"
METRIC_ALREADY_STARTED = "DriftJobsAlreadyStarted"
METRIC_NO_ENDPOINT = "SkippedNoEndpoint"
METRIC_NOT_SERVING = "SkippedEndpointNotServing"
METRIC_NO_CAPTURE = "SkippedNoCapture"
METRIC_INVALID_EVENT = "InvalidEvents"

_JOB_NAME_MAX = 63
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9-]+")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z\-]*:kms:[a-z0-9\-]+:\d{12}:key/[a-zA-Z0-9\-]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9\-]+\.[a-z0-9]+$")
_TAG_VALUE = re.compile(r"^[\w.:/=+\-@ ]{1,256}$")


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it and the rule."""


class InvalidEventError(ValueError):
    """The scheduler's input is not what the schedule should send."""


class ServedModelError(RuntimeError):
    """The endpoint serves something the drift job cannot check (no package, no baseline)."""


@dataclass(frozen=True)
class StarterConfig:
    """The Lambda's environment.

    Attributes:
        endpoint_name: endpoint to watch (ENDPOINT_NAME).
        image_uri: the drift image in ECR (DRIFT_IMAGE_URI).
        role_arn: the job's execution role (JOB_ROLE_ARN).
        artifact_bucket: reports go to s3://<bucket>/monitoring/<endpoint>/<time>/
            (ARTIFACT_BUCKET).
        kms_key_arn: encrypts the job's volume and output (KMS_KEY_ARN).
        features: (name, type) in schema order, from the contract's schema JSON (SCHEMA).
        project, environment: tag values (PROJECT_NAME, ENVIRONMENT_NAME).
        instance_type: INSTANCE_TYPE, default "ml.m5.large".
        volume_size_gb: VOLUME_SIZE_GB, default 20.
        max_runtime_seconds: MAX_RUNTIME_SECONDS, default 3600.
        drift_share_threshold: DRIFT_SHARE_THRESHOLD, default 0.3 (share of features).
        min_rows: MIN_ROWS, default 100 (fewer captured rows in the window fail the job).
        metrics_namespace: the job's CloudWatch namespace, METRICS_NAMESPACE, default
            "MLOps/Drift".
        stattest: STATTEST, default None = Evidently's choice per feature.
    """

    endpoint_name: str
    image_uri: str
    role_arn: str
    artifact_bucket: str
    kms_key_arn: str
    features: tuple[tuple[str, str], ...]
    project: str
    environment: str
    instance_type: str = "ml.m5.large"
    volume_size_gb: int = 20
    max_runtime_seconds: int = 3600
    drift_share_threshold: float = 0.3
    min_rows: int = 100
    metrics_namespace: str = "MLOps/Drift"
    stattest: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StarterConfig:
        """Parse and validate the environment; raises ConfigError naming the bad variable."""
        return cls(
            endpoint_name=_matching(env, "ENDPOINT_NAME", _ENDPOINT_NAME, "an endpoint name"),
            image_uri=_matching(env, "DRIFT_IMAGE_URI", re.compile(r"^\S+$"), "an image URI"),
            role_arn=_matching(env, "JOB_ROLE_ARN", _ROLE_ARN, "an IAM role ARN"),
            artifact_bucket=_matching(env, "ARTIFACT_BUCKET", _BUCKET, "an S3 bucket name"),
            kms_key_arn=_matching(env, "KMS_KEY_ARN", _KMS_KEY_ARN, "a KMS key ARN"),
            features=_features(env.get("SCHEMA", "")),
            project=_matching(env, "PROJECT_NAME", _TAG_VALUE, "a tag value"),
            environment=_matching(env, "ENVIRONMENT_NAME", _TAG_VALUE, "a tag value"),
            instance_type=_matching(
                env, "INSTANCE_TYPE", _INSTANCE_TYPE, "an instance type", "ml.m5.large"
            ),
            volume_size_gb=int(_number(env, "VOLUME_SIZE_GB", 20, 1, 16384)),
            max_runtime_seconds=int(_number(env, "MAX_RUNTIME_SECONDS", 3600, 60, 432000)),
            drift_share_threshold=_number(env, "DRIFT_SHARE_THRESHOLD", 0.3, 0.01, 1.0, int_=False),
            min_rows=int(_number(env, "MIN_ROWS", 100, 1, 10**9)),
            metrics_namespace=_matching(
                env,
                "METRICS_NAMESPACE",
                re.compile(r"^[^:\s][\x21-\x7e ]{0,254}$"),
                "a CloudWatch namespace",
                "MLOps/Drift",
            ),
            stattest=env.get("STATTEST") or None,
        )


def _matching(
    env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str, default: str = ""
) -> str:
    value = env.get(name) or default
    if not pattern.match(value):
        raise ConfigError(f"{name}={value!r} is not allowed: set it to {what}")
    return value


def _number(
    env: Mapping[str, str], name: str, default: float, low: float, high: float, int_: bool = True
) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw) if int_ else float(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        kind = "an integer" if int_ else "a number"
        raise ConfigError(f"{name}={raw!r} is not allowed: set it to {kind} in [{low}, {high}]")
    return value


def _features(schema_json: str) -> tuple[tuple[str, str], ...]:
    try:
        features = json.loads(schema_json)["features"]
        pairs = tuple((str(f["name"]), str(f["type"])) for f in features)
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"SCHEMA={schema_json[:80]!r} is not allowed: set it to the pipeline contract's "
            'schema JSON ({"features": [{"name": ..., "type": ...}, ...], ...})'
        ) from None
    bad = [f"{n}:{t}" for n, t in pairs if t not in FEATURE_TYPES or not n or ":" in n]
    if not pairs or bad:
        raise ConfigError(f"SCHEMA has no features or bad ones {bad}: types are {FEATURE_TYPES}")
    if len(pairs) > MAX_FEATURES:
        raise ConfigError(
            f"SCHEMA has {len(pairs)} features: the drift job takes at most {MAX_FEATURES} as "
            "ContainerArguments (100 arguments per job, two per feature)"
        )
    return pairs


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def parse_event(event: Any, now: datetime) -> Window:
    """The window to check: `window_hours` (1..336, default 24) before `scheduled_time`
    (ISO-8601; default `now`). Raises InvalidEventError."""
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise InvalidEventError(f"expected a JSON object, got {type(event).__name__}")
    hours = event.get("window_hours", DEFAULT_WINDOW_HOURS)
    if isinstance(hours, bool) or not isinstance(hours, int | float):
        raise InvalidEventError(f"window_hours={hours!r:.50} is not a number")
    if not 1 <= hours <= MAX_WINDOW_HOURS:
        raise InvalidEventError(f"window_hours={hours} is outside [1, {MAX_WINDOW_HOURS}]")
    scheduled = event.get("scheduled_time")
    if scheduled is None:
        end = now
    else:
        try:
            end = datetime.fromisoformat(str(scheduled).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEventError(
                f"scheduled_time={scheduled!r:.80} is not an ISO-8601 time (the schedule "
                "should send <aws.scheduler.scheduled-time>)"
            ) from None
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
    end = end.astimezone(UTC).replace(microsecond=0)
    return Window(start=end - timedelta(hours=hours), end=end)


@dataclass(frozen=True)
class ServedModel:
    """What the endpoint serves now, and where its traffic and baseline are."""

    endpoint_name: str
    capture_s3_uri: str  # s3://.../<endpoint>/ (all variants; the job filters by time)
    model_name: str
    model_package_arn: str
    model_version: str
    baseline_s3_uri: str


@dataclass(frozen=True)
class Skip:
    metric: str
    reason: str


def find_served_model(sagemaker: Any, endpoint_name: str) -> ServedModel | Skip:
    """Follow the endpoint to its model package and baseline; Skip when there is nothing to
    check. Raises ServedModelError when the served model has no package or no baseline."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if _is_missing(error):
            return Skip(METRIC_NO_ENDPOINT, f"endpoint {endpoint_name} does not exist (yet)")
        raise
    status = endpoint["EndpointStatus"]
    if status in NOT_SERVING:
        return Skip(METRIC_NOT_SERVING, f"endpoint {endpoint_name} is {status}")
    capture = endpoint.get("DataCaptureConfig") or {}
    if not capture.get("EnableCapture") or not capture.get("DestinationS3Uri"):
        return Skip(METRIC_NO_CAPTURE, f"endpoint {endpoint_name} does not capture its traffic")

    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    weights = {
        v["VariantName"]: v.get("CurrentWeight", 0.0)
        for v in endpoint.get("ProductionVariants", [])
    }
    variant = max(
        config["ProductionVariants"],
        key=lambda v: weights.get(v["VariantName"], v.get("InitialVariantWeight", 1.0)),
    )
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    containers = [model.get("PrimaryContainer") or {}, *model.get("Containers", [])]
    package_name = next(
        (c["ModelPackageName"] for c in containers if c.get("ModelPackageName")), None
    )
    if not package_name:
        raise ServedModelError(
            f"model {model['ModelName']} of endpoint {endpoint_name} was not created from a "
            "model package (PrimaryContainer.ModelPackageName): no baseline to compare with"
        )
    package = sagemaker.describe_model_package(ModelPackageName=package_name)
    return ServedModel(
        endpoint_name=endpoint_name,
        capture_s3_uri=f"{capture['DestinationS3Uri'].rstrip('/')}/{endpoint_name}/",
        model_name=model["ModelName"],
        model_package_arn=package["ModelPackageArn"],
        model_version=str(package.get("ModelPackageVersion") or package["ModelPackageName"]),
        baseline_s3_uri=baseline_uri(package),
    )


def _is_missing(error: ClientError) -> bool:
    details = error.response.get("Error", {})
    return details.get("Code") in ("ValidationException", "ResourceNotFound") and (
        "could not find" in details.get("Message", "").lower()
    )


def baseline_uri(package: Mapping[str, Any]) -> str:
    """The S3 folder holding baseline.csv: CustomerMetadataProperties["baseline_s3_uri"], else
    the folder of DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri."""
    explicit = (package.get("CustomerMetadataProperties") or {}).get(BASELINE_METADATA_KEY)
    if explicit:
        return explicit.rstrip("/") + "/"
    statistics = (
        package.get("DriftCheckBaselines", {})
        .get("ModelDataQuality", {})
        .get("Statistics", {})
        .get("S3Uri", "")
    )
    if statistics.startswith("s3://") and "/" in statistics[len("s3://") :]:
        return statistics.rsplit("/", 1)[0] + "/"
    raise ServedModelError(
        f"model package {package.get('ModelPackageArn')} has no drift baseline: neither "
        f"CustomerMetadataProperties.{BASELINE_METADATA_KEY} nor "
        "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri"
    )


def job_name(endpoint_name: str, end: datetime) -> str:
    """drift-<endpoint>-<YYYYMMDDHHMMSS> within SageMaker's 63 characters; a long endpoint name
    is shortened with a hash of the full name so two endpoints never share job names."""
    stamp = end.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    room = _JOB_NAME_MAX - len("drift--") - len(stamp)
    safe = _NAME_UNSAFE.sub("-", endpoint_name).strip("-")
    if len(safe) > room:
        digest = hashlib.sha256(endpoint_name.encode()).hexdigest()[:8]
        safe = f"{safe[: room - 9].rstrip('-')}-{digest}"
    return f"drift-{safe}-{stamp}"


def processing_job_request(
    config: StarterConfig, served: ServedModel, window: Window, name: str, region: str
) -> dict[str, Any]:
    """The CreateProcessingJob request for one drift check."""
    stamp = window.end.strftime("%Y%m%dT%H%M%SZ")
    arguments = [
        "--window-start", _iso(window.start),
        "--window-end", _iso(window.end),
        "--endpoint-name", served.endpoint_name,
        "--model-version", served.model_version,
        "--model-package-arn", served.model_package_arn,
        "--drift-share-threshold", str(config.drift_share_threshold),
        "--min-rows", str(config.min_rows),
        "--metrics-namespace", config.metrics_namespace,
    ]  # fmt: skip
    if config.stattest:
        arguments += ["--stattest", config.stattest]
    # One argument per feature: the schema JSON would exceed the 256-character argument limit.
    arguments += feature_arguments(config.features)
    return {
        "ProcessingJobName": name,
        "ProcessingInputs": [
            _s3_input("capture", served.capture_s3_uri, CAPTURE_LOCAL_PATH),
            _s3_input("baseline", served.baseline_s3_uri, BASELINE_LOCAL_PATH),
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "report",
                    "S3Output": {
                        "S3Uri": (
                            f"s3://{config.artifact_bucket}/monitoring/"
                            f"{served.endpoint_name}/{stamp}/"
                        ),
                        "LocalPath": OUTPUT_LOCAL_PATH,
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ],
            "KmsKeyId": config.kms_key_arn,
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": config.instance_type,
                "VolumeSizeInGB": config.volume_size_gb,
                "VolumeKmsKeyId": config.kms_key_arn,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": config.max_runtime_seconds},
        "AppSpecification": {"ImageUri": config.image_uri, "ContainerArguments": arguments},
        # The job publishes CloudWatch metrics itself, so it needs the network; without a VPC
        # it reaches CloudWatch over AWS's network (network isolation would block the call).
        "NetworkConfig": {
            "EnableNetworkIsolation": False,
            "EnableInterContainerTrafficEncryption": True,
        },
        "Environment": {"AWS_DEFAULT_REGION": region, "DO_NOT_TRACK": "1"},
        "RoleArn": config.role_arn,
        "Tags": [
            {"Key": "project", "Value": config.project},
            {"Key": "environment", "Value": config.environment},
            {"Key": "endpoint", "Value": served.endpoint_name},
            {"Key": "model-package-version", "Value": served.model_version},
        ],
    }


def _s3_input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        "window_start": _iso(window.start),
        "window_end": _iso(window.end),
        "model_package_arn": served.model_package_arn,
    }
    request = processing_job_request(config, served, window, name, region)
    try:
        sagemaker.create_processing_job(**request)
    except ClientError as error:
        if not _job_exists(sagemaker, name):
            raise
        message = f"{name} already exists: this window was started before ({_code(error)})"
        return StartResult("already_started", METRIC_ALREADY_STARTED, message, **details)
    message = f"started {name} for model package version {served.model_version}"
    return StartResult("started", METRIC_STARTED, message, **details)


def _job_exists(sagemaker: Any, name: str) -> bool:
    try:
        sagemaker.describe_processing_job(ProcessingJobName=name)
    except ClientError:
        return False
    return True


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "error"))


def feature_arguments(features: Sequence[tuple[str, str]]) -> list[str]:
    """`--feature NAME:TYPE` pairs, in schema order, as drift_check.py reads them."""
    return [part for name, kind in features for part in ("--feature", f"{name}:{kind}")]
