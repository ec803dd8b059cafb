# ruff: noqa: F401, F811
"""evaluate.py's score-one-model mode (the eval-only pipeline): the served package scored as the
production model (its metrics where the quality alarm watches), a named package scored as a
candidate (published apart, never into the alarm's metric), the registry checks, bad input."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import xgboost as xgb
from botocore.stub import Stubber
from moto import mock_aws
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from pipeline_code.definition import model_quality_metrics
from pipeline_code.steps import load
from tests.steps import FEATURES, TARGET, write

# The fixtures `workspace` and `failure_file` are test_evaluate's (imported, so F401/F811).
from tests.steps.test_evaluate import (
    SAMPLES,
    evaluation,
    failure_file,
    load_test_split,
    package,
    train_model,
    workspace,
)

evaluate = load("evaluate")
train = load("train")
contract = load("evaluate", "evaluation_contract")
evaluation_plots = load("evaluate", "evaluation_plots")

GROUP = "fraud-dev-models"
BUCKET = "artifacts-bucket"
NAMESPACE = "fraud-dev/ModelQuality"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
NAMES = ["AUC", "Accuracy", "Precision", "Recall", "F1", "LogLoss", "RowsEvaluated"]


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


@dataclass(frozen=True)
class Registry:
    """moto registry: v1 Approved (a weak model), v2 Approved (the trained one, served),
    v3 pending (the weak model again), each with its artifact's SHA-256 recorded."""

    sagemaker: Any
    s3: Any
    cloudwatch: Any
    arns: dict[int, str]

    def clients(self) -> dict[str, Any]:
        return {"sagemaker_client": self.sagemaker, "s3_client": self.s3}


@pytest.fixture
def registry(aws: Any, workspace: Path, tmp_path: Path) -> Registry:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    weak = package(train_model(workspace, tmp_path / "weak", FEATURES, True), tmp_path / "w.tgz")
    artifacts = {
        1: ("training/job-1/output/model.tar.gz", weak),
        2: ("training/job-2/output/model.tar.gz", workspace / "packaged" / "model.tar.gz"),
        3: ("training/job-3/output/model.tar.gz", weak),
    }
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    arns = {}
    for version, (key, archive) in artifacts.items():
        s3.upload_file(str(archive), BUCKET, key)
        arns[version] = sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelApprovalStatus="PendingManualApproval" if version == 3 else "Approved",
            CustomerMetadataProperties={
                "model_artifact_sha256": hashlib.sha256(archive.read_bytes()).hexdigest()
            },
        )["ModelPackageArn"]
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    return Registry(sagemaker=sagemaker, s3=s3, cloudwatch=cloudwatch, arns=arns)


def score(workspace: Path, out: Path, package_arn: str | None, *extra: str, **clients: Any) -> int:
    """evaluate.py as the evaluation pipeline calls it (test split as labelled data)."""
    argv = [
        "--test-dir", str(workspace / "test"),
        "--output-dir", str(out),
        "--bootstrap-samples", SAMPLES,
        "--model-package-group", GROUP,
        "--dataset-version", "transactions/2026-11-01",
        "--data-digest", "0f3a" * 16,
        *(["--model-package-arn", package_arn] if package_arn is not None else []),
        *extra,
    ]  # fmt: skip
    return evaluate.main(argv, **clients)


def expected_metrics(workspace: Path, model_file: Path) -> dict[str, float]:
    """The CloudWatch metric values, computed independently with scikit-learn."""
    x, y = load_test_split(workspace)
    p = xgb.Booster(model_file=str(model_file)).predict(xgb.DMatrix(x, feature_names=FEATURES))
    predicted = p > 0.5
    return {
        "AUC": roc_auc_score(y, p),
        "Accuracy": accuracy_score(y, predicted),
        "Precision": precision_score(y, predicted),
        "Recall": recall_score(y, predicted),
        "F1": f1_score(y, predicted),
        "LogLoss": log_loss(y, p),
        "RowsEvaluated": float(len(y)),
    }


