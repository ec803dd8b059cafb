"""The data-landing trigger: exactly one pipeline execution per dataset version.

S3, DynamoDB, SQS, EventBridge and SageMaker run in moto (tests/lambdas/trigger_env.py); AWS
error paths use botocore's Stubber (which validates every request against the real service
model).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber
from moto.events.models import EventPattern
from moto.sagemaker.models import sagemaker_backends

from tests.lambdas.trigger_env import (
    ACCOUNT,
    ARTIFACTS,
    BUCKET,
    MAX_RECEIVE_COUNT,
    OTHER_BUCKET,
    PIPELINE,
    REGION,
    SESSION,
    TABLE,
    VERSION_PREFIX,
    Env,
    Kind,
    LambdaContext,
    alarm_event,
    completion,
    executions,
    handle,
    handler,
    land,
    land_version,
    ledger_item,
    make_trigger,
    metrics_out,
    object_event,
    parameters_of,
    race_before_claim,
    rerun_request,
    retrain_request,
    reupload,
    run_event_source_mapping,
    set_execution_status,
    sqs_event,
    stamp,
    stored,
    take_queued,
    trigger_module,
    version_manifest_of,
)

# ---- routing ---------------------------------------------------------------------------------


def test_landing_pattern_routes_only_landing_objects_of_the_bucket_to_the_queue(env: Env) -> None:
    env.s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    queue_arn = env.sqs.get_queue_attributes(QueueUrl=env.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events = SESSION.client("events")
    events.put_rule(
        Name="landing", EventPattern=json.dumps(trigger_module.landing_event_pattern(BUCKET))
    )
    events.put_targets(Rule="landing", Targets=[{"Id": "queue", "Arn": queue_arn}])

    env.s3.put_object(Bucket=BUCKET, Key="other/sales/2024-06-01/part-0001.csv", Body=b"1")
    env.s3.put_object(Bucket=BUCKET, Key="landingzone/x.csv", Body=b"1")
    assert take_queued(env) == []

    land_version(env, files=2)
    routed = take_queued(env)
    keys = [json.loads(m.body)["detail"]["object"]["key"] for m in routed]
    assert keys == [f"{VERSION_PREFIX}part-0000.csv", f"{VERSION_PREFIX}part-0001.csv",
                    f"{VERSION_PREFIX}_SUCCESS"]  # fmt: skip

    # What arrived through the real routing starts exactly one execution.
    trigger = make_trigger(env)
    outcomes = [trigger.handle_sqs_body(m.body) for m in routed]
    assert [o.kind for o in outcomes] == [Kind.PENDING, Kind.PENDING, Kind.STARTED]
    assert len(executions(env)) == 1


def test_alarm_pattern_matches_only_alarm_transitions_of_the_given_alarms() -> None:
    # moto's rule matcher: put_events routing itself needs jsonpath_ng, not installed here.
    drift_arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:mlops-dev-feature-drift"
    pattern = EventPattern.load(json.dumps(trigger_module.alarm_event_pattern([drift_arn])))
    matches: Any = pattern.matches_event  # its annotation wants moto's TypedDict, not a dict
    assert matches(alarm_event("ALARM", "mlops-dev-feature-drift"))
    assert not matches(alarm_event("OK", "mlops-dev-feature-drift"))
    assert not matches(alarm_event("ALARM", "someone-elses-alarm"))


def test_landing_pattern_rejects_prefixes_that_s3_would_url_encode() -> None:
    with pytest.raises(ValueError, match="prefix 'my data/'"):
        trigger_module.landing_event_pattern(BUCKET, "my data/")


# ---- marker mode -----------------------------------------------------------------------------


def test_data_files_alone_start_nothing_in_marker_mode(env: Env) -> None:
    trigger = make_trigger(env)
    data, _ = land_version(env, files=5, marker=None)
    outcomes = [handle(trigger, event) for event in data]
    assert {o.kind for o in outcomes} == {Kind.PENDING}
    assert executions(env) == []
    assert ledger_item(env, "VERSION#sales/2024-06-01") is None


def test_success_marker_starts_one_execution_with_traceable_parameters(env: Env) -> None:
    trigger = make_trigger(env)
    data, marker = land_version(env, files=3)
    for event in data:
        handle(trigger, event)
    outcome = handle(trigger, marker)

    assert outcome.kind is Kind.STARTED
    [execution] = executions(env)
    assert outcome.execution_arn == execution["PipelineExecutionArn"]
    # botocore sends a CRC-32 with every upload and S3 keeps it: that identifies the bytes.
    uploaded = {
        f"part-{i:04d}.csv": (f"x,y\n{i},{i}\n".encode(), event["detail"]["object"]["version-id"])
        for i, event in enumerate(data)
    }
    lines = sorted(
        json.dumps([name, len(body), "crc32", f"{zlib.crc32(body):08x}", version_id],
                   separators=(",", ":"))
        for name, (body, version_id) in uploaded.items()
    )  # fmt: skip
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    assert parameters_of(env, outcome.execution_arn) == {
        "InputDataUri": f"s3://{BUCKET}/{VERSION_PREFIX}",
        "DatasetVersion": "sales/2024-06-01",
        "DataDigest": digest,
    }
    item = stored(env, "VERSION#sales/2024-06-01")
    assert item["status"] == "STARTED"
    assert item["execution_arn"] == outcome.execution_arn
    assert item["file_count"] == 3
    assert item["completed_by"] == "_SUCCESS"
    assert len(item["client_request_token"]) == 64
    # The run's exact inputs, written before it started where the pipeline can find them.
    assert item["version_manifest"] == f"s3://{ARTIFACTS}/dataset-manifests/{digest}.json"
    assert (item["digest_format"], item["identities"]) == (2, {"crc32": 3})
    manifest = version_manifest_of(env, digest)
    assert manifest["data_digest"] == digest
    assert [(f["key"], f["version_id"], f["size"], f["identity"]) for f in manifest["files"]] == [
        (name, version_id, len(body),
         {"algorithm": "crc32", "value": f"{zlib.crc32(body):08x}", "source": "s3-checksum"})
        for name, (body, version_id) in sorted(uploaded.items())
    ]  # fmt: skip
    latest = stored(env, "LATEST")
    assert latest["dataset_version"] == "sales/2024-06-01"


def test_redelivered_marker_event_starts_nothing(env: Env) -> None:
    trigger = make_trigger(env)
    _, marker = land_version(env)
    first = handle(trigger, marker)
    again = handle(trigger, marker)
    assert (first.kind, again.kind, again.reason) == (
        Kind.STARTED,
        Kind.DUPLICATE,
        "redelivered-marker",
    )
    assert again.execution_arn == first.execution_arn
    assert len(executions(env)) == 1


def test_marker_written_again_with_unchanged_data_is_a_duplicate(env: Env) -> None:
    trigger = make_trigger(env, allow_reupload=True)
    _, marker = land_version(env)
    handle(trigger, marker)
    env.clock.advance(5)
    retouched = land(env, VERSION_PREFIX + "_SUCCESS", b"")
    outcome = handle(trigger, retouched)
    assert (outcome.kind, outcome.reason) == (Kind.DUPLICATE, "same-content")
    assert len(executions(env)) == 1


def test_late_data_file_after_completion_is_logged_and_starts_nothing(env: Env) -> None:
    trigger = make_trigger(env)
    data, marker = land_version(env)
    handle(trigger, marker)
    # A straggling event for a file that was part of the run is not "late".
    trigger.begin_invocation()
    assert handle(trigger, data[0]).reason == "object-in-started-version"
    env.clock.advance(30)
    late = land(env, VERSION_PREFIX + "part-9999.csv", b"9,9\n")
    trigger.begin_invocation()
    outcome = handle(trigger, late)
    assert outcome.kind is Kind.LATE
    assert "not part of that run" in outcome.message
    assert outcome.execution_arn == executions(env)[0]["PipelineExecutionArn"]
    assert len(executions(env)) == 1


def test_marker_without_data_files_is_rejected(env: Env) -> None:
    trigger = make_trigger(env)
    marker = land(env, VERSION_PREFIX + "_SUCCESS", b"")
    land(env, VERSION_PREFIX + "_committed_123", b"x")
    outcome = handle(trigger, marker)
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "empty-version")
    assert executions(env) == []


def test_marker_event_for_a_deleted_marker_is_rejected(env: Env) -> None:
    trigger = make_trigger(env)
    _, marker = land_version(env)
    env.s3.delete_object(Bucket=BUCKET, Key=VERSION_PREFIX + "_SUCCESS")
    outcome = handle(trigger, marker)
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "marker-not-found")
    assert executions(env) == []


def test_keys_are_used_as_eventbridge_sends_them_never_url_decoded(env: Env) -> None:
    trigger = make_trigger(env)
    prefix = "landing/ventes été/2024 06+01/"
    data, marker = land_version(env, prefix=prefix, files=2)
    assert (marker or {})["detail"]["object"]["key"] == prefix + "_SUCCESS"
    for event in data:
        assert handle(trigger, event).kind is Kind.PENDING
    outcome = handle(trigger, marker)
    assert outcome.kind is Kind.STARTED
    assert parameters_of(env, outcome.execution_arn)["InputDataUri"] == f"s3://{BUCKET}/{prefix}"
    assert outcome.dataset_version == "ventes été/2024 06+01"
    assert stored(env, "VERSION#ventes été/2024 06+01")["file_count"] == 2


def test_a_form_encoded_key_is_taken_literally_not_decoded(env: Env) -> None:
    # No fallback: the classic notification format's encoding of a real version names
    # another (empty) version, whose marker does not exist.
    trigger = make_trigger(env)
    land_version(env, prefix="landing/sales/2026-11-22T03:00:00+00:00/")
    encoded = object_event("landing/sales/2026-11-22T03%3A00%3A00%2B00%3A00/_SUCCESS", size=0)
    outcome = handle(trigger, encoded)
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "marker-not-found")
    assert "landing/sales/2026-11-22T03%3A00%3A00%2B00%3A00/" in outcome.message
    assert executions(env) == []


# ---- manifest mode ---------------------------------------------------------------------------


def write_manifest(env: Env, files: list[dict[str, Any]] | str | bytes) -> dict[str, Any]:
    if isinstance(files, list):
        files = json.dumps({"files": files})
    body = files.encode() if isinstance(files, str) else files
    return land(env, VERSION_PREFIX + "manifest.json", body)


def uploaded(env: Env, names: list[str], **put: Any) -> list[dict[str, Any]]:
    entries = []
    for name in names:
        body = f"{name}\n1,2\n".encode()
        response = env.s3.put_object(Bucket=BUCKET, Key=VERSION_PREFIX + name, Body=body, **put)
        entries.append(
            {"key": name, "size": len(body), "etag": response["ETag"].strip('"'),
             "sha256": hashlib.sha256(body).hexdigest()}
        )  # fmt: skip
    return entries


def test_manifest_with_all_files_present_starts_one_execution(env: Env) -> None:
    trigger = make_trigger(env)
    entries = uploaded(env, ["part-1.csv", "2024/part-2.csv"], ChecksumAlgorithm="SHA256")
    outcome = handle(trigger, write_manifest(env, entries))
    assert outcome.kind is Kind.STARTED
    item = stored(env, "VERSION#sales/2024-06-01")
    assert (item["completed_by"], item["file_count"]) == ("manifest.json", 2)


def test_manifest_listing_a_missing_file_is_rejected(env: Env) -> None:
    trigger = make_trigger(env)
    entries = uploaded(env, ["part-1.csv"]) + [{"key": "part-2.csv", "size": 10}]
    outcome = handle(trigger, write_manifest(env, entries))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "manifest-missing-files")
    assert "'part-2.csv'" in outcome.message
    assert executions(env) == []


def test_manifest_with_a_wrong_size_is_rejected(env: Env) -> None:
    trigger = make_trigger(env)
    entries = uploaded(env, ["part-1.csv"])
    entries[0]["size"] += 1
    outcome = handle(trigger, write_manifest(env, entries))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "manifest-size-mismatch")
    assert "part-1.csv (listed" in outcome.message
    assert executions(env) == []


def test_manifest_with_a_wrong_etag_is_rejected(env: Env) -> None:
    trigger = make_trigger(env)
    entries = uploaded(env, ["part-1.csv"])
    entries[0]["etag"] = "0" * 32
    outcome = handle(trigger, write_manifest(env, entries))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "manifest-etag-mismatch")


def test_manifest_sha256_is_checked_against_the_checksum_s3_stores(env: Env) -> None:
    trigger = make_trigger(env)
    entries = uploaded(env, ["part-1.csv"], ChecksumAlgorithm="SHA256")
    entries[0]["sha256"] = hashlib.sha256(b"other bytes").hexdigest()
    outcome = handle(trigger, write_manifest(env, entries))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "manifest-checksum-mismatch")


def test_manifest_sha256_without_a_stored_checksum_is_accepted_unverified(env: Env) -> None:
    trigger = make_trigger(env)
    entries = uploaded(env, ["part-1.csv"])  # no ChecksumAlgorithm: nothing to compare with
    outcome = handle(trigger, write_manifest(env, entries))
    assert outcome.kind is Kind.STARTED


def test_manifest_may_list_an_empty_part_file_with_size_zero(env: Env) -> None:
    """Spark and Hadoop writers leave empty part files: `size: 0` is a size, not a missing one."""
    trigger = make_trigger(env)
    entries = uploaded(env, ["part-1.csv"])
    env.s3.put_object(Bucket=BUCKET, Key=VERSION_PREFIX + "part-2.csv", Body=b"")
    outcome = handle(trigger, write_manifest(env, [*entries, {"key": "part-2.csv", "size": 0}]))
    assert outcome.kind is Kind.STARTED
    item = stored(env, "VERSION#sales/2024-06-01")
    assert (item["completed_by"], item["file_count"]) == ("manifest.json", 2)


def test_an_empty_file_listed_with_a_size_is_a_size_mismatch(env: Env) -> None:
    trigger = make_trigger(env)
    env.s3.put_object(Bucket=BUCKET, Key=VERSION_PREFIX + "part-1.csv", Body=b"")
    outcome = handle(trigger, write_manifest(env, [{"key": "part-1.csv", "size": 1}]))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "manifest-size-mismatch")
    assert "part-1.csv (listed 1, found 0)" in outcome.message


def test_a_manifest_of_exactly_the_size_limit_is_read_one_byte_more_is_not() -> None:
    document = json.dumps({"files": [{"key": "a.csv", "size": 0}]}).encode()
    limit = 5 * 1024 * 1024  # 5 MiB, the documented limit
    at_limit = document + b" " * (limit - len(document))
    assert [e.size for e in completion.parse_manifest(at_limit)] == [0]
    with pytest.raises(completion.CompletionError) as error:
        completion.parse_manifest(at_limit + b" ")
    assert error.value.reason == "manifest-too-large"
    assert str(limit + 1) in error.value.message and f"at most {limit} bytes" in error.value.message


def test_the_listed_manifest_version_is_read_not_a_newer_one(env: Env) -> None:
    """A producer rewriting manifest.json after the listing: the check reads what was listed."""
    key = VERSION_PREFIX + "manifest.json"
    first = {"files": [{"key": "a.csv", "size": 3}]}
    env.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(first).encode())
    [listed] = completion.list_version(env.s3, BUCKET, VERSION_PREFIX)
    newer = {"files": [{"key": "b.csv", "size": 4}]}
    env.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(newer).encode())

    entries = completion.read_manifest(env.s3, BUCKET, listed)

    assert [(e.key, e.size) for e in entries] == [("a.csv", 3)]


def test_a_listed_manifest_of_5_mib_is_read_one_byte_more_is_not_downloaded(env: Env) -> None:
    key = VERSION_PREFIX + "manifest.json"
    env.s3.put_object(Bucket=BUCKET, Key=key, Body=b'{"files": [{"key": "a.csv", "size": 3}]}')
    [listed] = completion.list_version(env.s3, BUCKET, VERSION_PREFIX)
    at_limit = dataclasses.replace(listed, size=5 * 1024 * 1024)  # as the listing says

    assert [e.key for e in completion.read_manifest(env.s3, BUCKET, at_limit)] == ["a.csv"]
    too_large = dataclasses.replace(listed, size=5 * 1024 * 1024 + 1)
    # no call may be made: an activated Stubber fails on any
    with Stubber(env.s3), pytest.raises(completion.CompletionError) as error:
        completion.read_manifest(env.s3, BUCKET, too_large)
    assert error.value.reason == "manifest-too-large"


def test_stated_sha256_is_verified_only_against_a_full_object_sha256_s3_stores(env: Env) -> None:
    """S3's SHA-256 is compared; a file with another checksum (CRC32) cannot be verified here:
    it is counted, and the pipeline's input check recomputes it."""
    bodies = {"a.csv": b"a,1\n", "b.csv": b"b,2\n", "c.csv": b"c,3\n"}
    algorithms = {"a.csv": {"ChecksumAlgorithm": "SHA256"}, "b.csv": {},
                  "c.csv": {"ChecksumAlgorithm": "CRC32"}}  # fmt: skip
    for name, body in bodies.items():
        env.s3.put_object(Bucket=BUCKET, Key=VERSION_PREFIX + name, Body=body, **algorithms[name])
    files = [
        {"key": name, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        for name, body in bodies.items()
    ]
    env.s3.put_object(
        Bucket=BUCKET, Key=VERSION_PREFIX + "manifest.json", Body=json.dumps({"files": files})
    )
    listing = completion.list_version(env.s3, BUCKET, VERSION_PREFIX)

    contents = completion.version_contents(env.s3, BUCKET, listing, completed_by="_SUCCESS")

    assert (contents.completed_by, contents.unverified_checksums) == ("manifest.json", 2)
    assert contents.total_bytes == sum(map(len, bodies.values()))
    # b.csv has a CRC32 too: boto3 (1.36 on) sends one by default when none is asked for
    assert contents.identity_counts() == {"crc32": 2, "sha256": 1}


@pytest.mark.parametrize(
    ("relative_key", "is_data"),
    [
        ("part-1.csv", True),
        ("2024/06/part-1.csv", True),
        ("2024/manifest.json", True),  # only the manifest at the version root is metadata
        ("manifest.json", False),
        ("_SUCCESS", False),
        ("2024/_committed_123", False),
        ("2024/.part-1.csv.crc", False),
        ("2024/", False),
        ("", False),
    ],
)
def test_data_objects_are_all_but_placeholders_markers_and_the_manifest(
    relative_key: str, is_data: bool
) -> None:
    """The module's contract: `_*` and `.*` file names (Hadoop/Spark metadata), folder
    placeholders and the root manifest.json are not data; files in sub-folders are."""
    assert completion.is_data_key(relative_key) is is_data


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"etag": ""}, "files[0].etag must be a non-empty string"),
        ({"etag": '""'}, "files[0].etag must be a non-empty string"),
        ({"etag": 5}, "files[0].etag must be a non-empty string"),
        ({"sha256": "a" * 63}, "files[0].sha256 must be 64 hex digits"),
        ({"sha256": "a" * 65}, "files[0].sha256 must be 64 hex digits"),
        ({"sha256": "g" * 64}, "files[0].sha256 must be 64 hex digits"),
        ({"sha256": 64}, "files[0].sha256 must be 64 hex digits"),
        ({"key": "a/../b.csv"}, "must be relative to the version prefix"),
        ({"key": "/a.csv"}, "must be relative to the version prefix"),
        ({"key": "a//b.csv"}, "must be relative to the version prefix"),
        ({"key": "./a.csv"}, "must be relative to the version prefix"),
        ({"key": ""}, "files[0].key must be a non-empty string"),
    ],
)
def test_a_malformed_manifest_entry_names_the_field(entry: dict[str, Any], expected: str) -> None:
    document = json.dumps({"files": [{"key": "a.csv", "size": 3, **entry}]}).encode()
    with pytest.raises(completion.CompletionError) as error:
        completion.parse_manifest(document)
    assert error.value.reason == "manifest-malformed"
    assert expected in error.value.message


