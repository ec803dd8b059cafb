"""The promotion receiver's copies (#19): the whole drift baseline folder the target's drift job
reads, also for evidently-shaped packages; no HeadObject in its own bucket (403) and a 412 on
a conditional completion counts as copied; a recreated source group's packages are new; only
what a package names is read; a rejection upstream alerts and changes nothing; the source's
approval is kept as lineage (moto world: tests/lambdas/promotion_world.py)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from types import SimpleNamespace

import pytest

from tests.lambda_loader import load_lambda_module
from tests.lambdas.promotion_world import (
    ARTIFACT,
    BUCKET,
    CONFIG,
    IMAGE,
    MODEL_KEY,
    PROMOTED,
    SHA,
    SOURCE_ACCOUNT,
    SOURCE_BUCKET,
    Existing,
    Forbidden,
    copies,
    evidently_shaped,
    notifications,
    object_copy,
    promoted_objects,
    receive,
    receiver,
    register,
    state_change,
    world,
)

served_model = load_lambda_module("start_drift_job", "drift_job_starter.served_model")
__all__ = ["world"]


def test_an_evidently_package_brings_its_whole_baseline_folder_for_the_targets_drift_job(
    world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails before #19 B1: only statistics.json was copied, so the target's drift job found no
    baseline.csv. The listing is paged (one key a page here) and every page is copied."""
    monkeypatch.setattr(object_copy, "LIST_PAGE_SIZE", 1)
    arn = evidently_shaped(world)
    assert receive(world, state_change(arn)).action == "received"
    (copy,) = copies(world)
    folder = served_model.baseline_uri(copy)  # the target's drift job, unchanged
    assert folder.startswith(f"s3://{BUCKET}/{PROMOTED}")
    objects = promoted_objects(world)
    key = folder[len(f"s3://{BUCKET}/") :]
    assert objects[key + "baseline.csv"] == b"baseline.csv"
    assert objects[key + "statistics.json"] == b"statistics.json"
    assert [objects[f"{key}part-{n}.csv"] for n in range(3)] == [b"0", b"1", b"2"]


def test_the_copy_needs_no_head_object_in_its_own_bucket(world: SimpleNamespace) -> None:
    """Fails before #19 B2 (a 403 from HeadObject was raised: retried, then dead-lettered)."""
    arn = register(world)
    outcome = receiver.receive(
        state_change(arn),
        source_sagemaker=world.source_sagemaker,
        source_s3=world.source_s3,
        sagemaker=world.sagemaker,
        s3=Forbidden(world.s3),
        sns=world.sns,
        config=CONFIG,
    )
    assert outcome.action == "received", outcome.message


