"""The drift job's name and its CreateProcessingJob request (the arguments drift_check.py
takes, its inputs and outputs, resources and tags).

Nothing per feature goes into the request: the job reads the served model's features from the
baseline folder it receives as an input, so the arguments stay a fixed handful (ContainerArguments
holds at most 100 items of at most 256 characters) whatever the number of features.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from .config import StarterConfig
from .schedule import Window
from .scored_version import ScoredVersion
from .served_model import ServedModel

# Where drift_check.py reads and writes inside the container (its defaults).
CAPTURE_LOCAL_PATH = "/opt/ml/processing/input/capture"
SCORED_LOCAL_PATH = "/opt/ml/processing/input/scored"
BASELINE_LOCAL_PATH = "/opt/ml/processing/input/baseline"
OUTPUT_LOCAL_PATH = "/opt/ml/processing/output"

_JOB_NAME_MAX = 63
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9-]+")


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


def scored_job_name(transform_job_name: str) -> str:
    """drift-<transform job> within SageMaker's 63 characters (shortened with a hash of the full
    name): one drift check per scoring run, found again by a re-delivered event."""
    room = _JOB_NAME_MAX - len("drift-")
    safe = _NAME_UNSAFE.sub("-", transform_job_name).strip("-")
    if len(safe) > room:
        digest = hashlib.sha256(transform_job_name.encode()).hexdigest()[:8]
        safe = f"{safe[: room - 9].rstrip('-')}-{digest}"
    return f"drift-{safe}"


def processing_job_request(
    config: StarterConfig, served: ServedModel, window: Window, name: str, region: str
) -> dict[str, Any]:
    """The CreateProcessingJob request for one drift check of captured traffic."""
    stamp = window.end.strftime("%Y%m%dT%H%M%SZ")
    arguments = [
        "--window-start", iso(window.start),
        "--window-end", iso(window.end),
        "--endpoint-name", served.endpoint_name,
        "--model-version", served.model_version,
        "--model-package-arn", served.model_package_arn,
    ]  # fmt: skip
    return _request(
        config,
        name=name,
        data=_s3_input("capture", served.capture_s3_uri, CAPTURE_LOCAL_PATH),
        baseline_uri=served.baseline_s3_uri,
        arguments=arguments,
        report_uri=f"s3://{config.artifact_bucket}/monitoring/{served.endpoint_name}/{stamp}/",
        region=region,
        tags={"endpoint": served.endpoint_name, "model-package-version": served.model_version},
    )


def scored_rows_request(
    config: StarterConfig, scored: ScoredVersion, baseline_uri: str, name: str, region: str
) -> dict[str, Any]:
    """The CreateProcessingJob request for the drift check of one scoring run's rows (batch
    serving): the same job, metrics and dimensions as an endpoint's check, the EndpointName
    dimension being `config.endpoint_name` (what the Monitoring stack's alarm watches)."""
    arguments = [
        "--scored-rows-dir", SCORED_LOCAL_PATH,
        "--endpoint-name", config.endpoint_name,
        "--model-version", scored.model_version,
        "--model-package-arn", scored.model_package_arn,
    ]  # fmt: skip
    return _request(
        config,
        name=name,
        data=_s3_input("scored", scored.rows_s3_uri, SCORED_LOCAL_PATH),
        baseline_uri=baseline_uri,
        arguments=arguments,
        report_uri=(
            f"s3://{config.artifact_bucket}/monitoring/{config.endpoint_name}/"
            f"{scored.transform_job_name}/"
        ),
        region=region,
        tags={
            "transform-job": scored.transform_job_name,
            "model-package-version": scored.model_version,
        },
    )


def _request(
    config: StarterConfig,
    *,
    name: str,
    data: dict[str, Any],
    baseline_uri: str,
    arguments: list[str],
    report_uri: str,
    region: str,
    tags: dict[str, str],
) -> dict[str, Any]:
    arguments = [
        *arguments,
        "--drift-share-threshold", str(config.drift_share_threshold),
        "--missing-share-threshold", str(config.missing_share_threshold),
        "--min-rows", str(config.min_rows),
        "--metrics-namespace", config.metrics_namespace,
    ]  # fmt: skip
    if config.stattest:
        arguments += ["--stattest", config.stattest]
    return {
        "ProcessingJobName": name,
        "ProcessingInputs": [data, _s3_input("baseline", baseline_uri, BASELINE_LOCAL_PATH)],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "report",
                    "S3Output": {
                        "S3Uri": report_uri,
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
        # it reaches CloudWatch over AWS's network (network isolation would block the call), in
        # vpc mode through the VPC's endpoints.
        "NetworkConfig": {
            "EnableNetworkIsolation": False,
            "EnableInterContainerTrafficEncryption": True,
            **(
                {
                    "VpcConfig": {
                        "SecurityGroupIds": list(config.security_group_ids),
                        "Subnets": list(config.subnets),
                    }
                }
                if config.subnets
                else {}
            ),
        },
        "Environment": {"AWS_DEFAULT_REGION": region, "DO_NOT_TRACK": "1"},
        "RoleArn": config.role_arn,
        "Tags": [
            {"Key": "project", "Value": config.project},
            {"Key": "environment", "Value": config.environment},
            *({"Key": key, "Value": value} for key, value in tags.items()),
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


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
