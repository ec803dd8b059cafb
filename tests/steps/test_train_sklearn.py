"""`pipeline.trainer = sklearn` end to end on real-shaped data, per problem type: the real
Prepare, the scikit-learn Train script, the training job's archive as SageMaker packs it,
Evaluate (unchanged) on it, and the archive's own serving code through the container's worker.

Expected values come from scikit-learn itself (the estimator loaded from the archive with
joblib, its `predict_proba`/`predict` on the test split built with pandas, and sklearn.metrics),
never from the step code."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score

from pipeline_code import gate, penguin_data
from pipeline_code.steps import load
from tests.serving.test_category_serving import _import_user_module, respond

prepare = load("prepare")
train_sklearn = load("train_sklearn")
evaluate = load("evaluate")

NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
CASES = {
    # problem: (target, features, estimator, params, metric, floor)
    "binary": ("sex", ["species", *NUMBERS], "sklearn.ensemble.HistGradientBoostingClassifier",
               {"max_iter": 60}, "auc", 0.6),
    "multiclass": ("species", NUMBERS, "sklearn.ensemble.RandomForestClassifier",
                   {"n_estimators": 40, "min_samples_leaf": 3}, "accuracy", 0.6),
    "regression": ("body_mass_g", NUMBERS, "sklearn.linear_model.Ridge", {"alpha": 1.0},
                   "rmse", 1000.0),
}  # fmt: skip


def _schema(problem: str) -> dict[str, Any]:
    target, features, *_ = CASES[problem]
    return {
        "target": target,
        "problem_type": problem,
        "max_missing_fraction": 0.05,
        **({"positive_class": "female"} if problem == "binary" else {}),
        "features": [
            {"name": n, "type": "category" if n == "species" else "float"} for n in features
        ],
    }


def _archive(model_dir: Path, destination: Path) -> Path:
    """SM_MODEL_DIR packed into model.tar.gz, as SageMaker does after the training job."""
    destination.mkdir(parents=True)
    with tarfile.open(destination / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            # each path once: rglob lists every file and folder (a second entry is refused)
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return destination


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sklearn-trainer")
    (root / "in").mkdir()
    data = penguin_data.generate(1500, seed=5)
    # Regression on complete rows: Ridge takes no missing value (HistGradientBoosting does).
    data.dropna(subset=NUMBERS).to_csv(root / "in" / "penguins.csv", index=False)
    out = {}
    for problem, (target, _, estimator, params, *_) in CASES.items():
        base = root / problem
        schema = json.dumps(_schema(problem))
        assert prepare.main(["--input-dir", str(root / "in"), "--output-dir",
                             str(base / "data"), "--schema", schema]) == 0  # fmt: skip
        assert train_sklearn.main(["--train", str(base / "data" / "train"), "--validation",
                                   str(base / "data" / "validation"), "--model_dir",
                                   str(base / "model"), "--target", target, "--estimator",
                                   estimator, "--estimator_params", json.dumps(params)
                                   ]) == 0  # fmt: skip
        _archive(base / "model", base / "artifact")
        out[problem] = base
    return out


def _expected(base: Path, problem: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels as codes, the estimator's own predictions) on the test split, with pandas."""
    target, features, *_ = CASES[problem]
    test = pd.read_csv(base / "data" / "test" / "test.csv")
    estimator = joblib.load(base / "model" / "model.joblib")
    matrix = test[features].copy()
    if "species" in features:
        categories = json.loads((base / "model" / "metadata" / "categories.json").read_text())
        matrix["species"] = pd.Categorical(
            test["species"], categories=categories["features"]["species"]
        ).codes.astype(float)
        matrix.loc[matrix["species"] < 0, "species"] = np.nan
    x = matrix.to_numpy(np.float64)
    if problem == "regression":
        return test[target].to_numpy(np.float64), estimator.predict(x)
    p = estimator.predict_proba(x)
    return test[target].to_numpy(), p[:, 1] if problem == "binary" else p


