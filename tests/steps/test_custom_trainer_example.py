"""examples/custom_trainer/train.py under the custom trainer's contract, per problem type: run as
the training job runs it (its own process, SM_CHANNEL_* and SM_MODEL_DIR, the hyperparameters as
arguments) on channels the real Prepare wrote, then scored by the real Evaluate from the archive
SageMaker would pack. Expected values come from xgboost and sklearn.metrics directly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score

from pipeline_code import penguin_data
from pipeline_code.steps import load
from tests.steps.test_train_sklearn import NUMBERS, _archive

prepare = load("prepare")
evaluate = load("evaluate")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_trainer" / "train.py"
CASES = {  # problem: (target, metric, floor)
    "binary": ("sex", "auc", 0.6),
    "multiclass": ("species", "accuracy", 0.6),
    "regression": ("body_mass_g", "rmse", 1000.0),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    problem = request.param
    target, *_ = CASES[problem]
    root = tmp_path_factory.mktemp(f"custom-{problem}")
    (root / "in").mkdir()
    penguin_data.generate(1500, seed=8).to_csv(root / "in" / "penguins.csv", index=False)
    schema = {"target": target, "problem_type": problem, "max_missing_fraction": 0.05,
              **({"positive_class": "female"} if problem == "binary" else {}),
              "features": [{"name": n, "type": "float"} for n in NUMBERS]}  # fmt: skip
    assert prepare.main(["--input-dir", str(root / "in"), "--output-dir", str(root / "data"),
                         "--schema", json.dumps(schema)]) == 0  # fmt: skip
    environment = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(root / "data" / "train"),
        "SM_CHANNEL_VALIDATION": str(root / "data" / "validation"),
        "SM_MODEL_DIR": str(root / "model"),
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--target", target, "--seed", "42",
         "--decision_threshold", "max-f1", "--num_round", "40"],
        env=environment, cwd=root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _archive(root / "model", root / "artifact")
    return problem, root


def test_evaluate_scores_the_examples_booster_as_xgboost_does(trained: Any, tmp_path: Path) -> None:
    problem, root = trained
    target, metric, floor = CASES[problem]
    assert evaluate.main(["--model-dir", str(root / "artifact"), "--test-dir",
                          str(root / "data" / "test"), "--output-dir", str(tmp_path), "--target",
                          target, "--metric", metric, "--floor", str(floor),
                          "--bootstrap-samples", "200", "--min-positives", "20"]) == 0  # fmt: skip
    report = json.loads((tmp_path / "evaluation.json").read_text())
    test = pd.read_csv(root / "data" / "test" / "test.csv")
    booster = xgb.Booster(model_file=str(root / "model" / "xgboost-model"))
    p = booster.predict(xgb.DMatrix(test[NUMBERS]))
    y = test[target].to_numpy()
    if problem == "binary":
        assert report["gate"]["challenger"] == pytest.approx(roc_auc_score(y, p), rel=1e-6)
        metadata = json.loads((root / "model" / "metadata" / "model-metadata.json").read_text())
        assert 0 < metadata["decision_threshold"] < 1
    elif problem == "multiclass":
        value = report["multiclass_classification_metrics"]["accuracy"]["value"]
        assert value == pytest.approx(accuracy_score(y, p.argmax(axis=1)))
    else:
        value = report["regression_metrics"]["rmse"]["value"]
        assert value == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-5)
    assert report["gate"]["decision"] == "register"