def test_a_manifest_entry_keeps_its_values_normalised() -> None:
    """S3 quotes ETags; hex digits are compared in lowercase (as S3 reports SHA-256)."""
    digest = hashlib.sha256(b"abc").hexdigest()
    document = json.dumps(
        {"files": [
            {"key": "a.csv", "size": 3, "etag": '"900150983cd24fb0d6963f7d28e17f72"',
             "sha256": digest.upper()},
            {"key": "b.csv", "size": 0},
        ]}
    ).encode()  # fmt: skip
    assert completion.parse_manifest(document) == [
        completion.ManifestEntry("a.csv", 3, "900150983cd24fb0d6963f7d28e17f72", digest),
        completion.ManifestEntry("b.csv", 0, None, None),
    ]


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "'k0'"),
        (5, "'k0', 'k1', 'k2', 'k3', 'k4'"),
        (6, "'k0', 'k1', 'k2', 'k3', 'k4' and 1 more"),
        (9, "'k0', 'k1', 'k2', 'k3', 'k4' and 4 more"),
    ],
)
def test_a_rejection_names_five_keys_and_counts_the_rest(count: int, expected: str) -> None:
    missing = [completion.ManifestEntry(f"k{i}", 1) for i in range(count)]
    with pytest.raises(completion.CompletionError) as error:
        completion.check_manifest(missing, [])
    assert error.value.message == (
        f"manifest.json lists {count} file(s) that do not exist: {expected}; upload them, "
        "then re-upload manifest.json"
    )


