# ruff: noqa: F401, F811
"""evaluate.py with registered models: the champion checked against the registry (group,
approval, rollback mark, artifact SHA-256), the challenger's SHA-256 in evaluation.json, native
model formats only (no pickle), and champions trained on other features."""

from __future__ import annotations

import datetime as dt
import hashlib
import pickle
import shutil
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import regex
import xgboost as xgb
from botocore.stub import Stubber
from moto import mock_aws
from sklearn.metrics import roc_auc_score

from pipeline_code.steps import load
from tests.lambda_loader import load_lambda_module
from tests.steps import FEATURES, TARGET

# The fixtures `workspace` and `failure_file` are test_evaluate's (imported, so F401/F811).
from tests.steps.test_evaluate import (
    evaluation,
    failure_file,
    package,
    run,
    train_model,
    workspace,
)

contract = load("evaluate", "evaluation_contract")
registry_module = load("evaluate", "model_registry")
model_files = load("common", "model_files")

GROUP = "fraud-dev-models"
ARN = f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{GROUP}/3"
BUCKET = "artifacts-bucket"
KEY = "pipelines/fraud-dev-training/training/job-1/output/model.tar.gz"
# The registry's metadata value pattern (botocore's CreateModelPackage model).
METADATA_VALUE = regex.compile(r"[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,256}")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def described(url: str, **changes: Any) -> dict[str, Any]:
    """A DescribeModelPackage answer (botocore-valid) of an Approved package of GROUP."""
    answer = {
        "ModelPackageName": GROUP,
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": 3,
        "ModelPackageArn": ARN,
        "CreationTime": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "Approved",
        "InferenceSpecification": {
            "Containers": [{"Image": "xgboost:3.0-5", "ModelDataUrl": url}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    }
    return {k: v for k, v in (answer | changes).items() if v is not None}


def uploaded(archive: Path) -> tuple[Any, str, str]:
    """`archive` in moto's S3 as a champion's model data: (S3 client, URL, its SHA-256)."""
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.upload_file(str(archive), BUCKET, KEY)
    return s3, f"s3://{BUCKET}/{KEY}", hashlib.sha256(archive.read_bytes()).hexdigest()


def weak_archive(workspace: Path, tmp_path: Path, names: list[str] = FEATURES) -> Path:
    weak = train_model(workspace, tmp_path / "weak", names, shuffle=True)
    return package(weak, tmp_path / "weak.tar.gz")


def run_champion(
    workspace: Path, out: Path, answer: dict[str, Any], s3: Any, *extra: str
) -> tuple[int, Stubber]:
    """evaluate.py with ARN as the champion, DescribeModelPackage answered by `answer`."""
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    with Stubber(sagemaker) as stub:
        stub.add_response("describe_model_package", answer, {"ModelPackageName": ARN})
        code = run(
            workspace,
            out,
            "--champion-model-package-arn",
            ARN,
            "--model-package-group",
            GROUP,
            *extra,
            sagemaker_client=sagemaker,
            s3_client=s3,
        )
        stub.assert_no_pending_responses()
    return code, stub


# ---------------------------------------------------------------------- the served champion


def test_the_served_champion_is_checked_verified_and_scored(
    aws: Any, workspace: Path, tmp_path: Path
) -> None:
    s3, url, digest = uploaded(weak_archive(workspace, tmp_path))
    metadata = {"model_artifact_sha256": digest}
    code, _ = run_champion(
        workspace, tmp_path / "out", described(url, CustomerMetadataProperties=metadata), s3
    )
    assert code == 0
    report = evaluation(tmp_path / "out")
    gate = report["gate"]
    assert (gate["champion_model_package_arn"], gate["has_champion"]) == (ARN, True)
    assert gate["champion"] < 0.65 < gate["challenger"]
    lineage = report[contract.LINEAGE_KEY]
    champion = lineage[contract.LINEAGE_CHAMPION]
    assert (champion["integrity"], champion["artifact_sha256"]) == ("verified", digest)
    assert lineage[contract.LINEAGE_CHAMPION_COMPARISON] == contract.CHAMPION_SCORED


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"ModelApprovalStatus": "Rejected",
          "ApprovalDescription": "rolled back at 2026-03-01T10:00:00+00:00: 5xx alarm"},
         f"champion {ARN} is Rejected, not Approved"),
        ({"ModelApprovalStatus": "PendingManualApproval"},
         f"champion {ARN} is PendingManualApproval, not Approved"),
        ({"ApprovalDescription": "rolled back at 2026-03-01T10:00:00+00:00: 5xx alarm"},
         f"champion {ARN} is marked as rolled back (rolled back at 2026-03-01"),
        ({"ModelPackageGroupName": "fraud-prod-models"},
         f"champion {ARN} is a package of model package group 'fraud-prod-models', not of "
         f"this environment's group '{GROUP}'"),
    ],
    ids=["rejected-after-rollback", "pending", "approved-with-rollback-mark", "other-group"],
)  # fmt: skip
def test_a_champion_the_registry_does_not_vouch_for_fails_the_step(
    aws: Any,
    workspace: Path,
    tmp_path: Path,
    failure_file: Path,
    changes: dict[str, Any],
    says: str,
) -> None:
    s3, url, _ = uploaded(weak_archive(workspace, tmp_path))
    code, _ = run_champion(workspace, tmp_path / "out", described(url, **changes), s3)
    assert code == 1
    assert says in failure_file.read_text()
    assert not (tmp_path / "out" / contract.EVALUATION_FILE).exists()


