"""evaluate.py's score-one-model mode (the eval-only pipeline) for multi-class and regression
models: a registered package (moto registry) scored on labelled data that Prepare validated with
`--all-to-test`, its type's metrics in SageMaker's layout and published to CloudWatch under
their names (what the quality alarm watches), the values computed independently with
scikit-learn from the labels as written and the model's own predictions."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)

from pipeline_code import penguin_data
from pipeline_code.definition import model_quality_metrics
from pipeline_code.steps import load

# The moto fixture `aws` is test_evaluate_quality's (imported, so F401/F811).
from tests.steps.test_evaluate_quality import aws  # noqa: F401

prepare = load("prepare")
train = load("train")
evaluate = load("evaluate")

GROUP = "penguins-dev-models"
BUCKET = "artifacts-bucket"
NAMESPACE = "penguins-dev/ModelQuality"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
TARGETS = {"multiclass": "species", "regression": "body_mass_g"}
FAST = ["--num_round", "30", "--early_stopping_rounds", "5", "--max_depth", "3"]


def _schema(problem: str) -> str:
    features = [{"name": n, "type": "float"} for n in NUMBERS]
    features.append({"name": "island", "type": "category"})
    return json.dumps(
        {
            "target": TARGETS[problem],
            "problem_type": problem,
            "max_missing_fraction": 0.05,
            "features": features,
        }  # fmt: skip
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per type: a model trained on one penguin sample (packaged as model.tar.gz) and another
    sample's labelled rows validated by Prepare --all-to-test (the eval-only Validate step)."""
    root = tmp_path_factory.mktemp("typed-quality")
    for name, seed in (("train-in", 5), ("labels-in", 6)):
        (root / name).mkdir()
        penguin_data.generate(1500, seed=seed).to_csv(root / name / "data.csv", index=False)
    out = {}
    for problem, target in TARGETS.items():
        base = root / problem
        schema = ["--schema", _schema(problem)]
        assert prepare.main(
            ["--input-dir", str(root / "train-in"), "--output-dir", str(base / "data"), *schema]
        ) == 0  # fmt: skip
        assert prepare.main(
            ["--input-dir", str(root / "labels-in"), "--output-dir", str(base / "labelled"),
             "--all-to-test", *schema]
        ) == 0  # fmt: skip
        assert train.main(
            [*FAST, "--target", target, "--train", str(base / "data" / "train"),
             "--validation", str(base / "data" / "validation"), "--model_dir",
             str(base / "model"), "--checkpoint_dir", str(base / "ck")]
        ) == 0  # fmt: skip
        with tarfile.open(base / "model.tar.gz", "w:gz") as tar:
            for item in (base / "model").iterdir():
                tar.add(item, arcname=item.name)
        out[problem] = base
    return out


def _register(archive: Path) -> tuple[str, dict[str, Any]]:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    key = "training/job-1/output/model.tar.gz"
    s3.upload_file(str(archive), BUCKET, key)
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={
            "model_artifact_sha256": hashlib.sha256(archive.read_bytes()).hexdigest()
        },
    )["ModelPackageArn"]
    return arn, {"sagemaker_client": sagemaker, "s3_client": s3}


def _published(cloudwatch: Any) -> dict[str, float]:
    """The values published with the group dimension alone (where the quality alarm looks)."""
    now = dt.datetime.now(dt.UTC)
    values = {}
    for metric in cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]:
        if metric["Dimensions"] != [{"Name": "ModelPackageGroup", "Value": GROUP}]:
            continue
        [point] = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=metric["MetricName"],
            Dimensions=metric["Dimensions"],
            StartTime=now - dt.timedelta(minutes=10),
            EndTime=now + dt.timedelta(minutes=10),
            Period=60,
            Statistics=["Average"],
        )["Datapoints"]
        values[metric["MetricName"]] = point["Average"]
    return values


def _score_production(base: Path, out: Path, target: str) -> tuple[dict[str, Any], dict]:
    arn, clients = _register(base / "model.tar.gz")
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    argv = ["--test-dir", str(base / "labelled" / "test"), "--output-dir", str(out),
            "--target", target, "--bootstrap-samples", "200", "--model-package-group", GROUP,
            "--model-package-arn", arn, "--model-role", "production",
            "--metrics-namespace", NAMESPACE, "--dataset-version", "penguins/2026-12"]  # fmt: skip
    assert evaluate.main(argv, **clients, cloudwatch_client=cloudwatch) == 0
    return json.loads((out / "evaluation.json").read_text()), _published(cloudwatch)


