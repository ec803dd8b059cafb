"""What a complete dataset version contains: S3 listing, manifest checks and data digests.

A dataset version is every object under `s3://<bucket>/<landing prefix><dataset>/<version>/`.

Data objects
    Every object under the version prefix except folder placeholders (keys ending in `/`),
    the manifest (`manifest.json` at the version root) and objects whose file name starts
    with `_` or `.` (the Hadoop/Spark convention for metadata such as `_SUCCESS`,
    `_committed_*` or `.crc` files). Objects in sub-folders are data too.

Manifest format (`<version prefix>manifest.json`, UTF-8 JSON, at most 5 MiB)::

    {
      "files": [
        {"key": "part-0001.csv", "size": 1048576},
        {"key": "2024/part-0002.csv", "size": 99, "etag": "9b2cf535f27731c974343645a3985328",
         "sha256": "<64 lowercase hex digits>"}
      ]
    }

    - `files` (required, non-empty list): the complete set of data objects of the version.
    - `key` (required): path relative to the version prefix; no leading `/`, no empty, `.` or
      `..` segments, not a metadata name (`_*`, `.*`, `manifest.json`); unique.
    - `size` (required): object size in bytes (non-negative integer).
    - `etag` (optional): compared with the object's S3 ETag (quotes ignored).
    - `sha256` (optional): hex SHA-256 of the object's bytes; compared with the full-object
      SHA-256 checksum S3 stores when the producer uploads with
      `--checksum-algorithm SHA256`. S3 keeps no full-object checksum for other uploads; then
      the value cannot be verified without reading the data and the file is reported as
      unverified in the log (the version still completes).
    - Other top-level fields are ignored (producers may add `dataset`, `created_by`, ...).

    The version completes only if every listed file exists with the listed size (and ETag /
    SHA-256 where given) **and** no unlisted data object exists under the prefix: the pipeline
    reads the whole prefix, so an unlisted file would be trained on without being declared.

Digests (64 lowercase hex digits)
    Each data object contributes the line `json.dumps([relative_key, size, etag, version_id])`
    (compact separators, non-ASCII kept as UTF-8, ETag without quotes, version id `"null"` for
    unversioned buckets). Lines are sorted by relative key (code point order) and joined with
    `\\n`; the digest is SHA-256 of the UTF-8 bytes. `data_digest` (passed to the pipeline as
    `DataDigest`) includes version ids, so it names the exact object versions trained on.
    `content_digest` leaves the version id out (`[relative_key, size, etag]`): re-uploading
    identical bytes creates new version ids but is not a content change, so re-upload
    decisions compare content digests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MARKER_SUCCESS = "_SUCCESS"
MANIFEST_NAME = "manifest.json"
COMPLETION_MARKERS = frozenset({MARKER_SUCCESS, MANIFEST_NAME})
MAX_MANIFEST_BYTES = 5 * 1024 * 1024
_REPORTED_KEYS = 5


class CompletionError(Exception):
    """The version cannot complete as it stands; retrying the same event cannot fix it.

    `reason` is a short slug used as the `Reason` metric dimension; the message says what is
    wrong and what the producer should do.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class S3Object:
    """The latest version of one object under a version prefix."""

    key: str
    relative_key: str
    size: int
    etag: str
    version_id: str
    last_modified: float  # epoch seconds


@dataclass(frozen=True)
class ManifestEntry:
    """One `files[]` entry of a manifest."""

    key: str
    size: int
    etag: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class VersionContents:
    """The data objects that make up a complete version, with their digests."""

    files: tuple[S3Object, ...]
    data_digest: str
    content_digest: str
    total_bytes: int
    completed_by: str  # "_SUCCESS", "manifest.json" or "quiet-period"
    unverified_checksums: int = 0


def is_data_key(relative_key: str) -> bool:
    """True if the object is data, not a folder placeholder or a metadata/marker object."""
    if not relative_key or relative_key.endswith("/"):
        return False
    name = relative_key.rsplit("/", 1)[-1]
    if relative_key == MANIFEST_NAME:
        return False
    return not name.startswith(("_", "."))


