"""The drift starter's configuration, read and validated from the Lambda environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.config import Config

# Throttling and transient 5xx are retried by botocore (5 attempts in all, jittered backoff).
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})

_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z\-]*:kms:[a-z0-9\-]+:\d{12}:key/[a-zA-Z0-9\-]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9\-]+\.[a-z0-9]+$")
# a model package group name (CreateModelPackageGroup's pattern), or none
_GROUP_NAME = re.compile(r"^([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})?$")
_TAG_VALUE = re.compile(r"^[\w.:/=+\-@ ]{1,256}$")


_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it and the rule."""


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
        project, environment: tag values (PROJECT_NAME, ENVIRONMENT_NAME).
        instance_type: INSTANCE_TYPE, default "ml.m5.large".
        volume_size_gb: VOLUME_SIZE_GB, default 20.
        max_runtime_seconds: MAX_RUNTIME_SECONDS, default 3600.
        drift_share_threshold: DRIFT_SHARE_THRESHOLD, default 0.3 (share of features).
        missing_share_threshold: MISSING_SHARE_THRESHOLD, default 0.1: a feature drifted when
            its missing share in the window exceeds the baseline's by more than this.
        min_rows: MIN_ROWS, default 100 (fewer captured rows in the window fail the job).
        metrics_namespace: the job's CloudWatch namespace, METRICS_NAMESPACE, default
            "MLOps/Drift".
        stattest: STATTEST, default None = Evidently's choice per feature.
        model_package_group: MODEL_PACKAGE_GROUP, the registry group whose versions score in
            batch mode (required for a scoring run's check). Default: empty (endpoint mode).
        subnets, security_group_ids: VPC_SUBNETS and VPC_SECURITY_GROUP_IDS, comma-separated:
            the job runs in these subnets (vpc mode). Default: empty, AWS's network. Both or
            neither.
    """

    endpoint_name: str
    image_uri: str
    role_arn: str
    artifact_bucket: str
    kms_key_arn: str
    project: str
    environment: str
    instance_type: str = "ml.m5.large"
    volume_size_gb: int = 20
    max_runtime_seconds: int = 3600
    drift_share_threshold: float = 0.3
    missing_share_threshold: float = 0.1
    min_rows: int = 100
    metrics_namespace: str = "MLOps/Drift"
    stattest: str | None = None
    model_package_group: str = ""
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StarterConfig:
        """Parse and validate the environment; raises ConfigError naming the bad variable."""
        return cls(
            endpoint_name=_matching(env, "ENDPOINT_NAME", _ENDPOINT_NAME, "an endpoint name"),
            image_uri=_matching(env, "DRIFT_IMAGE_URI", re.compile(r"^\S+$"), "an image URI"),
            role_arn=_matching(env, "JOB_ROLE_ARN", _ROLE_ARN, "an IAM role ARN"),
            artifact_bucket=_matching(env, "ARTIFACT_BUCKET", _BUCKET, "an S3 bucket name"),
            kms_key_arn=_matching(env, "KMS_KEY_ARN", _KMS_KEY_ARN, "a KMS key ARN"),
            project=_matching(env, "PROJECT_NAME", _TAG_VALUE, "a tag value"),
            environment=_matching(env, "ENVIRONMENT_NAME", _TAG_VALUE, "a tag value"),
            instance_type=_matching(
                env, "INSTANCE_TYPE", _INSTANCE_TYPE, "an instance type", "ml.m5.large"
            ),
            volume_size_gb=int(_number(env, "VOLUME_SIZE_GB", 20, 1, 16384)),
            max_runtime_seconds=int(_number(env, "MAX_RUNTIME_SECONDS", 3600, 60, 432000)),
            drift_share_threshold=_number(env, "DRIFT_SHARE_THRESHOLD", 0.3, 0.01, 1.0, int_=False),
            missing_share_threshold=_number(
                env, "MISSING_SHARE_THRESHOLD", 0.1, 0.01, 1.0, int_=False
            ),
            min_rows=int(_number(env, "MIN_ROWS", 100, 1, 10**9)),
            metrics_namespace=_matching(
                env,
                "METRICS_NAMESPACE",
                re.compile(r"^[^:\s][\x21-\x7e ]{0,254}$"),
                "a CloudWatch namespace",
                "MLOps/Drift",
            ),
            stattest=env.get("STATTEST") or None,
            model_package_group=_matching(
                env, "MODEL_PACKAGE_GROUP", _GROUP_NAME, "a model package group name"
            ),
            subnets=_ids(env, "VPC_SUBNETS", _SUBNET_ID, 16),
            security_group_ids=_ids(env, "VPC_SECURITY_GROUP_IDS", _SECURITY_GROUP_ID, 5),
        )

    def __post_init__(self) -> None:
        if bool(self.subnets) != bool(self.security_group_ids):
            raise ConfigError(
                "VPC_SUBNETS and VPC_SECURITY_GROUP_IDS are not allowed one without the other: "
                "set both (vpc mode) or neither"
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


def _ids(env: Mapping[str, str], name: str, pattern: re.Pattern[str], most: int) -> tuple[str, ...]:
    raw = env.get(name) or ""
    ids = tuple(part.strip() for part in raw.split(",") if part.strip())
    if len(ids) > most or not all(pattern.match(each) for each in ids):
        raise ConfigError(
            f"{name}={raw!r} is not allowed: set it to at most {most} comma-separated ids "
            f"matching {pattern.pattern}"
        )
    return ids