def test_a_champion_artifact_that_changed_after_registration_is_refused(
    aws: Any,
    workspace: Path,
    tmp_path: Path,
    failure_file: Path,
) -> None:
    s3, url, digest = uploaded(weak_archive(workspace, tmp_path))
    # Someone overwrote the object with another model after the package was registered.
    s3.upload_file(str(workspace / "packaged" / "model.tar.gz"), BUCKET, KEY)
    answer = described(url, CustomerMetadataProperties={"model_artifact_sha256": digest})
    code, _ = run_champion(workspace, tmp_path / "out", answer, s3)
    assert code == 1
    reason = failure_file.read_text()
    assert f"champion {ARN}: model artifact {url} has SHA-256 " in reason
    assert f"the registry recorded {digest}: it changed after registration" in reason


def test_a_malformed_recorded_digest_is_refused(
    aws: Any,
    workspace: Path,
    tmp_path: Path,
    failure_file: Path,
) -> None:
    s3, url, _ = uploaded(weak_archive(workspace, tmp_path))
    answer = described(url, CustomerMetadataProperties={"model_artifact_sha256": "abc"})
    assert run_champion(workspace, tmp_path / "out", answer, s3)[0] == 1
    assert "model_artifact_sha256='abc' is not a SHA-256 hex digest" in failure_file.read_text()


def test_a_champion_registered_before_digests_is_scored_and_said_unverified(
    aws: Any, workspace: Path, tmp_path: Path
) -> None:
    s3, url, digest = uploaded(weak_archive(workspace, tmp_path))
    code, _ = run_champion(workspace, tmp_path / "out", described(url), s3)
    assert code == 0
    champion = evaluation(tmp_path / "out")[contract.LINEAGE_KEY][contract.LINEAGE_CHAMPION]
    assert champion["integrity"] == "unverified: registered without model_artifact_sha256"
    assert champion["artifact_sha256"] == digest


def test_a_missing_champion_artifact_fails_clearly(
    aws: Any,
    workspace: Path,
    tmp_path: Path,
    failure_file: Path,
) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    answer = described(f"s3://{BUCKET}/gone/model.tar.gz")
    assert run_champion(workspace, tmp_path / "out", answer, s3)[0] == 1
    assert f"cannot download the champion model s3://{BUCKET}/gone/model.tar.gz" in (
        failure_file.read_text()
    )