def list_version(s3: Any, bucket: str, version_prefix: str) -> list[S3Object]:
    """List the latest version of every object under `version_prefix` (ends with `/`).

    Uses ListObjectVersions so version ids are known; keys whose latest version is a delete
    marker are absent. Works on unversioned buckets (version id `"null"`).
    """
    objects: list[S3Object] = []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=version_prefix):
        for item in page.get("Versions", []):
            if not item.get("IsLatest"):
                continue
            modified = item["LastModified"]
            objects.append(
                S3Object(
                    key=item["Key"],
                    relative_key=item["Key"][len(version_prefix) :],
                    size=int(item["Size"]),
                    etag=item["ETag"].strip('"'),
                    version_id=item.get("VersionId") or "null",
                    last_modified=modified.timestamp()
                    if isinstance(modified, datetime)
                    else float(modified),
                )
            )
    return objects


def digest_lines(files: list[S3Object] | tuple[S3Object, ...], *, with_versions: bool) -> str:
    """SHA-256 over the documented per-object lines (see module docstring)."""
    lines = []
    for obj in sorted(files, key=lambda o: o.relative_key):
        fields: list[Any] = [obj.relative_key, obj.size, obj.etag]
        if with_versions:
            fields.append(obj.version_id)
        lines.append(json.dumps(fields, ensure_ascii=False, separators=(",", ":")))
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def contents_from_listing(
    listing: list[S3Object], *, completed_by: str, unverified_checksums: int = 0
) -> VersionContents:
    """Digest the data objects of a listing; a version without data objects is an error."""
    files = tuple(obj for obj in listing if is_data_key(obj.relative_key))
    if not files:
        raise CompletionError(
            "empty-version",
            f"completed by {completed_by} but no data objects under the version prefix "
            "(objects named _* or .*, folder placeholders and manifest.json are not data)",
        )
    return VersionContents(
        files=files,
        data_digest=digest_lines(files, with_versions=True),
        content_digest=digest_lines(files, with_versions=False),
        total_bytes=sum(obj.size for obj in files),
        completed_by=completed_by,
        unverified_checksums=unverified_checksums,
    )


def parse_manifest(raw: bytes) -> list[ManifestEntry]:
    """Parse and validate a manifest document; raise CompletionError('manifest-malformed')."""

    def malformed(detail: str) -> CompletionError:
        return CompletionError("manifest-malformed", f"manifest.json is malformed: {detail}")

    if len(raw) > MAX_MANIFEST_BYTES:
        raise CompletionError(
            "manifest-too-large",
            f"manifest.json is {len(raw)} bytes; at most {MAX_MANIFEST_BYTES} bytes are read",
        )
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise malformed(f"not UTF-8 JSON ({error})") from error
    if not isinstance(document, dict):
        raise malformed(f"top level must be an object, got {type(document).__name__}")
    files = document.get("files")
    if not isinstance(files, list) or not files:
        raise malformed("'files' must be a non-empty list")
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for index, entry in enumerate(files):
        where = f"files[{index}]"
        if not isinstance(entry, dict):
            raise malformed(f"{where} must be an object")
        key = entry.get("key")
        if not isinstance(key, str) or not key:
            raise malformed(f"{where}.key must be a non-empty string")
        segments = key.split("/")
        if key.startswith("/") or any(s in ("", ".", "..") for s in segments):
            raise malformed(
                f"{where}.key {key!r} must be relative to the version prefix "
                "(no leading '/', no empty, '.' or '..' segments)"
            )
        if not is_data_key(key):
            raise malformed(f"{where}.key {key!r} names a marker/metadata object, not data")
        if key in seen:
            raise malformed(f"{where}.key {key!r} is listed twice")
        seen.add(key)
        size = entry.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise malformed(f"{where}.size must be a non-negative integer, got {size!r}")
        etag = entry.get("etag")
        if etag is not None and (not isinstance(etag, str) or not etag.strip('"')):
            raise malformed(f"{where}.etag must be a non-empty string")
        sha256 = entry.get("sha256")
        if sha256 is not None:
            if not isinstance(sha256, str) or len(sha256) != 64:
                raise malformed(f"{where}.sha256 must be 64 hex digits")
            try:
                bytes.fromhex(sha256)
            except ValueError as error:
                raise malformed(f"{where}.sha256 must be 64 hex digits") from error
        entries.append(
            ManifestEntry(
                key=key,
                size=size,
                etag=etag.strip('"') if etag else None,
                sha256=sha256.lower() if sha256 else None,
            )
        )
    return entries


