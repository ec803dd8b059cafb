"""The endpoint's inference script for a model with category features (SageMaker XGBoost
container, script mode; Train copies it into the model archive as `code/inference.py`), and
for every scikit-learn model (`pipeline.trainer = sklearn`: the SageMaker scikit-learn
container, script mode, the same contract; the metadata's `trainer` says which model to load).

The container (sagemaker_xgboost_container.serving, sagemaker-containers' Transformer) calls:

    model_fn(model_dir)                          once per worker: the booster, its feature order
                                                 and types, and the category encoding fitted on
                                                 the training split
    transform_fn(model, body, content_type, accept)  per request: the response

`transform_fn` rather than input_fn/predict_fn/output_fn (the container refuses both styles
together): with those, a refused request raised from input_fn or predict_fn is an HTTP 500
(only UnsupportedFormatError maps to 415/406), which would feed the endpoint's 5xx rollback
alarm. Here a request outside the contract is answered 400 (415 for the Content-Type, 406 for
the Accept) with the one-line reason as text/plain; an error of the model itself stays a 500.

Request contract (as for a model without categories, plus text categories):
`Content-Type: text/csv`, no header, the features in schema order, one row per line. Numbers
as numbers, booleans as 0/1 or true/false, a category as its value as written in the data
(`Adelie`, or an integer code); quote a value that holds a comma. An empty field (or NA, NaN,
null, None) is a missing value. A category value the training split never had is treated as
missing, exactly as Evaluate scored it (`common.categories`): no error, no crash. A row with
another number of fields, or a number field that is not a number, is refused naming the row
and the column. Response: `Accept: text/csv` gives one line per row: the probability of
class 1 (binary, as the container answers in algorithm mode), the predicted value
(regression), or the class probabilities, comma-separated in the class order the model's
metadata records (multi-class); `application/json` gives `{"predictions": [...]}` (a list
per row for a multi-class model), each labelled with its content type (a bare
string would be labelled text/html, and data capture would store it base64). Without an Accept
header the handler asks for SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, which the registered model
sets to text/csv (script mode would otherwise default to JSON).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import flask
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.categories import canonical, encode, read_encoding  # noqa: E402

MODEL_FILE = "xgboost-model"
SKLEARN_MODEL_FILE = "model.joblib"
METADATA_DIR = "metadata"
METADATA_FILE = "model-metadata.json"
CSV = "text/csv"
JSON = "application/json"
_BOOLS = {"true": 1.0, "false": 0.0}


class RequestError(ValueError):
    """The request is not in the contract; the message names the row and the column.

    Attributes:
        status: The HTTP status the endpoint answers with.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def model_fn(model_dir: str) -> dict[str, Any]:
    """The booster (or estimator), its features (names, types) and the fitted encoding."""
    metadata_dir = os.path.join(model_dir, METADATA_DIR)
    with open(os.path.join(metadata_dir, METADATA_FILE), encoding="utf-8") as handle:
        metadata = json.load(handle)
    if metadata.get("trainer") == "sklearn":
        import joblib
        import sklearn

        # A pickle is loaded only by the scikit-learn version that wrote it (as in Evaluate).
        if metadata.get("sklearn_version") != sklearn.__version__:
            raise RuntimeError(
                f"the model was trained with scikit-learn {metadata.get('sklearn_version')}; "
                f"this image has {sklearn.__version__}: serve it with the image that trained it"
            )
        # The archive this endpoint was created from, written by the training job.
        estimator = joblib.load(os.path.join(model_dir, SKLEARN_MODEL_FILE))
        booster = None
    else:
        import xgboost as xgb

        booster, estimator = xgb.Booster(), None
        booster.load_model(os.path.join(model_dir, MODEL_FILE))
        booster.set_param({"nthread": 1})
    labels = metadata.get("labels") or {}
    return {
        "booster": booster,
        "estimator": estimator,
        "problem_type": labels.get("problem_type", "binary"),
        "n_classes": len(labels.get("classes") or ()) or 2,
        "features": list(metadata["feature_names"]),
        "types": list(metadata["feature_types"]),
        "encoding": read_encoding(Path(metadata_dir)),
    }