def _evaluate(base: Path, out: Path, problem: str) -> dict[str, Any]:
    target, *_, metric, floor = CASES[problem]
    assert evaluate.main(["--model-dir", str(base / "artifact"), "--test-dir",
                          str(base / "data" / "test"), "--output-dir", str(out), "--target",
                          target, "--metric", metric, "--floor", str(floor), "--trainer", "sklearn",
                          "--bootstrap-samples", "200", "--min-positives", "20"]) == 0  # fmt: skip
    return json.loads((out / "evaluation.json").read_text())


def test_the_model_directory_holds_the_estimator_metadata_and_serving_code(
    trained: dict[str, Path],
) -> None:
    import sklearn

    model = trained["binary"] / "model"
    metadata = json.loads((model / "metadata" / "model-metadata.json").read_text())
    assert metadata["trainer"] == "sklearn"
    assert metadata["sklearn_version"] == sklearn.__version__
    assert metadata["estimator"] == CASES["binary"][2]
    assert metadata["feature_names"] == ["species", *NUMBERS]
    assert metadata["feature_types"] == ["c", "q", "q", "q"]
    assert metadata["labels"]["positive_class"] == "female"
    assert 0.0 < metadata["decision_threshold"] < 1.0
    estimator = joblib.load(model / "model.joblib")
    # The category column is the estimator's categorical feature, as for XGBoost.
    assert list(estimator.is_categorical_) == [True, False, False, False]
    for path in ("code/inference.py", "code/common/categories.py",
                 "code/common/sklearn_predictions.py", "metadata/categories.json"):  # fmt: skip
        assert (model / path).is_file(), path
    multiclass = json.loads(
        (trained["multiclass"] / "model/metadata/model-metadata.json").read_text()
    )
    assert multiclass["num_class"] == 3 and "decision_threshold" not in multiclass


