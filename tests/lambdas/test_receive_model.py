"""The promotion receiver in a target account (moto, two accounts): an approval of the previous
environment's group arrives as AWS documents the "SageMaker Model Package State Change" event;
the package is copied only when its artifact's bytes match the SHA-256 it was registered with,
registered PendingManualApproval with its lineage, once; stale, foreign and duplicate events
copy nothing. Every request goes through botocore, so its shape is checked against the
service model (tests/lambdas/promotion_world.py)."""

from __future__ import annotations

import hashlib
import io
import json
from types import SimpleNamespace
from typing import Any

import pytest

from tests.lambda_loader import lambda_context, load_lambda_module
from tests.lambdas.promotion_world import (
    ARTIFACT,
    BUCKET,
    CONFIG,
    ENVIRONMENT,
    EVALUATION,
    EXECUTION,
    GROUP,
    IMAGE,
    PROMOTED,
    REGION,
    SHA,
    SOURCE_ACCOUNT,
    SOURCE_BUCKET,
    SOURCE_GROUP,
    copies,
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


def test_an_approved_package_arrives_pending_with_its_verified_artifact_and_lineage(
    world: SimpleNamespace,
) -> None:
    arn = register(world)
    outcome = receive(world, state_change(arn))
    assert outcome.action == "received", outcome.message
    (copy,) = copies(world)
    assert copy["ModelPackageArn"] == outcome.model_package_arn
    assert copy["ModelApprovalStatus"] == "PendingManualApproval"  # approval stays ours
    key = f"{PROMOTED}{SHA}/model.tar.gz"  # addressed by content
    (container,) = copy["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == f"s3://{BUCKET}/{key}"
    assert container["Image"] == IMAGE
    objects = promoted_objects(world)
    assert objects[key] == ARTIFACT
    metadata = copy["CustomerMetadataProperties"]
    # lineage: the training account, execution, dataset version and data digest
    assert metadata["training_account"] == SOURCE_ACCOUNT
    assert metadata["promoted_from"] == arn
    assert metadata["promoted_from_account"] == SOURCE_ACCOUNT
    assert metadata["dataset_version"] == "transactions/2026-12-01"
    assert metadata["data_digest"] == "d" * 64
    assert metadata["pipeline_execution_id"] == "exec-1"
    assert copy["MetadataProperties"]["GeneratedBy"] == EXECUTION
    # the deployer verifies the copy against the same digest
    assert metadata["model_artifact_sha256"] == hashlib.sha256(objects[key]).hexdigest()
    # the drift baseline now lives in this account, where the target's drift job looks
    folder = served_model.baseline_uri(copy)
    assert folder == metadata["baseline_s3_uri"]
    assert folder.startswith(f"s3://{BUCKET}/{PROMOTED}{SHA}/") and folder.endswith("/baseline/")
    assert objects[folder[len(f"s3://{BUCKET}/") :] + "baseline.csv"] == b"baseline.csv"


def test_a_second_hop_keeps_the_training_account(world: SimpleNamespace) -> None:
    arn = register(world, training_account="999999999999")
    assert receive(world, state_change(arn)).action == "received"
    (copy,) = copies(world)
    assert copy["CustomerMetadataProperties"]["training_account"] == "999999999999"
    assert copy["CustomerMetadataProperties"]["promoted_from_account"] == SOURCE_ACCOUNT


def test_an_artifact_changed_after_registration_is_refused_and_leaves_nothing(
    world: SimpleNamespace,
) -> None:
    arn = register(world, sha256=hashlib.sha256(b"what was registered").hexdigest())
    outcome = receive(world, state_change(arn))
    assert (outcome.action, outcome.reason) == ("refused", "ArtifactIntegrity")
    assert "not copied" in outcome.message
    assert copies(world) == []
    assert promoted_objects(world) == {}
    assert world.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_a_duplicate_event_copies_once(world: SimpleNamespace) -> None:
    arn = register(world)
    assert receive(world, state_change(arn)).action == "received"
    again = receive(world, state_change(arn))
    assert (again.action, again.reason) == ("ignored", "AlreadyReceived")
    assert len(copies(world)) == 1


def test_a_package_rejected_since_the_event_is_not_copied(world: SimpleNamespace) -> None:
    arn = register(world)
    world.source_sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    outcome = receive(world, state_change(arn))
    assert (outcome.action, outcome.reason) == ("ignored", "StaleEvent")
    assert copies(world) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"account": "444444444444"}, "ForeignAccount"),
        ({"detail": {"ModelPackageGroupName": "mlops-loop-qa-models"}}, "ForeignGroup"),
        ({"detail": {"ModelApprovalStatus": "PendingManualApproval"}}, "NotApproved"),
        ({"source": "mlops.serving"}, "UnsupportedEvent"),
        ({"detail": None}, "MalformedEvent"),
        (
            {
                "detail": {
                    "ModelPackageArn": (
                        f"arn:aws:sagemaker:{REGION}:444444444444:model-package/{SOURCE_GROUP}/1"
                    )
                }
            },
            "MalformedEvent",
        ),
    ],
)
def test_foreign_and_malformed_events_copy_nothing(
    world: SimpleNamespace, change: dict[str, Any], reason: str
) -> None:
    arn = register(world)
    event = state_change(arn)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(event.get(key), dict):
            event[key] = {**event[key], **value}
        else:
            event[key] = value
    outcome = receive(world, event)
    assert (outcome.action, outcome.reason) == ("ignored", reason)
    assert copies(world) == []