def _predictions(base: Path, test: pd.DataFrame, scratch: Path) -> np.ndarray:
    """The model's own predictions (its recorded encoding of island): the metrics, not the
    predictions, are what these tests check independently."""
    loading = load("evaluate", "model_loading")
    scoring = load("evaluate", "scoring_data")
    model = loading.load_model_dir(
        base / "model", scratch, "model", verified=True, trainer="xgboost"
    )
    columns = {n: test[n].to_numpy(object if n == "island" else np.float64) for n in test}
    return scoring.predict(model, scoring.model_matrix(model, columns, list(model.feature_names)))


@pytest.mark.usefixtures("aws")
def test_a_multiclass_production_model_is_scored_and_published_with_its_metrics(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    base = trained["multiclass"]
    report, published = _score_production(base, tmp_path / "out", "species")
    assert report["problem_type"] == "multiclass"
    section = report["multiclass_classification_metrics"]
    test = pd.read_csv(base / "labelled" / "test" / "test.csv")
    written = json.loads((base / "labelled" / "test" / "labels.json").read_text())["classes"]
    truth = np.array(written, dtype=object)[test.pop("species").to_numpy()]
    p = _predictions(base, test, tmp_path / "scratch")
    classes = ["Adelie", "Chinstrap", "Gentoo"]
    guess = np.array(classes, dtype=object)[p.argmax(axis=1)]
    expected = {
        "Accuracy": accuracy_score(truth, guess),
        "MacroF1": f1_score(truth, guess, average="macro", labels=classes),
        "WeightedF1": f1_score(truth, guess, average="weighted", labels=classes),
        "LogLoss": log_loss(truth, p, labels=classes),
        "RowsEvaluated": float(len(truth)),
        "UnseenClassRows": 0.0,
    }
    assert section["macro_f1"]["value"] == pytest.approx(expected["MacroF1"])
    assert 0 < section["accuracy"]["standard_deviation"] < 0.05
    assert published == pytest.approx(expected, rel=1e-4)
    # the gate metric names the quality alarm watches are the ones published
    names = model_quality_metrics()
    assert {names["accuracy"], names["macro_f1"], names["weighted_f1"]} <= set(published)
    counts = report["dataset"]["class_counts"]
    assert counts == {c: int((truth == c).sum()) for c in classes}
    assert report["dataset"]["unseen_class_rows"] == 0
    assert "gate" not in report and report["threshold"] is None


@pytest.mark.usefixtures("aws")
def test_a_regression_production_model_is_scored_and_published_with_its_metrics(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    base = trained["regression"]
    out = tmp_path / "out"
    report, published = _score_production(base, out, "body_mass_g")
    assert report["problem_type"] == "regression"
    test = pd.read_csv(base / "labelled" / "test" / "test.csv")
    y = test.pop("body_mass_g").to_numpy(np.float64)
    p = _predictions(base, test, tmp_path / "scratch")
    expected = {
        "RMSE": float(np.sqrt(mean_squared_error(y, p))),
        "MAE": mean_absolute_error(y, p),
        "MSE": mean_squared_error(y, p),
        "R2": r2_score(y, p),
        "RowsEvaluated": float(len(y)),
    }
    assert published == pytest.approx(expected, rel=1e-5)
    assert report["regression_metrics"]["rmse"]["value"] == pytest.approx(expected["RMSE"])
    assert report["regression_metrics"]["rmse"]["standard_deviation"] > 0
    assert model_quality_metrics()["rmse"] in published
    assert (out / "residuals.png").is_file() and (out / "predicted_vs_actual.png").is_file()
    assert set(report["dataset"]) == {"dataset_version", "data_digest", "rows"}


@pytest.mark.usefixtures("aws")
def test_labelled_rows_of_a_class_the_model_never_learned_are_scored_as_wrong(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    # A new class in production is when retraining matters most: the run publishes (the
    # quality alarm can fire) instead of failing, with those rows wrong and counted.
    base = trained["multiclass"]
    frame = penguin_data.generate(300, seed=9)
    frame.loc[frame.index[:40], "species"] = "Emperor"
    (tmp_path / "in").mkdir()
    frame.to_csv(tmp_path / "in" / "data.csv", index=False)
    labelled = tmp_path / "labelled"
    assert prepare.main(
        ["--input-dir", str(tmp_path / "in"), "--output-dir", str(labelled),
         "--all-to-test", "--schema", _schema("multiclass")]
    ) == 0  # fmt: skip
    base_copy = tmp_path / "base"
    (base_copy / "labelled").mkdir(parents=True)
    (base_copy / "model.tar.gz").write_bytes((base / "model.tar.gz").read_bytes())
    (base_copy / "labelled" / "test").symlink_to(labelled / "test")
    report, published = _score_production(base_copy, tmp_path / "out", "species")
    test = pd.read_csv(labelled / "test" / "test.csv")
    written = json.loads((labelled / "test" / "labels.json").read_text())["classes"]
    truth = np.array(written, dtype=object)[test.pop("species").to_numpy()]
    assert (truth == "Emperor").sum() == 40
    p = _predictions(base, test, tmp_path / "scratch")
    classes = ["Adelie", "Chinstrap", "Gentoo"]
    guess = np.array(classes, dtype=object)[p.argmax(axis=1)]
    # independently: scikit-learn's labels are those of the truth and the predictions
    # (Emperor's F1 is 0); the log loss with Emperor's probability 0 clipped to 1e-15
    column = {c: i for i, c in enumerate(classes)}
    chosen = np.array([p[i, column[t]] if t in column else 0.0 for i, t in enumerate(truth)])
    expected = {
        "Accuracy": accuracy_score(truth, guess),
        "MacroF1": f1_score(truth, guess, average="macro"),
        "WeightedF1": f1_score(truth, guess, average="weighted"),
        "LogLoss": float(np.mean(-np.log(np.clip(chosen, 1e-15, 1.0)))),
        "RowsEvaluated": float(len(truth)),
        "UnseenClassRows": 40.0,
    }
    assert published == pytest.approx(expected, rel=1e-4)
    assert expected["Accuracy"] <= (len(truth) - 40) / len(truth)
    dataset = report["dataset"]
    assert dataset["unseen_classes"] == ["Emperor"] and dataset["unseen_class_rows"] == 40
    assert dataset["class_counts"]["Emperor"] == 40
    matrix = report["multiclass_classification_metrics"]["confusion_matrix"]
    assert matrix["Emperor"]["Emperor"] == 0 and sum(matrix["Emperor"].values()) == 40


def _constant_target(base: Path, root: Path) -> Path:
    """The labelled rows with one body mass for all: no variance, so R2 (1 - SSE/SST) has no
    value."""
    labelled = root / "labelled" / "test"
    labelled.mkdir(parents=True)
    test = pd.read_csv(base / "labelled" / "test" / "test.csv")
    test["body_mass_g"] = 4000.0
    test.to_csv(labelled / "test.csv", index=False)
    return root


@pytest.mark.usefixtures("aws")
def test_a_constant_target_publishes_the_finite_regression_metrics_without_r2(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    """R2 is undefined for labels without variance: RMSE, MAE and MSE (the alarm's metric may be
    one of them) are still published, R2 is left out rather than failing the whole run."""
    base = trained["regression"]
    labelled = _constant_target(base, tmp_path / "constant")
    (labelled / "model.tar.gz").symlink_to(base / "model.tar.gz")
    report, published = _score_production(labelled, tmp_path / "out", "body_mass_g")
    test = pd.read_csv(labelled / "labelled" / "test" / "test.csv")
    y = test.pop("body_mass_g").to_numpy(np.float64)
    p = _predictions(base, test, tmp_path / "scratch")
    expected = {
        "RMSE": float(np.sqrt(mean_squared_error(y, p))),
        "MAE": mean_absolute_error(y, p),
        "MSE": mean_squared_error(y, p),
        "RowsEvaluated": float(len(y)),
    }
    assert published == pytest.approx(expected, rel=1e-5)
    assert model_quality_metrics()["r2"] not in report["cloudwatch"]["values"]
    assert report["cloudwatch"]["values"]["RMSE"] == pytest.approx(expected["RMSE"])
    # strict JSON (JsonGet rejects NaN): the undefined R2 is null in evaluation.json
    assert report["regression_metrics"]["r2"]["value"] is None
    assert "NaN" not in (tmp_path / "out" / "evaluation.json").read_text()


@pytest.mark.usefixtures("aws")
def test_a_non_finite_configured_metric_still_fails_the_run(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    """With r2 the configured metric, publishing without it would leave the alarm blind: the
    run fails and publishes nothing."""
    base = trained["regression"]
    labelled = _constant_target(base, tmp_path / "constant")
    arn, clients = _register(base / "model.tar.gz")
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    argv = ["--test-dir", str(labelled / "labelled" / "test"), "--output-dir",
            str(tmp_path / "out"), "--target", "body_mass_g", "--bootstrap-samples", "200",
            "--model-package-group", GROUP, "--model-package-arn", arn, "--model-role",
            "production", "--metrics-namespace", NAMESPACE, "--metric", "r2"]  # fmt: skip
    assert evaluate.main(argv, **clients, cloudwatch_client=cloudwatch) != 0
    assert _published(cloudwatch) == {}
