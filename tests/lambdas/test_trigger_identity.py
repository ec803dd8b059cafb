"""Content identity: identical bytes are recognised under SSE-KMS, real changes are not missed.

moto keeps the checksums botocore sends (CRC-32 by default, SHA-256 on request) and answers
HeadObject with them, but it gives every upload the MD5 of its bytes as ETag, SSE-KMS or
not. Real S3 gives an SSE-KMS object an ETag that is not the MD5 and differs on every
upload of the same bytes: `as_under_sse_kms` gives the newest version of a key such an ETag,
so the tests see what S3 would show. Checksums that moto cannot produce (CRC-64/NVME,
CRC-32C, composite parts) are covered with Stubber in test_content_identity.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from moto.s3.models import s3_backends

from pipeline_code.steps import load
from tests.lambda_loader import load_lambda_module
from tests.lambdas.trigger_env import (
    ACCOUNT,
    ARTIFACTS,
    BUCKET,
    PARTITION,
    SESSION,
    VERSION_PREFIX,
    Env,
    Kind,
    alarm_event,
    completion,
    executions,
    handle,
    land,
    land_version,
    make_trigger,
    rerun_request,
    retrain_request,
    stored,
    take_queued,
    uploaded_event,
    version_manifest_of,
)

version_ref = load_lambda_module("start_training", "dataset_versions").version_ref

VERSION = VERSION_PREFIX.removeprefix("landing/").rstrip("/")
VERSION_KEY = f"VERSION#{VERSION}"

verify = load("prepare", "verify_inputs")


def encrypt_bucket(env: Env, algorithm: str) -> None:
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}}
    env.s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [rule]})


def as_under_sse_kms(event: dict[str, Any]) -> dict[str, Any]:
    """Give the object of `event` a fresh non-MD5 ETag, as SSE-KMS does on every upload."""
    key = event["detail"]["object"]["key"]
    etag = uuid.uuid4().hex
    s3_backends[ACCOUNT][PARTITION].buckets[BUCKET].keys.getlist(key)[-1]._etag = etag
    event["detail"]["object"]["etag"] = etag
    return event


def land_kms(env: Env, key: str, body: bytes, client: Any = None) -> dict[str, Any]:
    return as_under_sse_kms(land(env, key, body, client=client))


def land_kms_version(env: Env, client: Any = None) -> dict[str, Any]:
    for i in range(3):
        land_kms(env, f"{VERSION_PREFIX}part-{i:04d}.csv", f"x,y\n{i},{i}\n".encode(), client)
    return land(env, VERSION_PREFIX + "_SUCCESS", b"")


def upload_again(env: Env, client: Any = None, *, changed: bool = False) -> dict[str, Any]:
    """Upload the version's first file again (the same bytes unless `changed`), then the
    marker: a re-upload, with new version ids and, under SSE-KMS, new ETags."""
    env.clock.advance(60)
    body = b"x,y\n100,100\n" if changed else b"x,y\n0,0\n"
    land_kms(env, VERSION_PREFIX + "part-0000.csv", body, client)
    return land(env, VERSION_PREFIX + "_SUCCESS", b"")


@pytest.fixture()
def unchecked(env: Env) -> Iterator[Any]:
    """An S3 client that sends no checksums (objects uploaded before the SDKs did)."""
    yield SESSION.client("s3", config=Config(request_checksum_calculation="when_required"))


def test_identical_reupload_under_sse_kms_starts_nothing_when_reuploads_are_allowed(
    env: Env,
) -> None:
    encrypt_bucket(env, "aws:kms")
    trigger = make_trigger(env, allow_reupload=True)
    first = handle(trigger, land_kms_version(env))
    etag_before = stored_etags(env)
    again = handle(trigger, upload_again(env))
    assert stored_etags(env) != etag_before  # the ETag alone would call this new content
    assert (again.kind, again.reason) == (Kind.DUPLICATE, "same-content")
    assert again.execution_arn == first.execution_arn
    assert len(executions(env)) == 1


@pytest.mark.parametrize("retrain", ["schedule", "alarm", "rerun"])
def test_retrains_are_not_refused_after_an_identical_reupload_under_sse_kms(
    env: Env, retrain: str
) -> None:
    encrypt_bucket(env, "aws:kms")
    trigger = make_trigger(env, retrain_cooldown_seconds=0)
    handle(trigger, land_kms_version(env))
    ignored = handle(trigger, upload_again(env))
    assert (ignored.kind, ignored.reason) == (Kind.DUPLICATE, "same-content")
    request = {
        "schedule": retrain_request(),
        "alarm": alarm_event(),
        "rerun": rerun_request(VERSION),
    }[retrain]
    outcome = trigger.handle_direct(request)
    assert outcome.kind is Kind.STARTED, outcome.message
    assert len(executions(env)) == 2


@pytest.mark.parametrize("encryption", ["aws:kms", "AES256"])
def test_a_real_content_change_is_detected_under_both_bucket_encryptions(
    env: Env, encryption: str
) -> None:
    encrypt_bucket(env, encryption)
    trigger = make_trigger(env)
    handle(trigger, land_kms_version(env))
    changed = handle(trigger, upload_again(env, changed=True))
    assert (changed.kind, changed.reason) == (Kind.REUPLOAD_IGNORED, "reupload-not-allowed")
    refused = trigger.handle_direct(rerun_request(VERSION))
    assert (refused.kind, refused.reason) == (Kind.REJECTED, "version-changed")
    assert len(executions(env)) == 1

    allowed = make_trigger(env, allow_reupload=True)
    second = handle(allowed, upload_again(env, changed=True))
    assert (second.kind, second.trigger, second.details["generation"]) == (
        Kind.STARTED,
        "reupload",
        2,
    )


def test_objects_without_checksums_fall_back_to_the_etag_only_where_it_is_an_md5(
    env: Env, unchecked: Any
) -> None:
    # SSE-S3: a single-part ETag is the MD5 of the bytes, so an identical upload is no change.
    encrypt_bucket(env, "AES256")
    trigger = make_trigger(env, allow_reupload=True)
    marker = land_version(env, client=unchecked)[1]
    first = handle(trigger, marker)
    assert stored(env, VERSION_KEY)["identities"] == {"md5": 3}
    env.clock.advance(60)
    land(env, VERSION_PREFIX + "part-0000.csv", b"x,y\n0,0\n", client=unchecked)
    again = handle(trigger, land(env, VERSION_PREFIX + "_SUCCESS", b""))
    assert (again.kind, again.execution_arn) == (Kind.DUPLICATE, first.execution_arn)


def test_without_checksums_under_sse_kms_every_reupload_counts_as_a_change(
    env: Env, unchecked: Any
) -> None:
    # The ETag names the upload, not the bytes: the safe reading is "changed".
    encrypt_bucket(env, "aws:kms")
    trigger = make_trigger(env, allow_reupload=True)
    handle(trigger, land_kms_version(env, client=unchecked))
    item = stored(env, VERSION_KEY)
    assert item["identities"] == {"etag": 3}
    manifest = version_manifest_of(env, item["data_digest"])
    assert {f["identity"]["source"] for f in manifest["files"]} == {"etag"}
    again = handle(trigger, upload_again(env, unchecked))
    assert (again.kind, again.trigger) == (Kind.STARTED, "reupload")


def multipart(env: Env, key: str, body: bytes, part_size: int, **create: Any) -> dict[str, Any]:
    """Upload `body` in parts of `part_size` (S3's minimum is 5 MiB but for the last part)
    and return the event S3 sends for it."""
    upload = env.s3.create_multipart_upload(Bucket=BUCKET, Key=key, **create)
    parts = []
    for number, start in enumerate(range(0, len(body), part_size), start=1):
        sent = env.s3.upload_part(
            Bucket=BUCKET,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body[start : start + part_size],
            **create,
        )
        checksums = {k: v for k, v in sent.items() if k.startswith("Checksum")}
        parts.append({"PartNumber": number, "ETag": sent["ETag"], **checksums})
    done = env.s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    event = uploaded_event(env, key, len(body), done)
    event["detail"]["reason"] = "CompleteMultipartUpload"
    return event


BIG = bytes(range(256)) * (6 * 4096)  # 6 MiB: two parts of 5 MiB and 1 MiB


def test_multipart_uploads_are_identified_by_their_composite_checksum(env: Env) -> None:
    encrypt_bucket(env, "aws:kms")
    trigger = make_trigger(env, allow_reupload=True)
    multipart(env, VERSION_PREFIX + "big.bin", BIG, 5 * 1024 * 1024, ChecksumAlgorithm="SHA256")
    first = handle(trigger, land(env, VERSION_PREFIX + "_SUCCESS", b""))
    assert first.kind is Kind.STARTED
    item = stored(env, VERSION_KEY)
    assert item["identities"] == {"sha256-composite": 1}
    [record] = version_manifest_of(env, item["data_digest"])["files"]
    assert record["identity"]["value"].endswith("-2")  # a checksum of 2 part checksums

    # The same bytes in the same parts are the same content; other parts read as a change.
    env.clock.advance(60)
    multipart(env, VERSION_PREFIX + "big.bin", BIG, 5 * 1024 * 1024, ChecksumAlgorithm="SHA256")
    same = handle(trigger, land(env, VERSION_PREFIX + "_SUCCESS", b""))
    assert (same.kind, same.reason) == (Kind.DUPLICATE, "same-content")
    env.clock.advance(60)
    multipart(env, VERSION_PREFIX + "big.bin", BIG[::-1], 5 * 1024 * 1024,
              ChecksumAlgorithm="SHA256")  # fmt: skip
    changed = handle(trigger, land(env, VERSION_PREFIX + "_SUCCESS", b""))
    assert (changed.kind, changed.trigger) == (Kind.STARTED, "reupload")


def test_a_manifest_sha256_identifies_a_multipart_upload_regardless_of_its_parts(
    env: Env,
) -> None:
    trigger = make_trigger(env, allow_reupload=True)
    multipart(env, VERSION_PREFIX + "big.bin", BIG, 5 * 1024 * 1024)
    entry = {"key": "big.bin", "size": len(BIG), "sha256": hashlib.sha256(BIG).hexdigest()}
    manifest = json.dumps({"files": [entry]}).encode()
    first = handle(trigger, land(env, VERSION_PREFIX + "manifest.json", manifest))
    assert first.kind is Kind.STARTED
    item = stored(env, VERSION_KEY)
    [record] = version_manifest_of(env, item["data_digest"])["files"]
    assert record["identity"] == {
        "algorithm": "sha256",
        "value": entry["sha256"],
        "source": "manifest",
    }
    env.clock.advance(60)
    multipart(env, VERSION_PREFIX + "big.bin", BIG, 5 * 1024 * 1024 + 4096)  # other parts
    again = handle(trigger, land(env, VERSION_PREFIX + "manifest.json", manifest))
    assert (again.kind, again.reason) == (Kind.DUPLICATE, "same-content")


def stored_etags(env: Env) -> set[str]:
    listed = env.s3.list_object_versions(Bucket=BUCKET, Prefix=VERSION_PREFIX)["Versions"]
    return {v["ETag"] for v in listed if v["IsLatest"] and not v["Key"].endswith("_SUCCESS")}


class CallCounter:
    """Counts the S3 calls a client makes, by operation."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        client.meta.events.register("before-call.s3", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1


def test_checksums_are_looked_up_once_per_completed_version_not_per_event(env: Env) -> None:
    s3 = SESSION.client("s3")
    counter = CallCounter(s3)
    trigger = make_trigger(env, s3=s3)
    data, marker = land_version(env, files=4)
    for event in data:
        handle(trigger, event)
    assert counter.calls == Counter()  # data events: no S3 call at all
    handle(trigger, marker)
    assert counter.calls["HeadObject"] == 4
    assert counter.calls["PutObject"] == 1  # the version manifest

    # A marker written again reuses the identities its manifest records: no lookups.
    counter.calls.clear()
    env.clock.advance(5)
    again = handle(trigger, land(env, VERSION_PREFIX + "_SUCCESS", b""))
    assert again.reason == "same-content"
    assert (counter.calls["HeadObject"], counter.calls["GetObject"]) == (0, 1)


def test_a_version_manifest_is_written_once_and_never_overwritten(env: Env) -> None:
    trigger = make_trigger(env)
    assert handle(trigger, land_version(env)[1]).kind is Kind.STARTED
    digest = stored(env, VERSION_KEY)["data_digest"]
    key = f"dataset-manifests/{digest}.json"
    written = env.s3.list_object_versions(Bucket=ARTIFACTS, Prefix=key)["Versions"]
    # A takeover or re-delivery that writes the same manifest again changes nothing.
    contents = trigger._contents(version_ref(trigger.config, "sales", "2024-06-01"),
                                 completion.list_version(env.s3, BUCKET, VERSION_PREFIX),
                                 "_SUCCESS", None)  # fmt: skip
    assert trigger._write_manifest(contents) == f"s3://{ARTIFACTS}/{key}"
    assert env.s3.list_object_versions(Bucket=ARTIFACTS, Prefix=key)["Versions"] == written

    # A version whose manifest place holds something else is refused, never overwritten.
    _, other = land_version(env, prefix="landing/sales/v2/")
    ref = version_ref(trigger.config, "sales", "v2")
    listing = completion.list_version(env.s3, BUCKET, ref.prefix)
    other_digest = trigger._contents(ref, listing, "_SUCCESS", None).data_digest
    squatter = f"dataset-manifests/{other_digest}.json"
    env.s3.put_object(Bucket=ARTIFACTS, Key=squatter, Body=b"{}")
    outcome = handle(trigger, other)
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "version-manifest-conflict")
    assert "never overwritten" in outcome.message
    assert env.s3.get_object(Bucket=ARTIFACTS, Key=squatter)["Body"].read() == b"{}"
    assert len(executions(env)) == 1
    assert take_queued(env) == []