def test_a_package_without_a_recorded_digest_is_refused(world: SimpleNamespace) -> None:
    arn = register(world, sha256="not-a-digest")
    outcome = receive(world, state_change(arn))
    assert outcome.action == "refused"
    assert copies(world) == [] and promoted_objects(world) == {}


def test_the_handler_fails_the_record_of_a_refused_package(
    world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    handler = load_lambda_module("receive_model")
    monkeypatch.setattr(
        handler,
        "clients",
        {
            f"sagemaker@{REGION}": world.source_sagemaker,
            f"s3@{REGION}": world.source_s3,
            "sagemaker@here": world.sagemaker,
            "s3@here": world.s3,
            "sns@here": world.sns,
        },
    )
    good = register(world)
    bad = register(world, sha256="0" * 64)
    records = [
        {
            "messageId": f"m{i}",
            "receiptHandle": "r",
            "body": json.dumps(state_change(arn)),
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:222222222222:q",
            "awsRegion": REGION,
        }
        for i, arn in enumerate((good, bad))
    ]
    context = lambda_context("receiver", REGION, "222222222222")
    result = handler.lambda_handler({"Records": records}, context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert len(copies(world)) == 1
    assert "RefusedPackages" in capsys.readouterr().out


def test_bad_configuration_names_the_variable() -> None:
    with pytest.raises(receiver.ConfigError, match="SOURCE_ACCOUNT='1234' is not allowed"):
        receiver.ReceiverConfig.from_env({**ENVIRONMENT, "SOURCE_ACCOUNT": "1234"})


def test_copying_streams_in_parts_and_completes_only_the_verified_bytes(
    world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(object_copy, "PART_BYTES", 5 * 1024 * 1024)
    big = bytes(range(256)) * (12 * 1024 * 1024 // 256 + 7)  # three parts, the last short
    world.source_s3.upload_fileobj(
        io.BytesIO(big), SOURCE_BUCKET, "pipelines/mlops-loop-dev-training/big"
    )
    object_copy.copy_object(
        world.source_s3,
        world.s3,
        source=(SOURCE_BUCKET, "pipelines/mlops-loop-dev-training/big"),
        target=(BUCKET, "copied"),
        sha256=hashlib.sha256(big).hexdigest(),
    )
    assert world.s3.get_object(Bucket=BUCKET, Key="copied")["Body"].read() == big


def test_the_copy_passes_the_target_deployers_own_checks(world: SimpleNamespace) -> None:
    """Once approved in the target, the copy is what the deploy handler there deploys: a
    package of its group whose artifact lies under its models prefix and hashes to the
    recorded digest (the deployer's functions, unchanged)."""
    deployer = load_lambda_module("deploy_model", "model_deployer")
    arn = register(world)
    assert receive(world, state_change(arn)).action == "received"
    (copy,) = copies(world)
    approved = {**copy, "ModelApprovalStatus": "Approved"}
    assert deployer.deployable_refusal(approved, GROUP, require_promotion=False) is None
    digest = deployer.verify_model_artifact(
        world.s3, approved, bucket=BUCKET, prefix="pipelines/mlops-loop-staging-training/training/"
    )
    assert digest == hashlib.sha256(ARTIFACT).hexdigest()
    # prod deploys only once promoted, there as anywhere
    assert deployer.deployable_refusal(approved, GROUP, require_promotion=True)[0] == "NotPromoted"


def test_metrics_and_baselines_are_copied_and_named_in_this_account(
    world: SimpleNamespace,
) -> None:
    arn = register(world, reports=True)
    assert receive(world, state_change(arn)).action == "received"
    (copy,) = copies(world)
    evaluation = copy["ModelMetrics"]["ModelQuality"]["Statistics"]
    statistics = copy["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]
    assert evaluation["ContentType"] == "application/json"
    folder = evaluation["S3Uri"][: -len("executions/exec-1/Evaluate/evaluation/evaluation.json")]
    assert folder.startswith(f"s3://{BUCKET}/{PROMOTED}{SHA}/") and folder.endswith("/files/")
    assert statistics["S3Uri"] == f"{folder}executions/exec-1/Baseline/results/statistics.json"
    objects = promoted_objects(world)
    key = evaluation["S3Uri"][len(f"s3://{BUCKET}/") :]
    assert objects[key] == EVALUATION.encode()
    assert SOURCE_BUCKET not in json.dumps(copy, default=str)  # nothing names dev's bucket


def test_a_report_outside_the_sending_pipeline_is_refused(world: SimpleNamespace) -> None:
    arn = register(world, reports=True)
    package = world.source_sagemaker.describe_model_package(ModelPackageName=arn)
    package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] = "s3://elsewhere/x.json"
    with pytest.raises(receiver.IntegrityError, match="s3://elsewhere/x.json is not one of"):
        object_copy.copy_report_files(
            world.source_s3,
            world.s3,
            package["ModelMetrics"],
            CONFIG.source_pipeline_prefix,
            (BUCKET, "promoted/files/"),
        )
