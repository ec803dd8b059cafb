"""What the endpoint serves now: endpoint -> config -> model -> model package -> baseline, or
the reason there is nothing to check (a skip, with the metric it counts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

BASELINE_METADATA_KEY = "baseline_s3_uri"
# Statuses in which the endpoint serves no traffic to check.
NOT_SERVING = frozenset({"Creating", "Deleting", "Failed", "OutOfService"})

METRIC_NO_ENDPOINT = "SkippedNoEndpoint"
METRIC_NOT_SERVING = "SkippedEndpointNotServing"
METRIC_NO_CAPTURE = "SkippedNoCapture"


class ServedModelError(RuntimeError):
    """The endpoint serves something the drift job cannot check (no package, no baseline)."""


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
