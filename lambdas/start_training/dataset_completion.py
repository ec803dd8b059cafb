"""What a complete dataset version contains: S3 listing, manifest checks, content identities
and digests (version_manifest).

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
      `--checksum-algorithm SHA256`. Without one the value cannot be verified here without
      reading the data: the file is reported as unverified in the log (the version still
      completes) and the run's version manifest carries the value for the pipeline's input
      check (pipeline_code/steps/prepare/verify_inputs.py), which recomputes it.
    - Other top-level fields are ignored (producers may add `dataset`, `created_by`, ...).

    The version completes only if every listed file exists with the listed size (and ETag /
    SHA-256 where given) **and** no unlisted data object exists under the prefix: the pipeline
    reads the whole prefix, so an unlisted file would be trained on without being declared.

Digests and content identity
    Each data object is identified by a checksum of its bytes (content_identity), never by
    its ETag alone; the digests over those identities and their record, the version manifest
    written before the run starts, are described in version_manifest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import content_identity
import version_manifest
from content_identity import Identity
from version_manifest import FileRecord

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
    """The data objects that make up a complete version, their identities and digests."""

    files: tuple[S3Object, ...]
    records: tuple[FileRecord, ...]
    data_digest: str
    content_digest: str
    total_bytes: int
    completed_by: str  # "_SUCCESS", "manifest.json" or "quiet-period"
    unverified_checksums: int = 0

    @property
    def legacy_content_digest(self) -> str:
        """The content digest as ledger items before `digest_format` 2 recorded it."""
        return version_manifest.legacy_content_digest(
            (obj.relative_key, obj.size, obj.etag) for obj in self.files
        )

    def identity_counts(self) -> dict[str, int]:
        """How many files each identity algorithm identifies (for logs and the ledger)."""
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record.identity.algorithm] = counts.get(record.identity.algorithm, 0) + 1
        return dict(sorted(counts.items()))

    def manifest(self) -> dict[str, Any]:
        """The version manifest document (version_manifest)."""
        return version_manifest.document(self.records)


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


def check_manifest(entries: list[ManifestEntry], listing: list[S3Object]) -> None:
    """Check a manifest against the listing (names, sizes, ETags; checksums come later).

    Raises CompletionError with reason `manifest-missing-files`, `manifest-size-mismatch`,
    `manifest-etag-mismatch` or `manifest-unlisted-files`.
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


def _check_stated_sha256(stated: Mapping[str, str], identities: Mapping[str, Identity]) -> int:
    """Compare manifest.json's SHA-256 values with the full-object SHA-256 S3 stores; raise
    CompletionError (`manifest-checksum-mismatch`) on a difference; return how many had none
    to compare with."""
    unverified, wrong = 0, []
    for key, sha256 in stated.items():
        identity = identities[key]
        if identity.algorithm == "sha256" and identity.source == content_identity.SOURCE_S3:
            if identity.value != sha256:
                wrong.append(key)
        else:
            unverified += 1
    if wrong:
        raise CompletionError(
            "manifest-checksum-mismatch",
            f"{len(wrong)} file(s) differ in SHA-256 from manifest.json: {_short_list(wrong)}",
        )
    return unverified


def version_contents(
    s3: Any,
    bucket: str,
    listing: list[S3Object],
    *,
    completed_by: str,
    known: Mapping[tuple[str, str], Identity] | None = None,
    workers: int = 1,
) -> VersionContents:
    """The contents of a listed version: checked against its manifest.json when one is
    listed, else every data object; each identified (content_identity: `known` identities
    of earlier manifests are reused, `workers` lookups run at once). Raises CompletionError.
    """
    files = tuple(obj for obj in listing if is_data_key(obj.relative_key))
    manifest = next((o for o in listing if o.relative_key == MANIFEST_NAME), None)
    stated: dict[str, str] = {}
    if manifest is not None:
        entries = read_manifest(s3, bucket, manifest)
        check_manifest(entries, listing)
        completed_by = MANIFEST_NAME
        stated = {e.key: e.sha256 for e in entries if e.sha256}
    elif not files:
        raise CompletionError(
            "empty-version",
            f"completed by {completed_by} but no data objects under the version prefix "
            "(objects named _* or .*, folder placeholders and manifest.json are not data)",
        )
    identities = content_identity.lookup_all(
        s3,
        bucket,
        [(obj.relative_key, obj.key, obj.version_id) for obj in files],
        stated_sha256=stated,
        known=known or {},
        workers=workers,
    )
    unverified = _check_stated_sha256(stated, identities)
    records = tuple(
        FileRecord(
            key=obj.relative_key,
            version_id=obj.version_id,
            size=obj.size,
            identity=identities[obj.relative_key],
            stated_sha256=stated.get(obj.relative_key),
        )
        for obj in files
    )
    return VersionContents(
        files=files,
        records=records,
        data_digest=version_manifest.data_digest(records),
        content_digest=version_manifest.content_digest(records),
        total_bytes=sum(obj.size for obj in files),
        completed_by=completed_by,
        unverified_checksums=unverified,
    )


def newest_object_time(listing: list[S3Object]) -> float | None:
    """Epoch seconds of the most recently written object (data or not); None if empty."""
    return max((obj.last_modified for obj in listing), default=None)