def published(registry: Registry, dimensions: dict[str, str]) -> dict[str, float]:
    """Average of every model-quality metric listed with exactly these dimensions.

    (moto's statistics also count datapoints with more dimensions; the values are the same.)
    """
    now = dt.datetime.now(dt.UTC)
    values = {}
    for metric in registry.cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]:
        found = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        if found != dimensions:
            continue
        datapoints = registry.cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=metric["MetricName"],
            Dimensions=metric["Dimensions"],
            StartTime=now - dt.timedelta(minutes=10),
            EndTime=now + dt.timedelta(minutes=10),
            Period=60,
            Statistics=["Average"],
        )["Datapoints"]
        assert len(datapoints) == 1, metric
        values[metric["MetricName"]] = datapoints[0]["Average"]
    return values


def publish(registry: Registry, workspace: Path, out: Path, arn: str, *extra: str) -> int:
    return score(
        workspace,
        out,
        arn,
        "--metrics-namespace",
        NAMESPACE,
        *extra,
        **registry.clients(),
        cloudwatch_client=registry.cloudwatch,
    )


# ------------------------------------------------------------ production model vs candidate


def test_the_served_package_is_scored_as_production_where_the_alarm_watches(
    registry: Registry, workspace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert publish(registry, workspace, out, registry.arns[2], "--model-role", "production") == 0
    report = evaluation(out)
    model = report[contract.MODEL_KEY]
    assert (model["model_package_arn"], model["model_package_version"]) == (registry.arns[2], 2)
    assert (model["role"], model["integrity"]) == ("production", "verified")
    assert report[contract.DATASET_KEY] == {
        "dataset_version": "transactions/2026-11-01",
        "data_digest": "0f3a" * 16,
        "rows": len(load_test_split(workspace)[1]),
        "positives": int(load_test_split(workspace)[1].sum()),
    }
    assert contract.GATE_KEY not in report
    expected = expected_metrics(workspace, workspace / "model" / train.MODEL_FILE)
    metrics = report[contract.METRICS_KEY]
    assert metrics["auc"]["value"] == pytest.approx(expected["AUC"])
    assert metrics["auc"]["standard_deviation"] > 0
    assert (out / evaluation_plots.ROC_PLOT).stat().st_size > 1000

    listed = registry.cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    assert len(listed) == 14  # 7 metrics x 2 dimension sets, nothing else
    by_group = published(registry, {"ModelPackageGroup": GROUP})
    by_version = published(registry, {"ModelPackageGroup": GROUP, "ModelVersion": "2"})
    assert by_group == pytest.approx(expected, rel=1e-6)
    assert by_version == pytest.approx(expected, rel=1e-6)
    assert report[contract.PUBLISHED_METRICS_KEY] == {
        "namespace": NAMESPACE,
        "dimension_sets": [
            {"ModelPackageGroup": GROUP},
            {"ModelPackageGroup": GROUP, "ModelVersion": "2"},
        ],
        "values": pytest.approx(expected, rel=1e-6),
    }


def test_a_named_candidate_never_moves_the_production_alarms_metric(
    registry: Registry, workspace: Path, tmp_path: Path
) -> None:
    """The alarm watches the metric with the group dimension alone (Monitoring stack)."""
    assert model_quality_metrics()["group_dimension"] == "ModelPackageGroup"
    assert publish(registry, workspace, tmp_path / "out", registry.arns[1]) == 0  # default role
    model = evaluation(tmp_path / "out")[contract.MODEL_KEY]
    assert (model["model_package_arn"], model["role"]) == (registry.arns[1], "candidate")
    assert published(registry, {"ModelPackageGroup": GROUP}) == {}
    assert published(registry, {"ModelPackageGroup": GROUP, "ModelVersion": "1"}) == {}
    by_candidate = published(registry, {"ModelPackageGroup": GROUP, "CandidateVersion": "1"})
    assert by_candidate["AUC"] < 0.65  # the weak model: labels were shuffled
    assert by_candidate["RowsEvaluated"] == len(load_test_split(workspace)[1])
    assert len(registry.cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]) == 7


