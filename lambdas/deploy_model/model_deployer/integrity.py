"""Model artifact integrity: deploy only the bytes the pipeline registered.

The pipeline records the SHA-256 of the model artifact (`model.tar.gz`, 64 hex digits) in the
package's CustomerMetadataProperties under `MODEL_ARTIFACT_SHA256_KEY`. Before any deploy the
deployer streams the package's ModelDataUrl from S3 (1 MiB chunks, constant memory), hashes
it and refuses when the value is missing or malformed, the URL is outside this environment's
model artifacts (artifact bucket, model prefix: the only objects its role may read), the
object is gone, or the digest differs. A refusal is final for that event (retrying cannot
change the bytes): it is logged, counted (DeployFailures, Error=ArtifactIntegrity) and
alarmed, and nothing is deployed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from .errors import no_answer_is_deploy_error

MODEL_ARTIFACT_SHA256_KEY = "model_artifact_sha256"
CHUNK_BYTES = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class IntegrityError(Exception):
    """The package's model artifact cannot be verified: the message says why."""


def model_data_url(package: Mapping[str, Any]) -> str:
    """The one ModelDataUrl of the package's inference containers."""
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    urls = [c["ModelDataUrl"] for c in containers if c.get("ModelDataUrl")]
    if len(urls) != 1:
        raise IntegrityError(
            f"{package['ModelPackageArn']} has {len(urls)} ModelDataUrl(s); the deployer "
            "verifies packages with exactly one model artifact"
        )
    return str(urls[0])


def expected_sha256(package: Mapping[str, Any]) -> str:
    """The recorded digest, lower-case; IntegrityError when it is missing or malformed."""
    metadata = package.get("CustomerMetadataProperties") or {}
    value = str(metadata.get(MODEL_ARTIFACT_SHA256_KEY) or "").strip().lower()
    if not value:
        raise IntegrityError(
            f"{package['ModelPackageArn']} has no {MODEL_ARTIFACT_SHA256_KEY} in its "
            "CustomerMetadataProperties: its model artifact cannot be verified"
        )
    if not _SHA256.match(value):
        raise IntegrityError(
            f"{package['ModelPackageArn']}: {MODEL_ARTIFACT_SHA256_KEY}={value[:80]!r} is not "
            "a SHA-256 hex digest (64 hex digits)"
        )
    return value


def verify_model_artifact(s3: Any, package: Mapping[str, Any], *, bucket: str, prefix: str) -> str:
    """Hash the package's model artifact and compare it with the recorded digest.

    Args:
        s3: boto3 S3 client.
        package: the DescribeModelPackage answer.
        bucket: the environment's artifact bucket.
        prefix: the key prefix of model artifacts in it (e.g. "pipelines/<name>/training/").

    Returns:
        The verified digest.

    Raises:
        IntegrityError: missing/malformed digest, foreign location, missing object, mismatch.
        ClientError: any other S3 error (access denied, throttling after retries).
        DeployError: S3 could not be reached.
    """
    expected = expected_sha256(package)
    url = model_data_url(package)
    match = _S3_URL.match(url)
    if not match or match.group(1) != bucket or not match.group(2).startswith(prefix):
        raise IntegrityError(
            f"{package['ModelPackageArn']}: model artifact {url} is not under "
            f"s3://{bucket}/{prefix}, where this environment's models are written"
        )
    key = match.group(2)
    digest = hashlib.sha256()
    try:
        with no_answer_is_deploy_error("GetObject"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(CHUNK_BYTES):
                digest.update(chunk)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING_OBJECT_CODES:
            raise IntegrityError(
                f"{package['ModelPackageArn']}: model artifact {url} does not exist"
            ) from error
        raise
    actual = digest.hexdigest()
    if actual != expected:
        raise IntegrityError(
            f"{package['ModelPackageArn']}: model artifact {url} has SHA-256 {actual}, the "
            f"registry recorded {expected}: it changed after registration"
        )
    return actual