def test_manifest_must_declare_every_data_file_under_the_prefix(env: Env) -> None:
    trigger = make_trigger(env)
    entries = uploaded(env, ["part-1.csv", "extra.csv"])[:1]
    outcome = handle(trigger, write_manifest(env, entries))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "manifest-unlisted-files")
    assert "'extra.csv'" in outcome.message


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{not json", "not UTF-8 JSON"),
        ("[]", "top level must be an object"),
        ('{"files": []}', "'files' must be a non-empty list"),
        ('{"files": [{"size": 3}]}', "files[0].key must be a non-empty string"),
        ('{"files": [{"key": "../x.csv", "size": 3}]}', "must be relative"),
        ('{"files": [{"key": "a.csv", "size": "3"}]}', "files[0].size must be a non-negative"),
        ('{"files": [{"key": "a.csv", "size": -1}]}', "non-negative integer, got -1"),
        ('{"files": [{"key": "a.csv", "size": true}]}', "non-negative integer, got True"),
        ('{"files": [{"key": "a.csv", "size": 3.0}]}', "non-negative integer, got 3.0"),
        ('{"files": [{"key": "a.csv", "size": 3}, {"key": "a.csv", "size": 3}]}', "twice"),
        ('{"files": [{"key": "_SUCCESS", "size": 0}]}', "marker/metadata"),
        ('{"files": [{"key": "a.csv", "size": 3, "sha256": "xyz"}]}', "64 hex digits"),
        (b"\xff\xfe", "not UTF-8 JSON"),
    ],
)
def test_malformed_manifest_is_rejected_with_the_problem_named(
    env: Env, document: str | bytes, expected: str
) -> None:
    trigger = make_trigger(env)
    uploaded(env, ["a.csv"])
    outcome = handle(trigger, write_manifest(env, document))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "manifest-malformed")
    assert expected in outcome.message
    assert executions(env) == []


def test_success_marker_applies_the_manifest_when_one_is_present(env: Env) -> None:
    trigger = make_trigger(env)
    entries = uploaded(env, ["part-1.csv"])
    entries[0]["size"] = 1
    env.s3.put_object(Bucket=BUCKET, Key=VERSION_PREFIX + "manifest.json", Body=json.dumps(
        {"files": entries}).encode())  # fmt: skip
    outcome = handle(trigger, land(env, VERSION_PREFIX + "_SUCCESS", b""))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "manifest-size-mismatch")


# ---- bad events --------------------------------------------------------------------------------


def good_event(**changes: Any) -> dict[str, Any]:
    return object_event(VERSION_PREFIX + "part-1.csv", size=10, **changes)