def test_a_registry_error_fails_naming_the_package(
    aws: Any,
    workspace: Path,
    tmp_path: Path,
    failure_file: Path,
) -> None:
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    with Stubber(sagemaker) as stub:
        stub.add_client_error(
            "describe_model_package", "AccessDeniedException", "not authorized", 400
        )
        code = run(
            workspace,
            tmp_path / "out",
            "--champion-model-package-arn",
            ARN,
            "--model-package-group",
            GROUP,
            sagemaker_client=sagemaker,
            s3_client=boto3.client("s3", region_name="eu-west-1"),
        )
    assert code == 1
    reason = failure_file.read_text()
    assert f"cannot describe the champion model package {ARN}" in reason
    assert "AccessDenied" in reason


def test_champion_none_means_no_champion_and_no_call(
    aws: Any, workspace: Path, tmp_path: Path
) -> None:
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    with Stubber(sagemaker):  # any call would fail: no response is queued
        code = run(
            workspace,
            tmp_path / "out",
            "--champion-model-package-arn",
            contract.NO_CHAMPION,
            "--model-package-group",
            GROUP,
            sagemaker_client=sagemaker,
            s3_client=boto3.client("s3", region_name="eu-west-1"),
        )
    assert code == 0
    report = evaluation(tmp_path / "out")
    assert report["gate"]["has_champion"] is False
    lineage = report[contract.LINEAGE_KEY]
    assert lineage[contract.LINEAGE_CHAMPION_COMPARISON] == contract.CHAMPION_NONE


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--champion-model-package-arn", "my group/3", "--model-package-group", GROUP],
         "--champion-model-package-arn 'my group/3' is not a model package ARN"),
        (["--champion-model-package-arn", ARN],
         "--champion-model-package-arn needs --model-package-group"),
    ],
)  # fmt: skip
def test_a_champion_argument_that_cannot_be_checked_fails_before_any_call(
    aws: Any,
    workspace: Path,
    tmp_path: Path,
    failure_file: Path,
    extra: list[str],
    says: str,
) -> None:
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    with Stubber(sagemaker):
        code = run(workspace, tmp_path / "out", *extra, sagemaker_client=sagemaker)
    assert code == 1
    assert says in failure_file.read_text()


def test_the_script_agrees_with_the_lambdas_on_names() -> None:
    trigger = load_lambda_module("start_training", "dataset_trigger")
    assert trigger.NO_CHAMPION == contract.NO_CHAMPION
    integrity = load_lambda_module("deploy_model", "model_deployer.integrity")
    rollbacks = load_lambda_module("deploy_model", "model_deployer.rollbacks")
    assert registry_module.MODEL_ARTIFACT_SHA256_KEY == integrity.MODEL_ARTIFACT_SHA256_KEY
    assert registry_module.ROLLED_BACK_PREFIX == rollbacks.ROLLED_BACK_PREFIX
    assert contract.LINEAGE_MODEL_ARTIFACT_SHA256 == integrity.MODEL_ARTIFACT_SHA256_KEY


# ------------------------------------------------------------------- the challenger's digest


def test_the_challengers_archive_digest_is_in_the_report(workspace: Path, tmp_path: Path) -> None:
    archive = workspace / "packaged" / "model.tar.gz"
    assert run(workspace, tmp_path / "a") == 0
    lineage = evaluation(tmp_path / "a")[contract.LINEAGE_KEY]
    expected = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert lineage[contract.LINEAGE_MODEL_ARTIFACT_SHA256] == expected
    # An unpacked local directory has no archive, so nothing to record.
    assert run(workspace, tmp_path / "b", model_dir=workspace / "model") == 0
    assert evaluation(tmp_path / "b")[contract.LINEAGE_KEY]["model_artifact_sha256"] is None


# -------------------------------------------------------------------- native formats only


