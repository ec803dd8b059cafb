"""The serving contract of multi-class and regression models with category features, through
the archive's own `code/inference.py` (as tests/serving/test_category_serving.py does for a
binary model): a multi-class endpoint answers each row's class probabilities in the recorded
class order, a regression endpoint the value, and both answer exactly what Evaluate scored."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pytest

from pipeline_code import penguin_data
from pipeline_code.steps import load
from tests.serving.test_category_serving import JSON, _prepare_train_serve, respond

scoring_data = load("evaluate", "scoring_data")
model_loading = load("evaluate", "model_loading")

FEATURES = [
    {"name": "island", "type": "category"},
    {"name": "bill_length_mm", "type": "float"},
    {"name": "bill_depth_mm", "type": "float"},
    {"name": "flipper_length_mm", "type": "int"},
]
NAMES = [f["name"] for f in FEATURES]
TARGETS = {"multiclass": "species", "regression": "body_mass_g"}


@pytest.fixture(scope="module", params=["multiclass", "regression"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    problem = request.param
    root = tmp_path_factory.mktemp(f"serving-{problem}")
    (root / "in").mkdir()
    penguin_data.generate(1500, seed=4).to_csv(root / "in" / "penguins.csv", index=False)
    schema = {"target": TARGETS[problem], "problem_type": problem, "features": FEATURES,
              "max_missing_fraction": 0.05}  # fmt: skip
    served = _prepare_train_serve(root, schema, target=TARGETS[problem])
    served["problem"] = problem
    return served


def _body(served: dict[str, Any]) -> tuple[str, int]:
    with (served["root"] / "out" / "test" / "test.csv").open(newline="") as handle:
        rows = [[row[name] for name in NAMES] for row in csv.DictReader(handle)]
    body = io.StringIO()
    csv.writer(body, lineterminator="\n").writerows(rows)
    return body.getvalue(), len(rows)


def test_the_endpoint_answers_what_evaluate_scored_per_type(served: dict[str, Any]) -> None:
    root = served["root"]
    model = model_loading.load_model_dir(
        served["archive_dir"], root / "scratch", "challenger", verified=True, trainer="xgboost"
    )
    columns, _ = scoring_data.read_test_set(
        root / "out" / "test", TARGETS[served["problem"]],
        categories=scoring_data.category_names(model), binary=False,
    )  # fmt: skip
    evaluated = scoring_data.predict(model, scoring_data.feature_matrix(model, columns, "x"))
    body, rows = _body(served)
    response = respond(served, body)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).splitlines()
    answered = np.array([[float(v) for v in line.split(",")] for line in lines])
    if served["problem"] == "multiclass":
        classes = model.metadata["labels"]["classes"]
        assert classes == ["Adelie", "Chinstrap", "Gentoo"]
        assert answered.shape == (rows, len(classes))
        np.testing.assert_allclose(answered.sum(axis=1), 1.0, atol=1e-5)
    else:
        assert answered.shape == (rows, 1)
        answered = answered[:, 0]
        assert 2000 < answered.mean() < 7000
    np.testing.assert_allclose(answered, evaluated, rtol=0, atol=1e-4)


def test_json_and_an_unseen_category_per_type(served: dict[str, Any]) -> None:
    response = respond(served, 'Dream,38,18,190\n"Ross Sea, Antarctica",38,18,190', JSON)
    assert response.status_code == 200 and response.mimetype == JSON
    predictions = response.get_json()["predictions"]
    assert len(predictions) == 2
    if served["problem"] == "multiclass":
        assert all(len(row) == 3 and abs(sum(row) - 1) < 1e-5 for row in predictions)
    else:
        assert all(isinstance(value, float) for value in predictions)
    assert respond(served, "Dream,38,18").status_code == 400
