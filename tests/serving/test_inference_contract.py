"""The endpoint's inference contract, checked locally against the serving container's code path.

The training job writes one file, `xgboost-model` (an XGBoost Booster saved with
`Booster.save_model`, UBJSON by default in xgboost 3.x), and SageMaker packs `SM_MODEL_DIR` into
`model.tar.gz`. The endpoint runs the SageMaker XGBoost framework image 3.0-5 (xgboost 3.0.5) with
**no entry point**, so the container serves in *algorithm mode*
(aws/sagemaker-xgboost-container, `algorithm_mode/handler_service.py` and `serve_utils.py`):

* model: every regular file in `/opt/ml/model` is loaded as a Booster (pickle first, then
  `Booster.load_model`), `nthread` set to 1; several files are averaged as an ensemble, so the
  archive must hold exactly `xgboost-model` and nothing else (no metrics, no feature lists).
* request: `Content-Type: text/csv` (parameters such as `charset` are ignored, `label_size` must
  be absent or 1). Body = rows of the model's features **in schema order, no header, no label
  column**, numbers only (booleans as 0/1), one row per line; an empty field is a missing value.
  The body is decoded as UTF-8, split on newlines, the delimiter sniffed from the first line,
  every field converted to float, and the matrix handed to `xgboost.DMatrix`.
* prediction: `booster.predict(dmatrix, validate_features=False)`: columns are matched by
  **position**, never by name; the objective is `binary:logistic`, so each value is the
  probability of class 1.
* response: send `Accept: text/csv` (the container's default accept is JSON unless
  SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT says otherwise). Real-time endpoints return **one
  probability per line** (`encoders.encode(preds, "text/csv")`: `array_to_csv` reshapes a 1-D
  prediction to one column, `0.0123\n0.9871\n`); batch transform (SAGEMAKER_BATCH set) also
  returns one probability per line. A multi-class model (`multi:softprob`) answers one line of
  class probabilities per row, comma-separated in real time, a bracketed list under batch;
  a regression model one value per line (see the tests at the end).
* errors: a body that is not numeric CSV, rows of different lengths, or more columns than the
  model was trained on → HTTP 400 with the reason. **Fewer columns are not rejected**: xgboost
  treats the missing trailing columns as missing values and still answers, so callers must
  always send every feature (see `test_too_few_columns_are_silently_treated_as_missing`).
* calibration: the probabilities are on the observed scale; a class weight used in training
  is undone by Platt scaling baked into the booster, so the container (which runs
  `booster.predict` only) serves calibrated values. The decision threshold (predict 1 when
  p >= t) is in the model's metadata and the package's `decision_threshold`; callers apply it.

The helpers prefixed `container_` reproduce that path with the same library version the image
ships; the tests train a small model exactly as the training step saves it and go through it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from pipeline_code import sample_data
from pipeline_code.steps import load

SERVING_XGBOOST_VERSION = "3.0.5"  # SageMaker XGBoost image 3.0-5
MODEL_FILE = "xgboost-model"
FEATURES = (
    "amount",
    "hour",
    "merchant_category",
    "distance_from_home_km",
    "distance_from_last_txn_km",
    "ratio_to_median_amount",
    "used_chip",
    "used_pin",
    "online_order",
    "txn_count_24h",
)
SUPPORTED_CONTENT_TYPES = (
    "text/csv",
    "text/libsvm",
    "text/x-libsvm",
    "application/x-recordio-protobuf",
)


class InferenceError(Exception):
    """What the container turns into an HTTP error response (status and message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


# --- the container's algorithm-mode path ---------------------------------------------------


def container_load(model_dir: Path) -> list[xgb.Booster]:
    """`serve_utils.get_loaded_booster`: every regular file is a model (pickle, else Booster)."""
    boosters = []
    for path in sorted(p for p in model_dir.iterdir() if p.is_file()):
        try:
            with path.open("rb") as handle:
                booster = pickle.load(handle)
        except Exception as pickle_error:
            try:
                booster = xgb.Booster()
                booster.load_model(str(path))
            except Exception as xgb_error:
                raise InferenceError(
                    500, f"Model at {path} cannot be loaded:\n{pickle_error}\n{xgb_error}"
                ) from xgb_error
        booster.set_param("nthread", 1)
        boosters.append(booster)
    return boosters


def container_content_type(content_type: str | None) -> str:
    """`data_utils.get_content_type` for a request: CSV, with label_size absent or 1."""
    value = (content_type or "text/csv").lower()
    media_type, *params = (part.strip() for part in value.split(";"))
    if media_type not in SUPPORTED_CONTENT_TYPES and media_type != "csv":
        raise InferenceError(400, f"{content_type} is not an accepted ContentType")
    if media_type not in ("text/csv", "csv"):
        raise NotImplementedError(f"{media_type}: served by the container, not by this contract")
    label_sizes = [p.split("=", 1)[1] for p in params if p.startswith("label_size=")]
    if label_sizes and label_sizes[0] != "1":
        raise InferenceError(400, f"{content_type} is not an accepted csv ContentType")
    return "csv"


def container_csv_to_dmatrix(body: bytes) -> xgb.DMatrix:
    """`serve_utils.parse_content_data` + `encoder.csv_to_dmatrix` (dtype float)."""
    try:
        payload = body.strip().decode("utf-8")
        sniffed = csv.Sniffer().sniff(payload.split("\n")[0][:512]).delimiter
        delimiter = "," if sniffed.isalnum() else sniffed
        rows = [
            ["nan" if field == "" else field for field in line.split(delimiter)]
            for line in payload.split("\n")
        ]
        return xgb.DMatrix(np.array(rows).astype(float))
    except Exception as err:
        raise InferenceError(
            400,
            "Loading csv data failed with Exception, please ensure data is in csv format:\n"
            f" {type(err)}\n {err}",
        ) from err


def container_predict(boosters: Sequence[xgb.Booster], dmatrix: xgb.DMatrix) -> np.ndarray:
    """`serve_utils.predict` for Booster-format models (no feature checks of its own)."""
    try:
        predictions = [booster.predict(dmatrix, validate_features=False) for booster in boosters]
    except xgb.core.XGBoostError as err:
        raise InferenceError(400, str(err)) from err
    return predictions[0] if len(predictions) == 1 else np.mean(predictions, axis=0)


def container_encode_csv(prediction: np.ndarray, *, batch: bool = False) -> bytes:
    """The CSV answer of algorithm mode, as aws/sagemaker-xgboost-container v3.0-5 (commit
    c988a0e56fa392ed34fa401812d29830e7049cce) writes it in
    src/sagemaker_xgboost_container/algorithm_mode/serve.py `invocations()`:
    `preds_list = preds.tolist()`; under SAGEMAKER_BATCH `"\n".join(map(str, preds_list)) +
    "\n"`, otherwise `encoders.encode(preds_list, accept)`, i.e. sagemaker-containers
    2.8.6.post2 (the image's requirements.txt; aws/sagemaker-containers commit
    150ff4674b268a4c6f9518aefa767892c50e1e94) src/sagemaker_containers/_encoders.py
    `array_to_csv`, reproduced below: a 1-D array becomes one column, a 2-D one (multi-class
    probabilities) one comma-separated line per row."""
    preds_list = prediction.tolist()
    if batch:
        return ("\n".join(map(str, preds_list)) + "\n").encode("utf-8")
    array = np.array(preds_list)
    if len(array.shape) == 1:
        array = np.reshape(array, (array.shape[0], 1))
    stream = io.StringIO()
    writer = csv.writer(
        stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True, strict=True
    )
    writer.writerows(array)
    return stream.getvalue().encode("utf-8")


def invoke(
    model_dir: Path, body: bytes, content_type: str = "text/csv", *, batch: bool = False
) -> bytes:
    """One InvokeEndpoint (or batch transform record) through the container's path."""
    boosters = container_load(model_dir)
    container_content_type(content_type)
    if not body:
        raise InferenceError(204, "no content")
    return container_encode_csv(
        container_predict(boosters, container_csv_to_dmatrix(body)), batch=batch
    )


# --- a model saved the way the training step saves it --------------------------------------


def synthetic_rows(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the 10 features in schema order and a fraud label that depends on them."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.5, 1.0, count)
    hour = rng.integers(0, 24, count)
    category = rng.integers(0, 10, count)
    distance_home = rng.exponential(10.0, count)
    distance_last = rng.exponential(5.0, count)
    ratio = amount / np.median(amount)
    chip, pin, online = (rng.integers(0, 2, count) for _ in range(3))
    txn_count = rng.poisson(3, count)
    features = np.column_stack(
        [amount, hour, category, distance_home, distance_last, ratio, chip, pin, online, txn_count]
    ).astype(float)
    logit = 0.8 * np.log(ratio) + 0.05 * distance_home + 1.2 * online - 1.0 * chip - 2.0
    label = (rng.random(count) < 1 / (1 + np.exp(-logit))).astype(int)
    return features, label


def format_rows(rows: np.ndarray) -> bytes:
    """CSV body: one row per line, no header, integers without a decimal point."""
    lines = [
        ",".join(f"{v:.0f}" if float(v).is_integer() else repr(float(v)) for v in row)
        for row in rows
    ]
    return "\n".join(lines).encode("utf-8")


@pytest.fixture(scope="module")
def model_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.tar.gz as SageMaker uploads it after the training job (SM_MODEL_DIR, tarred)."""
    features, label = synthetic_rows(400, seed=7)
    train = xgb.DMatrix(features, label=label, feature_names=list(FEATURES))
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "nthread": 1, "seed": 42},
        train,
        num_boost_round=25,
    )
    sm_model_dir = tmp_path_factory.mktemp("sm_model_dir")
    with pytest.warns(UserWarning, match="UBJSON"):
        booster.save_model(str(sm_model_dir / MODEL_FILE))
    tarball = tmp_path_factory.mktemp("output") / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(sm_model_dir / MODEL_FILE, arcname=MODEL_FILE)
    return tarball


@pytest.fixture()
def model_dir(model_tarball: Path, tmp_path: Path) -> Iterator[Path]:
    """/opt/ml/model as the endpoint sees it: the archive extracted."""
    target = tmp_path / "opt-ml-model"
    target.mkdir()
    with tarfile.open(model_tarball) as archive:
        archive.extractall(target, filter="data")
    yield target


@pytest.fixture(scope="module")
def requests() -> np.ndarray:
    return synthetic_rows(6, seed=99)[0]


def offline_probabilities(model_dir: Path, rows: np.ndarray) -> np.ndarray:
    """What the evaluation step computes for the same rows (named columns, schema order)."""
    booster = xgb.Booster()
    booster.load_model(str(model_dir / MODEL_FILE))
    return booster.predict(xgb.DMatrix(rows, feature_names=list(FEATURES)))


def parse_csv_response(response: bytes) -> list[float]:
    return [float(line) for line in response.decode("utf-8").splitlines()]


# --- the contract ---------------------------------------------------------------------------


def test_local_library_is_the_serving_image_version() -> None:
    assert xgb.__version__ == SERVING_XGBOOST_VERSION


def test_model_archive_holds_only_the_booster(model_tarball: Path) -> None:
    with tarfile.open(model_tarball) as archive:
        assert archive.getnames() == [MODEL_FILE]


def test_csv_request_returns_one_probability_per_row_one_per_line(
    model_dir: Path, requests: np.ndarray
) -> None:
    response = invoke(model_dir, format_rows(requests))

    assert b"," not in response and response.count(b"\n") == len(requests)
    probabilities = parse_csv_response(response)
    assert len(probabilities) == len(requests)
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    np.testing.assert_allclose(probabilities, offline_probabilities(model_dir, requests), rtol=1e-6)


def test_single_row_request(model_dir: Path, requests: np.ndarray) -> None:
    response = invoke(model_dir, format_rows(requests[:1]) + b"\n", "text/csv; charset=utf-8")

    assert len(parse_csv_response(response)) == 1


def test_batch_transform_returns_one_probability_per_line(
    model_dir: Path, requests: np.ndarray
) -> None:
    response = invoke(model_dir, format_rows(requests), batch=True)

    lines = response.decode("utf-8").splitlines()
    assert len(lines) == len(requests)
    assert all(0.0 <= float(line) <= 1.0 for line in lines)


def test_columns_are_matched_by_position_not_name(model_dir: Path, requests: np.ndarray) -> None:
    swapped = requests[:, [1, 0, *range(2, len(FEATURES))]]

    in_order = parse_csv_response(invoke(model_dir, format_rows(requests)))
    out_of_order = parse_csv_response(invoke(model_dir, format_rows(swapped)))

    assert in_order != out_of_order


def test_empty_field_is_a_missing_value(model_dir: Path, requests: np.ndarray) -> None:
    fields = format_rows(requests[:1]).decode().split(",")
    fields[3] = ""

    probabilities = parse_csv_response(invoke(model_dir, ",".join(fields).encode()))

    expected = requests[:1].copy()
    expected[0, 3] = np.nan
    np.testing.assert_allclose(probabilities, offline_probabilities(model_dir, expected), rtol=1e-6)


def test_empty_body_is_no_content(model_dir: Path) -> None:
    with pytest.raises(InferenceError) as raised:
        invoke(model_dir, b"")

    assert raised.value.status == 204


def test_too_many_columns_fail_clearly(model_dir: Path, requests: np.ndarray) -> None:
    wider = np.column_stack([requests, np.ones(len(requests))])

    with pytest.raises(InferenceError) as raised:
        invoke(model_dir, format_rows(wider))

    assert raised.value.status == 400
    assert "Number of columns does not match number of features in booster" in str(raised.value)


def test_too_few_columns_are_silently_treated_as_missing(
    model_dir: Path, requests: np.ndarray
) -> None:
    """A contract hazard, pinned: the container does not reject a short row."""
    narrower = requests[:, :-1]

    probabilities = parse_csv_response(invoke(model_dir, format_rows(narrower)))

    padded = np.column_stack([narrower, np.full(len(requests), np.nan)])
    np.testing.assert_allclose(probabilities, offline_probabilities(model_dir, padded), rtol=1e-6)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            ",".join(FEATURES).encode() + b"\n" + b"1," * 9 + b"1",
            "could not convert string to float",
        ),
        (b"1,2,3,4,5,6,7,8,9,10\n1,2,3", "inhomogeneous"),
        (b"12.5,3,1,2.0,1.0,0.9,true,false,1,2", "could not convert string to float"),
        (b"\xff\xfe1,2", "codec can't decode"),
    ],
    ids=["header-row", "ragged-rows", "boolean-words", "not-utf8"],
)
def test_bad_csv_body_fails_clearly(model_dir: Path, body: bytes, needle: str) -> None:
    with pytest.raises(InferenceError) as raised:
        invoke(model_dir, body)

    assert raised.value.status == 400
    assert "please ensure data is in csv format" in str(raised.value)
    assert needle in str(raised.value)


@pytest.mark.parametrize("content_type", ["application/json", "text/csv; label_size=0"])
def test_unsupported_content_type_fails_clearly(
    model_dir: Path, requests: np.ndarray, content_type: str
) -> None:
    with pytest.raises(InferenceError, match="is not an accepted") as raised:
        invoke(model_dir, format_rows(requests), content_type)

    assert raised.value.status == 400


def test_extra_file_next_to_the_model_breaks_loading(model_dir: Path) -> None:
    (model_dir / "metrics.json").write_text('{"auc": 0.91}')

    with pytest.raises(InferenceError, match="metrics.json cannot be loaded"):
        container_load(model_dir)


# --- calibrated probabilities: what the training step serves --------------------------------


@pytest.fixture(scope="module")
def weighted_training(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The real prepare and train steps with a class weight (`scale_pos_weight balanced`):
    returns (/opt/ml/model as the endpoint sees it, prepare's output)."""
    root = tmp_path_factory.mktemp("weighted")
    sample_data.write(sample_data.generate(12_000, 17), root / "in" / "data.csv")
    schema = json.dumps(sample_data.sample_schema())
    arguments = ["--input-dir", str(root / "in"), "--output-dir", str(root / "out")]
    assert load("prepare").main([*arguments, "--schema", schema]) == 0
    environment = {
        "SM_CHANNEL_TRAIN": str(root / "out" / "train"),
        "SM_CHANNEL_VALIDATION": str(root / "out" / "validation"),
        "SM_MODEL_DIR": str(root / "sm_model_dir"),
    }
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        arguments = ["--scale_pos_weight", "balanced", "--checkpoint_dir", str(root / "c")]
        assert load("train").main(arguments) == 0
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    tarball = root / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        for item in sorted((root / "sm_model_dir").iterdir()):
            archive.add(item, arcname=item.name)
    served = root / "opt-ml-model"
    with tarfile.open(tarball) as archive:
        archive.extractall(served, filter="data")
    return served, root / "out"


def test_a_class_weighted_model_serves_calibrated_probabilities(
    weighted_training: tuple[Path, Path],
) -> None:
    """Training with scale_pos_weight = negatives/positives inflates the probabilities about
    tenfold; the served booster has Platt scaling baked in, so the container returns
    probabilities on the observed scale with no code of ours in the endpoint."""
    served, prepared = weighted_training
    metadata = json.loads((served / "metadata" / "model-metadata.json").read_text())
    assert metadata["scale_pos_weight"] > 10 and metadata["calibration"]["method"] == "platt"
    assert [p.name for p in served.iterdir() if p.is_file()] == [MODEL_FILE]

    test = pd.read_csv(prepared / "test" / "test.csv")
    rows = test[list(FEATURES)].to_numpy(dtype=float)
    served_p = np.array(parse_csv_response(invoke(served, format_rows(rows))))
    labels = test["is_fraud"].to_numpy()

    assert served_p.mean() == pytest.approx(labels.mean(), abs=0.01)
    # Reliability in 5 equal-count bins: predicted and observed rates agree.
    order = np.argsort(served_p)
    for chunk in np.array_split(order, 5):
        assert served_p[chunk].mean() == pytest.approx(labels[chunk].mean(), abs=0.03)
    # The decision threshold is chosen on these probabilities: the caller applies p >= t.
    threshold = metadata["decision_threshold"]
    assert 0.05 < threshold < 0.6
    assert ((served_p >= threshold) & (labels == 1)).sum() > 0


# --- per problem type in algorithm mode (no category feature) -------------------------------

CLASSES = 3


@pytest.fixture(scope="module", params=["multiclass", "regression"])
def typed_model_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """/opt/ml/model holding one Booster of the type (multi:softprob over 3 classes, or
    reg:squarederror), saved as the training step saves it."""
    features, _ = synthetic_rows(600, seed=11)
    if request.param == "multiclass":
        label = np.digitize(features[:, 5], np.quantile(features[:, 5], [1 / 3, 2 / 3]))
        params = {"objective": "multi:softprob", "num_class": CLASSES}
    else:
        label = 20.0 * features[:, 5] + features[:, 3]
        params = {"objective": "reg:squarederror"}
    train = xgb.DMatrix(features, label=label, feature_names=list(FEATURES))
    booster = xgb.train(
        params | {"max_depth": 3, "eta": 0.3, "nthread": 1, "seed": 42}, train, num_boost_round=20
    )
    model_dir = tmp_path_factory.mktemp(f"{request.param}-model")
    with pytest.warns(UserWarning, match="UBJSON"):
        booster.save_model(str(model_dir / MODEL_FILE))
    return request.param, model_dir


def test_real_time_csv_per_problem_type(
    typed_model_dir: tuple[str, Path], requests: np.ndarray
) -> None:
    """README, inference contract: a multi-class model answers each row's class
    probabilities on one comma-separated line (no brackets), a regression model the
    predicted value, one per line."""
    kind, model_dir = typed_model_dir
    offline = offline_probabilities(model_dir, requests)
    text = invoke(model_dir, format_rows(requests)).decode("utf-8")
    assert text.endswith("\n") and "[" not in text
    lines = text.splitlines()
    assert len(lines) == len(requests)
    answered = np.array([[float(v) for v in line.split(",")] for line in lines])
    if kind == "multiclass":
        assert answered.shape == (len(requests), CLASSES)
        np.testing.assert_allclose(answered.sum(axis=1), 1.0, rtol=1e-5)
    else:
        assert answered.shape == (len(requests), 1)
    np.testing.assert_allclose(answered.reshape(offline.shape), offline, rtol=1e-6)


def test_batch_csv_per_problem_type(
    typed_model_dir: tuple[str, Path], requests: np.ndarray
) -> None:
    """README: under batch transform a multi-class row is a bracketed list
    (`[0.01, 0.97, 0.02]`), one per line; a regression value one per line."""
    kind, model_dir = typed_model_dir
    offline = offline_probabilities(model_dir, requests)
    lines = invoke(model_dir, format_rows(requests), batch=True).decode("utf-8").splitlines()
    assert len(lines) == len(requests)
    if kind == "multiclass":
        assert all(line.startswith("[") and line.endswith("]") for line in lines)
        answered = np.array([json.loads(line) for line in lines])
        assert answered.shape == (len(requests), CLASSES)
    else:
        answered = np.array([float(line) for line in lines])
    np.testing.assert_allclose(answered, offline, rtol=1e-6)
