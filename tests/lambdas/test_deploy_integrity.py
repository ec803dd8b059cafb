"""Model artifact integrity before deploy: the deployer streams ModelDataUrl from S3, hashes it
and refuses (nothing deployed, not retried, counted and alarmed) when the recorded SHA-256 is
missing or differs. GetObject answers follow botocore's S3 model (Stubber)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests.lambda_loader import emf_documents, handler_with, lambda_context
from tests.lambdas.deploy_world import (
    ACCOUNT,
    BUCKET,
    REGION,
    VALID_ENV,
    Aws,
    arn,
    artifact_bytes,
    artifact_key,
    aws,
    deployer,
    package,
    rollback_event,
    stack,
    state_change,
)

pytestmark = pytest.mark.usefixtures("aws_credentials")
__all__ = ["aws"]


def test_the_metadata_key_is_the_one_the_pipeline_writes() -> None:
    assert deployer.MODEL_ARTIFACT_SHA256_KEY == "model_artifact_sha256"


def test_a_changed_artifact_is_refused_without_update(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=""))
    aws.artifact(3, data=artifact_bytes(3) + b"tampered")

    outcome = aws.handle(state_change(3))

    assert (outcome.action, outcome.failure) == ("refused", "ArtifactIntegrity")
    actual = hashlib.sha256(artifact_bytes(3) + b"tampered").hexdigest()
    assert actual in outcome.message and "changed after registration" in outcome.message


def test_rollback_targets_are_verified_too(aws: Aws) -> None:
    aws.describe_stack(stack(current=arn(3)))
    aws.describe_package(package(1))
    aws.artifact(1, data=b"not the registered model")

    assert aws.handle(rollback_event(target=arn(1))).action == "refused"


@pytest.mark.parametrize(
    ("sha256", "needle"),
    [(None, "has no model_artifact_sha256"), ("abc123", "is not a SHA-256 hex digest")],
    ids=["missing", "malformed"],
)
def test_a_package_without_a_valid_digest_is_refused_before_any_read(
    aws: Aws, sha256: str | None, needle: str
) -> None:
    aws.describe_package(package(3, sha256=sha256))
    aws.describe_stack(stack(current=""))

    outcome = aws.handle(state_change(3))

    assert outcome.action == "refused" and needle in outcome.message


def test_an_upper_case_digest_is_the_same_digest(aws: Aws) -> None:
    digest = hashlib.sha256(artifact_bytes(3)).hexdigest().upper()
    described = package(3, sha256=digest)
    assert (
        deployer.verify_model_artifact(
            _reader(artifact_bytes(3)), described, bucket=BUCKET, prefix=deployer_prefix()
        )
        == digest.lower()
    )


def deployer_prefix() -> str:
    return VALID_ENV["MODEL_ARTIFACT_PREFIX"]


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.chunk_sizes: list[int] = []

    def iter_chunks(self, size: int) -> Any:
        self.chunk_sizes.append(size)
        for start in range(0, len(self.data), size):
            yield self.data[start : start + size]


class _reader:  # noqa: N801 - a stand-in client
    def __init__(self, data: bytes) -> None:
        self.body = _Body(data)

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {"Body": self.body}


def test_the_artifact_is_streamed_in_bounded_chunks() -> None:
    data = b"x" * (3 * 1024 * 1024 + 5)
    described = package(3, sha256=hashlib.sha256(data).hexdigest())
    reader = _reader(data)

    deployer.verify_model_artifact(reader, described, bucket=BUCKET, prefix=deployer_prefix())

    assert reader.body.chunk_sizes == [1024 * 1024]


@pytest.mark.parametrize(
    "url",
    [
        f"s3://another-bucket/{artifact_key(3)}",
        f"s3://{BUCKET}/pipelines/other-pipeline/training/job/output/model.tar.gz",
        f"https://{BUCKET}.s3.amazonaws.com/{artifact_key(3)}",
    ],
    ids=["other-bucket", "other-prefix", "not-s3"],
)
def test_an_artifact_outside_the_environments_models_is_refused(aws: Aws, url: str) -> None:
    described = package(3)
    described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = url
    aws.describe_package(described)
    aws.describe_stack(stack(current=""))

    outcome = aws.handle(state_change(3))

    assert outcome.action == "refused" and f"s3://{BUCKET}/" in outcome.message


def test_a_missing_artifact_is_refused(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=""))
    aws.s3_stub.add_client_error(
        "get_object",
        service_error_code="NoSuchKey",
        service_message="The specified key does not exist.",
        http_status_code=404,
        expected_params={"Bucket": BUCKET, "Key": artifact_key(3)},
    )

    assert "does not exist" in aws.handle(state_change(3)).message


def test_access_denied_on_the_artifact_is_an_aws_error_to_retry(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=""))
    aws.s3_stub.add_client_error(
        "get_object", service_error_code="AccessDenied", service_message="Access Denied"
    )

    with pytest.raises(deployer.DeployError, match="GetObject failed: AccessDenied"):
        aws.handle(state_change(3))


def test_a_package_with_two_artifacts_is_refused(aws: Aws) -> None:
    described = package(3)
    containers = described["InferenceSpecification"]["Containers"]
    containers.append(dict(containers[0]))
    aws.describe_package(described)
    aws.describe_stack(stack(current=""))

    assert "exactly one model artifact" in aws.handle(state_change(3)).message


def test_handler_counts_a_refusal_as_an_alarmed_deploy_failure(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = handler_with(
        "deploy_model",
        monkeypatch,
        VALID_ENV,
        sagemaker=aws.sagemaker,
        cloudformation=aws.cloudformation,
        s3=aws.s3,
    )
    aws.describe_package(package(3, sha256=None))
    aws.describe_stack(stack(current=""))

    result = handler.lambda_handler(state_change(3), lambda_context("d", REGION, ACCOUNT))

    assert (result["action"], result["failure"]) == ("refused", "ArtifactIntegrity")
    documents = emf_documents(capsys.readouterr().out)
    assert [doc["Error"] for doc in documents if "DeployFailures" in doc] == ["ArtifactIntegrity"]