class _Trap:
    """Unpickling this creates `marker`: proof that a pickle was (or was not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("who", ["challenger", "champion"])
def test_a_pickled_model_is_refused_and_never_unpickled(
    workspace: Path,
    tmp_path: Path,
    failure_file: Path,
    who: str,
) -> None:
    marker = tmp_path / "unpickled"
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / model_files.MODEL_FILE).write_bytes(pickle.dumps(_Trap(marker), protocol=4))
    if who == "challenger":
        code = run(workspace, tmp_path / "out", model_dir=folder)
    else:
        code = run(workspace, tmp_path / "out", "--champion-model-dir", str(folder))
    assert code == 1
    assert f"{who} model file xgboost-model is a pickle" in failure_file.read_text()
    assert not marker.exists()


def test_a_file_that_is_no_xgboost_model_is_refused(
    workspace: Path,
    tmp_path: Path,
    failure_file: Path,
) -> None:
    folder = tmp_path / "text"
    folder.mkdir()
    (folder / model_files.MODEL_FILE).write_text("hello")
    assert run(workspace, tmp_path / "out", model_dir=folder) == 1
    assert "challenger model file xgboost-model is not an XGBoost model in JSON or UBJSON" in (
        failure_file.read_text()
    )


# ------------------------------------------------------- champions trained on other features


def test_a_champion_without_a_new_feature_is_scored_on_its_own_features(
    workspace: Path, tmp_path: Path
) -> None:
    own = FEATURES[:-1]  # the schema gained txn_count_24h since the champion was trained
    champion = train_model(workspace, tmp_path / "older", own)
    assert run(workspace, tmp_path / "out", "--champion-model-dir", str(champion)) == 0
    report = evaluation(tmp_path / "out")
    test = pd.read_csv(workspace / "test" / "test.csv")
    booster = xgb.Booster(model_file=str(champion / model_files.MODEL_FILE))
    expected = roc_auc_score(test[TARGET], booster.predict(xgb.DMatrix(test[own])))
    assert report["gate"]["has_champion"] is True
    assert report["gate"]["champion"] == pytest.approx(expected)
    lineage = report[contract.LINEAGE_KEY]
    assert lineage[contract.LINEAGE_CHAMPION_COMPARISON] == contract.CHAMPION_OWN_FEATURES
    assert lineage[contract.LINEAGE_CHAMPION]["feature_names"] == own


def test_a_champion_needing_a_feature_the_data_lacks_leaves_the_floor_alone(
    workspace: Path, tmp_path: Path
) -> None:
    names = [*FEATURES[:-1], "device_age_days"]  # a feature the schema no longer has
    champion = train_model(workspace, tmp_path / "other", names)
    assert run(workspace, tmp_path / "out", "--champion-model-dir", str(champion)) == 0
    report = evaluation(tmp_path / "out")
    gate = report["gate"]
    assert (gate["has_champion"], gate["champion"], gate["lower_97_5"]) == (False, None, None)
    lineage = report[contract.LINEAGE_KEY]
    comparison = lineage[contract.LINEAGE_CHAMPION_COMPARISON]
    assert comparison == "floor only: champion features missing from the data"
    # The gate says why the champion was left out, and decides on the floor alone.
    assert gate["comparison"]["skipped"] == comparison
    assert f"champion comparison skipped: {comparison}: only the floor applies" in gate["reason"]
    registry = report[contract.REGISTRY_KEY]
    assert registry[contract.REGISTRY_CHAMPION_COMPARISON] == f"skipped: {comparison}"
    assert METADATA_VALUE.fullmatch(comparison)  # the registry records it as it is
    reason = lineage[contract.LINEAGE_CHAMPION]["reason"]
    assert "trained on 10 features, 1 of which the test split lacks (device_age_days)" in reason


def test_an_unnamed_champion_with_another_feature_count_leaves_the_floor_alone(
    workspace: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(workspace / "train" / "train.csv")
    data = xgb.DMatrix(frame[FEATURES[:4]].to_numpy(), label=frame[TARGET].to_numpy())
    booster = xgb.train({"objective": "binary:logistic"}, data, 5)
    folder = tmp_path / "unnamed"
    folder.mkdir()
    booster.save_model(str(folder / "m.json"))
    shutil.move(folder / "m.json", folder / model_files.MODEL_FILE)
    assert run(workspace, tmp_path / "out", "--champion-model-dir", str(folder)) == 0
    lineage = evaluation(tmp_path / "out")[contract.LINEAGE_KEY]
    assert lineage[contract.LINEAGE_CHAMPION_COMPARISON] == (
        "floor only: champion features differ from the data"
    )
    assert (
        "no feature names and expects 4 features; the test split has 10"
        in (lineage[contract.LINEAGE_CHAMPION]["reason"])
    )
