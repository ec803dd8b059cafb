"""The test split a model is scored on: prepare.py's CSV files read and checked (numbers XGBoost
can hold, a binary target with both classes), the split's key column if Prepare wrote one, and
each model's predictions on it. Category features are kept as their canonical text and
encoded for each model with that model's own encoding (`common.categories`), as its endpoint
does: two models trained on different category sets are each fed the codes they learned.

Feature values are kept as float64, exactly as Prepare wrote them: the split's content hash
and the data-shift statistics need the values themselves; XGBoost stores them as float32
either way, so predictions do not change."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa

from common.categories import canonical_array, encode
from common.columns import Source, finite_feature, numbers, read_csv_tables
from common.labels import LabelError, read_classes
from common.problem_types import BINARY
from common.sklearn_predictions import PredictionError
from common.sklearn_predictions import predict as sklearn_predict
from model_loading import EvaluationError, LoadedModel

LOG = logging.getLogger("evaluate")
TEST_SET = Source("test set", EvaluationError)


def csv_files(test_dir: Path) -> list[Path]:
    if not test_dir.is_dir():
        raise EvaluationError(f"test set: directory {test_dir} does not exist")
    files = sorted(p for p in test_dir.rglob("*") if p.is_file() and p.name.endswith(".csv"))
    if not files:
        raise EvaluationError(f"test set: no CSV file in {test_dir}")
    return files


def _float64_feature(table: pa.Table, name: str, source: Source) -> np.ndarray:
    """A feature as float64; values XGBoost could not hold as float32 are refused."""
    finite_feature(table, name, source)
    return numbers(table, name, pa.float64(), source)


def read_test_set(
    test_dir: Path,
    target: str,
    consequence: str = "the models cannot be compared",
    keys: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    binary: bool = True,
    files: list[Path] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Feature columns (by name, file order; float64, the `categories` as canonical text) and
    labels of the CSV files in `test_dir`; the split's key columns `keys` are not features
    (see :func:`read_keys`).

    `consequence` ends the message for a single-class test set. Labels other than `binary`
    ones (class codes, numbers) are returned as they are (float64), only checked present.
    `files`: only these CSV files of the split (default: every one, in name order).
    """
    files = csv_files(test_dir) if files is None else files
    tables, columns = read_csv_tables(files, TEST_SET, tuple(categories))
    parts = [
        (Source(TEST_SET.what, EvaluationError, file.name), table)
        for file, table in zip(files, tables, strict=True)
    ]
    if target not in columns:
        raise EvaluationError(f"test set: no target column {target!r} (columns: {columns})")
    if sum(table.num_rows for _, table in parts) == 0:
        raise EvaluationError("test set: no rows")
    y = np.concatenate([numbers(table, target, pa.float64(), source) for source, table in parts])
    features = {
        name: np.concatenate(
            [
                canonical_array(table.column(name))
                if name in categories
                else _float64_feature(table, name, source)
                for source, table in parts
            ]
        )
        for name in columns
        if name != target and name not in keys
    }
    if not binary:
        if np.isnan(y).any():
            raise EvaluationError(f"test set: target {target!r} is missing in some rows")
        return features, y
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise EvaluationError(f"test set: target {target!r} must be 0 or 1 in every row")
    classes = np.unique(y)
    if classes.size < 2:
        raise EvaluationError(
            f"test set has a single class: all {y.size} rows are {int(classes[0])}; AUC is "
            f"undefined without both classes, so {consequence}"
        )
    return features, y.astype(np.int8)