def without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    node = event
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return event


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (json.dumps(good_event(bucket=OTHER_BUCKET)), "foreign-bucket"),
        (json.dumps(object_event("other/sales/v1/a.csv", size=3)), "outside-landing-prefix"),
        (json.dumps(object_event("landing/a.csv", size=3)), "outside-version-layout"),
        (json.dumps(object_event("landing/sales/a.csv", size=3)), "outside-version-layout"),
        (json.dumps(object_event("landing/sales/../a.csv", size=3)), "outside-version-layout"),
        (json.dumps(object_event(VERSION_PREFIX + "part-1.csv", size=0)), "zero-byte-object"),
        (json.dumps(object_event(VERSION_PREFIX + "sub/", size=0)), "folder-placeholder"),
        ('{"source": "aws.s3", "detail-type": "Object Created", "detail": ', "malformed-json"),
        ("[1, 2]", "not-an-object"),
        ('{"hello": "world"}', "unrecognised-message"),
        (json.dumps({"Records": [{"eventSource": "aws:s3"}]}), "not-an-eventbridge-event"),
        (json.dumps({**good_event(), "detail-type": "Object Deleted"}), "unsupported-detail-type"),
        (json.dumps(without(good_event(), "detail", "object", "key")), "malformed-s3-event"),
        (json.dumps(without(good_event(), "detail", "object")), "malformed-s3-event"),
        (json.dumps(without(good_event(), "detail", "object", "size")), "malformed-s3-event"),
        (json.dumps({"action": "quiet-check", "bucket": BUCKET}), "malformed-quiet-check"),
        (json.dumps({"action": "retrain-latest"}), "malformed-retrain-request"),
        (
            json.dumps({"action": "retrain-version", "request_id": "t1"}),
            "malformed-retrain-request",
        ),
        (
            json.dumps({"action": "retrain-version", "dataset_version": "sales/v1"}),
            "malformed-retrain-request",
        ),
        (
            json.dumps(
                {
                    "action": "retrain-version",
                    "dataset_version": "sales/v1",
                    "request_id": "x" * 257,
                }
            ),
            "malformed-retrain-request",
        ),
        (
            json.dumps(
                {"action": "retrain-version", "dataset_version": "sales/v1", "request_id": 42}
            ),
            "malformed-retrain-request",
        ),
        (
            json.dumps(
                {
                    "action": "retrain-version",
                    "dataset_version": "sales/v1",
                    "request_id": "t1",
                    "reason": "by hand",
                }
            ),
            "malformed-retrain-request",
        ),
        (
            json.dumps(
                {"action": "retrain-version", "dataset_version": "sales/v1/x", "request_id": "t1"}
            ),
            "malformed-retrain-request",
        ),
        (
            json.dumps(
                {"action": "retrain-version", "dataset_version": "../v1", "request_id": "t1"}
            ),
            "malformed-retrain-request",
        ),
        (
            json.dumps(
                {
                    "action": "retrain-version",
                    "dataset_version": ["sales", "v1"],
                    "request_id": "t1",
                }
            ),
            "malformed-retrain-request",
        ),
        (
            json.dumps(
                {"action": "retrain-version", "dataset_version": "sales/v404", "request_id": "t1"}
            ),
            "version-never-ran",
        ),
        (
            json.dumps({"detail-type": "CloudWatch Alarm State Change", "detail": {}}),
            "malformed-alarm-event",
        ),
    ],  # fmt: skip
)
def test_bad_events_are_rejected_acknowledged_and_counted(
    env: Env, body: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = make_trigger(env)
    outcome = trigger.handle_sqs_body(body)
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, reason)
    assert outcome.message
    assert executions(env) == []
    assert take_queued(env) == []  # acknowledged: not re-queued, not retried
    assert {"Reason": reason, "RejectedEvents": [1.0]}.items() <= metrics_out(capsys)[0].items()


@pytest.mark.parametrize("request_kind", ["retrain-version", "retrain-latest"])
def test_a_version_no_longer_complete_is_not_re_run(env: Env, request_kind: str) -> None:
    # its data objects were deleted after it ran (the marker stayed): the prefix no longer
    # holds a complete version, so a re-run has nothing to train on and is refused, saying why
    trigger = make_trigger(env)
    handle(trigger, land_version(env)[1])
    listed = env.s3.list_objects_v2(Bucket=BUCKET, Prefix=VERSION_PREFIX)["Contents"]
    for data in [o["Key"] for o in listed if not o["Key"].endswith("/_SUCCESS")]:
        env.s3.delete_object(Bucket=BUCKET, Key=data)
    version = VERSION_PREFIX.removeprefix("landing/").rstrip("/")
    request = rerun_request(version) if request_kind == "retrain-version" else retrain_request()
    outcome = trigger.handle_direct(request)
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "version-changed")
    assert "is no longer complete under" in outcome.message
    assert len(executions(env)) == 1


# ---- re-upload ---------------------------------------------------------------------------------


def test_reupload_with_new_content_is_ignored_and_logged_when_not_allowed(env: Env) -> None:
    trigger = make_trigger(env, allow_reupload=False)
    _, marker = land_version(env)
    first = handle(trigger, marker)
    outcome = handle(trigger, reupload(env))
    assert (outcome.kind, outcome.reason) == (Kind.REUPLOAD_IGNORED, "reupload-not-allowed")
    assert outcome.details["previous_data_digest"] != outcome.details["new_data_digest"]
    assert outcome.execution_arn == first.execution_arn
    assert len(executions(env)) == 1


@pytest.mark.parametrize("request_kind", ["retrain-version", "retrain-latest"])
def test_a_version_changed_in_place_is_not_re_run(env: Env, request_kind: str) -> None:
    # ALLOW_REUPLOAD=false ignores the change; a re-run would train on bytes its digest
    # does not name, so it is refused until the data lands as a new version
    trigger = make_trigger(env, allow_reupload=False)
    handle(trigger, land_version(env)[1])
    handle(trigger, reupload(env))
    version = VERSION_PREFIX.removeprefix("landing/").rstrip("/")
    request = rerun_request(version) if request_kind == "retrain-version" else retrain_request()
    outcome = trigger.handle_direct(request)
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "version-changed")
    assert "changed since dataset version" in outcome.message
    assert "land the data as a new version" in outcome.message
    assert len(executions(env)) == 1
    assert take_queued(env) == []


def test_identical_bytes_uploaded_again_are_no_change_for_a_re_run(env: Env) -> None:
    trigger = make_trigger(env, allow_reupload=False)
    handle(trigger, land_version(env)[1])
    env.clock.advance(60)
    land(env, VERSION_PREFIX + "part-0000.csv", b"x,y\n0,0\n")  # same bytes, new version id
    version = VERSION_PREFIX.removeprefix("landing/").rstrip("/")
    assert handle(trigger, rerun_request(version)).kind is Kind.STARTED
    assert len(executions(env)) == 2


def test_reupload_with_new_content_starts_a_new_generation_when_allowed(env: Env) -> None:
    trigger = make_trigger(env, allow_reupload=True)
    _, marker = land_version(env)
    first = handle(trigger, marker)
    second = handle(trigger, reupload(env))
    assert (second.kind, second.trigger, second.details["generation"]) == (
        Kind.STARTED,
        "reupload",
        2,
    )
    assert len(executions(env)) == 2
    item = stored(env, "VERSION#sales/2024-06-01")
    assert item["generation"] == 2
    assert item["previous_runs"][0]["execution_arn"] == first.execution_arn
    digests = {parameters_of(env, o.execution_arn)["DataDigest"] for o in (first, second)}
    assert len(digests) == 2


# ---- quiet-period mode ---------------------------------------------------------------------------


def test_quiet_period_mode_starts_once_after_the_prefix_goes_quiet(env: Env) -> None:
    trigger = make_trigger(env, completion_mode="quiet-period", quiet_period_seconds=120)
    data, _ = land_version(env, files=20, marker=None)
    outcomes = [handle(trigger, event) for event in data]
    assert [o.reason for o in outcomes].count("quiet-check-scheduled") == 1
    [check] = take_queued(env)
    assert check.delay == pytest.approx(120, abs=2)
    assert json.loads(check.body) == {
        "action": "quiet-check",
        "bucket": BUCKET,
        "dataset": "sales",
        "version": "2024-06-01",
    }

    # A new object arrives 100 s in: the check (due at 120 s) is not quiet yet and re-arms.
    env.clock.advance(100)
    env.s3.put_object(Bucket=BUCKET, Key=VERSION_PREFIX + "part-late.csv", Body=b"7,7\n")
    stamp(VERSION_PREFIX + "part-late.csv", env.clock())
    env.clock.advance(20)
    waiting = trigger.handle_sqs_body(check.body)
    assert (waiting.kind, waiting.reason) == (Kind.PENDING, "quiet-period-running")
    [recheck] = take_queued(env)
    assert 90 <= recheck.delay <= 121
    assert executions(env) == []

    env.clock.advance(recheck.delay + 1)
    started = trigger.handle_sqs_body(recheck.body)
    assert started.kind is Kind.STARTED
    assert stored(env, "VERSION#sales/2024-06-01")["file_count"] == 21
    # Another check for the same version (e.g. a duplicate send) starts nothing.
    assert trigger.handle_sqs_body(recheck.body).kind is Kind.DUPLICATE
    assert len(executions(env)) == 1