def test_a_pending_package_can_be_a_candidate_but_never_production(
    registry: Registry, workspace: Path, tmp_path: Path, failure_file: Path
) -> None:
    assert score(workspace, tmp_path / "a", registry.arns[3], **registry.clients()) == 0
    assert evaluation(tmp_path / "a")[contract.MODEL_KEY]["approval_status"] == (
        "PendingManualApproval"
    )
    code = score(
        workspace, tmp_path / "b", registry.arns[3], "--model-role", "production",
        **registry.clients(),
    )  # fmt: skip
    assert code == 1
    assert f"production model {registry.arns[3]} is PendingManualApproval, not Approved" in (
        failure_file.read_text()
    )


@pytest.mark.parametrize("role", ["production", "candidate"])
def test_the_put_metric_data_request_has_the_roles_dimension_sets(
    registry: Registry, workspace: Path, tmp_path: Path, role: str
) -> None:
    expected = expected_metrics(workspace, workspace / "model" / train.MODEL_FILE)
    group = [{"Name": "ModelPackageGroup", "Value": GROUP}]
    if role == "production":
        sets = [group, [*group, {"Name": "ModelVersion", "Value": "2"}]]
    else:
        sets = [[*group, {"Name": "CandidateVersion", "Value": "2"}]]
    data = [
        {
            "MetricName": name,
            "Dimensions": dimensions,
            "Value": pytest.approx(expected[name], rel=1e-6),
            "Unit": "Count" if name == "RowsEvaluated" else "None",
        }
        for dimensions in sets
        for name in NAMES
    ]
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    with Stubber(cloudwatch) as stub:  # validates the request against CloudWatch's model
        stub.add_response("put_metric_data", {}, {"Namespace": NAMESPACE, "MetricData": data})
        code = score(
            workspace,
            tmp_path / "out",
            registry.arns[2],
            "--metrics-namespace",
            NAMESPACE,
            "--model-role",
            role,
            **registry.clients(),
            cloudwatch_client=cloudwatch,
        )
        stub.assert_no_pending_responses()
    assert code == 0


def test_without_a_namespace_nothing_is_published(
    registry: Registry, workspace: Path, tmp_path: Path
) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    with Stubber(cloudwatch):  # any call would fail: no response is queued
        code = score(
            workspace,
            tmp_path / "out",
            registry.arns[2],
            **registry.clients(),
            cloudwatch_client=cloudwatch,
        )
    assert code == 0
    assert evaluation(tmp_path / "out")[contract.PUBLISHED_METRICS_KEY] is None


def test_a_package_whose_artifact_changed_is_not_scored(
    registry: Registry, workspace: Path, tmp_path: Path, failure_file: Path
) -> None:
    key = "training/job-2/output/model.tar.gz"
    registry.s3.put_object(Bucket=BUCKET, Key=key, Body=b"another archive")
    code = score(
        workspace, tmp_path / "out", registry.arns[2], "--model-role", "production",
        **registry.clients(),
    )  # fmt: skip
    assert code == 1
    assert "it changed after registration" in failure_file.read_text()
    assert not (tmp_path / "out" / contract.EVALUATION_FILE).exists()


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("arn", ["", None])
def test_no_named_package_is_an_error_not_a_guess(
    registry: Registry, workspace: Path, tmp_path: Path, failure_file: Path, arn: str | None
) -> None:
    extra = ["--model-package-arn"] if arn is None else []  # a bare flag: the argument dropped
    assert score(workspace, tmp_path / "out", arn, *extra, **registry.clients()) == 1
    assert failure_file.read_text().startswith("--model-package-arn is empty: no model to evaluate")


def test_an_unknown_package_arn_fails_clearly(
    registry: Registry, workspace: Path, tmp_path: Path, failure_file: Path
) -> None:
    unknown = registry.arns[1].replace("/1", "/99")
    assert score(workspace, tmp_path / "out", unknown, **registry.clients()) == 1
    reason = failure_file.read_text()
    assert f"model package {unknown} does not exist or is not visible" in reason
    assert not (tmp_path / "out" / contract.EVALUATION_FILE).exists()


