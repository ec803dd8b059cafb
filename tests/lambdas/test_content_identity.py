"""Content identity from S3's answers, including the ones moto cannot give.

moto computes only the checksums botocore can send without awscrt (CRC-32, SHA-1, SHA-256),
never states ChecksumType in HeadObject and lists no parts in GetObjectAttributes. These
cases use botocore's Stubber, whose responses and requests are validated against S3's
service model: CRC-64/NVME (what S3 stores for uploads without a checksum), CRC-32C,
composite checksums with their parts (paged), and the ETag fallbacks by encryption.
Checksum values are the CRC catalogue's check values of "123456789".
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.lambda_loader import load_lambda_module

identity = load_lambda_module("start_training", "content_identity")
Identity, Part = identity.Identity, identity.Part

BUCKET = "mlops-dev-data"
KEY = "landing/sales/v1/part-0.csv"
VERSION = "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
CRC64NVME_CHECK = 0xAE8B14860A799888
CRC32C_CHECK = 0xE3069283
CRC32_CHECK = 0xCBF43926


def b64(value: int, width: int) -> str:
    return base64.b64encode(value.to_bytes(width, "big")).decode()


def head(**fields: Any) -> dict[str, Any]:
    return {"ContentLength": 9, "ETag": '"d41d8cd98f00b204e9800998ecf8427e"', **fields}


HEAD_REQUEST = {"Bucket": BUCKET, "Key": KEY, "VersionId": VERSION, "ChecksumMode": "ENABLED"}


@pytest.fixture()
def s3(aws_credentials: None) -> Iterator[tuple[Any, Stubber]]:
    client = boto3.session.Session(region_name="eu-west-1").client("s3")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def lookup(client: Any, stated_sha256: str | None = None) -> Any:
    return identity.lookup(client, BUCKET, KEY, VERSION, stated_sha256)


def test_a_full_object_crc64nvme_identifies_the_bytes(s3: tuple[Any, Stubber]) -> None:
    client, stub = s3
    stub.add_response(
        "head_object",
        head(ChecksumCRC64NVME=b64(CRC64NVME_CHECK, 8), ChecksumType="FULL_OBJECT",
             ServerSideEncryption="aws:kms", ETag='"5a1e2b3c4d5e6f708192a3b4c5d6e7f8-3"'),
        HEAD_REQUEST,
    )  # fmt: skip
    assert lookup(client) == Identity("crc64nvme", "ae8b14860a799888", "s3-checksum")


def test_a_full_object_crc_of_a_multipart_upload_needs_no_part_listing(
    s3: tuple[Any, Stubber],
) -> None:
    client, stub = s3
    stub.add_response(
        "head_object",
        head(ChecksumCRC32=b64(CRC32_CHECK, 4), ChecksumType="FULL_OBJECT",
             ETag='"5a1e2b3c4d5e6f708192a3b4c5d6e7f8-2"'),
        HEAD_REQUEST,
    )  # fmt: skip
    assert lookup(client) == Identity("crc32", "cbf43926", "s3-checksum")


def attributes_request(marker: int | None = None) -> dict[str, Any]:
    request = {
        "Bucket": BUCKET,
        "Key": KEY,
        "VersionId": VERSION,
        "ObjectAttributes": ["Checksum", "ObjectParts"],
        "MaxParts": 1000,
    }
    return request | ({"PartNumberMarker": marker} if marker is not None else {})


def parts_page(numbers: list[int], *, truncated: bool, checksum_type: str) -> dict[str, Any]:
    return {
        "Checksum": {"ChecksumCRC32C": b64(CRC32C_CHECK, 4), "ChecksumType": checksum_type},
        "ObjectParts": {
            "TotalPartsCount": 3,
            "IsTruncated": truncated,
            **({"NextPartNumberMarker": numbers[-1]} if truncated else {}),
            "Parts": [
                {"PartNumber": n, "Size": 5_242_880 if n < 3 else 17, "ChecksumCRC32C": b64(n, 4)}
                for n in numbers
            ],
        },
    }


def test_a_composite_checksum_keeps_its_parts_listed_over_several_pages(
    s3: tuple[Any, Stubber],
) -> None:
    client, stub = s3
    stub.add_response(
        "head_object",
        head(ChecksumCRC32C=b64(CRC32C_CHECK, 4) + "-3", ChecksumType="COMPOSITE",
             ServerSideEncryption="aws:kms", ETag='"5a1e2b3c4d5e6f708192a3b4c5d6e7f8-3"'),
        HEAD_REQUEST,
    )  # fmt: skip
    stub.add_response(
        "get_object_attributes",
        parts_page([1, 2], truncated=True, checksum_type="COMPOSITE"),
        attributes_request(),
    )
    stub.add_response(
        "get_object_attributes",
        parts_page([3], truncated=False, checksum_type="COMPOSITE"),
        attributes_request(2),
    )
    assert lookup(client) == Identity(
        "crc32c-composite",
        "e3069283-3",
        "s3-checksum",
        (Part(5_242_880, "00000001"), Part(5_242_880, "00000002"), Part(17, "00000003")),
    )


def test_a_multipart_checksum_of_unstated_type_is_asked_for_its_type(
    s3: tuple[Any, Stubber],
) -> None:
    # Older answers carry no ChecksumType; a multipart CRC-32C may be either kind.
    client, stub = s3
    stub.add_response(
        "head_object",
        head(ChecksumCRC32C=b64(CRC32C_CHECK, 4), ETag='"5a1e2b3c4d5e6f708192a3b4c5d6e7f8-3"'),
        HEAD_REQUEST,
    )
    stub.add_response(
        "get_object_attributes",
        parts_page([1, 2, 3], truncated=False, checksum_type="FULL_OBJECT"),
        attributes_request(),
    )
    assert lookup(client) == Identity("crc32c", "e3069283", "s3-checksum")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"ServerSideEncryption": "AES256"}, ("md5", "d41d8cd98f00b204e9800998ecf8427e")),
        ({}, ("md5", "d41d8cd98f00b204e9800998ecf8427e")),
        ({"ServerSideEncryption": "aws:kms"}, ("etag", "d41d8cd98f00b204e9800998ecf8427e")),
        ({"ServerSideEncryption": "aws:kms:dsse"}, ("etag", "d41d8cd98f00b204e9800998ecf8427e")),
        ({"SSECustomerAlgorithm": "AES256"}, ("etag", "d41d8cd98f00b204e9800998ecf8427e")),
        (
            {"ServerSideEncryption": "AES256", "ETag": '"5A1E2B3C4D5E6F708192A3B4C5D6E7F8-2"'},
            ("etag", "5a1e2b3c4d5e6f708192a3b4c5d6e7f8-2"),
        ),
    ],
    ids=["sse-s3", "unencrypted", "sse-kms", "dsse-kms", "sse-c", "multipart"],
)
def test_without_checksums_the_etag_is_an_md5_only_for_single_part_sse_s3_objects(
    s3: tuple[Any, Stubber], fields: dict[str, Any], expected: tuple[str, str]
) -> None:
    client, stub = s3
    stub.add_response("head_object", head(**fields), HEAD_REQUEST)
    found = lookup(client)
    assert (found.algorithm, found.value, found.source) == (*expected, "etag")


SHA = hashlib.sha256(b"123456789").hexdigest()


def test_a_stated_sha256_ranks_below_a_stored_full_object_checksum(
    s3: tuple[Any, Stubber],
) -> None:
    client, stub = s3
    stub.add_response(
        "head_object",
        head(ChecksumCRC64NVME=b64(CRC64NVME_CHECK, 8), ChecksumType="FULL_OBJECT"),
        HEAD_REQUEST,
    )
    assert lookup(client, SHA).algorithm == "crc64nvme"


def test_a_stated_sha256_outranks_a_composite_checksum_and_the_etag(
    s3: tuple[Any, Stubber],
) -> None:
    client, stub = s3
    stub.add_response(
        "head_object",
        head(ChecksumSHA256=base64.b64encode(b"\x01" * 32).decode() + "-2",
             ChecksumType="COMPOSITE", ETag='"5a1e2b3c4d5e6f708192a3b4c5d6e7f8-2"'),
        HEAD_REQUEST,
    )  # fmt: skip
    stub.add_response(
        "get_object_attributes", {"Checksum": {"ChecksumType": "COMPOSITE"}}, attributes_request()
    )
    assert lookup(client, SHA) == Identity("sha256", SHA, "manifest")
    stub.add_response("head_object", head(ServerSideEncryption="aws:kms"), HEAD_REQUEST)
    assert lookup(client, SHA) == Identity("sha256", SHA, "manifest")


def test_recorded_identities_of_the_same_object_version_are_reused_without_a_call(
    s3: tuple[Any, Stubber],
) -> None:
    client, stub = s3
    recorded = Identity("crc64nvme", "ae8b14860a799888", "s3-checksum")
    objects = [("part-0.csv", KEY, VERSION)]
    found = identity.lookup_all(
        client, BUCKET, objects, stated_sha256={}, known={("part-0.csv", VERSION): recorded},
        workers=1,
    )  # fmt: skip
    assert found == {"part-0.csv": recorded}  # the Stubber has no response queued: no call


@pytest.mark.parametrize(
    ("recorded", "stated", "version"),
    [
        (Identity("sha256", SHA, "manifest"), SHA, VERSION),  # a claim, not S3's word
        (Identity("etag", "d41d8cd98f00b204e9800998ecf8427e", "etag"), SHA, VERSION),
        (Identity("crc64nvme", "ae8b14860a799888", "s3-checksum"), None, "null"),
    ],
    ids=["stated-by-a-manifest", "outranked-by-a-stated-sha256", "unversioned-bucket"],
)
def test_recorded_identities_that_may_no_longer_hold_are_looked_up_again(
    s3: tuple[Any, Stubber], recorded: Any, stated: str | None, version: str
) -> None:
    client, stub = s3
    request = {**HEAD_REQUEST, "VersionId": version} if version != "null" else {
        "Bucket": BUCKET, "Key": KEY, "ChecksumMode": "ENABLED"}  # fmt: skip
    stub.add_response(
        "head_object",
        head(ChecksumCRC64NVME=b64(CRC64NVME_CHECK, 8), ChecksumType="FULL_OBJECT"),
        request,
    )
    found = identity.lookup_all(
        client,
        BUCKET,
        [("part-0.csv", KEY, version)],
        stated_sha256={"part-0.csv": stated} if stated else {},
        known={("part-0.csv", version): recorded},
        workers=1,
    )
    assert found["part-0.csv"].algorithm == "crc64nvme"