def test_quiet_period_mode_reports_objects_landing_after_the_start_as_late(env: Env) -> None:
    trigger = make_trigger(env, completion_mode="quiet-period", quiet_period_seconds=60)
    data, _ = land_version(env, files=1, marker=None)
    handle(trigger, data[0])
    [check] = take_queued(env)
    env.clock.advance(62)
    assert trigger.handle_sqs_body(check.body).kind is Kind.STARTED
    env.clock.advance(5)
    late = land(env, VERSION_PREFIX + "part-late.csv", b"1,1\n")
    assert handle(trigger, late).kind is Kind.LATE
    assert take_queued(env) == []


def test_quiet_period_mode_still_honours_markers(env: Env) -> None:
    trigger = make_trigger(env, completion_mode="quiet-period", quiet_period_seconds=600)
    _, marker = land_version(env)
    assert handle(trigger, marker).kind is Kind.STARTED


# ---- concurrency cap ---------------------------------------------------------------------------


def test_version_waits_at_the_concurrency_cap_and_starts_later(env: Env) -> None:
    trigger = make_trigger(env, max_concurrent_executions=1, defer_seconds=120)
    _, first_marker = land_version(env, prefix="landing/sales/v1/")
    first = handle(trigger, first_marker)
    set_execution_status(first.execution_arn, "Executing")

    _, second_marker = land_version(env, prefix="landing/sales/v2/")
    trigger.begin_invocation()
    deferred = handle(trigger, second_marker)
    assert (deferred.kind, deferred.reason) == (Kind.DEFERRED, "concurrency-cap")
    assert len(executions(env)) == 1
    [waiting] = take_queued(env)
    assert waiting.delay == pytest.approx(120, abs=2)
    assert waiting.attributes == {trigger_module.DEFERRALS_ATTRIBUTE: "1"}
    assert json.loads(waiting.body) == second_marker
    assert ledger_item(env, "VERSION#sales/v2") is None  # nothing claimed while waiting

    set_execution_status(first.execution_arn, "Succeeded")
    trigger.begin_invocation()
    started = trigger.handle_sqs_body(waiting.body, deferrals=1)
    assert started.kind is Kind.STARTED
    assert started.dataset_version == "sales/v2"
    assert len(executions(env)) == 2


def test_running_executions_are_counted_across_pages_from_the_last_28_days(env: Env) -> None:
    sagemaker = SESSION.client("sagemaker")
    trigger = make_trigger(env, sagemaker=sagemaker, max_concurrent_executions=3)
    created_after = datetime.fromtimestamp(int(env.clock()) - 672 * 3600, UTC)
    base = {"PipelineName": PIPELINE, "CreatedAfter": created_after, "SortBy": "CreationTime",
            "SortOrder": "Descending", "MaxResults": 100}  # fmt: skip

    def page(*statuses: str, token: str | None = None) -> dict[str, Any]:
        summaries = [
            {"PipelineExecutionArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/"
             f"{PIPELINE}/execution/{status.lower()}{i}", "PipelineExecutionStatus": status}
            for i, status in enumerate(statuses)
        ]  # fmt: skip
        return {"PipelineExecutionSummaries": summaries, **({"NextToken": token} if token else {})}

    with Stubber(sagemaker) as stub:
        stub.add_response("list_pipeline_executions", page("Executing", "Succeeded", token="t"),
                          base)  # fmt: skip
        stub.add_response("list_pipeline_executions", page("Failed", "Stopping", "Executing"),
                          {**base, "NextToken": "t"})  # fmt: skip
        _, marker = land_version(env)
        outcome = handle(trigger, marker)
        stub.assert_no_pending_responses()
    assert (outcome.kind, outcome.reason) == (Kind.DEFERRED, "concurrency-cap")
    assert "3 pipeline executions running" in outcome.message


def test_sagemaker_resource_limit_defers_the_version_and_releases_the_claim(env: Env) -> None:
    sagemaker = SESSION.client("sagemaker")
    trigger = make_trigger(env, sagemaker=sagemaker)
    with Stubber(sagemaker) as stub:
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": []})
        stub.add_client_error(
            "start_pipeline_execution", "ResourceLimitExceeded", "20 executions running"
        )
        _, marker = land_version(env)
        outcome = handle(trigger, marker)
    assert (outcome.kind, outcome.reason) == (Kind.DEFERRED, "resource-limit-exceeded")
    assert len(take_queued(env)) == 1
    item = stored(env, "VERSION#sales/2024-06-01")
    assert (item["status"], item["lease_until"]) == ("STARTING", 0)


# ---- exactly once under failures ---------------------------------------------------------------


def test_throttled_start_fails_the_record_and_the_retry_reuses_the_token(env: Env) -> None:
    sagemaker = SESSION.client("sagemaker")
    trigger = make_trigger(env, sagemaker=sagemaker)
    _, marker = land_version(env)
    with Stubber(sagemaker) as stub:
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": []})
        stub.add_client_error("start_pipeline_execution", "ThrottlingException", "Rate exceeded")
        with pytest.raises(trigger_module.ClientError, match="ThrottlingException"):
            handle(trigger, marker)
    item = stored(env, "VERSION#sales/2024-06-01")
    assert (item["status"], item["lease_until"]) == ("STARTING", 0)  # released at once

    retry = make_trigger(env)
    outcome = handle(retry, marker)
    assert outcome.kind is Kind.STARTED
    [execution] = executions(env)
    backend = sagemaker_backends[ACCOUNT][REGION].pipelines[PIPELINE]
    token = backend.pipeline_executions[execution["PipelineExecutionArn"]].client_request_token
    assert token == item["client_request_token"]


def test_crash_between_claim_and_start_is_recovered_after_the_lease(env: Env) -> None:
    trigger = make_trigger(env, lease_seconds=180)
    _, marker = land_version(env)
    seen = ledger_item(env, "VERSION#sales/2024-06-01")
    claim = trigger.ledger.claim(
        "VERSION#sales/2024-06-01", seen, generation=1, attributes={"trigger": "data"}
    )
    assert claim is not None  # ... and the worker dies here, before StartPipelineExecution

    # While the lease runs, the event waits in the queue instead of being acknowledged.
    waiting = handle(trigger, marker)
    assert (waiting.kind, waiting.reason) == (Kind.DEFERRED, "claimed-by-another-worker")
    [queued] = take_queued(env)
    env.clock.advance(181)
    outcome = trigger.handle_sqs_body(queued.body)
    assert outcome.kind is Kind.STARTED
    assert len(executions(env)) == 1
    assert stored(env, "VERSION#sales/2024-06-01")["generation"] == 1