def test_a_package_of_another_group_is_refused(
    registry: Registry, workspace: Path, tmp_path: Path, failure_file: Path
) -> None:
    argv = ["--model-package-group", "fraud-prod-models"]
    assert score(workspace, tmp_path / "out", registry.arns[1], *argv, **registry.clients()) == 1
    assert "not of this environment's group 'fraud-prod-models'" in failure_file.read_text()


@pytest.mark.parametrize(
    ("arn", "fragment"),
    [
        ("s3://bucket/model.tar.gz", "is not a model package ARN"),
        ("arn:aws:sagemaker:eu-west-1:123456789012:endpoint/prod", "is not a model package ARN"),
        ("latest", "is not a model package ARN"),
    ],
)
def test_a_malformed_package_arn_fails_before_any_call(
    workspace: Path, tmp_path: Path, failure_file: Path, arn: str, fragment: str
) -> None:
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    with Stubber(sagemaker):  # any call would fail: no response is queued
        assert score(workspace, tmp_path / "out", arn, sagemaker_client=sagemaker) == 1
    assert f"--model-package-arn '{arn}' {fragment}" in failure_file.read_text()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--model-package-arn", "arn:aws:sagemaker:eu-west-1:123456789012:model-package/g/1"],
         "needs --model-package-group"),
        (["--model-package-arn", "x", "--model-role", "prod"],
         "--model-role 'prod' is not allowed: production or candidate"),
        (["--model-package-arn", "x", "--model-dir", "/m"], "do not pass --model-dir"),
        (["--metrics-namespace", NAMESPACE], "use it with --model-package-arn"),
    ],
)  # fmt: skip
def test_arguments_that_do_not_fit_fail_before_any_call(
    workspace: Path, tmp_path: Path, failure_file: Path, argv: list[str], fragment: str
) -> None:
    base = ["--test-dir", str(workspace / "test"), "--output-dir", str(tmp_path / "out")]
    assert evaluate.main([*base, *argv]) == 1
    assert fragment in failure_file.read_text()


def test_one_class_of_labels_cannot_evaluate_the_model(
    registry: Registry, workspace: Path, tmp_path: Path, failure_file: Path
) -> None:
    test = pd.read_csv(workspace / "test" / "test.csv")
    write(test[test[TARGET] == 1], tmp_path / "labelled" / "test" / "test.csv")
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    with Stubber(cloudwatch):
        code = score(
            tmp_path / "labelled",
            tmp_path / "out",
            registry.arns[2],
            "--metrics-namespace",
            NAMESPACE,
            **registry.clients(),
            cloudwatch_client=cloudwatch,
        )
    assert code == 1
    reason = failure_file.read_text()
    assert "single class: all" in reason
    assert "AUC is undefined without both classes, so the model cannot be evaluated" in reason


def test_labelled_data_without_the_target(
    registry: Registry, workspace: Path, tmp_path: Path, failure_file: Path
) -> None:
    code = score(
        workspace, tmp_path / "out", registry.arns[2], "--target", "label", **registry.clients()
    )
    assert code == 1
    assert "no target column 'label'" in failure_file.read_text()


def test_a_cloudwatch_error_fails_the_job_naming_the_namespace(
    registry: Registry, workspace: Path, tmp_path: Path, failure_file: Path
) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    with Stubber(cloudwatch) as stub:
        stub.add_client_error("put_metric_data", "AccessDenied", "not authorized", 403)
        code = score(
            workspace,
            tmp_path / "out",
            registry.arns[2],
            "--metrics-namespace",
            NAMESPACE,
            **registry.clients(),
            cloudwatch_client=cloudwatch,
        )
    assert code == 1
    reason = failure_file.read_text()
    assert f"cannot publish the model-quality metrics to CloudWatch namespace '{NAMESPACE}'" in (
        reason
    )
    assert "AccessDenied" in reason


@pytest.mark.parametrize("namespace", ["AWS/SageMaker", ":quality", "bad|chars"])
def test_a_namespace_cloudwatch_would_reject(
    workspace: Path, tmp_path: Path, failure_file: Path, namespace: str
) -> None:
    code = score(workspace, tmp_path / "out", "x", "--metrics-namespace", namespace)
    assert code == 1
    assert f"--metrics-namespace {namespace!r} is not allowed" in failure_file.read_text()