def read_manifest(s3: Any, bucket: str, manifest: S3Object) -> list[ManifestEntry]:
    """Read the listed manifest version (not whatever is newest by then) and parse it."""
    if manifest.size > MAX_MANIFEST_BYTES:
        raise CompletionError(
            "manifest-too-large",
            f"manifest.json is {manifest.size} bytes; at most {MAX_MANIFEST_BYTES} bytes are read",
        )
    request: dict[str, Any] = {"Bucket": bucket, "Key": manifest.key}
    if manifest.version_id != "null":
        request["VersionId"] = manifest.version_id
    body = s3.get_object(**request)["Body"].read()
    return parse_manifest(body)


def _short_list(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:_REPORTED_KEYS])
    more = len(keys) - _REPORTED_KEYS
    return shown + (f" and {more} more" if more > 0 else "")


def _stored_sha256(s3: Any, bucket: str, obj: S3Object) -> str | None:
    """The object's full-object SHA-256 as hex, or None when S3 stores none."""
    request: dict[str, Any] = {"Bucket": bucket, "Key": obj.key, "ChecksumMode": "ENABLED"}
    if obj.version_id != "null":
        request["VersionId"] = obj.version_id
    head = s3.head_object(**request)
    stored = head.get("ChecksumSHA256")
    if not stored or "-" in stored or head.get("ChecksumType") == "COMPOSITE":
        return None
    try:
        return base64.b64decode(stored, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def verify_manifest(
    s3: Any, bucket: str, entries: list[ManifestEntry], listing: list[S3Object]
) -> VersionContents:
    """Check a manifest against the listing; return the version contents or raise.

    Raises CompletionError with reason `manifest-missing-files`, `manifest-size-mismatch`,
    `manifest-etag-mismatch`, `manifest-checksum-mismatch` or `manifest-unlisted-files`.
    """
    present = {obj.relative_key: obj for obj in listing if is_data_key(obj.relative_key)}
    missing = [e.key for e in entries if e.key not in present]
    if missing:
        raise CompletionError(
            "manifest-missing-files",
            f"manifest.json lists {len(missing)} file(s) that do not exist: "
            f"{_short_list(missing)}; upload them, then re-upload manifest.json",
        )
    wrong_size = [
        f"{e.key} (listed {e.size}, found {present[e.key].size})"
        for e in entries
        if present[e.key].size != e.size
    ]
    if wrong_size:
        raise CompletionError(
            "manifest-size-mismatch",
            f"{len(wrong_size)} file(s) differ in size from manifest.json: "
            f"{', '.join(wrong_size[:_REPORTED_KEYS])}",
        )
    wrong_etag = [e.key for e in entries if e.etag and present[e.key].etag != e.etag]
    if wrong_etag:
        raise CompletionError(
            "manifest-etag-mismatch",
            f"{len(wrong_etag)} file(s) differ in ETag from manifest.json: "
            f"{_short_list(wrong_etag)}",
        )
    listed = {e.key for e in entries}
    unlisted = sorted(k for k in present if k not in listed)
    if unlisted:
        raise CompletionError(
            "manifest-unlisted-files",
            f"{len(unlisted)} data object(s) under the version prefix are not in "
            f"manifest.json: {_short_list(unlisted)}; the pipeline reads the whole prefix, "
            "so list them or remove them",
        )
    unverified = 0
    wrong_sum = []
    for entry in entries:
        if entry.sha256 is None:
            continue
        stored = _stored_sha256(s3, bucket, present[entry.key])
        if stored is None:
            unverified += 1
        elif stored != entry.sha256:
            wrong_sum.append(entry.key)
    if wrong_sum:
        raise CompletionError(
            "manifest-checksum-mismatch",
            f"{len(wrong_sum)} file(s) differ in SHA-256 from manifest.json: "
            f"{_short_list(wrong_sum)}",
        )
    return contents_from_listing(
        listing, completed_by=MANIFEST_NAME, unverified_checksums=unverified
    )


def version_contents(
    s3: Any, bucket: str, listing: list[S3Object], *, completed_by: str
) -> VersionContents:
    """The contents of a listed version: checked against its manifest.json when one is
    listed, else every data object (raises CompletionError)."""
    manifest = next((o for o in listing if o.relative_key == MANIFEST_NAME), None)
    if manifest is None:
        return contents_from_listing(listing, completed_by=completed_by)
    entries = read_manifest(s3, bucket, manifest)
    return verify_manifest(s3, bucket, entries, listing)


def newest_object_time(listing: list[S3Object]) -> float | None:
    """Epoch seconds of the most recently written object (data or not); None if empty."""
    return max((obj.last_modified for obj in listing), default=None)
