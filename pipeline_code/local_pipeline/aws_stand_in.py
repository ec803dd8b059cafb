"""The AWS a local step container sees, and the local model registry's storage.

A step without network isolation may call AWS (Evaluate looks up the champion in the registry,
downloads its model and publishes metrics). In a local step every botocore call ends here,
never on the network: the request is validated against botocore's model, as a real client
does, then answered from the local buckets and registry, or refused.

Answered: S3 HeadObject, GetObject (whole or one byte range), PutObject, ListObjectsV2 from
the local buckets; SageMaker ListModelPackages and DescribeModelPackage from the local
registry; CloudWatch PutMetricData, appended to a file. Every answer is validated against the
operation's output shape. Any other operation is refused with a ClientError naming it
(`LocalRunUnsupported`); in a network-isolated step every call fails as it would in SageMaker
(EndpointConnectionError). Each call is recorded, so the runner fails the step over a refused
call even when the step swallowed the error.

The step process loads this file by path (no package import), so it imports only the
standard library and botocore.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ACCOUNT = "000000000000"
PACKAGE_FILE = "package.json"
#: Environment variable naming the container's JSON settings (see the `container` module).
SETTINGS_ENV = "LOCAL_PIPELINE_CONTAINER"
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_PACKAGE_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[^:]*:\d{12}:model-package/(.+)/(\d+)$")


# ---- the local registry's storage ------------------------------------------------------------


def package_arn(region: str, group: str, version: int) -> str:
    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:model-package/{group.lower()}/{version}"


def package_dir(registry: Path, group: str, version: int) -> Path:
    return registry / group / str(version)


def list_packages(registry: Path, group: str) -> list[dict[str, Any]]:
    """The group's packages (DescribeModelPackage's shape, times as ISO text), oldest first."""
    folder = registry / group
    if not folder.is_dir():
        return []
    packages = [
        json.loads((d / PACKAGE_FILE).read_text(encoding="utf-8"))
        for d in folder.iterdir()
        if (d / PACKAGE_FILE).is_file()
    ]
    return sorted(packages, key=lambda p: int(p["ModelPackageVersion"]))


def find_package(registry: Path, name: str) -> dict[str, Any] | None:
    """A package by ARN or `group/version` (DescribeModelPackage's ModelPackageName)."""
    match = _PACKAGE_ARN.match(name)
    group, _, version = (match.group(1), "/", match.group(2)) if match else name.rpartition("/")
    if not version.isdigit() or not registry.is_dir():
        return None
    for folder in registry.iterdir():
        if folder.name.lower() == group.lower():
            for package in list_packages(registry, folder.name):
                if int(package["ModelPackageVersion"]) == int(version):
                    return package
    return None


def write_package(registry: Path, package: dict[str, Any]) -> Path:
    folder = package_dir(
        registry, package["ModelPackageGroupName"], int(package["ModelPackageVersion"])
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PACKAGE_FILE).write_text(
        json.dumps(package, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return folder


# ---- the stand-in ----------------------------------------------------------------------------


@dataclass
class LocalAws:
    s3_root: Path
    registry: Path
    metrics_file: Path
    calls_file: Path
    network_isolation: bool

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> LocalAws:
        return cls(
            Path(settings["s3_root"]),
            Path(settings["registry"]),
            Path(settings["metrics_file"]),
            Path(settings["calls_file"]),
            bool(settings["network_isolation"]),
        )

    def call(self, client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError, EndpointConnectionError
        from botocore.validate import ParamValidator, validate_parameters

        service = client.meta.service_model.service_name
        model = client.meta.service_model.operation_model(operation)
        name = f"{service}:{operation}"
        if self.network_isolation:
            self._record(name, "blocked: network isolation")
            raise EndpointConnectionError(endpoint_url=client.meta.endpoint_url)
        validate_parameters(params, model.input_shape)
        handler = _HANDLERS.get(name)
        if handler is None:
            self._record(name, "refused")
            raise ClientError(
                {
                    "Error": {
                        "Code": "LocalRunUnsupported",
                        "Message": f"the local run does not emulate {name}",
                    }
                },
                operation,
            )
        try:
            response = handler(self, params)
        except ClientError:
            self._record(name, "answered (error)")
            raise
        report = (
            ParamValidator().validate(response, model.output_shape) if model.output_shape else None
        )
        if report is not None and report.has_errors():
            raise RuntimeError(
                f"local {name} answer does not fit botocore's model: {report.generate_report()}"
            )
        self._record(name, "answered")
        return response

    def _record(self, name: str, outcome: str) -> None:
        with self.calls_file.open("a", encoding="utf-8") as calls:
            calls.write(json.dumps({"call": name, "outcome": outcome}) + "\n")

    def object_path(self, bucket: str, key: str) -> Path:
        path = (self.s3_root / bucket / key).resolve()
        if self.s3_root.resolve() not in path.parents:
            raise _client_error("InvalidRequest", f"key {key!r} leaves the bucket", 400)
        return path


def _client_error(code: str, message: str, status: int, operation: str = "") -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


def _object(aws: LocalAws, params: dict[str, Any], operation: str) -> tuple[Path, dict[str, Any]]:
    path = aws.object_path(params["Bucket"], params["Key"])
    if not path.is_file():
        if operation == "HeadObject":
            raise _client_error("404", "Not Found", 404, operation)
        raise _client_error("NoSuchKey", "The specified key does not exist.", 404, operation)
    data = path.read_bytes()
    meta = {
        "ETag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
        "LastModified": datetime.fromtimestamp(path.stat().st_mtime, UTC),
        "ContentType": "binary/octet-stream",
        "ContentLength": len(data),
    }
    return path, meta


def _head_object(aws: LocalAws, params: dict[str, Any]) -> dict[str, Any]:
    return _object(aws, params, "HeadObject")[1]


def _get_object(aws: LocalAws, params: dict[str, Any]) -> dict[str, Any]:
    from botocore.response import StreamingBody

    path, meta = _object(aws, params, "GetObject")
    data = path.read_bytes()
    if params.get("Range"):
        match = _RANGE.match(params["Range"])
        if not match:
            raise _client_error("InvalidRange", f"Range {params['Range']!r}", 416, "GetObject")
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else len(data) - 1
        meta["ContentRange"] = f"bytes {start}-{min(end, len(data) - 1)}/{len(data)}"
        data = data[start : end + 1]
        meta["ContentLength"] = len(data)
    return {**meta, "Body": StreamingBody(io.BytesIO(data), len(data))}


def _put_object(aws: LocalAws, params: dict[str, Any]) -> dict[str, Any]:
    body = params.get("Body", b"")
    data = body.read() if hasattr(body, "read") else body
    data = data.encode() if isinstance(data, str) else bytes(data)
    path = aws.object_path(params["Bucket"], params["Key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"ETag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'}


def _list_objects_v2(aws: LocalAws, params: dict[str, Any]) -> dict[str, Any]:
    bucket, prefix = params["Bucket"], params.get("Prefix", "")
    base = aws.s3_root / bucket
    if not base.is_dir():
        raise _client_error("NoSuchBucket", f"no bucket {bucket}", 404, "ListObjectsV2")
    keys = sorted(
        f.relative_to(base).as_posix()
        for f in base.rglob("*")
        if f.is_file() and f.relative_to(base).as_posix().startswith(prefix)
    )
    start = params.get("StartAfter") or params.get("ContinuationToken") or ""
    keys = [k for k in keys if k > start]
    page = keys[: params.get("MaxKeys", 1000)]
    response: dict[str, Any] = {
        "Name": bucket,
        "Prefix": prefix,
        "KeyCount": len(page),
        "MaxKeys": params.get("MaxKeys", 1000),
        "IsTruncated": len(page) < len(keys),
        "Contents": [
            {
                "Key": key,
                "Size": (base / key).stat().st_size,
                "LastModified": datetime.fromtimestamp((base / key).stat().st_mtime, UTC),
            }
            for key in page
        ],
    }
    if response["IsTruncated"]:
        response["NextContinuationToken"] = page[-1]
    return response


def _with_times(package: dict[str, Any]) -> dict[str, Any]:
    return {
        key: datetime.fromisoformat(value) if key.endswith("Time") else value
        for key, value in package.items()
    }


def _list_model_packages(aws: LocalAws, params: dict[str, Any]) -> dict[str, Any]:
    packages = list_packages(aws.registry, params.get("ModelPackageGroupName", ""))
    if params.get("ModelApprovalStatus"):
        packages = [
            p for p in packages if p["ModelApprovalStatus"] == params["ModelApprovalStatus"]
        ]
    key = "ModelPackageGroupName" if params.get("SortBy") == "Name" else "CreationTime"
    packages.sort(key=lambda p: (p[key], int(p["ModelPackageVersion"])))
    if params.get("SortOrder", "Ascending") == "Descending":
        packages.reverse()
    summary_fields = (
        "ModelPackageGroupName",
        "ModelPackageVersion",
        "ModelPackageArn",
        "ModelPackageDescription",
        "CreationTime",
        "ModelPackageStatus",
        "ModelApprovalStatus",
    )
    summaries = [{k: v for k, v in _with_times(p).items() if k in summary_fields} for p in packages]
    return {"ModelPackageSummaryList": summaries[: params.get("MaxResults", 100)]}


def _describe_model_package(aws: LocalAws, params: dict[str, Any]) -> dict[str, Any]:
    package = find_package(aws.registry, params["ModelPackageName"])
    if package is None:
        raise _client_error(
            "ValidationException",
            f"Model Package {params['ModelPackageName']} does not exist.",
            400,
            "DescribeModelPackage",
        )
    return _with_times(package)


def _put_metric_data(aws: LocalAws, params: dict[str, Any]) -> dict[str, Any]:
    with aws.metrics_file.open("a", encoding="utf-8") as metrics:
        for datum in params["MetricData"]:
            metrics.write(json.dumps({"Namespace": params["Namespace"], **datum}, default=str))
            metrics.write("\n")
    return {}


_HANDLERS: dict[str, Callable[[LocalAws, dict[str, Any]], dict[str, Any]]] = {
    "s3:HeadObject": _head_object,
    "s3:GetObject": _get_object,
    "s3:PutObject": _put_object,
    "s3:ListObjectsV2": _list_objects_v2,
    "sagemaker:ListModelPackages": _list_model_packages,
    "sagemaker:DescribeModelPackage": _describe_model_package,
    "cloudwatch:PutMetricData": _put_metric_data,
}


def install(settings: dict[str, Any]) -> None:
    """Route every botocore call of this process to a LocalAws (call once botocore.client is
    imported)."""
    from botocore.client import BaseClient

    aws = LocalAws.from_settings(settings)

    def _make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        return aws.call(self, operation_name, api_params)

    BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]
