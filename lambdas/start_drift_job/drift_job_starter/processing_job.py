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
from .served_model import ServedModel

# Where drift_check.py reads and writes inside the container (its defaults).
CAPTURE_LOCAL_PATH = "/opt/ml/processing/input/capture"
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


def processing_job_request(
    config: StarterConfig, served: ServedModel, window: Window, name: str, region: str
) -> dict[str, Any]:
    """The CreateProcessingJob request for one drift check."""
    stamp = window.end.strftime("%Y%m%dT%H%M%SZ")
    arguments = [
        "--window-start", iso(window.start),
        "--window-end", iso(window.end),
        "--endpoint-name", served.endpoint_name,
        "--model-version", served.model_version,
        "--model-package-arn", served.model_package_arn,
        "--drift-share-threshold", str(config.drift_share_threshold),
        "--missing-share-threshold", str(config.missing_share_threshold),
        "--min-rows", str(config.min_rows),
        "--metrics-namespace", config.metrics_namespace,
    ]  # fmt: skip
    if config.stattest:
        arguments += ["--stattest", config.stattest]
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


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
