"""What identifies an object's bytes: S3's stored checksums, a SHA-256 the producer states, or
the ETag where it is an MD5 of the bytes.

The data bucket encrypts with SSE-KMS, so ETags are not content hashes: the same bytes
uploaded twice get different ETags, and multipart ETags never are one. The identity of each
data object is, in this order (the first that applies):

1. a full-object checksum S3 stores (read with HeadObject, ChecksumMode=ENABLED): SHA-256,
   SHA-512, SHA-1, MD5, CRC-64/NVME, CRC-32C, CRC-32, XXHASH128/3/64, in this order of
   preference. The SDKs and the CLI send a CRC with every upload, and S3 computes CRC-64/NVME
   for uploads that carry none, so new objects always have one;
2. the SHA-256 that manifest.json states for the file (source "manifest");
3. a composite checksum of a multipart upload (`<algorithm>-composite`, value
   `<hex>-<parts>`): a checksum of the part checksums, so it depends on the part sizes too;
   the part sizes and checksums (GetObjectAttributes) are kept with it when S3 lists them;
4. the ETag as MD5, for single-part objects stored without SSE-KMS/SSE-C (`md5`);
5. the ETag itself (`etag`): it names the upload, not the bytes, so any re-upload of such an
   object counts as a change.

Values are lowercase hex (checksums as S3 stores them: big-endian). Identity lookups cost one
HeadObject per data object (plus GetObjectAttributes for multipart objects) and run only
when a version completes or is re-checked for a retrain, in parallel (`workers`); object
versions whose identity a previous version manifest already records are not looked up again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

# (identity algorithm, the field S3 returns it in), strongest first.
CHECKSUMS = (
    ("sha256", "ChecksumSHA256"),
    ("sha512", "ChecksumSHA512"),
    ("sha1", "ChecksumSHA1"),
    ("md5", "ChecksumMD5"),
    ("crc64nvme", "ChecksumCRC64NVME"),
    ("crc32c", "ChecksumCRC32C"),
    ("crc32", "ChecksumCRC32"),
    ("xxhash128", "ChecksumXXHASH128"),
    ("xxhash3", "ChecksumXXHASH3"),
    ("xxhash64", "ChecksumXXHASH64"),
)
# Only CRCs can be FULL_OBJECT on a multipart upload; CRC-64/NVME is always full-object.
_ALWAYS_FULL_OBJECT = frozenset({"crc64nvme"})
SOURCE_S3 = "s3-checksum"
SOURCE_MANIFEST = "manifest"
SOURCE_ETAG = "etag"
COMPOSITE = "-composite"
_MD5_ETAG_ENCRYPTION = frozenset({None, "AES256"})
_MAX_PARTS_PER_CALL = 1000


@dataclass(frozen=True)
class Part:
    """One part of a multipart object: its size and checksum (hex)."""

    size: int
    checksum: str


@dataclass(frozen=True)
class Identity:
    """What identifies an object's bytes; `algorithm` and `value` enter the digests."""

    algorithm: str
    value: str
    source: str
    parts: tuple[Part, ...] = ()

    def as_record(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "value": self.value, "source": self.source}


def _hex(stored: str) -> str | None:
    """Base64 checksum (optionally `-<parts>`) as lowercase hex (`-<parts>` kept)."""
    encoded, dash, parts = stored.partition("-")
    try:
        value = base64.b64decode(encoded, validate=True).hex()
    except (binascii.Error, ValueError):
        return None
    return f"{value}-{parts}" if dash else value


def _checksum(response: Mapping[str, Any]) -> tuple[str, str] | None:
    """(algorithm, stored value) of the strongest checksum in a Head/GetObjectAttributes
    response, or None."""
    for algorithm, field in CHECKSUMS:
        if response.get(field):
            return algorithm, str(response[field])
    return None


def _parts_count(etag: str) -> int | None:
    _, dash, count = etag.partition("-")
    return int(count) if dash and count.isdigit() else None


def _checksum_type(algorithm: str, stored: str, head: Mapping[str, Any]) -> str | None:
    """FULL_OBJECT, COMPOSITE, or None when the response does not tell (then ask
    GetObjectAttributes)."""
    if head.get("ChecksumType") in ("FULL_OBJECT", "COMPOSITE"):
        return str(head["ChecksumType"])
    if "-" in stored:
        return "COMPOSITE"
    if _parts_count(str(head.get("ETag", "")).strip('"')) is None:
        return "FULL_OBJECT"
    return "FULL_OBJECT" if algorithm in _ALWAYS_FULL_OBJECT else None