def test_evaluate_scores_a_binary_sklearn_model_as_scikit_learn_does(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    report = _evaluate(trained["binary"], tmp_path, "binary")
    y, p = _expected(trained["binary"], "binary")
    assert report["gate"]["challenger"] == pytest.approx(roc_auc_score(y, p), rel=1e-9)
    assert gate.gate_decision(report).passed


def test_evaluate_scores_multiclass_and_regression_sklearn_models(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    report = _evaluate(trained["multiclass"], tmp_path / "m", "multiclass")
    y, p = _expected(trained["multiclass"], "multiclass")
    section = report["multiclass_classification_metrics"]
    assert section["accuracy"]["value"] == pytest.approx(accuracy_score(y, p.argmax(axis=1)))
    report = _evaluate(trained["regression"], tmp_path / "r", "regression")
    y, p = _expected(trained["regression"], "regression")
    rmse = report["regression_metrics"]["rmse"]["value"]
    assert rmse == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-9)
    assert gate.gate_decision(report).passed


@pytest.mark.parametrize("problem", list(CASES))
def test_the_endpoint_serves_the_estimators_predictions_in_the_csv_contract(
    trained: dict[str, Path], tmp_path: Path, problem: str
) -> None:
    base = trained[problem]
    opt_ml_model = tmp_path / "opt" / "ml" / "model"
    opt_ml_model.mkdir(parents=True)
    with tarfile.open(base / "artifact" / "model.tar.gz") as tar:
        tar.extractall(opt_ml_model, filter="data")
    inference = _import_user_module(opt_ml_model / "code", "inference")
    served = {"inference": inference, "model": inference.model_fn(str(opt_ml_model))}
    _, features, *_ = CASES[problem]
    test = pd.read_csv(base / "data" / "test" / "test.csv")
    body = test[features].to_csv(header=False, index=False)
    response = respond(served, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).splitlines()
    got = np.array([[float(v) for v in line.split(",")] for line in lines]).squeeze()
    _, expected = _expected(base, problem)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # Outside the contract: the row and column named, a 400 (not the 5xx of a model error).
    bad = respond(served, "1,2\n")
    assert bad.status_code == 400
    assert "row 1 has 2 field(s)" in bad.get_data(as_text=True)


def test_an_unseen_category_is_served_as_missing(trained: dict[str, Path], tmp_path: Path) -> None:
    base = trained["binary"]
    opt_ml_model = tmp_path / "model"
    with tarfile.open(base / "artifact" / "model.tar.gz") as tar:
        tar.extractall(opt_ml_model, filter="data")
    inference = _import_user_module(opt_ml_model / "code", "inference")
    served = {"inference": inference, "model": inference.model_fn(str(opt_ml_model))}
    unseen = respond(served, "Emperor,40.1,18.0,190\n")
    missing = respond(served, ",40.1,18.0,190\n")
    assert unseen.status_code == 200
    assert unseen.get_data(as_text=True) == missing.get_data(as_text=True)


def test_the_endpoint_refuses_a_pickle_of_another_scikit_learn(
    trained: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As Evaluate does: a model whose recorded sklearn_version is not the image's is not
    unpickled (the model fails to load, naming both versions)."""
    opt_ml_model = tmp_path / "model"
    with tarfile.open(trained["binary"] / "artifact" / "model.tar.gz") as tar:
        tar.extractall(opt_ml_model, filter="data")
    metadata_file = opt_ml_model / "metadata" / "model-metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata_file.write_text(json.dumps({**metadata, "sklearn_version": "0.24.2"}))

    def no_unpickling(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("joblib.load was called")

    monkeypatch.setattr(joblib, "load", no_unpickling)
    inference = _import_user_module(opt_ml_model / "code", "inference")
    with pytest.raises(RuntimeError, match=r"trained with scikit-learn 0\.24\.2; this image has "):
        inference.model_fn(str(opt_ml_model))


@pytest.mark.parametrize(
    ("estimator", "params", "reason"),
    [
        ("xgboost.XGBClassifier", "{}", "a class path under sklearn."),
        ("sklearn.ensemble.NoSuchForest", "{}", "is not an estimator of scikit-learn"),
        ("sklearn.linear_model.Ridge", "{}", "is not a classifier: a binary target"),
        ("sklearn.linear_model.LogisticRegression", '{"n_trees": 3}', "['n_trees'] are not "
         "parameters of LogisticRegression"),
        ("sklearn.linear_model.LogisticRegression", "[1]", "must be a JSON object"),
    ],
)  # fmt: skip
def test_a_wrong_estimator_fails_with_one_line_and_writes_no_model(
    trained: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    estimator: str,
    params: str,
    reason: str,
) -> None:
    failure = tmp_path / "failure"
    monkeypatch.setenv("FAILURE_REASON_FILE", str(failure))
    data = trained["binary"] / "data"
    code = train_sklearn.main(["--train", str(data / "train"), "--validation",
                               str(data / "validation"), "--model_dir", str(tmp_path / "model"),
                               "--target", "sex", "--estimator", estimator,
                               "--estimator_params", params])  # fmt: skip
    assert code == 1
    text = failure.read_text()
    assert reason in text and "\n" not in text.strip()
    assert not (tmp_path / "model" / "model.joblib").exists()


def test_evaluate_refuses_a_model_pickled_by_another_scikit_learn(
    trained: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    with tarfile.open(trained["binary"] / "artifact" / "model.tar.gz") as tar:
        tar.extractall(model, filter="data")
    metadata_file = model / "metadata" / "model-metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata_file.write_text(json.dumps({**metadata, "sklearn_version": "0.24.2"}))
    failure = tmp_path / "failure"
    monkeypatch.setenv("FAILURE_REASON_FILE", str(failure))
    _archive(model, tmp_path / "artifact")
    code = evaluate.main(["--model-dir", str(tmp_path / "artifact"), "--test-dir",
                          str(trained["binary"] / "data" / "test"), "--output-dir",
                          str(tmp_path / "ev"), "--target", "sex", "--floor", "0.5",
                          "--trainer", "sklearn"])  # fmt: skip
    assert code == 1
    assert "trained with scikit-learn 0.24.2" in failure.read_text()


def test_an_unverified_scikit_learn_archive_is_never_unpickled(
    trained: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registered package without a recorded SHA-256 is scored unverified when it is an
    XGBoost model (no code runs on load); a pickle is refused before joblib sees it."""
    model_loading = load("evaluate", "model_loading")

    def no_unpickling(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("joblib.load was called")

    monkeypatch.setattr(joblib, "load", no_unpickling)
    with pytest.raises(model_loading.EvaluationError, match=r"\(a pickle\) is loaded only from"):
        model_loading.load_model_dir(
            trained["binary"] / "artifact", tmp_path, "champion", verified=False, trainer="sklearn"
        )
