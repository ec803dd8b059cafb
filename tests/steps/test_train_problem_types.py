"""train.py for multi-class and regression: the objective, the model the serving container
loads (a probability per class, or a value), the numbers recorded with it, bad labels, and
training across two hosts for each type (the binary path: test_train.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
)

from pipeline_code import penguin_data
from pipeline_code.steps import load
from tests.steps.test_train import load_like_the_serving_container
from tests.steps.test_train_distributed import _code_dir, _env, _two_workers

prepare = load("prepare")
train = load("train")
objectives = load("train", "objectives")
step_failure = load("common", "failure")

FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
FAST = ["--num_round", "40", "--early_stopping_rounds", "5", "--max_depth", "3"]
TARGETS = {"multiclass": "species", "regression": "body_mass_g"}


def _schema(problem: str) -> str:
    features = [{"name": n, "type": "float"} for n in FEATURES]
    return json.dumps(
        {"target": TARGETS[problem], "problem_type": problem, "features": features,
         "max_missing_fraction": 0.05}
    )  # fmt: skip


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Penguins prepared for each type: whole (one/) and as two train shards (two/)."""
    root = tmp_path_factory.mktemp("penguins")
    (root / "in").mkdir()
    penguin_data.generate(2400, seed=11).to_csv(root / "in" / "data.csv", index=False)
    out = {}
    for problem in TARGETS:
        for name, extra in (("one", []), ("two", ["--train-shards", "2"])):
            arguments = [
                "--input-dir",
                str(root / "in"),
                "--output-dir",
                str(root / problem / name),
            ]
            assert prepare.main([*arguments, "--schema", _schema(problem), *extra]) == 0
        out[problem] = root / problem
    return out


