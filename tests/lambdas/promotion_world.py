"""The world the promotion receiver's tests share (moto, two accounts): the sending account's
bucket, group and packages as its pipeline's Register step leaves them (a model-monitor-shaped
package with `baseline_s3_uri`, or an evidently-shaped one without), this environment's bucket,
group and notification topic (read back through an SQS subscription), and events shaped as AWS
documents the "SageMaker Model Package State Change" event. Every request goes through
botocore, so its shape is checked against the service model."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.lambda_loader import load_lambda_module

receiver = load_lambda_module("receive_model", "model_receiver")
object_copy = load_lambda_module("receive_model", "object_copy")

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


def notifications(world: SimpleNamespace) -> list[dict[str, Any]]:
    messages = world.sqs.receive_message(QueueUrl=world.inbox, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]
