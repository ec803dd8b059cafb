"""Copy objects of the sending account into this environment's artifact bucket: streamed (a
multipart upload of PART_BYTES parts, never a whole object in memory), hashed on the way, and
completed only when conditional (`If-None-Match: *`, the bucket's write-once rule).

No existence check before a copy: HeadObject answers 403, not 404, for a missing key unless the
caller may list the bucket without a prefix condition, which this role may not. Every copy is
streamed and hashed; a completion S3 refuses with 412 PreconditionFailed means the key already
holds an object, written by an earlier delivery (keys are content- or package-addressed), so
the copy is already there.

Only keys the sending pipeline writes for a package are read: `readable_key` (the model under
`training/`, and per execution Evaluate's evaluation, Prepare's baseline and the Baseline step's
results), never Prepare's data splits or training checkpoints.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

PART_BYTES = 16 * 1024 * 1024
LIST_PAGE_SIZE = 1000
# Below the sending pipeline's prefix (`pipelines/<pipeline>/`): what a package names.
READABLE = re.compile(
    r"^(training/|executions/[^/]+/(Evaluate/evaluation|Prepare/baseline|Baseline/results)/)"
)
S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
ALREADY_THERE = ("PreconditionFailed", "412")


class IntegrityError(Exception):
    """The artifact cannot be verified against the recorded digest: nothing is registered."""


def readable_key(key: str, pipeline_prefix: str) -> bool:
    """Whether `key` is one the receiver reads (module docstring) below `pipeline_prefix`."""
    return key.startswith(pipeline_prefix) and bool(READABLE.match(key[len(pipeline_prefix) :]))


def source_object(url: str, pipeline_prefix: str, what: str) -> tuple[str, str]:
    """(bucket, key) of `url`, refused (IntegrityError) unless `readable_key`."""
    match = S3_URL.match(url)
    if not match or not readable_key(match.group(2), pipeline_prefix):
        raise IntegrityError(
            f"{what} {url} is not one of the sending pipeline's model, evaluation or baseline "
            "files: not copied"
        )
    return match.group(1), match.group(2)


def copy_object(
    source_s3: Any, s3: Any, *, source: tuple[str, str], target: tuple[str, str],
    sha256: str | None = None,
) -> str:  # fmt: skip
    """Stream `source` (bucket, key) to `target`, hashing the bytes; complete only when the
    SHA-256 is `sha256` if given (else abort and raise IntegrityError). Returns the SHA-256."""
    bucket, key = target
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    digest = hashlib.sha256()
    parts: list[dict[str, Any]] = []
    completed = False
    try:
        body = source_s3.get_object(Bucket=source[0], Key=source[1])["Body"]
        for number, chunk in enumerate(_parts(body), start=1):
            digest.update(chunk)
            etag = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk
            )["ETag"]
            parts.append({"ETag": etag, "PartNumber": number})
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256:
            raise IntegrityError(
                f"s3://{source[0]}/{source[1]} has SHA-256 {actual}, the sending registry "
                f"recorded {sha256}: not copied"
            )
        if not parts:  # an empty object is one empty part
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"")[
                "ETag"
            ]
            parts.append({"ETag": etag, "PartNumber": 1})
        try:
            s3.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
            completed = True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ALREADY_THERE:
                raise
        return actual
    finally:
        if not completed:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)


def _parts(body: Any) -> Any:
    """Chunks of PART_BYTES (S3's minimum part is 5 MiB but for the last one)."""
    buffer = b""
    for chunk in body.iter_chunks(PART_BYTES):
        buffer += chunk
        while len(buffer) >= PART_BYTES:
            yield buffer[:PART_BYTES]
            buffer = buffer[PART_BYTES:]
    if buffer:
        yield buffer


def copy_folder(
    source_s3: Any, s3: Any, url: str, pipeline_prefix: str, target: tuple[str, str]
) -> str:
    """Copy every object under the folder `url` (all pages of the listing) under `target`
    (bucket, folder); returns the new folder's URI."""
    source_bucket, prefix = source_object(url.rstrip("/") + "/", pipeline_prefix, "baseline")
    bucket, folder = target
    pages = source_s3.get_paginator("list_objects_v2").paginate(
        Bucket=source_bucket, Prefix=prefix, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
    )
    for page in pages:
        for item in page.get("Contents", []):
            copy_object(
                source_s3, s3, source=(source_bucket, item["Key"]),
                target=(bucket, folder + item["Key"][len(prefix) :]),
            )  # fmt: skip
    return f"s3://{bucket}/{folder}"


def copy_report_files(
    source_s3: Any, s3: Any, value: Any, pipeline_prefix: str, target: tuple[str, str]
) -> Any:
    """`value` (ModelMetrics or DriftCheckBaselines) with every file its `S3Uri`s name copied
    under `target` (bucket, folder), keeping its path below `pipeline_prefix`, and renamed so."""
    if isinstance(value, list):
        return [copy_report_files(source_s3, s3, item, pipeline_prefix, target) for item in value]
    if not isinstance(value, Mapping):
        return value
    copied: dict[str, Any] = {}
    for name, item in value.items():
        if name == "S3Uri" and isinstance(item, str):
            source = source_object(item, pipeline_prefix, "report")
            key = target[1] + source[1][len(pipeline_prefix) :]
            copy_object(source_s3, s3, source=source, target=(target[0], key))
            copied[name] = f"s3://{target[0]}/{key}"
        else:
            copied[name] = copy_report_files(source_s3, s3, item, pipeline_prefix, target)
    return copied
