"""The promotion receiver in a target account (moto, two accounts): an approval of the previous
environment's group arrives as AWS documents the "SageMaker Model Package State Change" event;
the package is copied only when its artifact's bytes match the SHA-256 it was registered with,
registered PendingManualApproval with its lineage, once; stale, foreign and duplicate events
copy nothing. Every request goes through botocore, so its shape is checked against the
service model."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.lambda_loader import lambda_context, load_lambda_module

receiver = load_lambda_module("receive_model", "model_receiver")
object_copy = load_lambda_module("receive_model", "object_copy")
served_model = load_lambda_module("start_drift_job", "drift_job_starter.served_model")

REGION = "eu-west-1"
SOURCE_ACCOUNT = "111111111111"
SOURCE_GROUP = "mlops-loop-dev-models"
GROUP = "mlops-loop-staging-models"
SOURCE_BUCKET = "mlops-loop-dev-artifacts"
BUCKET = "mlops-loop-staging-artifacts"
MODEL_KEY = "pipelines/mlops-loop-dev-training/training/pipelines-abc123-Train/output/model.tar.gz"
BASELINE = "pipelines/mlops-loop-dev-training/executions/exec-1/Prepare/baseline/"
EXECUTION = (
    f"arn:aws:sagemaker:{REGION}:{SOURCE_ACCOUNT}:pipeline/mlops-loop-dev-training/execution/exec-1"
)
ARTIFACT = b"model bytes " * 1000
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
ENVIRONMENT = {
    "SOURCE_ACCOUNT": SOURCE_ACCOUNT,
    "SOURCE_REGION": REGION,
    "SOURCE_MODEL_PACKAGE_GROUP_NAME": SOURCE_GROUP,
    "SOURCE_PIPELINE_PREFIX": "pipelines/mlops-loop-dev-training/",
    "MODEL_PACKAGE_GROUP_NAME": GROUP,
    "ARTIFACT_BUCKET": BUCKET,
    "PROMOTED_PREFIX": "pipelines/mlops-loop-staging-training/training/promoted/",
    "TOPIC_ARN": f"arn:aws:sns:{REGION}:123456789012:mlops-loop-staging-notifications",
}
CONFIG = receiver.ReceiverConfig.from_env(ENVIRONMENT)
PROMOTED = f"{ENVIRONMENT['PROMOTED_PREFIX']}{SOURCE_ACCOUNT}/"
SHA = hashlib.sha256(ARTIFACT).hexdigest()


def state_change(
    arn: str, status: str = "Approved", account: str = SOURCE_ACCOUNT
) -> dict[str, Any]:
    """Shaped as AWS documents the event (envelope, then DescribeModelPackage-like detail)."""
    return {
        "version": "0",
        "id": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": account,
        "time": "2026-12-07T10:00:00Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": SOURCE_GROUP,
            "ModelPackageVersion": int(arn.rsplit("/", 1)[1]),
            "ModelPackageArn": arn,
            "ModelPackageName": SOURCE_GROUP,
            "CreationTime": 1796637600000,
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": status,
        },
    }


@pytest.fixture()
def world(aws_credentials: None) -> Iterator[SimpleNamespace]:
    with mock_aws():
        credentials = boto3.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{SOURCE_ACCOUNT}:role/mlops-loop-dev-admin",
            RoleSessionName="source",
        )["Credentials"]
        source = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=REGION,
        )
        world = SimpleNamespace(
            source_sagemaker=source.client("sagemaker"),
            source_s3=source.client("s3"),
            sagemaker=boto3.client("sagemaker", region_name=REGION),
            s3=boto3.client("s3", region_name=REGION),
            sns=boto3.client("sns", region_name=REGION),
            sqs=boto3.client("sqs", region_name=REGION),
        )
        topic = world.sns.create_topic(Name="mlops-loop-staging-notifications")["TopicArn"]
        assert topic == ENVIRONMENT["TOPIC_ARN"]
        world.inbox = world.sqs.create_queue(QueueName="inbox")["QueueUrl"]
        inbox_arn = world.sqs.get_queue_attributes(
            QueueUrl=world.inbox, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        world.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
        location = {"LocationConstraint": REGION}
        world.source_s3.create_bucket(Bucket=SOURCE_BUCKET, CreateBucketConfiguration=location)
        world.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration=location)
        world.source_s3.put_object(Bucket=SOURCE_BUCKET, Key=MODEL_KEY, Body=ARTIFACT)
        for name in ("baseline.csv", "statistics.json"):
            world.source_s3.put_object(
                Bucket=SOURCE_BUCKET, Key=BASELINE + name, Body=name.encode()
            )
        world.source_sagemaker.create_model_package_group(ModelPackageGroupName=SOURCE_GROUP)
        world.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        yield world


EVALUATION = (
    "pipelines/mlops-loop-dev-training/executions/exec-1/Evaluate/evaluation/evaluation.json"
)
STATISTICS = "pipelines/mlops-loop-dev-training/executions/exec-1/Baseline/results/statistics.json"


def register(
    world: SimpleNamespace, sha256: str | None = None, reports: bool = False, **metadata: str
) -> str:
    """A package as the source pipeline's Register step leaves it, approved (created so: moto's
    UpdateModelPackage drops the metadata a real one keeps)."""
    digest = sha256 or hashlib.sha256(ARTIFACT).hexdigest()
    extra: dict[str, Any] = {}
    if reports:  # as Register records them: files of the sending pipeline's executions
        for key in (EVALUATION, STATISTICS):
            world.source_s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=key.encode())
        extra = {
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"s3://{SOURCE_BUCKET}/{EVALUATION}",
                    }
                }
            },
            "DriftCheckBaselines": {
                "ModelDataQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"s3://{SOURCE_BUCKET}/{STATISTICS}",
                    }
                }
            },
        }
    arn: str = world.source_sagemaker.create_model_package(
        **extra,
        ModelPackageGroupName=SOURCE_GROUP,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{SOURCE_BUCKET}/{MODEL_KEY}"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Approved",
        MetadataProperties={"GeneratedBy": EXECUTION, "CommitId": "abc1234"},
        CustomerMetadataProperties={
            "model_artifact_sha256": digest,
            "dataset_version": "transactions/2026-12-01",
            "data_digest": "d" * 64,
            "pipeline_execution_id": "exec-1",
            "baseline_s3_uri": f"s3://{SOURCE_BUCKET}/{BASELINE}",
            **metadata,
        },
    )["ModelPackageArn"]
    return arn


def receive(world: SimpleNamespace, event: Any) -> Any:
    return receiver.receive(
        event,
        source_sagemaker=world.source_sagemaker,
        source_s3=world.source_s3,
        sagemaker=world.sagemaker,
        s3=world.s3,
        sns=world.sns,
        config=CONFIG,
    )


def copies(world: SimpleNamespace) -> list[dict[str, Any]]:
    summaries = world.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)[
        "ModelPackageSummaryList"
    ]
    return [
        world.sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"])
        for s in summaries
    ]


def promoted_objects(world: SimpleNamespace) -> dict[str, bytes]:
    listed = world.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {
        o["Key"]: world.s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed
    }


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


def evidently_shaped(world: SimpleNamespace, files: int = 3) -> str:
    """A package as Register leaves it with the default (evidently) engine: no baseline_s3_uri;
    the data-quality statistics of DriftCheckBaselines lie in Prepare's baseline folder, beside
    baseline.csv (pipeline_code/definition/registration.py)."""
    statistics = f"s3://{SOURCE_BUCKET}/{BASELINE}statistics.json"
    for number in range(files):
        world.source_s3.put_object(
            Bucket=SOURCE_BUCKET, Key=f"{BASELINE}part-{number}.csv", Body=b"%d" % number
        )
    metadata = {
        "model_artifact_sha256": SHA,
        "dataset_version": "transactions/2026-12-01",
        "pipeline_execution_id": "exec-1",
    }
    arn: str = world.source_sagemaker.create_model_package(
        ModelPackageGroupName=SOURCE_GROUP,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{SOURCE_BUCKET}/{MODEL_KEY}"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties=metadata,
        DriftCheckBaselines={
            "ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": statistics}
            }
        },
    )["ModelPackageArn"]
    return arn


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


class Forbidden:
    """A target S3 client as the receiver's role sees its own bucket: HeadObject of a missing
    key answers 403 (S3 answers 404 only to a caller allowed s3:ListBucket on the bucket; the
    role's ListBucket carries an s3:prefix condition a HEAD request never has)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def head_object(self, **_: Any) -> Any:
        raise ClientError(
            {
                "Error": {"Code": "403", "Message": "Forbidden"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            },
            "HeadObject",
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


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


class Existing(Forbidden):
    """The target key holds an object: S3 refuses the conditional completion as it documents
    (CompleteMultipartUpload IfNoneMatch: "412 Precondition Failed")."""

    aborted: list[str] = []

    def complete_multipart_upload(self, **request: Any) -> Any:
        assert request["IfNoneMatch"] == "*"
        raise ClientError(
            {
                "Error": {
                    "Code": "PreconditionFailed",
                    "Message": "At least one of the pre-conditions you specified did not hold",
                },
                "ResponseMetadata": {"HTTPStatusCode": 412},
            },
            "CompleteMultipartUpload",
        )

    def abort_multipart_upload(self, **request: Any) -> Any:
        self.aborted.append(request["UploadId"])
        return self._s3.abort_multipart_upload(**request)


def test_a_412_on_completion_means_already_copied(world: SimpleNamespace) -> None:
    s3 = Existing(world.s3)
    digest = object_copy.copy_object(
        world.source_s3, s3, source=(SOURCE_BUCKET, MODEL_KEY), target=(BUCKET, "k"), sha256=SHA
    )
    assert digest == SHA and len(s3.aborted) == 1
    assert world.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def notifications(world: SimpleNamespace) -> list[dict[str, Any]]:
    messages = world.sqs.receive_message(QueueUrl=world.inbox, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


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
