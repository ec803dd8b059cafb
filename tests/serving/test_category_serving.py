"""Category features and a text label, end to end through the real serving code path.

The model is trained by the real Prepare and Train step scripts on the bundled penguin example
(text label `sex`, class 1 `female`; category features `species` and `island` as text), packed
as SageMaker packs the model directory into `model.tar.gz`, unpacked into a fresh model
directory, and served by the archive's own `code/inference.py`, imported from there as the
SageMaker XGBoost container does in script mode (SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code,
SAGEMAKER_PROGRAM=inference.py; sagemaker-containers' Transformer calls model_fn once, then
transform_fn per request inside the container's Flask worker, reproduced by `container_app`).
Requests are the CSV rows of the test split as a caller has them (categories as text, no
header, no label).

What it proves: the endpoint answers exactly what Evaluate scored for the same rows (one
fitted encoding, no training/serving skew); a category the training split never had is served
as a missing value, not an error; malformed rows are refused with HTTP 400 naming the row and
the column (not a 500, which would feed the 5xx rollback alarm).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import flask
import numpy as np
import pytest

from pipeline_code import penguin_data
from pipeline_code.definition.registration import SCRIPT_MODE_ENVIRONMENT
from pipeline_code.steps import load

prepare = load("prepare")
train = load("train")
scoring_data = load("evaluate", "scoring_data")
model_loading = load("evaluate", "model_loading")

FEATURES = [
    {"name": "species", "type": "category"},
    {"name": "island", "type": "category"},
    {"name": "bill_length_mm", "type": "float"},
    {"name": "bill_depth_mm", "type": "float"},
    {"name": "flipper_length_mm", "type": "int"},
    {"name": "body_mass_g", "type": "int"},
]
SCHEMA = {
    "target": "sex",
    "positive_class": "female",
    "features": FEATURES,
    "max_missing_fraction": 0.05,
}
NAMES = [f["name"] for f in FEATURES]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Prepare and Train on the penguins, the archive unpacked, its inference module loaded."""
    root = tmp_path_factory.mktemp("category-serving")
    (root / "in").mkdir()
    penguin_data.generate(1500, seed=3).to_csv(root / "in" / "penguins.csv", index=False)
    return _prepare_train_serve(root, SCHEMA)


def _prepare_train_serve(root: Path, schema: dict[str, Any], target: str = "sex") -> dict[str, Any]:
    """The real Prepare and Train on `root/in`, the model archived, unpacked and loaded."""
    assert (
        prepare.main(
            ["--input-dir", str(root / "in"), "--output-dir", str(root / "out")]
            + ["--schema", json.dumps(schema)]
        )
        == 0
    )
    model_dir = root / "model"
    code = train.main(
        [
            "--train", str(root / "out" / "train"),
            "--validation", str(root / "out" / "validation"),
            "--model_dir", str(model_dir),
            "--checkpoint_dir", str(root / "checkpoints"),
            "--target", target,
            "--num_round", "60",
        ]
    )  # fmt: skip
    assert code == 0
    # SageMaker packs SM_MODEL_DIR into model.tar.gz; the endpoint unpacks it to /opt/ml/model.
    archive = root / "artifact" / "model.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    opt_ml_model = root / "opt" / "ml" / "model"
    opt_ml_model.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(opt_ml_model, filter="data")
    inference = _import_user_module(opt_ml_model / "code", "inference")
    return {
        "root": root,
        "archive_dir": archive.parent,
        "model_dir": opt_ml_model,
        "inference": inference,
        "model": inference.model_fn(str(opt_ml_model)),
    }