def test_an_object_already_copied_counts_as_copied_and_leaves_no_upload(
    world: SimpleNamespace,
) -> None:
    """A redelivery after the artifact was written: S3 refuses the conditional completion with
    412 PreconditionFailed, which is "already there"; the part upload is aborted."""
    target = (BUCKET, f"{PROMOTED}{SHA}/model.tar.gz")
    for _ in range(2):
        digest = object_copy.copy_object(
            world.source_s3, world.s3, source=(SOURCE_BUCKET, MODEL_KEY), target=target, sha256=SHA
        )
        assert digest == SHA
    assert world.s3.get_object(Bucket=BUCKET, Key=target[1])["Body"].read() == ARTIFACT
    assert world.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_a_package_of_a_recreated_group_is_copied_though_its_arn_was_seen(
    world: SimpleNamespace,
) -> None:
    """Fails before #19 S2: a group recreated in the sending account numbers its versions from 1
    again; the new package (same ARN, new CreationTime, new artifact) was taken for the old."""
    arn = register(world)
    assert receive(world, state_change(arn)).action == "received"
    new_artifact = b"retrained model " * 500
    new_key = MODEL_KEY.replace("abc123", "def456")
    world.source_s3.put_object(Bucket=SOURCE_BUCKET, Key=new_key, Body=new_artifact)
    old = world.source_sagemaker.describe_model_package(ModelPackageName=arn)
    recreated = {
        **old,
        "CreationTime": old["CreationTime"] + timedelta(days=3),
        "InferenceSpecification": {
            **old["InferenceSpecification"],
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{SOURCE_BUCKET}/{new_key}"}],
        },
        "CustomerMetadataProperties": {
            **old["CustomerMetadataProperties"],
            "model_artifact_sha256": hashlib.sha256(new_artifact).hexdigest(),
        },
    }
    source = SimpleNamespace(describe_model_package=lambda **_: recreated)
    outcome = receiver.receive(
        state_change(arn),
        source_sagemaker=source,
        source_s3=world.source_s3,
        sagemaker=world.sagemaker,
        s3=world.s3,
        sns=world.sns,
        config=CONFIG,
    )
    assert outcome.action == "received", outcome.message
    artifacts = sorted(
        c["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] for c in copies(world)
    )
    digest = hashlib.sha256(new_artifact).hexdigest()
    assert artifacts == sorted(
        [
            f"s3://{BUCKET}/{PROMOTED}{SHA}/model.tar.gz",
            f"s3://{BUCKET}/{PROMOTED}{digest}/model.tar.gz",
        ]
    )
    again = receiver.receive(
        state_change(arn),
        source_sagemaker=source,
        source_s3=world.source_s3,
        sagemaker=world.sagemaker,
        s3=world.s3,
        sns=world.sns,
        config=CONFIG,
    )
    assert (again.action, again.reason) == ("ignored", "AlreadyReceived")


def test_a_split_or_checkpoint_of_the_sending_pipeline_is_never_read() -> None:
    prefix = CONFIG.source_pipeline_prefix
    for key in (
        "executions/exec-1/Prepare/train/part-0.csv",
        "executions/exec-1/Prepare/test/test.csv",
        "checkpoints/job/xgboost-checkpoint.0",
        "executions/exec-1/Prepare/baseline-but-not/x",
    ):
        assert not object_copy.readable_key(prefix + key, prefix), key
    for key in (
        "training/job/output/model.tar.gz",
        "executions/exec-1/Evaluate/evaluation/evaluation.json",
        "executions/exec-1/Prepare/baseline/baseline.csv",
        "executions/exec-1/Baseline/results/constraints.json",
    ):
        assert object_copy.readable_key(prefix + key, prefix), key


def test_a_412_on_completion_means_already_copied(world: SimpleNamespace) -> None:
    s3 = Existing(world.s3)
    digest = object_copy.copy_object(
        world.source_s3, s3, source=(SOURCE_BUCKET, MODEL_KEY), target=(BUCKET, "k"), sha256=SHA
    )
    assert digest == SHA and len(s3.aborted) == 1
    assert world.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_a_rejection_upstream_of_a_copied_package_alerts_and_changes_nothing(
    world: SimpleNamespace,
) -> None:
    """#19 S4: a rejection or rollback in the sending environment reaches the target's
    notification topic, naming the copy; the copy stays as it was (the receiver approves and
    rejects nothing)."""
    arn = register(world)
    received = receive(world, state_change(arn))
    world.source_sagemaker.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Rejected", ApprovalDescription="rolled back"
    )
    outcome = receive(world, state_change(arn, status="Rejected"))
    assert (outcome.action, outcome.reason) == ("alerted", "SourceRejected")
    assert outcome.model_package_arn == received.model_package_arn
    (notification,) = notifications(world)
    assert received.model_package_arn in notification["Message"]
    assert arn in notification["Message"] and "PendingManualApproval" in notification["Message"]
    (copy,) = copies(world)
    assert copy["ModelApprovalStatus"] == "PendingManualApproval"


def test_a_rejection_of_a_package_never_copied_or_approved_again_is_ignored(
    world: SimpleNamespace,
) -> None:
    arn = register(world)
    world.source_sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    outcome = receive(world, state_change(arn, status="Rejected"))
    assert (outcome.action, outcome.reason) == ("ignored", "NotReceived")
    world.source_sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    stale = receive(world, state_change(arn, status="Rejected"))
    assert (stale.action, stale.reason) == ("ignored", "StaleEvent")
    assert notifications(world) == [] and copies(world) == []


def test_the_copy_records_who_approved_the_source_and_why(world: SimpleNamespace) -> None:
    """#19 N3, from DescribeModelPackage's ApprovalDescription and LastModifiedBy."""
    arn = register(world)
    described = world.source_sagemaker.describe_model_package(ModelPackageName=arn)
    approver = f"arn:aws:sts::{SOURCE_ACCOUNT}:assumed-role/ml-lead/alice"
    described = {
        **described,
        "ApprovalDescription": "AUC 0.91, reviewed " + "x" * 300,
        "LastModifiedBy": {"IamIdentity": {"Arn": approver, "PrincipalId": "AROA:alice"}},
    }
    outcome = receiver.receive(
        state_change(arn),
        source_sagemaker=SimpleNamespace(describe_model_package=lambda **_: described),
        source_s3=world.source_s3,
        sagemaker=world.sagemaker,
        s3=world.s3,
        sns=world.sns,
        config=CONFIG,
    )
    assert outcome.action == "received", outcome.message
    (copy,) = copies(world)
    metadata = copy["CustomerMetadataProperties"]
    assert metadata["source_approved_by"] == approver
    assert metadata["source_approval_description"].startswith("AUC 0.91, reviewed ")
    assert len(metadata["source_approval_description"]) == 256