# ---- end to end: what the trigger writes, the pipeline's input check verifies ---------------


def test_the_manifest_the_trigger_writes_verifies_the_prefix_it_names(
    env: Env, tmp_path: Path
) -> None:
    prefix = "landing/sales/2026-11-22T03:00:00+00:00/"
    bodies = {"part 1.csv": b"a,b\n1,2\n" * 50, "sub/part-2.csv": b"a,b\n3,4\n"}
    for name, body in bodies.items():
        land(env, prefix + name, body, ChecksumAlgorithm="SHA256" if "sub" in name else "CRC32")
    handle(make_trigger(env), land(env, prefix + "_SUCCESS", b""))
    digest = stored(env, "VERSION#sales/2026-11-22T03:00:00+00:00")["data_digest"]
    manifest = json.loads(
        env.s3.get_object(Bucket=ARTIFACTS, Key=verify.manifest_key(digest))["Body"].read()
    )
    # SageMaker downloads the prefix: every object under it, relative paths kept.
    root = tmp_path / "input"
    for listed in env.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]:
        path = root / listed["Key"][len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(env.s3.get_object(Bucket=BUCKET, Key=listed["Key"])["Body"].read())
    report = verify.verify_inputs(manifest, root, data_digest=digest)
    assert sorted(report.as_dict()["checked_by"]) == ["crc32", "sha256"]
    sha = base64.b64decode(
        env.s3.head_object(Bucket=BUCKET, Key=prefix + "sub/part-2.csv", ChecksumMode="ENABLED")[
            "ChecksumSHA256"
        ]
    ).hex()
    assert {f["identity"]["value"] for f in manifest["files"]} >= {sha}


# ---- versions that ran before version manifests existed ----------------------------------


def as_recorded_before_manifests(env: Env, trigger: Any, dataset_version: str) -> str:
    """Turn a started version's records into what an older trigger left: a format-1 (ETag)
    content digest, a data digest no manifest is named by, no manifest. Returns that digest."""
    ledger = load_lambda_module("start_training", "dataset_ledger")
    ref = version_ref(trigger.config, *dataset_version.split("/"))
    listing = completion.list_version(env.s3, BUCKET, ref.prefix)
    legacy = trigger._contents(ref, listing, "_SUCCESS", None).legacy_content_digest
    item = stored(env, ref.pk)
    env.s3.delete_object(Bucket=ARTIFACTS, Key=f"dataset-manifests/{item['data_digest']}.json")
    old_digest = "1" * 64
    env.table.update_item(
        Key={"pk": ref.pk},
        UpdateExpression="SET content_digest = :c, data_digest = :d REMOVE digest_format",
        ExpressionAttributeValues={":c": legacy, ":d": old_digest},
    )
    for pk in (ledger.latest_key(), ledger.latest_key(ref.dataset)):
        env.table.update_item(
            Key={"pk": pk},
            UpdateExpression="SET data_digest = :d",
            ExpressionAttributeValues={":d": old_digest},
        )
    return old_digest


@pytest.mark.parametrize(
    "request_", [retrain_request(), rerun_request(VERSION)], ids=["latest", "rerun"]
)
def test_a_retrain_of_a_version_recorded_before_manifests_gets_one_first(
    env: Env, tmp_path: Path, request_: dict[str, Any]
) -> None:
    trigger = make_trigger(env)
    handle(trigger, land_version(env)[1])
    old_digest = as_recorded_before_manifests(env, trigger, VERSION)

    outcome = trigger.handle_direct(request_)
    assert outcome.kind is Kind.STARTED
    listed = env.sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=outcome.execution_arn
    )["PipelineParameters"]
    digest = {p["Name"]: p["Value"] for p in listed}["DataDigest"]
    assert digest != old_digest
    manifest = version_manifest_of(env, digest)  # written before the run started
    root = tmp_path / "input"
    for listed_object in env.s3.list_objects_v2(Bucket=BUCKET, Prefix=VERSION_PREFIX)["Contents"]:
        path = root / listed_object["Key"][len(VERSION_PREFIX) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(env.s3.get_object(Bucket=BUCKET, Key=listed_object["Key"])["Body"].read())
    assert verify.verify_inputs(manifest, root, data_digest=digest).data_digest == digest


def test_a_retrain_whose_manifest_exists_keeps_its_recorded_digest(env: Env) -> None:
    trigger = make_trigger(env)
    first = handle(trigger, land_version(env)[1])
    recorded = stored(env, VERSION_KEY)["data_digest"]
    outcome = trigger.handle_direct(retrain_request())
    listed = env.sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=outcome.execution_arn
    )["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in listed}["DataDigest"] == recorded
    assert first.execution_arn != outcome.execution_arn