def read_keys(test_dir: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The split's key columns Prepare wrote into the test split: an id column as text (never
    typed: "007" stays "007"), a time column as numbers. Columns the files lack are left out."""
    import pyarrow.csv as pa_csv

    files = csv_files(test_dir)
    try:
        header = pa_csv.open_csv(files[0]).schema.names
    except (pa.ArrowInvalid, OSError) as error:
        raise EvaluationError(f"test set: cannot read {files[0].name}: {error}") from error
    present = [n for n in names if n in header]
    if not present:
        return {}
    convert = pa_csv.ConvertOptions(
        include_columns=present,
        column_types={name: pa.string() for name in present},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        null_values=[],
    )
    try:
        tables = [pa_csv.read_csv(file, convert_options=convert) for file in files]
    except (pa.ArrowInvalid, OSError) as error:
        raise EvaluationError(
            f"test set: cannot read the key column(s) {present}: {error}"
        ) from error
    table = pa.concat_tables(tables)
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in present}


def feature_matrix(model: LoadedModel, columns: dict[str, np.ndarray], role: str) -> np.ndarray:
    """The test features in the order the model was trained on, or a clear error."""
    available = list(columns)
    if model.feature_names is None:
        expected = model.booster.num_features()
        if expected != len(available):
            raise EvaluationError(
                f"{role} model expects {expected} features without names; the test set has "
                f"{len(available)}: {available}"
            )
        LOG.warning("%s model has no feature names: using the test set's column order", role)
        names = available
    else:
        names = list(model.feature_names)
        missing = [n for n in names if n not in columns]
        extra = [n for n in available if n not in names]
        if missing or extra:
            raise EvaluationError(
                f"{role} model ({model.model_package_arn or model.source}) was trained on "
                f"features {names}; the test set has {available} (missing {missing}, extra "
                f"{extra}): the models cannot be compared on the same rows"
            )
    return model_matrix(model, columns, names)


def check_labels(model: LoadedModel, test_dir: Path, role: str) -> None:
    """Refuse to score a model whose class 1 is not the test labels' class 1 (its AUC would
    be of the other class); either side without a recorded mapping is not checked."""
    try:
        data, data_negative = read_classes(test_dir)
    except LabelError as error:
        raise EvaluationError(f"test set: {error}") from error
    model_negative = model.negative_class
    if data_negative is not None and model_negative is not None and data_negative != model_negative:
        # Labels outside the model's pair: a misspelt class, or another target's values.
        raise EvaluationError(
            f"the test labels' class 0 is {data_negative!r}, but the {role} model "
            f"({model.model_package_arn or model.source}) knows only class 1 = "
            f"{model.positive_class!r} and class 0 = {model_negative!r}: check "
            "schema.positive_class and the target's values"
        )
    if data is not None and model.positive_class is not None and data != model.positive_class:
        raise EvaluationError(
            f"the {role} model ({model.model_package_arn or model.source}) predicts class 1 = "
            f"{model.positive_class!r}, the test labels' class 1 is {data!r} "
            "(schema.positive_class changed): it cannot be scored on these labels"
        )


def category_names(model: LoadedModel) -> tuple[str, ...]:
    """The model's category features (those its encoding holds)."""
    return tuple(model.encoding)


def model_matrix(
    model: LoadedModel, columns: dict[str, np.ndarray], names: list[str]
) -> np.ndarray:
    """The columns `names` as the model takes them: its category features encoded with its
    own encoding (unseen and missing values as NaN), numbers as they are."""
    matrix = []
    for name in names:
        values = columns[name]
        if name in model.encoding:
            text = values if values.dtype == object else canonical_array(values.tolist())
            matrix.append(encode(text, model.encoding[name]).astype(np.float64))
        elif values.dtype == object:
            raise EvaluationError(
                f"the model ({model.model_package_arn or model.source}) takes {name!r} as a "
                "number, the test set holds it as category text: the schema changed its type"
            )
        else:
            matrix.append(values)
    return np.column_stack(matrix)


def predict(model: LoadedModel, matrix: np.ndarray) -> np.ndarray:
    if model.estimator is not None:
        labels = model.metadata.get("labels") or {}
        try:
            return sklearn_predict(
                model.estimator,
                matrix,
                labels.get("problem_type", BINARY),
                len(labels.get("classes") or ()) or 2,
            )
        except PredictionError as error:
            raise EvaluationError(f"{model.source}: {error}") from error
    import xgboost as xgb  # not in the scikit-learn image, which scores scikit-learn models

    if model.encoding:
        data = xgb.DMatrix(
            matrix, feature_types=model.booster.feature_types, enable_categorical=True
        )
    else:
        data = xgb.DMatrix(matrix)
    return model.booster.predict(data, validate_features=False).astype(np.float64)