def transform_fn(
    model: dict[str, Any], body: bytes | str, content_type: str | None, accept: str | None
) -> tuple[str, str] | flask.Response:
    """One request: (body, content type) for the container to send, or the refusal (400, 415
    or 406, text/plain, the reason in one line)."""
    try:
        kind = _accepted(accept)
        return _encode(_predict(_rows(body, content_type), model), kind)
    except RequestError as error:
        return flask.Response(f"{error}\n", status=error.status, mimetype="text/plain")


def _accepted(accept: str | None) -> str:
    kind = (accept or CSV).split(";")[0].strip().lower()
    if kind in (CSV, "*/*"):
        return CSV
    if kind == JSON:
        return JSON
    raise RequestError(f"Accept {accept!r} is not supported: use {CSV} or {JSON}", 406)


def _rows(body: bytes | str, content_type: str | None) -> list[list[str]]:
    """The CSV rows of the request as text fields (blank lines skipped)."""
    if (content_type or "").split(";")[0].strip().lower() != CSV:
        raise RequestError(f"Content-Type {content_type!r} is not supported: use {CSV}", 415)
    try:
        text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except (UnicodeDecodeError, csv.Error) as error:
        raise RequestError(f"the request is not UTF-8 CSV text: {error}") from None
    if not rows:
        raise RequestError("the request holds no rows")
    return rows


def _number(field: str, row: int, column: str) -> float:
    value = canonical(field)
    if value is None:
        return math.nan
    if value.lower() in _BOOLS:
        return _BOOLS[value.lower()]
    try:
        return float(value)
    except ValueError:
        raise RequestError(
            f"row {row}: column {column!r} must be a number, got {field[:40]!r}"
        ) from None


def _predict(rows: list[list[str]], model: dict[str, Any]) -> np.ndarray:
    """The booster's predictions (one per row, or one row of class probabilities per row),
    with the training split's encoding."""
    features, types, encoding = model["features"], model["types"], model["encoding"]
    for index, row in enumerate(rows, start=1):
        if len(row) != len(features):
            raise RequestError(
                f"row {index} has {len(row)} field(s); the model takes {len(features)}: "
                + ", ".join(features)
            )
    columns = []
    for position, (name, kind) in enumerate(zip(features, types, strict=True)):
        fields = [row[position] for row in rows]
        if kind == "c":
            text = np.array([canonical(v) for v in fields], dtype=object)
            columns.append(encode(text, encoding[name]))
        else:
            values = [_number(v, i, name) for i, v in enumerate(fields, start=1)]
            # float64 as Evaluate scores them (XGBoost stores float32 either way)
            columns.append(np.array(values, dtype=np.float64))
    matrix = np.column_stack(columns)
    if model.get("estimator") is not None:
        from common.sklearn_predictions import predict

        return predict(model["estimator"], matrix, model["problem_type"], model["n_classes"])
    import xgboost as xgb

    data = xgb.DMatrix(matrix, feature_names=features, feature_types=types, enable_categorical=True)
    return model["booster"].predict(data)


def _encode(prediction: np.ndarray, kind: str) -> tuple[str, str]:
    """The body and its content type: one line per row (text/csv) or {"predictions": [...]}
    (JSON). A row is one number (binary: the probability of class 1; regression: the value)
    or, for a multi-class model, its class probabilities in the recorded class order."""
    if prediction.ndim == 2:
        if kind == CSV:
            lines = (",".join(repr(float(p)) for p in row) + "\n" for row in prediction)
            return "".join(lines), CSV
        rows = [[float(p) for p in row] for row in prediction]
        return json.dumps({"predictions": rows}), JSON
    if kind == CSV:
        return "".join(f"{float(p)!r}\n" for p in prediction), CSV
    return json.dumps({"predictions": [float(p) for p in prediction]}), JSON