def _import_user_module(code_dir: Path, name: str) -> ModuleType:
    """The user module from the model's code folder, under a name no test module uses."""
    spec = importlib.util.spec_from_file_location(f"served_{name}", code_dir / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = dict(sys.modules)
    # The archive's own `common` package, not the one the step scripts loaded in this process.
    for key in [k for k in sys.modules if k == "common" or k.startswith("common.")]:
        del sys.modules[key]
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.clear()
        sys.modules.update(saved)
    return module


def container_app(served: dict[str, Any]) -> flask.Flask:
    """The container's /invocations for a user module with transform_fn (sagemaker-containers
    2.8.6: `_worker.Request` content type and accept, `Transformer.transform` turning a tuple
    into a `Response(response=result[0], mimetype=result[1])` and passing a Response through)."""
    inference, model = served["inference"], served["model"]
    default_accept = SCRIPT_MODE_ENVIRONMENT["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"]
    app = flask.Flask("served")

    def invocations() -> flask.Response:
        headers = flask.request.headers
        content_type = headers.get("ContentType") or headers.get("Content-Type") or JSON
        accept = headers.get("Accept")
        if not accept or accept == "*/*":
            accept = default_accept
        result = inference.transform_fn(model, flask.request.get_data(), content_type, accept)
        if isinstance(result, tuple):
            return flask.Response(response=result[0], mimetype=result[1])
        assert isinstance(result, flask.Response)
        return result

    app.add_url_rule("/invocations", view_func=invocations, methods=["POST"])
    return app


JSON = "application/json"


def respond(
    served: dict[str, Any],
    body: str | bytes,
    accept: str | None = None,
    content_type: str = "text/csv",
) -> Any:
    """One InvokeEndpoint request through the container's worker: the Flask test response."""
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    return container_app(served).test_client().post("/invocations", data=body, headers=headers)


def invoke(served: dict[str, Any], body: str) -> list[float]:
    """The probabilities of a text/csv response (one per line, as in algorithm mode)."""
    response = respond(served, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.endswith("\n")
    return [float(line) for line in text.splitlines()]


def test_the_archive_holds_the_model_its_encoding_and_its_serving_code(
    served: dict[str, Any],
) -> None:
    with tarfile.open(served["archive_dir"] / "model.tar.gz") as tar:
        names = set(tar.getnames())
    assert {
        "xgboost-model",
        "metadata/model-metadata.json",
        "metadata/categories.json",
        "code/inference.py",
        "code/common/categories.py",
    } <= names
    metadata = json.loads((served["model_dir"] / "metadata" / "model-metadata.json").read_text())
    assert metadata["labels"]["positive_class"] == "female"
    assert metadata["feature_types"] == ["c", "c", "q", "q", "q", "q"]


def test_the_encoding_is_fitted_on_the_training_split_only(served: dict[str, Any]) -> None:
    root = served["root"]
    train_rows = list(csv.DictReader((root / "out" / "train" / "train.csv").open()))
    encoding = json.loads((served["model_dir"] / "metadata" / "categories.json").read_text())
    assert encoding["features"]["species"] == sorted({r["species"] for r in train_rows})
    assert encoding["features"]["island"] == sorted({r["island"] for r in train_rows})


def test_the_endpoint_answers_what_evaluate_scored_no_skew(served: dict[str, Any]) -> None:
    root = served["root"]
    # Evaluate's own path: the test split read as Evaluate reads it, the model as it loads it.
    model = model_loading.load_model_dir(
        served["archive_dir"], root / "scratch", "challenger", verified=True, trainer="xgboost"
    )
    columns, _ = scoring_data.read_test_set(
        root / "out" / "test", "sex", categories=scoring_data.category_names(model)
    )
    evaluated = scoring_data.predict(model, scoring_data.feature_matrix(model, columns, "x"))
    # The caller's request: the same rows, features in schema order, categories as text.
    with (root / "out" / "test" / "test.csv").open(newline="") as handle:
        rows = [[row[name] for name in NAMES] for row in csv.DictReader(handle)]
    body = io.StringIO()
    csv.writer(body, lineterminator="\n").writerows(rows)
    served_p = np.array(invoke(served, body.getvalue()))
    assert served_p.size == len(rows) > 100
    np.testing.assert_allclose(served_p, evaluated, rtol=0, atol=1e-6)
    assert "Adelie" in body.getvalue()  # the request really carried text categories


def test_an_unseen_category_is_served_as_a_missing_value(served: dict[str, Any]) -> None:
    known = "Gentoo,Biscoe,47.5,14.9,215,5000"
    unseen = 'Emperor,"Ross Sea, Antarctica",47.5,14.9,215,5000'
    missing = ",,47.5,14.9,215,5000"
    answers = invoke(served, "\n".join([known, unseen, missing]))
    assert all(0.0 <= p <= 1.0 for p in answers)
    assert answers[1] == pytest.approx(answers[2], abs=1e-7)
    # Integer-looking and blank-padded text reads as the same category as in training.
    assert invoke(served, " Gentoo , Biscoe ,47.5,14.9,215,5000") == invoke(served, known)


def test_json_responses_and_the_contract_errors(served: dict[str, Any]) -> None:
    response = respond(served, "Adelie,Dream,38,18,190,3700", JSON)
    assert response.status_code == 200 and response.mimetype == JSON
    assert len(response.get_json()["predictions"]) == 1
    # A request outside the contract is the caller's error (4xx), never a 5xx: the endpoint's
    # 5xx alarm rolls a deployment back.
    refusals = [
        (respond(served, "Adelie,Dream,38,18,190,3700\nAdelie,Dream,38,18,190"), 400,
         "row 2 has 5 field"),
        (respond(served, "Adelie,Dream,38,18,190,heavy"), 400,
         "row 1: column 'body_mass_g' must be a number"),
        (respond(served, b"\xff\xfeAdelie"), 400, "not UTF-8"),
        (respond(served, ""), 400, "no rows"),
        (respond(served, "[]", content_type=JSON), 415, "Content-Type 'application/json'"),
        (respond(served, "Adelie,Dream,38,18,190,3700", "text/html"), 406, "Accept 'text/html'"),
    ]  # fmt: skip
    for response, status, message in refusals:
        assert response.status_code == status
        assert response.mimetype == "text/plain"
        assert message in response.get_data(as_text=True)


def test_the_module_has_one_handler_style(served: dict[str, Any]) -> None:
    # sagemaker_xgboost_container.serving refuses transform_fn beside input/predict/output_fn.
    inference = served["inference"]
    assert callable(inference.transform_fn) and callable(inference.model_fn)
    assert not {"input_fn", "predict_fn", "output_fn"} & set(vars(inference))


#: Category values pyarrow's type inference would turn into another type (bool, double,
#: timestamp) if a reader let it guess: their text must reach Train and Evaluate as written.
TYPED_LOOKING = {
    "tagged": ["True", "False"],
    "grade": ["1.50", "2.25", "3.75"],
    "visit": ["2024-01-05 10:00", "2024-02-11 08:30", "2024-03-20 16:45"],
}


@pytest.fixture(scope="module")
def served_typed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A model whose category features look like booleans, decimals and dates in the source."""
    root = tmp_path_factory.mktemp("category-serving-typed")
    (root / "in").mkdir()
    frame = penguin_data.generate(1200, seed=5)
    rng = np.random.default_rng(7)
    female = (frame["sex"] == "female").to_numpy()
    for name, values in TYPED_LOOKING.items():
        # Informative for the label, so the trees split on them and a lost value shows.
        first = rng.random(len(frame)) < np.where(female, 0.85, 0.15)
        frame[name] = np.where(first, values[0], rng.choice(values[1:], size=len(frame)))
    frame.to_csv(root / "in" / "penguins.csv", index=False)
    features = [
        *({"name": name, "type": "category"} for name in TYPED_LOOKING),
        {"name": "bill_depth_mm", "type": "float"},
    ]
    schema = {**SCHEMA, "features": features}
    return {**_prepare_train_serve(root, schema), "names": [f["name"] for f in features]}


def test_typed_looking_category_text_is_scored_as_written_no_skew(
    served_typed: dict[str, Any],
) -> None:
    root = served_typed["root"]
    encoding = json.loads((served_typed["model_dir"] / "metadata" / "categories.json").read_text())[
        "features"
    ]
    # Train fitted the text as the source file wrote it (not '1', '1.5', '...10:00:00').
    for name, values in TYPED_LOOKING.items():
        assert encoding[name] == sorted(values)
    model = model_loading.load_model_dir(
        served_typed["archive_dir"],
        root / "scratch",
        "challenger",
        verified=True,
        trainer="xgboost",
    )
    columns, _ = scoring_data.read_test_set(
        root / "out" / "test", "sex", categories=scoring_data.category_names(model)
    )
    evaluated = scoring_data.predict(model, scoring_data.feature_matrix(model, columns, "x"))
    # The caller sends the raw source rows of the test split (the source file's text).
    with (root / "out" / "test" / "test.csv").open(newline="") as handle:
        rows = [[row[name] for name in served_typed["names"]] for row in csv.DictReader(handle)]
    body = io.StringIO()
    csv.writer(body, lineterminator="\n").writerows(rows)
    assert "True" in body.getvalue() and "1.50" in body.getvalue()
    assert "2024-01-05 10:00" in body.getvalue()
    served_p = np.array(invoke(served_typed, body.getvalue()))
    assert served_p.size == len(rows) > 100
    np.testing.assert_allclose(served_p, evaluated, rtol=0, atol=1e-6)


def test_csv_answers_one_probability_per_line_as_algorithm_mode(served: dict[str, Any]) -> None:
    # sagemaker-containers' encoders.encode(preds, "text/csv") (algorithm mode): array_to_csv
    # reshapes the predictions to one column, so each row's probability is its own line.
    rows = ["Adelie,Dream,38,18,190,3700", "Gentoo,Biscoe,47.5,14.9,215,5000"]
    response = respond(served, "\n".join(rows))  # no Accept: the model's default, text/csv
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    lines = text.split("\n")
    assert len(lines) == 3 and lines[2] == "" and "," not in text
    assert all(0.0 <= float(line) <= 1.0 for line in lines[:2])