def _train(channels: Path, model_dir: Path, target: str, monkeypatch: pytest.MonkeyPatch) -> int:
    for name in list(os.environ):
        if name.startswith("SM_HP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(step_failure.FAILURE_FILE_ENV, str(model_dir.parent / "failure"))
    return train.main(
        [*FAST, "--target", target, "--train", str(channels / "train"), "--validation",
         str(channels / "validation"), "--model_dir", str(model_dir), "--checkpoint_dir",
         str(model_dir.parent / "ck")]
    )  # fmt: skip


def _metadata(model_dir: Path) -> dict:
    return json.loads((model_dir / "metadata" / "model-metadata.json").read_text())


def test_a_multiclass_model_returns_a_probability_per_class_in_the_recorded_order(
    prepared: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = prepared["multiclass"] / "one"
    assert _train(channels, tmp_path / "model", "species", monkeypatch) == 0
    metadata = _metadata(tmp_path / "model")
    assert metadata["objective"] == "multi:softprob" and metadata["num_class"] == 3
    assert metadata["labels"]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert "decision_threshold" not in metadata and "calibration" not in metadata
    (booster,) = load_like_the_serving_container(tmp_path / "model")
    test = pd.read_csv(channels / "test" / "test.csv")
    p = booster.predict(xgb.DMatrix(test[FEATURES].to_numpy(np.float32)), validate_features=False)
    assert p.shape == (len(test), 3)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    # column k is the probability of classes[k]: the codes Prepare wrote are predicted
    assert accuracy_score(test["species"], p.argmax(axis=1)) > 0.85
    validation = pd.read_csv(channels / "validation" / "validation.csv")
    pv = booster.predict(
        xgb.DMatrix(validation[FEATURES].to_numpy(np.float32)), validate_features=False
    )
    assert metadata["best_validation_mlogloss"] == pytest.approx(
        log_loss(validation["species"], pv, labels=[0, 1, 2]), rel=1e-4
    )
    assert metadata["best_validation_accuracy"] == pytest.approx(
        accuracy_score(validation["species"], pv.argmax(axis=1))
    )
    for average in ("macro", "weighted"):
        expected = f1_score(
            validation["species"], pv.argmax(axis=1), labels=[0, 1, 2], average=average
        )
        assert metadata[f"best_validation_{average}_f1"] == pytest.approx(expected), average


def test_a_regression_model_returns_a_value_and_records_its_errors(
    prepared: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = prepared["regression"] / "one"
    assert _train(channels, tmp_path / "model", "body_mass_g", monkeypatch) == 0
    metadata = _metadata(tmp_path / "model")
    assert metadata["objective"] == "reg:squarederror" and "num_class" not in metadata
    assert metadata["labels"]["problem_type"] == "regression"
    assert "scale_pos_weight" not in metadata and "decision_threshold" not in metadata
    (booster,) = load_like_the_serving_container(tmp_path / "model")
    validation = pd.read_csv(channels / "validation" / "validation.csv")
    matrix = xgb.DMatrix(validation[FEATURES].to_numpy(np.float32))
    predicted = booster.predict(matrix, validate_features=False)
    assert predicted.shape == (len(validation),)
    truth = validation["body_mass_g"].to_numpy()
    assert metadata["best_validation_rmse"] == pytest.approx(
        np.sqrt(mean_squared_error(truth, predicted)), rel=1e-4
    )
    assert metadata["best_validation_mae"] == pytest.approx(
        mean_absolute_error(truth, predicted), rel=1e-4
    )
    # far better than predicting the mean
    assert metadata["best_validation_rmse"] < 0.6 * truth.std()


def test_class_codes_outside_the_recorded_classes_are_refused(tmp_path: Path) -> None:
    objective = objectives.Objective("multiclass", ("a", "b"))
    with pytest.raises(objectives.TrainingError, match=r"class code from 0 to 1 in every row"):
        objectives.check_labels(objective, "train", np.array([0.0, 1.0, 2.0]), "y")
    with pytest.raises(objectives.TrainingError, match="finite number in every row"):
        objectives.check_labels(
            objectives.Objective("regression"), "train", np.array([1.0, np.inf]), "y"
        )


@pytest.mark.parametrize(
    ("labels", "message"),
    [({"problem_type": "ranking"}, "labels.problem_type = 'ranking' is not allowed"),
     ({"problem_type": "multiclass", "classes": ["a"]}, "labels.classes = ['a'] is not allowed")],
)  # fmt: skip
def test_a_record_asking_for_an_unknown_objective_is_refused(labels: dict, message: str) -> None:
    with pytest.raises(
        objectives.TrainingError, match=message.replace("[", r"\[").replace("]", r"\]")
    ):
        objectives.objective_of({"labels": labels})


def test_a_train_split_missing_a_class_is_refused() -> None:
    objective = objectives.Objective("multiclass", ("a", "b", "c"))
    with pytest.raises(objectives.TrainingError, match=r"no rows of class\(es\) \['c'\]"):
        objectives.training_rows(
            objective, "1", np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.copy
        )


def test_a_record_without_a_problem_type_trains_binary_as_before() -> None:
    assert objectives.objective_of({"labels": {"positive_class": "1"}}).xgboost_objective == (
        "binary:logistic"
    )
    assert objectives.objective_of(None).early_stopping_metric == "logloss"


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["multiclass", "regression"])
def test_two_hosts_train_each_type_as_well_as_one(
    prepared: dict[str, Path], tmp_path: Path, problem: str
) -> None:
    root, target = prepared[problem], TARGETS[problem]
    code = _code_dir(tmp_path)
    deterministic = ["--subsample", "1", "--colsample_bytree", "1", "--target", target]
    _two_workers(root, tmp_path, code, *FAST, *deterministic)
    single = subprocess.run(
        [sys.executable, str(code / "train.py"), *FAST, *deterministic, "--checkpoint_dir",
         str(tmp_path / "ck-single")],
        cwd=code,
        env=_env(SM_CHANNEL_TRAIN=str(root / "one" / "train"),
                 SM_CHANNEL_VALIDATION=str(root / "one" / "validation"),
                 SM_MODEL_DIR=str(tmp_path / "model-single"),
                 FAILURE_REASON_FILE=str(tmp_path / "failure-single")),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    two, one = _metadata(tmp_path / "model-0"), _metadata(tmp_path / "model-single")
    assert two["train_rows"] == one["train_rows"], "the rows are summed over the hosts"
    key = "best_validation_mlogloss" if problem == "multiclass" else "best_validation_rmse"
    assert two[key] == pytest.approx(one[key], rel=0.05)