def _object_parts(
    s3: Any, request: dict[str, Any], algorithm: str
) -> tuple[str | None, tuple[Part, ...]]:
    """ChecksumType and parts (sizes, checksums) of a multipart object, from
    GetObjectAttributes (paged); parts only when S3 lists a checksum for every one."""
    parts: list[Part] = []
    marker: int | None = None
    field = dict(CHECKSUMS)[algorithm]
    checksum_type: str | None = None
    complete = True
    while True:
        page = s3.get_object_attributes(
            **request,
            ObjectAttributes=["Checksum", "ObjectParts"],
            MaxParts=_MAX_PARTS_PER_CALL,
            **({"PartNumberMarker": marker} if marker is not None else {}),
        )
        checksum_type = page.get("Checksum", {}).get("ChecksumType") or checksum_type
        listed = page.get("ObjectParts", {})
        for part in listed.get("Parts", []):
            value = _hex(str(part.get(field, "")))
            if value is None or "Size" not in part:
                complete = False
            else:
                parts.append(Part(int(part["Size"]), value))
        if not listed.get("IsTruncated"):
            break
        marker = int(listed["NextPartNumberMarker"])
    return checksum_type, tuple(parts) if complete else ()


def lookup(s3: Any, bucket: str, key: str, version_id: str, stated_sha256: str | None) -> Identity:
    """The identity of one object version (see the module docstring for the order)."""
    request: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id != "null":
        request["VersionId"] = version_id
    head = s3.head_object(**request, ChecksumMode="ENABLED")
    etag = str(head.get("ETag", "")).strip('"')
    found = _checksum(head)
    composite: Identity | None = None
    if found:
        algorithm, stored = found
        checksum_type = _checksum_type(algorithm, stored, head)
        parts: tuple[Part, ...] = ()
        if checksum_type != "FULL_OBJECT":
            listed_type, parts = _object_parts(s3, request, algorithm)
            checksum_type = listed_type or checksum_type or "COMPOSITE"
        value = _hex(stored)
        if value is not None and checksum_type == "FULL_OBJECT":
            return Identity(algorithm, value.partition("-")[0], SOURCE_S3)
        if value is not None:
            count = value.partition("-")[2] or str(_parts_count(etag) or len(parts))
            composite = Identity(
                algorithm + COMPOSITE, f"{value.partition('-')[0]}-{count}", SOURCE_S3, parts
            )
    if stated_sha256:
        return Identity("sha256", stated_sha256, SOURCE_MANIFEST)
    if composite:
        return composite
    plain_md5 = (
        _parts_count(etag) is None
        and head.get("ServerSideEncryption") in _MD5_ETAG_ENCRYPTION
        and not head.get("SSECustomerAlgorithm")
    )
    return Identity("md5" if plain_md5 else "etag", etag.lower(), SOURCE_ETAG)


def _reusable(recorded: Identity, stated_sha256: str | None) -> bool:
    """Whether a recorded identity still holds: what S3 said about an object version never
    changes, but a SHA-256 that manifest.json now states outranks a composite or an ETag."""
    if recorded.source == SOURCE_MANIFEST:
        return False
    full_object = recorded.source == SOURCE_S3 and not recorded.algorithm.endswith(COMPOSITE)
    return full_object or not stated_sha256


def lookup_all(
    s3: Any,
    bucket: str,
    objects: list[tuple[str, str, str]],
    *,
    stated_sha256: Mapping[str, str],
    known: Mapping[tuple[str, str], Identity],
    workers: int,
) -> dict[str, Identity]:
    """Identities of `objects` ((relative key, key, version id)) by relative key.

    `stated_sha256`: manifest.json's sha256 by relative key; `known`: identities recorded for
    (relative key, version id) by an earlier version manifest, reused where `_reusable`;
    `workers`: HeadObject calls in flight at once.
    """
    identities: dict[str, Identity] = {}
    todo = []
    for relative, key, version_id in objects:
        reused = known.get((relative, version_id)) if version_id != "null" else None
        if reused and _reusable(reused, stated_sha256.get(relative)):
            identities[relative] = reused
        else:
            todo.append((relative, key, version_id))

    def one(item: tuple[str, str, str]) -> tuple[str, Identity]:
        relative, key, version_id = item
        return relative, lookup(s3, bucket, key, version_id, stated_sha256.get(relative))

    if workers > 1 and len(todo) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            identities.update(pool.map(one, todo))
    else:
        identities.update(map(one, todo))
    return identities
