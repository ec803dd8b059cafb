"""The sharded Prepare's parts and EvaluateShards' predictions (issue #22): an extra copy of
the version (and of the test split's scores) per execution, written below
`pipelines/<training pipeline>/shard-parts/` so one lifecycle prefix rule of the artifact
bucket expires them, later than the step cache could hand them to a Prepare again; only the
processing job role may write there, and only where the pipeline shards (evaluated as IAM
does, `tests/policy_evaluation.py`)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_code.definition.contract import shard_parts_expiration_days
from tests.conftest import synthesized, variant_config
from tests.policy_evaluation import Request, decision, denied
from tests.test_model_write_once import artifact_bucket, statements, tags

pytestmark = pytest.mark.xdist_group("cdk")

SHARDED = '{"pipeline": {"processing_instance_count": 3, "cache_expire_after": "PT36H"}}'


def _templates(overrides: str) -> dict[str, dict[str, Any]]:
    return {role: t.to_json() for role, t in synthesized("dev", overrides).items()}


@pytest.fixture(scope="module")
def sharded() -> dict[str, dict[str, Any]]:
    return _templates(SHARDED)


@pytest.fixture(scope="module")
def single() -> dict[str, dict[str, Any]]:
    return _templates("{}")


def _rules(t: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    bucket = t["data"]["Resources"]["ArtifactBucket"]["Properties"]
    return bucket["LifecycleConfiguration"]["Rules"]


@pytest.mark.parametrize(
    ("duration", "days"),
    # the cache's lifetime rounded up to whole days, plus the day S3 may take to act
    [("P30D", 31), ("PT12H", 2), ("PT24H", 2), ("PT25H", 3), ("P1DT1H", 3), ("P1D", 2)],
)
def test_the_parts_outlive_the_step_cache(duration: str, days: int) -> None:
    assert shard_parts_expiration_days(duration) == days


@pytest.mark.parametrize("duration", ["P", "30D", "P1W", ""])
def test_a_duration_the_config_would_refuse_is_refused_here_too(duration: str) -> None:
    with pytest.raises(ValueError, match="cache_expire_after"):
        shard_parts_expiration_days(duration)


@pytest.mark.parametrize(("which", "days"), [("single", 31), ("sharded", 3)])
def test_the_artifact_bucket_expires_the_parts_prefix_only(
    which: str, days: int, request: pytest.FixtureRequest
) -> None:
    """Present whatever the instance count (parts of a run before it was lowered to 1 still
    expire); the prefix is the parts' alone: no other output of the pipeline is below it."""
    t = request.getfixturevalue(which)
    name = variant_config("dev").pipeline_name
    (rule,) = [r for r in _rules(t) if r.get("Id") == "expire-shard-parts"]
    assert rule["Prefix"] == f"pipelines/{name}/shard-parts/"
    assert _parts_key(PREDICTIONS).startswith(rule["Prefix"])  # EvaluateShards' too
    assert rule["ExpirationInDays"] == days  # PT36H: 2 days rounded up, plus 1
    assert rule["Status"] == "Enabled"
    # The versioned bucket keeps an expired part as a noncurrent version: gone a day later,
    # sooner than the bucket-wide rule's days (S3 honours the shorter of overlapping rules).
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    (wide,) = [r for r in _rules(t) if r.get("Id") == "expire-noncurrent-versions"]
    assert wide["NoncurrentVersionExpiration"]["NoncurrentDays"] > 1
    (markers,) = [r for r in _rules(t) if r.get("Id") == "remove-shard-parts-delete-markers"]
    assert markers == {
        "Id": "remove-shard-parts-delete-markers",
        "Prefix": rule["Prefix"],
        "ExpiredObjectDeleteMarker": True,
        "Status": "Enabled",
    }
    expiring = [r for r in _rules(t) if "ExpirationInDays" in r and "Prefix" in r]
    assert all(not r["Prefix"].startswith("pipelines/") for r in expiring if r is not rule)
    assert not f"pipelines/{name}/executions/".startswith(rule["Prefix"])
    assert not f"pipelines/{name}/training/".startswith(rule["Prefix"])


def _parts_key(
    written: str = "PrepareShards/parts/part-0a1b.parquet",
) -> str:
    name = variant_config("dev").pipeline_name
    return f"pipelines/{name}/shard-parts/e1/{written}"


#: What EvaluateShards writes (shared_steps.evaluate_shards_step), which Evaluate reads.
PREDICTIONS = "EvaluateShards/predictions/test-00000.csv.predictions.parquet"


def test_only_the_processing_job_role_of_a_sharded_pipeline_writes_the_parts(
    sharded: dict[str, dict[str, Any]], single: dict[str, dict[str, Any]]
) -> None:
    for key in (_parts_key(), _parts_key(PREDICTIONS)):
        _only_the_processing_job_role_writes(sharded, single, f"{artifact_bucket(sharded)}/{key}")


def _only_the_processing_job_role_writes(
    sharded: dict[str, dict[str, Any]], single: dict[str, dict[str, Any]], parts: str
) -> None:
    expected = [
        (sharded, "ProcessingJobRole", "s3:PutObject", "allow"),  # PrepareShards uploads
        (sharded, "ProcessingJobRole", "s3:GetObject", "allow"),  # Prepare merges
        (sharded, "ProcessingJobRole", "s3:DeleteObject", "implicit-deny"),
        (sharded, "TrainingJobRole", "s3:PutObject", "implicit-deny"),
        (sharded, "PipelinesRole", "s3:PutObject", "implicit-deny"),
        # one instance: nothing writes parts, so nothing may
        (single, "ProcessingJobRole", "s3:PutObject", "implicit-deny"),
    ]
    problems = [
        f"{kind}: {action}: {verdict}, expected {want}"
        for t, kind, action, want in expected
        for verdict in [decision(statements(t, kind), Request(action, parts, kind))]
        if verdict != want
    ]
    assert problems == []


def test_the_bucket_refuses_the_parts_prefix_to_anyone_but_the_job_roles(
    sharded: dict[str, dict[str, Any]],
) -> None:
    """The parts are Prepare's input: nobody else may plant rows there, whatever IAM says."""
    (policy,) = [
        r["Properties"]["PolicyDocument"]
        for r in sharded["data"]["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and r["Properties"]["Bucket"] == {"Ref": "ArtifactBucket"}
    ]
    account = variant_config("dev").account
    processing = (f"arn:aws:iam::{account}:role/P", tags(sharded, "ProcessingJobRole"))
    someone = (f"arn:aws:iam::{account}:role/Admin", {})
    for key in (_parts_key(), _parts_key(PREDICTIONS)):
        parts = f"<ArtifactBucket>/{key}"
        assert not denied(policy, Request("s3:PutObject", parts, *processing))
        assert denied(policy, Request("s3:PutObject", parts, *someone))