def test_claim_lost_to_a_live_claim_is_requeued_and_started_once_the_rival_dies(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    trigger = make_trigger(env, lease_seconds=180)
    rival = make_trigger(env, lease_seconds=180)
    _, marker = land_version(env)
    pk = "VERSION#sales/2024-06-01"
    # The rival claims and dies before StartPipelineExecution (its own message is lost too).
    race_before_claim(
        trigger,
        monkeypatch,
        lambda: rival.ledger.claim(pk, None, generation=1, attributes={"trigger": "data"}),
    )

    waiting = handle(trigger, marker)
    assert (waiting.kind, waiting.reason) == (Kind.DEFERRED, "claimed-by-another-worker")
    [queued] = take_queued(env)  # re-queued, not acknowledged: this event must finish the job
    assert json.loads(queued.body) == marker
    assert executions(env) == []

    env.clock.advance(181)
    trigger.begin_invocation()
    outcome = trigger.handle_sqs_body(queued.body, deferrals=1)
    assert outcome.kind is Kind.STARTED
    assert len(executions(env)) == 1
    assert (stored(env, pk)["status"], stored(env, pk)["generation"]) == ("STARTED", 1)


def test_claim_lost_to_a_start_of_the_same_content_is_a_duplicate(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    trigger = make_trigger(env)
    rival = make_trigger(env)
    _, marker = land_version(env)
    rival_outcomes: list[Any] = []
    race_before_claim(trigger, monkeypatch, lambda: rival_outcomes.append(handle(rival, marker)))

    outcome = handle(trigger, marker)
    assert (outcome.kind, outcome.reason) == (Kind.DUPLICATE, "started-concurrently")
    assert outcome.execution_arn == rival_outcomes[0].execution_arn
    assert len(executions(env)) == 1
    assert take_queued(env) == []


def test_claim_lost_to_a_start_from_another_listing_is_requeued_to_decide_again(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    trigger = make_trigger(env, allow_reupload=True)
    rival = make_trigger(env, allow_reupload=True)
    _, marker = land_version(env)

    def rival_lists_more_data() -> None:
        land(env, VERSION_PREFIX + "part-0003.csv", b"x,y\n3,3\n")
        handle(rival, marker)

    race_before_claim(trigger, monkeypatch, rival_lists_more_data)
    outcome = handle(trigger, marker)
    assert (outcome.kind, outcome.reason) == (Kind.DEFERRED, "listing-changed-concurrently")
    [queued] = take_queued(env)

    trigger.begin_invocation()
    again = trigger.handle_sqs_body(queued.body, deferrals=1)
    assert again.kind is Kind.DUPLICATE  # what is there now is what the rival started
    assert len(executions(env)) == 1
    assert stored(env, "VERSION#sales/2024-06-01")["file_count"] == 4


# ---- retraining --------------------------------------------------------------------------------


def test_scheduled_retrain_reruns_the_latest_version_once_per_scheduled_time(env: Env) -> None:
    trigger = make_trigger(env)
    assert trigger.handle(retrain_request()).reason == "no-complete-version"
    _, old = land_version(env, prefix="landing/sales/v1/")
    handle(trigger, old)
    env.clock.advance(10)
    _, new = land_version(env, prefix="landing/sales/v2/")
    data_run = handle(trigger, new)

    retrain = trigger.handle(retrain_request())
    assert (retrain.kind, retrain.trigger) == (Kind.STARTED, "schedule")
    assert parameters_of(env, retrain.execution_arn) == parameters_of(env, data_run.execution_arn)
    assert trigger.handle(retrain_request()).kind is Kind.DUPLICATE
    assert trigger.handle(retrain_request("2024-06-03T03:00:00Z")).kind is Kind.STARTED
    assert len(executions(env)) == 4


def test_scheduled_retrain_can_target_one_dataset(env: Env) -> None:
    trigger = make_trigger(env)
    _, sales = land_version(env, prefix="landing/sales/v1/")
    handle(trigger, sales)
    env.clock.advance(10)
    _, stock = land_version(env, prefix="landing/stock/v7/")
    handle(trigger, stock)
    outcome = trigger.handle(retrain_request(dataset="sales"))
    assert outcome.dataset_version == "sales/v1"


def test_alarm_retrains_then_honours_the_cooldown(env: Env) -> None:
    trigger = make_trigger(env, retrain_cooldown_seconds=3600)
    _, marker = land_version(env)
    handle(trigger, marker)

    assert trigger.handle(alarm_event()).reason == "cooldown"  # the data run just started
    env.clock.advance(3601)
    first = trigger.handle(alarm_event())
    assert (first.kind, first.trigger) == (Kind.STARTED, "alarm")
    env.clock.advance(600)
    second = trigger.handle(alarm_event(name="mlops-dev-model-quality"))
    assert (second.kind, second.reason) == (Kind.SKIPPED, "cooldown")
    env.clock.advance(3600)
    third = trigger.handle(alarm_event())
    assert third.kind is Kind.STARTED
    assert len(executions(env)) == 3
    assert stored(env, "RETRAIN#alarm")["generation"] == 2


def test_an_alarm_not_named_as_this_environments_retrain_alarms_is_rejected(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = make_trigger(env, retrain_cooldown_seconds=0, retrain_alarm_prefix="mlops-dev-")
    handle(trigger, land_version(env)[1])
    capsys.readouterr()
    foreign = trigger.handle_sqs_body(json.dumps(alarm_event(name="mlops-prod-feature-drift")))
    assert (foreign.kind, foreign.reason) == (Kind.REJECTED, "foreign-alarm")
    assert "'mlops-prod-feature-drift'" in foreign.message and "'mlops-dev-'" in foreign.message
    assert {"Reason": "foreign-alarm", "RejectedEvents": [1.0]}.items() <= (
        metrics_out(capsys)[0].items()
    )
    assert len(executions(env)) == 1  # the data run only
    own = trigger.handle_sqs_body(json.dumps(alarm_event(name="mlops-dev-feature-drift")))
    assert own.kind is Kind.STARTED


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_alarm_leaving_alarm_state_is_ignored(env: Env, state: str) -> None:
    trigger = make_trigger(env, retrain_cooldown_seconds=0)
    _, marker = land_version(env)
    handle(trigger, marker)
    outcome = trigger.handle(alarm_event(state))
    assert (outcome.kind, outcome.reason) == (Kind.SKIPPED, f"alarm-state-{state.lower()}")
    assert len(executions(env)) == 1


def test_cloudwatch_alarm_action_payload_is_understood(env: Env) -> None:
    trigger = make_trigger(env, retrain_cooldown_seconds=0)
    _, marker = land_version(env)
    handle(trigger, marker)
    action = {
        "source": "aws.cloudwatch",
        "alarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:drift",
        "alarmData": alarm_event()["detail"],
    }
    assert trigger.handle(action).kind is Kind.STARTED


def test_retrain_at_the_cap_waits_in_the_queue(env: Env) -> None:
    trigger = make_trigger(env, max_concurrent_executions=1)
    _, marker = land_version(env)
    data_run = handle(trigger, marker)
    set_execution_status(data_run.execution_arn, "Executing")
    trigger.begin_invocation()
    outcome = trigger.handle_direct(retrain_request())
    assert outcome.kind is Kind.DEFERRED
    [queued] = take_queued(env)
    assert json.loads(queued.body) == retrain_request()


def test_retrain_claim_lost_to_a_live_claim_is_requeued(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    trigger = make_trigger(env)
    handle(trigger, land_version(env)[1])
    pk = "RETRAIN#schedule#2024-06-02T03:00:00Z"
    race_before_claim(
        trigger,
        monkeypatch,
        lambda: make_trigger(env).ledger.claim(
            pk, None, generation=1, attributes={"trigger": "schedule"}
        ),
    )
    outcome = trigger.handle_direct(retrain_request())
    assert (outcome.kind, outcome.reason) == (Kind.DEFERRED, "claimed-by-another-worker")
    [queued] = take_queued(env)
    assert json.loads(queued.body) == retrain_request()
    assert len(executions(env)) == 1  # only the data run


# ---- bookkeeping after a start (LATEST pointers, newest run) --------------------------------


def test_redelivered_marker_repairs_latest_pointers_the_first_delivery_failed_to_write(
    env: Env,
) -> None:
    trigger = make_trigger(env)
    _, marker = land_version(env)
    first = handle(trigger, marker)
    item = stored(env, "VERSION#sales/2024-06-01")
    for pk in ("LATEST", "LATEST#sales"):  # as if the writes after the start had failed
        env.table.delete_item(Key={"pk": pk})
    env.clock.advance(60)

    again = handle(trigger, marker)
    assert (again.kind, again.reason) == (Kind.DUPLICATE, "redelivered-marker")
    for pk in ("LATEST", "LATEST#sales"):
        latest = stored(env, pk)
        assert latest["dataset_version"] == "sales/2024-06-01"
        assert latest["execution_arn"] == first.execution_arn
        assert latest["data_digest"] == item["data_digest"]
        assert latest["version_started_at"] == item["started_at"]  # the run's time, not now
    assert stored(env, "LATEST")["last_run_execution_arn"] == first.execution_arn
    assert stored(env, "LATEST")["last_run_started_at"] == item["started_at"]
    assert len(executions(env)) == 1


@pytest.mark.parametrize("path", ["same-content", "version-already-started"])
def test_other_duplicates_of_a_started_version_repair_the_latest_pointer(
    env: Env, path: str
) -> None:
    if path == "same-content":
        trigger = make_trigger(env, allow_reupload=True)
        handle(trigger, land_version(env)[1])
        env.table.delete_item(Key={"pk": "LATEST"})
        env.clock.advance(5)
        outcome = handle(trigger, land(env, VERSION_PREFIX + "_SUCCESS", b""))
    else:
        trigger = make_trigger(env, completion_mode="quiet-period")
        handle(trigger, land_version(env)[1])
        env.table.delete_item(Key={"pk": "LATEST"})
        check = {"action": "quiet-check", "bucket": BUCKET, "dataset": "sales",
                 "version": "2024-06-01"}  # fmt: skip
        outcome = trigger.handle(check)
    assert (outcome.kind, outcome.reason) == (Kind.DUPLICATE, path)
    assert stored(env, "LATEST")["execution_arn"] == outcome.execution_arn
    assert len(executions(env)) == 1


def test_redelivery_of_an_older_version_never_moves_the_latest_pointer_back(env: Env) -> None:
    trigger = make_trigger(env)
    _, old = land_version(env, prefix="landing/sales/v1/")
    handle(trigger, old)
    env.clock.advance(10)
    _, new = land_version(env, prefix="landing/sales/v2/")
    newest = handle(trigger, new)
    env.clock.advance(10)

    assert handle(trigger, old).reason == "redelivered-marker"
    for pk in ("LATEST", "LATEST#sales"):
        assert stored(env, pk)["dataset_version"] == "sales/v2"
    assert stored(env, "LATEST")["last_run_execution_arn"] == newest.execution_arn


def test_versions_started_in_the_same_second_settle_on_one_pointer(env: Env) -> None:
    trigger = make_trigger(env)
    _, first = land_version(env, prefix="landing/sales/v2/")
    _, second = land_version(env, prefix="landing/sales/v1/")
    handle(trigger, first)
    handle(trigger, second)
    # Same started_at: the greater dataset version wins, whatever the order of writes, so
    # re-deliveries cannot flip the pointer back and forth.
    assert stored(env, "LATEST")["dataset_version"] == "sales/v2"
    handle(trigger, second)
    assert stored(env, "LATEST")["dataset_version"] == "sales/v2"


def test_repeated_retrain_request_repairs_the_newest_run_record(env: Env) -> None:
    trigger = make_trigger(env)
    handle(trigger, land_version(env)[1])
    env.clock.advance(100)
    retrain = trigger.handle(retrain_request())
    started_at = stored(env, "RETRAIN#schedule#2024-06-02T03:00:00Z")["started_at"]
    # As if record_run had failed after the start: LATEST still names the data run.
    env.table.update_item(
        Key={"pk": "LATEST"},
        UpdateExpression="SET last_run_started_at = :t, last_run_execution_arn = :a",
        ExpressionAttributeValues={":t": started_at - 100, ":a": "data-run"},
    )
    again = trigger.handle(retrain_request())
    assert (again.kind, again.reason) == (Kind.DUPLICATE, "retrain-already-started")
    latest = stored(env, "LATEST")
    assert latest["last_run_execution_arn"] == retrain.execution_arn
    assert (latest["last_run_started_at"], latest["last_run_trigger"]) == (started_at, "schedule")
    assert len(executions(env)) == 2


# ---- re-running one version ---------------------------------------------------------------------


def test_rerun_of_a_started_version_starts_one_run_with_its_recorded_parameters(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = make_trigger(env)
    _, old = land_version(env, prefix="landing/sales/v1/")
    first = handle(trigger, old)
    env.clock.advance(10)
    _, new = land_version(env, prefix="landing/sales/v2/")
    handle(trigger, new)
    capsys.readouterr()

    outcome = handle(trigger, rerun_request())
    assert (outcome.kind, outcome.trigger, outcome.dataset_version) == (
        Kind.STARTED,
        "manual-version",
        "sales/v1",
    )
    assert outcome.execution_arn != first.execution_arn
    assert parameters_of(env, outcome.execution_arn) == parameters_of(env, first.execution_arn)
    assert parameters_of(env, outcome.execution_arn)["DatasetVersion"] == "sales/v1"
    assert outcome.details == {"request_id": "ticket-42", "rerun_of": first.execution_arn}
    assert len(executions(env)) == 3
    item = stored(env, "RETRAIN#manual#ticket-42")
    assert (item["status"], item["execution_arn"], item["trigger"]) == (
        "STARTED",
        outcome.execution_arn,
        "manual-version",
    )
    assert item["expires_at"] > env.clock()  # request items expire like retrain-latest ones
    assert stored(env, "LATEST")["dataset_version"] == "sales/v2"  # never moves back
    assert stored(env, "VERSION#sales/v1")["execution_arn"] == first.execution_arn
    started = [doc for doc in metrics_out(capsys) if "ExecutionsStarted" in doc]
    assert [doc["Trigger"] for doc in started] == ["manual-version"]


def test_rerun_with_the_same_request_id_runs_once(env: Env) -> None:
    trigger = make_trigger(env)
    _, marker = land_version(env, prefix="landing/sales/v1/")
    handle(trigger, marker)
    first = trigger.handle_direct(rerun_request())
    again = handle(trigger, rerun_request())
    assert (again.kind, again.reason) == (Kind.DUPLICATE, "retrain-already-started")
    assert again.execution_arn == first.execution_arn
    assert len(executions(env)) == 2
    assert trigger.handle_direct(rerun_request(request_id="ticket-43")).kind is Kind.STARTED
    assert len(executions(env)) == 3


def test_rerun_request_id_already_used_for_another_version_is_rejected(env: Env) -> None:
    trigger = make_trigger(env)
    for prefix in ("landing/sales/v1/", "landing/sales/v2/"):
        handle(trigger, land_version(env, prefix=prefix)[1])
    first = handle(trigger, rerun_request("sales/v1"))
    outcome = handle(trigger, rerun_request("sales/v2"))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "request-id-reused")
    assert "already used for dataset version sales/v1" in outcome.message
    assert first.execution_arn in outcome.message
    assert len(executions(env)) == 3


@pytest.mark.parametrize("mode", ["never-landed", "data-without-completion"])
def test_rerun_of_a_version_that_never_ran_is_rejected_and_starts_nothing(
    env: Env, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = make_trigger(env, completion_mode="quiet-period")
    if mode == "data-without-completion":
        handle(trigger, land(env, "landing/sales/v1/part-0.csv"))
        assert stored(env, "VERSION#sales/v1")["status"] == "OPEN"
        take_queued(env)  # the quiet-period check
    capsys.readouterr()
    outcome = trigger.handle_direct(rerun_request())
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "version-never-ran")
    assert outcome.message == (
        "dataset version sales/v1 has never run; land it with a marker first"
    )
    assert executions(env) == []
    assert take_queued(env) == []
    assert ledger_item(env, "RETRAIN#manual#ticket-42") is None
    assert {"Reason": "version-never-ran", "RejectedEvents": [1.0]}.items() <= metrics_out(capsys)[
        0
    ].items()


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ({"dataset_version": None}, "retrain-version needs 'dataset_version' as '<dataset>/"),
        ({"dataset_version": "sales"}, "got 'sales'"),
        ({"request_id": ""}, "retrain-version needs 'scheduled_time'"),
        ({"request_id": "r" * 257}, "'request_id' (1-256 characters)"),
    ],
)
def test_malformed_rerun_requests_say_what_is_wrong(
    env: Env, message: dict[str, Any], says: str
) -> None:
    trigger = make_trigger(env)
    handle(trigger, land_version(env, prefix="landing/sales/v1/")[1])
    outcome = trigger.handle_direct(rerun_request(**message))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "malformed-retrain-request")
    assert says in outcome.message
    assert len(executions(env)) == 1
    assert take_queued(env) == []


def test_rerun_at_the_cap_waits_in_the_queue_and_starts_later(env: Env) -> None:
    trigger = make_trigger(env, max_concurrent_executions=1, defer_seconds=120)
    data_run = handle(trigger, land_version(env, prefix="landing/sales/v1/")[1])
    set_execution_status(data_run.execution_arn, "Executing")
    trigger.begin_invocation()
    outcome = trigger.handle_direct(rerun_request())
    assert (outcome.kind, outcome.reason) == (Kind.DEFERRED, "concurrency-cap")
    [queued] = take_queued(env)
    assert json.loads(queued.body) == rerun_request()
    assert queued.delay == pytest.approx(120, abs=2)
    assert ledger_item(env, "RETRAIN#manual#ticket-42") is None  # nothing claimed while waiting
    assert len(executions(env)) == 1

    set_execution_status(data_run.execution_arn, "Succeeded")
    trigger.begin_invocation()
    started = trigger.handle_sqs_body(queued.body, deferrals=1)
    assert (started.kind, started.dataset_version) == (Kind.STARTED, "sales/v1")
    assert len(executions(env)) == 2


def test_rerun_waits_for_a_live_claim_and_rejects_an_interrupted_start(env: Env) -> None:
    trigger = make_trigger(env, lease_seconds=180)
    land_version(env, prefix="landing/sales/v1/")
    claim = trigger.ledger.claim(
        "VERSION#sales/v1", None, generation=1, attributes={"trigger": "data"}
    )
    assert claim is not None  # a data run is being started right now
    waiting = trigger.handle_direct(rerun_request())
    assert (waiting.kind, waiting.reason) == (Kind.DEFERRED, "claimed-by-another-worker")
    assert len(take_queued(env)) == 1
    env.clock.advance(181)
    outcome = trigger.handle_direct(rerun_request())
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "version-start-interrupted")
    assert "mlops start sales/v1" in outcome.message
    assert executions(env) == []


def test_direct_rerun_hands_aws_errors_to_the_queue(env: Env) -> None:
    handle(make_trigger(env), land_version(env, prefix="landing/sales/v1/")[1])
    sagemaker = SESSION.client("sagemaker")
    trigger = make_trigger(env, sagemaker=sagemaker)
    with Stubber(sagemaker) as stub:
        stub.add_client_error("list_pipeline_executions", "ThrottlingException", "slow down")
        outcome = trigger.handle_direct(rerun_request())
    assert (outcome.kind, outcome.reason) == (Kind.DEFERRED, "handed-to-queue")
    [queued] = take_queued(env)
    assert json.loads(queued.body) == rerun_request()
    assert ledger_item(env, "RETRAIN#manual#ticket-42") is None


# ---- the Lambda handler --------------------------------------------------------------------------


def test_handler_reports_only_failed_records_for_redelivery(
    lambda_env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    _, marker = land_version(lambda_env)
    failing = object_event("landing/sales/v9/_SUCCESS", size=0)
    trigger = handler.get_trigger()
    with Stubber(trigger.s3) as stub:
        stub.add_client_error("list_object_versions", "AccessDenied", "Access Denied", 403)
        response = handler.lambda_handler(
            sqs_event("not json", json.dumps(failing)), LambdaContext()
        )
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    response = handler.lambda_handler(sqs_event(json.dumps(marker)), LambdaContext())
    assert response == {"batchItemFailures": []}
    assert len(executions(lambda_env)) == 1
    emitted = {name: doc for doc in metrics_out(capsys) for name in doc if name[0].isupper()}
    assert (emitted["RejectedEvents"]["Reason"], emitted["RejectedEvents"]["RejectedEvents"]) == (
        "malformed-json",
        [1.0],
    )
    assert emitted["ExecutionsStarted"]["Trigger"] == "data"
    assert emitted["FailedRecords"]["FailedRecords"] == [1.0]


def test_persistent_aws_errors_end_in_the_dlq_and_bad_events_do_not(lambda_env: Env) -> None:
    _, marker = land_version(lambda_env)
    lambda_env.sqs.send_message(QueueUrl=lambda_env.queue_url, MessageBody=json.dumps(marker))
    lambda_env.sqs.send_message(QueueUrl=lambda_env.queue_url, MessageBody="{broken")
    trigger = handler.get_trigger()
    with Stubber(trigger.sagemaker) as stub:
        for _ in range(MAX_RECEIVE_COUNT):
            stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": []})
            stub.add_client_error(
                "start_pipeline_execution", "AccessDeniedException", "not authorized", 400
            )
        run_event_source_mapping(lambda_env, rounds=MAX_RECEIVE_COUNT + 1)
    dead = lambda_env.sqs.receive_message(QueueUrl=lambda_env.dlq_url, MaxNumberOfMessages=10)
    assert [json.loads(m["Body"]) for m in dead["Messages"]] == [marker]
    assert executions(lambda_env) == []


def test_handler_runs_direct_scheduler_invocations(lambda_env: Env) -> None:
    _, marker = land_version(lambda_env)
    handler.lambda_handler(sqs_event(json.dumps(marker)), LambdaContext())
    result = handler.lambda_handler(retrain_request(), LambdaContext())
    assert (result["outcome"], result["trigger"]) == ("started", "schedule")
    assert len(executions(lambda_env)) == 2


def test_handler_runs_direct_rerun_requests(lambda_env: Env) -> None:
    _, marker = land_version(lambda_env, prefix="landing/sales/v1/")
    handler.lambda_handler(sqs_event(json.dumps(marker)), LambdaContext())
    result = handler.lambda_handler(rerun_request(), LambdaContext())
    assert (result["outcome"], result["trigger"], result["dataset_version"]) == (
        "started",
        "manual-version",
        "sales/v1",
    )
    assert result["rerun_of"] == stored(lambda_env, "VERSION#sales/v1")["execution_arn"]
    assert len(executions(lambda_env)) == 2


def test_direct_invocation_hands_aws_errors_to_the_queue(
    lambda_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAIN_COOLDOWN_SECONDS", "0")
    _, marker = land_version(lambda_env)
    handler.lambda_handler(sqs_event(json.dumps(marker)), LambdaContext())
    trigger = handler.get_trigger()
    with Stubber(trigger.sagemaker) as stub:
        stub.add_client_error("list_pipeline_executions", "ThrottlingException", "slow down")
        result = handler.lambda_handler(alarm_event(), LambdaContext())
    assert (result["outcome"], result["reason"]) == ("deferred", "handed-to-queue")
    [queued] = take_queued(lambda_env)
    assert json.loads(queued.body) == alarm_event()


# ---- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"PIPELINE_NAME": ""}, "PIPELINE_NAME is required"),
        ({"COMPLETION_MODE": "eventually"}, "COMPLETION_MODE='eventually' is invalid"),
        ({"MAX_CONCURRENT_EXECUTIONS": "0"}, "MAX_CONCURRENT_EXECUTIONS='0' is invalid"),
        ({"QUIET_PERIOD_SECONDS": "soon"}, "QUIET_PERIOD_SECONDS='soon' is invalid"),
        ({"ALLOW_REUPLOAD": "yes"}, "ALLOW_REUPLOAD='yes' is invalid"),
        ({"LANDING_PREFIX": "landing"}, "LANDING_PREFIX='landing' is invalid"),
        ({"DEFER_SECONDS": "901"}, r"DEFER_SECONDS='901' is invalid: expected an integer in \[1"),
        ({"MANIFEST_BUCKET": " "}, "MANIFEST_BUCKET is required"),
        ({"MANIFEST_PREFIX": "/manifests"}, "MANIFEST_PREFIX='/manifests' is invalid"),
    ],
)
def test_config_errors_name_the_variable_value_and_allowed_values(
    changes: dict[str, str], message: str
) -> None:
    environment = {"PIPELINE_NAME": PIPELINE, "LEDGER_TABLE": TABLE, "DATA_BUCKET": BUCKET,
                   "QUEUE_URL": "https://sqs/q", "MANIFEST_BUCKET": ARTIFACTS}  # fmt: skip
    environment |= changes
    with pytest.raises(trigger_module.ConfigError, match=message):
        trigger_module.TriggerConfig.from_env(environment)


def test_config_defaults() -> None:
    config = trigger_module.TriggerConfig.from_env(
        {
            "PIPELINE_NAME": PIPELINE,
            "LEDGER_TABLE": TABLE,
            "DATA_BUCKET": BUCKET,
            "QUEUE_URL": "https://sqs/q",
            "MANIFEST_BUCKET": ARTIFACTS,
        }  # fmt: skip
    )
    assert (config.landing_prefix, config.completion_mode, config.allow_reupload) == (
        "landing/",
        "marker",
        False,
    )
    assert (config.manifest_bucket, config.manifest_prefix) == (ARTIFACTS, "dataset-manifests/")


def test_display_names_fit_the_sagemaker_pattern() -> None:
    name = trigger_module.display_name("data", "ventes été", "2024 06+01" * 20, "g1")
    assert len(name) <= 82
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in name)
    assert name[0].isalnum() and name[-1].isalnum()


def test_handler_carries_the_deferral_count_across_requeues(
    lambda_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_EXECUTIONS", "1")
    _, first = land_version(lambda_env, prefix="landing/sales/v1/")
    handler.lambda_handler(sqs_event(json.dumps(first)), LambdaContext())
    set_execution_status(executions(lambda_env)[0]["PipelineExecutionArn"], "Executing")
    _, second = land_version(lambda_env, prefix="landing/sales/v2/")
    event = sqs_event(json.dumps(second))
    event["Records"][0]["messageAttributes"] = {
        trigger_module.DEFERRALS_ATTRIBUTE: {"stringValue": "2", "dataType": "Number"}
    }
    assert handler.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    [queued] = take_queued(lambda_env)
    assert queued.attributes == {trigger_module.DEFERRALS_ATTRIBUTE: "3"}
    assert json.loads(queued.body) == second
