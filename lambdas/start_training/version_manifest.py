"""The digests of a dataset version and their record, the version manifest: the exact object
versions a run trains on, written once to the artifact bucket before the run starts.

Digests (digest format 2; 64 lowercase hex digits)
    Each data object contributes the line `json.dumps([relative_key, size, algorithm, value,
    version_id])` (compact separators, non-ASCII kept as UTF-8; identity `algorithm` and
    `value` as content_identity decides them, version id `"null"` in unversioned buckets).
    Lines are sorted by relative key (code point order) and joined with `\\n`; the digest is
    SHA-256 of the UTF-8 bytes. `data_digest` (the run's `DataDigest`) names the exact object
    versions; `content_digest` leaves the version id out, so identical bytes uploaded again
    (new version ids, and under SSE-KMS new ETags) are no content change.
    Ledger items written before format 2 (no `digest_format`) hold a format-1 content digest
    over `[relative_key, size, etag]`; `legacy_content_digest` recomputes it to compare.

Version manifest: `s3://<MANIFEST_BUCKET>/<MANIFEST_PREFIX><data_digest>.json`
    UTF-8 JSON, keys sorted, compact (byte-identical for the same objects)::

        {"digest_format": 2, "data_digest": "<hex>", "content_digest": "<hex>",
         "files": [{"key": "<relative key>", "version_id": "...", "size": 123,
                    "identity": {"algorithm": "crc64nvme", "value": "<hex>",
                                 "source": "s3-checksum"},
                    "parts": [{"size": 8388608, "checksum": "<hex>"}, ...],
                    "stated_sha256": "<hex>"}]}

    `parts` only for composite identities whose parts S3 lists; `stated_sha256` only where
    manifest.json states a SHA-256 that is not the identity (the pipeline checks it too).
    Write-once: an existing manifest of the same digest is kept (it describes the same
    object versions); one that does not match its own name is an error, never overwritten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from content_identity import Identity, Part

DIGEST_FORMAT = 2


class ManifestConflict(Exception):
    """A different document already holds this digest's version manifest."""


@dataclass(frozen=True)
class FileRecord:
    """One data object as a run's version manifest records it."""

    key: str  # relative to the version prefix
    version_id: str
    size: int
    identity: Identity
    stated_sha256: str | None = None

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "key": self.key,
            "version_id": self.version_id,
            "size": self.size,
            "identity": self.identity.as_record(),
        }
        if self.identity.parts:
            record["parts"] = [
                {"size": p.size, "checksum": p.checksum} for p in self.identity.parts
            ]
        if self.stated_sha256 and self.stated_sha256 != self.identity.value:
            record["stated_sha256"] = self.stated_sha256
        return record


def _digest(lines: Iterable[list[Any]]) -> str:
    text = "\n".join(
        json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        for line in sorted(lines, key=lambda line: str(line[0]))
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def data_digest(records: Iterable[FileRecord]) -> str:
    return _digest(
        [r.key, r.size, r.identity.algorithm, r.identity.value, r.version_id] for r in records
    )


def content_digest(records: Iterable[FileRecord]) -> str:
    return _digest([r.key, r.size, r.identity.algorithm, r.identity.value] for r in records)


def legacy_content_digest(files: Iterable[tuple[str, int, str]]) -> str:
    """Format 1 content digest over (relative key, size, ETag): for ledger items written
    before content identities, whose recorded digest can only be compared this way."""
    return _digest([key, size, etag] for key, size, etag in files)


def document(records: Iterable[FileRecord]) -> dict[str, Any]:
    ordered = sorted(records, key=lambda r: r.key)
    return {
        "digest_format": DIGEST_FORMAT,
        "data_digest": data_digest(ordered),
        "content_digest": content_digest(ordered),
        "files": [r.as_record() for r in ordered],
    }


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def records_of(doc: dict[str, Any]) -> list[FileRecord]:
    """The file records of a version manifest document (raises KeyError/TypeError if it is
    not one)."""
    return [
        FileRecord(
            key=str(f["key"]),
            version_id=str(f["version_id"]),
            size=int(f["size"]),
            identity=Identity(
                str(f["identity"]["algorithm"]),
                str(f["identity"]["value"]),
                str(f["identity"]["source"]),
                tuple(Part(int(p["size"]), str(p["checksum"])) for p in f.get("parts", [])),
            ),
            stated_sha256=f.get("stated_sha256"),
        )
        for f in doc["files"]
    ]


def manifest_key(prefix: str, digest: str) -> str:
    return f"{prefix}{digest}.json"


def _is_missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


def read(s3: Any, bucket: str, prefix: str, digest: str) -> dict[str, Any] | None:
    """The version manifest of `digest` if it exists and describes that digest, else None."""
    try:
        body = s3.get_object(Bucket=bucket, Key=manifest_key(prefix, digest))["Body"].read()
    except ClientError as error:
        if _is_missing(error):
            return None
        raise
    try:
        doc = json.loads(body)
        described = data_digest(records_of(doc))
    except (ValueError, KeyError, TypeError):
        return None
    return doc if described == digest else None


def write(s3: Any, bucket: str, prefix: str, doc: dict[str, Any]) -> str:
    """Write `doc` once (If-None-Match: *); return its S3 URI. An existing manifest of the
    same digest is kept; raises ManifestConflict if the one there does not describe it."""
    key = manifest_key(prefix, doc["data_digest"])
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=canonical(doc),
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "PreconditionFailed":
            raise
        if read(s3, bucket, prefix, doc["data_digest"]) is None:
            raise ManifestConflict(
                f"s3://{bucket}/{key} exists but does not describe data digest "
                f"{doc['data_digest']}; it is never overwritten: inspect it"
            ) from error
    return f"s3://{bucket}/{key}"


def known_identities(doc: dict[str, Any] | None) -> dict[tuple[str, str], Identity]:
    """(relative key, version id) -> identity, as a version manifest records them."""
    if not doc:
        return {}
    return {(r.key, r.version_id): r.identity for r in records_of(doc)}
