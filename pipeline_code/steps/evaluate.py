"""Evaluate step (SageMaker Processing job): challenger vs champion on the same test split.

Scores the newly trained model (the challenger: `--model-dir` holding `model.tar.gz` or
`xgboost-model`) on the test split written by prepare.py, and the model now in production (the
champion) on the very same rows. The champion comes from `--champion-model-dir` (a local
directory), from `--champion-model-package-arn` (the package that was in production when the
run started, chosen by the start-training Lambda: the pipeline's ChampionModelPackageArn
parameter, so the step's cache key changes with the champion; `none`: no champion), or from
the model registry at run time: the newest *Approved* package of `--model-package-group`.
A registered champion's `ModelDataUrl` is downloaded from S3. No champion (none of these, the
value `none`, or no approved package) means only the metric floor applies in the gate.

The difference in the gate metric is given with a paired bootstrap 95 % confidence interval:
both models are scored on the same resampled rows in every bootstrap sample, so the interval
reflects the difference between the models, not the noise of the test set twice.

Writes to `--output-dir`: evaluation.json (SageMaker model-quality layout plus a `gate`
section, see the key constants below), roc.png and confusion_matrix.png (when matplotlib is
available; it is in the SageMaker XGBoost 3.0-5 container).

Score-one-model mode (the evaluation-only pipeline): `--model-package-arn ARN` scores that
registered package, `--model-package-arn latest` (or an empty value) the newest Approved package
of `--model-package-group`, i.e. the production model; there is no challenger, no `--model-dir`
and no gate. evaluation.json has the same `binary_classification_metrics` section plus `model`
and `dataset` sections. With `--metrics-namespace NS` the metrics are also published to
CloudWatch (PutMetricData): AUC, Accuracy, Precision, Recall, F1, LogLoss (unit None) and
RowsEvaluated (Count), each with the dimensions [ModelPackageGroup] and
[ModelPackageGroup, ModelVersion] (alarms use the first: it stays fixed as versions change).

On failure: exit code 1, the reason on stderr and in /opt/ml/output/message (the job's
ExitMessage; override with the FAILURE_REASON_FILE environment variable).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import re
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import xgboost as xgb

LOG = logging.getLogger("evaluate")

# evaluation.json layout: the definition generator and gate.py read these names from here.
EVALUATION_FILE = "evaluation.json"
METRICS_KEY = "binary_classification_metrics"
CHAMPION_METRICS_KEY = "champion_binary_classification_metrics"
GATE_KEY = "gate"
GATE_METRIC = "metric"
GATE_CHALLENGER = "challenger"
GATE_CHAMPION = "champion"
GATE_HAS_CHAMPION = "has_champion"
GATE_DELTA = "delta"
GATE_DELTA_CI_LOW = "delta_ci_low"
GATE_DELTA_CI_HIGH = "delta_ci_high"
GATE_CHAMPION_ARN = "champion_model_package_arn"
GATE_TEST_ROWS = "test_rows"
ROC_PLOT = "roc.png"
CONFUSION_MATRIX_PLOT = "confusion_matrix.png"
# Score-one-model mode: which package was scored, on which data, what went to CloudWatch.
MODEL_KEY = "model"
DATASET_KEY = "dataset"
PUBLISHED_METRICS_KEY = "cloudwatch"
#: `--model-package-arn` value (as is an empty one) meaning the group's newest Approved package.
LATEST = "latest"
#: `--champion-model-package-arn` value: there was no approved package when the run started.
NO_CHAMPION = "none"

# CloudWatch model-quality metrics (score-one-model mode); alarms and dashboards use these names.
CW_DIMENSION_GROUP = "ModelPackageGroup"
CW_DIMENSION_VERSION = "ModelVersion"
CW_METRIC_AUC = "AUC"
CW_METRIC_ACCURACY = "Accuracy"
CW_METRIC_PRECISION = "Precision"
CW_METRIC_RECALL = "Recall"
CW_METRIC_F1 = "F1"
CW_METRIC_LOG_LOSS = "LogLoss"
CW_METRIC_ROWS = "RowsEvaluated"
#: CloudWatch metric name -> key in the metrics section (all unit "None").
CW_QUALITY_METRICS = (
    (CW_METRIC_AUC, "auc"),
    (CW_METRIC_ACCURACY, "accuracy"),
    (CW_METRIC_PRECISION, "precision"),
    (CW_METRIC_RECALL, "recall"),
    (CW_METRIC_F1, "f1"),
    (CW_METRIC_LOG_LOSS, "log_loss"),
)

DEFAULT_MODEL_DIR = "/opt/ml/processing/model"
DEFAULT_TEST_DIR = "/opt/ml/processing/test"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/evaluation"
# A Processing job reports the first 1 KB of this file as ExitMessage (DescribeProcessingJob).
DEFAULT_FAILURE_FILE = "/opt/ml/output/message"
FAILURE_FILE_ENV = "FAILURE_REASON_FILE"
FAILURE_MESSAGE_MAX_BYTES = 1024

MODEL_FILE = "xgboost-model"
MODEL_ARCHIVE = "model.tar.gz"
METADATA_PATH = "metadata/model-metadata.json"
GATE_METRICS = ("auc", "f1", "accuracy", "precision", "recall")
#: Probability above which a row is labelled 1, as the SageMaker XGBoost container does.
THRESHOLD = 0.5
CONFIDENCE = 0.95
ROC_MAX_POINTS = 201
#: Bootstrap samples are drawn in chunks of about this many row indices (bounded memory).
BOOTSTRAP_CHUNK_CELLS = 4_000_000
LOG_LOSS_EPS = 1e-15


class EvaluationError(Exception):
    """The model, the test set or the champion is not usable; the message says why."""


# ----------------------------------------------------------------------------- models


@dataclass
class LoadedModel:
    booster: xgb.Booster
    feature_names: list[str] | None
    source: str
    model_package_arn: str | None = None
    model_package_group: str | None = None
    model_package_version: int | None = None
    approval_status: str | None = None


def _extract(archive_path: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    try:
        with tarfile.open(archive_path, "r:*") as archive:
            members = archive.getmembers()
            for member in members:
                target = (root / member.name).resolve()
                unsafe = member.issym() or member.islnk() or member.isdev()
                if unsafe or not (target == root or root in target.parents):
                    raise EvaluationError(
                        f"{archive_path.name}: refusing to extract {member.name!r} "
                        "(link or path outside the archive)"
                    )
            regular = [m for m in members if m.isfile() or m.isdir()]
            if hasattr(tarfile, "data_filter"):
                # Checked above already; the "data" filter repeats it where Python has it.
                archive.extractall(root, members=regular, filter="data")
            else:
                archive.extractall(root, members=regular)
    except (tarfile.TarError, OSError, EOFError) as error:
        # tarfile lists what it tried on separate lines; the reason is kept to one line.
        detail = " ".join(line.strip() for line in str(error).splitlines())
        raise EvaluationError(f"{archive_path}: not a readable model archive: {detail}") from error


def load_model_dir(directory: Path, scratch: Path, role: str) -> LoadedModel:
    """Load the booster from `directory`: `model.tar.gz` (unpacked) or `xgboost-model`."""
    if not directory.is_dir():
        raise EvaluationError(f"{role} model: directory {directory} does not exist")
    archives = sorted(directory.glob("*.tar.gz"))
    root = directory
    if (directory / MODEL_ARCHIVE).is_file() or len(archives) == 1:
        archive = (
            directory / MODEL_ARCHIVE if (directory / MODEL_ARCHIVE).is_file() else archives[0]
        )
        root = scratch / f"{role}-model"
        _extract(archive, root)
    model_file = root / MODEL_FILE
    if not model_file.is_file():
        files = sorted(p.name for p in root.iterdir() if p.is_file())
        if len(files) != 1:
            raise EvaluationError(
                f"{role} model: no {MODEL_FILE} in {directory} (expected {MODEL_ARCHIVE} or "
                f"{MODEL_FILE}; found {files or 'nothing'})"
            )
        model_file = root / files[0]
    booster = _load_booster(model_file, role)
    names = list(booster.feature_names) if booster.feature_names else None
    metadata_file = root / METADATA_PATH
    if names is None and metadata_file.is_file():
        names = json.loads(metadata_file.read_text(encoding="utf-8")).get("feature_names")
    return LoadedModel(booster=booster, feature_names=names, source=str(directory))


def _load_booster(path: Path, role: str) -> xgb.Booster:
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(path.read_bytes()))
        return booster
    except xgb.core.XGBoostError as native_error:
        # Models registered from the built-in algorithm may be pickled boosters.
        try:
            with path.open("rb") as handle:
                loaded = pickle.load(handle)
        except Exception as pickle_error:
            raise EvaluationError(
                f"{role} model file {path.name} is not a valid XGBoost model: "
                f"{xgboost_message(native_error)} (nor a pickled booster: "
                f"{xgboost_message(pickle_error)})"
            ) from native_error
    if isinstance(loaded, xgb.XGBModel):
        loaded = loaded.get_booster()
    if not isinstance(loaded, xgb.Booster):
        raise EvaluationError(f"{role} model {path.name} is a pickled {type(loaded).__name__}")
    return loaded


def xgboost_message(error: BaseException, limit: int = 300) -> str:
    """The first line of an error (at most `limit` characters), without the timestamp and
    source location XGBoost puts before it; XGBoost's native stack trace follows that line
    and would fill the 1 KB failure reason."""
    lines = str(error).strip().splitlines()
    if not lines:
        return type(error).__name__
    line = re.sub(r"^\[[\d:]+\]\s*(\S+:\d+:\s*)?", "", lines[0])
    return line if len(line) <= limit else line[: limit - 3] + "..."


#: DescribeModelPackage's ModelPackageName: an ARN or a name, optionally with "/<version>".
_PACKAGE_NAME_RE = re.compile(
    r"^(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:model-package/)?"
    r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}(/[0-9]{1,9})?$"
)


def latest_approved_package(group: str, sagemaker_client: Any, role: str) -> str | None:
    """ARN of the newest Approved package of `group`, or None if it has none."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        listing = sagemaker_client.list_model_packages(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )
    except (ClientError, BotoCoreError) as error:
        raise EvaluationError(
            f"cannot look up the {role} in model package group {group!r}: {error}"
        ) from error
    summaries = listing.get("ModelPackageSummaryList", [])
    return str(summaries[0]["ModelPackageArn"]) if summaries else None


def load_registered_model(
    package_name: str, sagemaker_client: Any, s3_client: Any, scratch: Path, role: str
) -> LoadedModel:
    """Describe a model package, download its model data from S3 and load the booster."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        package = sagemaker_client.describe_model_package(ModelPackageName=package_name)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("ValidationException", "ResourceNotFound"):
            raise EvaluationError(
                f"{role} model package {package_name} does not exist or is not visible to "
                f"this role: {error}"
            ) from error
        raise EvaluationError(
            f"cannot describe the {role} model package {package_name}: {error}"
        ) from error
    except BotoCoreError as error:
        raise EvaluationError(
            f"cannot describe the {role} model package {package_name}: {error}"
        ) from error
    arn = package.get("ModelPackageArn", package_name)
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    if not containers:
        raise EvaluationError(f"{role} {arn} has no inference container to take a model from")
    container = containers[0]
    url = container.get("ModelDataUrl")
    source = container.get("ModelDataSource", {}).get("S3DataSource", {})
    if not url and source.get("S3Uri"):
        url = source["S3Uri"]
    if not url or not url.startswith("s3://"):
        raise EvaluationError(f"{role} {arn} has no S3 model data (ModelDataUrl = {url!r})")
    bucket, _, key = url[len("s3://") :].partition("/")
    download_dir = scratch / f"{role}-download"
    download_dir.mkdir(parents=True, exist_ok=True)
    try:
        if key.endswith(".tar.gz") or source.get("CompressionType") == "Gzip":
            s3_client.download_file(bucket, key, str(download_dir / MODEL_ARCHIVE))
        else:
            # Uncompressed model data: an S3 prefix holding the model file.
            prefix = key.rstrip("/") + "/"
            s3_client.download_file(bucket, prefix + MODEL_FILE, str(download_dir / MODEL_FILE))
    except (ClientError, BotoCoreError) as error:
        raise EvaluationError(f"cannot download the {role} model {url}: {error}") from error
    LOG.info("%s: %s (%s)", role, arn, url)
    model = load_model_dir(download_dir, scratch, role)
    model.model_package_arn = arn
    model.model_package_group = package.get("ModelPackageGroupName")
    model.model_package_version = package.get("ModelPackageVersion")
    model.approval_status = package.get("ModelApprovalStatus")
    model.source = url
    return model


def resolve_champion(
    group: str, sagemaker_client: Any, s3_client: Any, scratch: Path
) -> LoadedModel | None:
    """The newest Approved package of `group`, downloaded and loaded; None if there is none."""
    arn = latest_approved_package(group, sagemaker_client, "champion")
    if arn is None:
        LOG.info("no approved model package in %s: no champion", group)
        return None
    return load_registered_model(arn, sagemaker_client, s3_client, scratch, "champion")


# ------------------------------------------------------------------------------- data


def read_test_set(
    test_dir: Path, target: str, consequence: str = "the models cannot be compared"
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Feature columns (by name, file order; float32) and labels of the CSV files in
    `test_dir`.

    `consequence` ends the message for a single-class test set.
    """
    if not test_dir.is_dir():
        raise EvaluationError(f"test set: directory {test_dir} does not exist")
    files = sorted(p for p in test_dir.rglob("*") if p.is_file() and p.name.endswith(".csv"))
    if not files:
        raise EvaluationError(f"test set: no CSV file in {test_dir}")
    parts = [(file, _read_test_file(file)) for file in files]
    columns = parts[0][1].column_names
    for file, table in parts:
        if table.column_names != columns:
            raise EvaluationError(
                f"test set: {file.name} has columns {table.column_names}, {files[0].name} "
                f"has {columns}"
            )
    if target not in columns:
        raise EvaluationError(f"test set: no target column {target!r} (columns: {columns})")
    if sum(table.num_rows for _, table in parts) == 0:
        raise EvaluationError("test set: no rows")
    y = np.concatenate([_numbers(table, target, file, pa.float64()) for file, table in parts])
    features = {
        name: np.concatenate([_finite_feature(table, name, file) for file, table in parts])
        for name in columns
        if name != target
    }
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise EvaluationError(f"test set: target {target!r} must be 0 or 1 in every row")
    classes = np.unique(y)
    if classes.size < 2:
        raise EvaluationError(
            f"test set has a single class: all {y.size} rows are {int(classes[0])}; AUC is "
            f"undefined without both classes, so {consequence}"
        )
    return features, y.astype(np.int8)


def _read_test_file(file: Path) -> pa.Table:
    """One CSV file of the test set, refusing duplicate column names."""
    try:
        table = pa_csv.read_csv(file)
        # pyarrow decodes the column names only when asked: a non-UTF-8 header fails here.
        names = table.column_names
    except UnicodeDecodeError as error:
        raise EvaluationError(
            f"test set: cannot read {file.name}: not UTF-8 text ({error})"
        ) from error
    except (pa.ArrowInvalid, OSError) as error:
        raise EvaluationError(f"test set: cannot read {file.name}: {error}") from error
    duplicates = sorted({c for c in names if names.count(c) > 1})
    if duplicates:
        raise EvaluationError(f"test set: {file.name} has column(s) {duplicates} more than once")
    return table


def _numbers(table: pa.Table, column: str, file: Path, kind: pa.DataType) -> np.ndarray:
    """A column as numbers of `kind`, NaN where missing; text is refused naming the column."""
    try:
        # Unchecked: an int beyond 2**24 rounds to the nearest float32 (as XGBoost would
        # store it) instead of failing; a float beyond float32 becomes inf, refused later.
        return table.column(column).cast(kind, safe=False).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise EvaluationError(
            f"test set: column {column!r} in {file.name} must hold numbers: {error}"
        ) from error


def _finite_feature(table: pa.Table, column: str, file: Path) -> np.ndarray:
    """A feature column as float32; infinite values (XGBoost refuses them) are refused here."""
    values = _numbers(table, column, file, pa.float32())
    infinite = np.isinf(values)
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        raise EvaluationError(
            f"test set: column {column!r} has {int(infinite.sum())} value(s) in {file.name} "
            f"that are infinite or beyond the float32 range XGBoost stores features in "
            f"(magnitude at most {np.finfo(np.float32).max:.7g}), e.g. "
            f"{table.column(column)[first].as_py()!r} in row {first + 1}"
        )
    return values


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
    return np.column_stack([columns[n] for n in names])


def predict(model: LoadedModel, matrix: np.ndarray) -> np.ndarray:
    data = xgb.DMatrix(matrix)
    return model.booster.predict(data, validate_features=False).astype(np.float64)


# ---------------------------------------------------------------------------- metrics


def point_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """Metrics on the whole test set (scikit-learn), labels at probability > THRESHOLD."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
        roc_curve,
    )

    predicted = (p > THRESHOLD).astype(np.int8)
    fpr, tpr, _ = roc_curve(y, p)
    if fpr.size > ROC_MAX_POINTS:
        grid = np.linspace(0.0, 1.0, ROC_MAX_POINTS)
        fpr, tpr = grid, np.interp(grid, fpr, tpr)
    matrix = confusion_matrix(y, predicted, labels=[0, 1])
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS))),
        "confusion_matrix": {
            str(actual): {str(pred): int(matrix[actual, pred]) for pred in (0, 1)}
            for actual in (0, 1)
        },
        "roc": {"false_positive_rates": fpr.tolist(), "true_positive_rates": tpr.tolist()},
    }


SCALAR_METRICS = ("accuracy", "precision", "recall", "f1", "auc", "log_loss")


def bootstrap_weights(rows: int, samples: int, seed: int) -> Iterator[np.ndarray]:
    """Resampling counts (samples x rows, in chunks): row i drawn w[b, i] times in sample b.

    Drawing row indices with replacement and counting them is exactly the classic bootstrap;
    counts let every metric be computed for a whole chunk of samples with array operations.
    Counting row by row keeps the scatter within one row's counts, which stays in cache.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, BOOTSTRAP_CHUNK_CELLS // rows)
    dtype = _weight_dtype(rows)
    for start in range(0, samples, chunk):
        k = min(chunk, samples - start)
        drawn = rng.integers(0, rows, size=(k, rows), dtype=np.int64 if rows >= 2**31 else np.int32)
        counts: np.ndarray = np.empty((k, rows), dtype=dtype)
        for row in range(k):
            counts[row] = np.bincount(drawn[row], minlength=rows)
        yield counts


def _weight_dtype(rows: int) -> type:
    # float32 holds every count and running sum exactly below 2**24 and halves memory traffic.
    return np.float32 if rows < 2**23 else np.float64


class BootstrapScorer:
    """Metric values of one model's scores under a chunk of bootstrap weights."""

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        dtype = _weight_dtype(y.size)
        self.order = np.argsort(p, kind="stable")
        sorted_p = p[self.order]
        # Positions (in score order) of the positive rows: the AUC counts, for each of them,
        # the negatives ranked below.
        self.positive_at = np.flatnonzero(y[self.order] == 1)
        self.positive_rows = self.order[self.positive_at]
        # Rows with equal scores count half. Ties are rare among a booster's outputs, so
        # they are corrected afterwards instead of grouping every row.
        starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
        sizes = np.diff(np.r_[starts, sorted_p.size])
        tied_positive = np.repeat(sizes, sizes)[self.positive_at] > 1
        self.tied = np.flatnonzero(tied_positive)  # indices into positive_at
        self.tied_start = np.repeat(starts, sizes)[self.positive_at[self.tied]]
        self.tied_end = np.repeat(starts + sizes - 1, sizes)[self.positive_at[self.tied]]
        # Positives at or before a position = their count in positive_at up to it.
        self.positives_through_start = np.searchsorted(
            self.positive_at, self.tied_start - 1, "right"
        )
        self.positives_through_end = np.searchsorted(self.positive_at, self.tied_end, "right")
        predicted = p > THRESHOLD
        self.y: np.ndarray = y.astype(dtype)
        self.predicted: np.ndarray = predicted.astype(dtype)
        self.true_positive: np.ndarray = (y.astype(bool) & predicted).astype(dtype)
        clipped = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
        self.loss = np.where(y == 1, -np.log(clipped), -np.log(1 - clipped)).astype(dtype)

    def score(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        total = weights.sum(axis=1, dtype=np.float64)
        positives = (weights @ self.y).astype(np.float64)
        predicted = (weights @ self.predicted).astype(np.float64)
        tp = (weights @ self.true_positive).astype(np.float64)
        fp, fn = predicted - tp, positives - tp
        tn = total - tp - fp - fn

        rows_through = np.cumsum(np.take(weights, self.order, axis=1), axis=1)
        w_positive = weights[:, self.positive_rows]
        positives_through = np.cumsum(w_positive, axis=1)
        # At a positive row, every row at or before it that is not positive is a negative
        # ranked below it (ties aside).
        negatives_below = rows_through[:, self.positive_at] - positives_through
        pairs_won = (w_positive * negatives_below).sum(axis=1, dtype=np.float64)
        if self.tied.size:
            start, end = self.tied_start, self.tied_end
            before_group = np.where(
                start > 0,
                rows_through[:, np.maximum(start - 1, 0)]
                - _take_or_zero(positives_through, self.positives_through_start),
                0.0,
            )
            through_group = rows_through[:, end] - _take_or_zero(
                positives_through, self.positives_through_end
            )
            exact = before_group + 0.5 * (through_group - before_group)
            pairs_won += (w_positive[:, self.tied] * (exact - negatives_below[:, self.tied])).sum(
                axis=1, dtype=np.float64
            )
        negatives = total - positives
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = pairs_won / (positives * negatives)
            precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
            recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
            f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        return {
            "accuracy": (tp + tn) / total,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "auc": auc,  # NaN when a sample drew a single class: ignored below
            "log_loss": (weights @ self.loss).astype(np.float64) / total,
        }


def _take_or_zero(cumulative: np.ndarray, count: np.ndarray) -> np.ndarray:
    """cumulative[:, count - 1]: the running total over the first `count` entries (0 if none)."""
    if cumulative.shape[1] == 0:
        return np.zeros((cumulative.shape[0], count.size))
    previous = cumulative[:, np.maximum(count - 1, 0)]
    return np.where(count > 0, previous, 0.0)


def bootstrap(
    y: np.ndarray, scores: list[np.ndarray], samples: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """Per model, per metric: the values over `samples` paired bootstrap samples."""
    scorers = [BootstrapScorer(y, p) for p in scores]
    parts: list[dict[str, list[np.ndarray]]] = [{m: [] for m in SCALAR_METRICS} for _ in scores]
    for weights in bootstrap_weights(y.size, samples, seed):
        for scorer, part in zip(scorers, parts, strict=True):
            for metric, values in scorer.score(weights).items():
                part[metric].append(values)
    return [{m: np.concatenate(v) for m, v in part.items()} for part in parts]


def _spread(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.std(finite, ddof=1)) if finite.size > 1 else 0.0


def quality_section(point: dict[str, Any], samples: dict[str, np.ndarray] | None) -> dict:
    """The SageMaker model-quality `binary_classification_metrics` layout."""
    section: dict[str, Any] = {
        metric: {
            "value": point[metric],
            "standard_deviation": _spread(samples[metric]) if samples else 0.0,
        }
        for metric in SCALAR_METRICS
    }
    section["confusion_matrix"] = point["confusion_matrix"]
    section["receiver_operating_characteristic_curve"] = point["roc"]
    return section


# ------------------------------------------------------------------------------ plots


def write_plots(output_dir: Path, curves: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """roc.png (every curve) and confusion_matrix.png (the first); none without matplotlib.

    `curves` holds (label, point metrics) pairs, e.g. [("challenger", ..), ("champion", ..)].
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        LOG.warning(
            "matplotlib is not installed: skipping %s and %s", ROC_PLOT, CONFUSION_MATRIX_PLOT
        )
        return []
    figure, axes = plt.subplots(figsize=(5, 5))
    for label, metrics in curves:
        axes.plot(
            metrics["roc"]["false_positive_rates"],
            metrics["roc"]["true_positive_rates"],
            label=f"{label} (AUC {metrics['auc']:.3f})",
        )
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(output_dir / ROC_PLOT, dpi=100)
    plt.close(figure)

    label, first = curves[0]
    matrix = first["confusion_matrix"]
    counts = np.array([[matrix[a][p] for p in ("0", "1")] for a in ("0", "1")])
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.imshow(counts, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        axes.text(column, row, f"{count:,}", ha="center", va="center")
    axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xlabel="predicted",
        ylabel="actual",
        title=f"{label} at p > {THRESHOLD}",
    )
    figure.tight_layout()
    figure.savefig(output_dir / CONFUSION_MATRIX_PLOT, dpi=100)
    plt.close(figure)
    return [ROC_PLOT, CONFUSION_MATRIX_PLOT]


# ------------------------------------------------------------------------------- main


def evaluate(
    args: argparse.Namespace,
    scratch: Path,
    sagemaker_client: Any = None,
    s3_client: Any = None,
) -> dict[str, Any]:
    """Score challenger (and champion), write evaluation.json and plots; returns the JSON."""
    if args.metric not in GATE_METRICS:
        raise EvaluationError(f"--metric {args.metric!r}: one of {', '.join(GATE_METRICS)}")
    if args.bootstrap_samples < 1:
        raise EvaluationError(f"--bootstrap-samples {args.bootstrap_samples}: at least 1")
    if args.metrics_namespace:
        raise EvaluationError(
            "--metrics-namespace publishes the metrics of a registered model: use it with "
            "--model-package-arn, not with a challenger in --model-dir"
        )
    started = time.perf_counter()
    columns, y = read_test_set(Path(args.test_dir), args.target)
    challenger = load_model_dir(Path(args.model_dir or DEFAULT_MODEL_DIR), scratch, "challenger")
    champion: LoadedModel | None = None
    if args.champion_model_dir:
        champion = load_model_dir(Path(args.champion_model_dir), scratch, "champion")
    elif args.champion_model_package_arn is not None:
        requested = args.champion_model_package_arn.strip()
        if requested.lower() != NO_CHAMPION:
            if not _PACKAGE_NAME_RE.match(requested):
                raise EvaluationError(
                    f"--champion-model-package-arn {requested!r} is not a model package ARN "
                    f"such as arn:aws:sagemaker:eu-west-1:123456789012:model-package/my-group/3 "
                    f"(or {NO_CHAMPION!r})"
                )
            if sagemaker_client is None or s3_client is None:
                import boto3

                sagemaker_client = sagemaker_client or boto3.client("sagemaker")
                s3_client = s3_client or boto3.client("s3")
            champion = load_registered_model(
                requested, sagemaker_client, s3_client, scratch, "champion"
            )
        else:
            LOG.info("no champion when the run started: only the metric floor applies")
    elif args.model_package_group:
        if sagemaker_client is None or s3_client is None:
            import boto3

            sagemaker_client = sagemaker_client or boto3.client("sagemaker")
            s3_client = s3_client or boto3.client("s3")
        champion = resolve_champion(args.model_package_group, sagemaker_client, s3_client, scratch)

    scores = [predict(challenger, feature_matrix(challenger, columns, "challenger"))]
    if champion is not None:
        scores.append(predict(champion, feature_matrix(champion, columns, "champion")))
    points = [point_metrics(y, p) for p in scores]
    samples = bootstrap(y, scores, args.bootstrap_samples, args.seed)

    metric = args.metric
    gate: dict[str, Any] = {
        GATE_METRIC: metric,
        GATE_CHALLENGER: points[0][metric],
        GATE_CHAMPION: None,
        GATE_HAS_CHAMPION: champion is not None,
        GATE_DELTA: 0.0,
        GATE_DELTA_CI_LOW: 0.0,
        GATE_DELTA_CI_HIGH: 0.0,
        GATE_CHAMPION_ARN: None,
        GATE_TEST_ROWS: int(y.size),
    }
    if champion is not None:
        deltas = samples[0][metric] - samples[1][metric]
        deltas = deltas[np.isfinite(deltas)]
        tail = 100 * (1 - CONFIDENCE) / 2
        low, high = np.percentile(deltas, [tail, 100 - tail]) if deltas.size else (np.nan,) * 2
        gate.update(
            {
                GATE_CHAMPION: points[1][metric],
                GATE_DELTA: points[0][metric] - points[1][metric],
                GATE_DELTA_CI_LOW: float(low),
                GATE_DELTA_CI_HIGH: float(high),
                GATE_CHAMPION_ARN: champion.model_package_arn,
            }
        )
    report = {
        METRICS_KEY: quality_section(points[0], samples[0]),
        CHAMPION_METRICS_KEY: quality_section(points[1], samples[1]) if champion else None,
        GATE_KEY: gate,
        "bootstrap_samples": args.bootstrap_samples,
        "threshold": THRESHOLD,
        "challenger_source": challenger.source,
        "champion_source": champion.source if champion else None,
    }
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    write_plots(
        output_dir,
        [("challenger", points[0])] + ([("champion", points[1])] if champion else []),
    )
    LOG.info(
        "%s challenger %.4f, champion %s, delta %.4f [%.4f, %.4f] on %d rows in %.1f s",
        metric,
        gate[GATE_CHALLENGER],
        "none" if champion is None else f"{gate[GATE_CHAMPION]:.4f}",
        gate[GATE_DELTA],
        gate[GATE_DELTA_CI_LOW],
        gate[GATE_DELTA_CI_HIGH],
        y.size,
        time.perf_counter() - started,
    )
    return report


def quality_metric_data(
    metrics: dict[str, Any], rows: int, group: str, version: str
) -> list[dict[str, Any]]:
    """PutMetricData datums: every metric once per dimension set, group first.

    `metrics` is a `binary_classification_metrics` section; `rows` the rows scored.
    """
    values = [(name, float(metrics[key]["value"]), "None") for name, key in CW_QUALITY_METRICS]
    values.append((CW_METRIC_ROWS, float(rows), "Count"))
    bad = [name for name, value, _ in values if not np.isfinite(value)]
    if bad:
        raise EvaluationError(f"metric(s) {bad} are not finite: CloudWatch rejects them")
    group_dimension = {"Name": CW_DIMENSION_GROUP, "Value": group}
    dimension_sets = [
        [group_dimension],
        [group_dimension, {"Name": CW_DIMENSION_VERSION, "Value": version}],
    ]
    return [
        {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": unit}
        for dimensions in dimension_sets
        for name, value, unit in values
    ]


def check_namespace(namespace: str) -> None:
    """CloudWatch's rules for a custom namespace (1-255 characters, not AWS/, no leading ':')."""
    if not re.fullmatch(r"[A-Za-z0-9._/#:\- ]{1,255}", namespace) or (
        namespace.startswith((":", "AWS/"))
    ):
        raise EvaluationError(
            f"--metrics-namespace {namespace!r} is not allowed: 1-255 letters, digits or "
            "._/#:- and spaces, not starting with ':' or 'AWS/'"
        )


def publish_metrics(cloudwatch_client: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    """One PutMetricData call (well below its 1,000-datum limit)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cloudwatch_client.put_metric_data(Namespace=namespace, MetricData=data)
    except (ClientError, BotoCoreError) as error:
        raise EvaluationError(
            f"cannot publish the model-quality metrics to CloudWatch namespace {namespace!r}: "
            f"{error}"
        ) from error


def score_registered_model(
    args: argparse.Namespace,
    scratch: Path,
    sagemaker_client: Any = None,
    s3_client: Any = None,
    cloudwatch_client: Any = None,
) -> dict[str, Any]:
    """Score one registered package (no challenger, no gate); write evaluation.json, plots,
    and publish the metrics when `--metrics-namespace` is given. Returns the JSON."""
    if args.model_dir or args.champion_model_dir:
        raise EvaluationError(
            "--model-package-arn scores one registered model: do not pass --model-dir or "
            "--champion-model-dir with it"
        )
    if args.bootstrap_samples < 1:
        raise EvaluationError(f"--bootstrap-samples {args.bootstrap_samples}: at least 1")
    namespace = args.metrics_namespace
    if namespace:
        check_namespace(namespace)
    requested = args.model_package_arn.strip()
    group = args.model_package_group
    if requested in ("", LATEST) and not group:
        raise EvaluationError(
            f"--model-package-arn {requested or LATEST!r} means the production model: pass "
            "--model-package-group (the group whose newest Approved package is in production)"
        )
    if requested not in ("", LATEST) and not _PACKAGE_NAME_RE.match(requested):
        raise EvaluationError(
            f"--model-package-arn {requested!r} is not a model package ARN such as "
            "arn:aws:sagemaker:eu-west-1:123456789012:model-package/my-group/3 (or 'latest')"
        )
    started = time.perf_counter()
    columns, y = read_test_set(Path(args.test_dir), args.target, "the model cannot be evaluated")

    import boto3

    sagemaker_client = sagemaker_client or boto3.client("sagemaker")
    s3_client = s3_client or boto3.client("s3")
    if requested in ("", LATEST):
        package = latest_approved_package(group, sagemaker_client, "production model")
        if package is None:
            raise EvaluationError(
                f"no production model to evaluate: model package group {group!r} has no "
                "Approved model package (approve one, or name a package with "
                "--model-package-arn)"
            )
    else:
        package = requested
    model = load_registered_model(package, sagemaker_client, s3_client, scratch, "evaluated")
    p = predict(model, feature_matrix(model, columns, "evaluated"))
    point = point_metrics(y, p)
    [samples] = bootstrap(y, [p], args.bootstrap_samples, args.seed)
    metrics = quality_section(point, samples)

    published = None
    if namespace:
        version = model.model_package_version
        if not model.model_package_group or version is None:
            raise EvaluationError(
                f"model package {model.model_package_arn} has no group and version: the "
                f"metrics need the {CW_DIMENSION_GROUP} and {CW_DIMENSION_VERSION} dimensions"
            )
        data = quality_metric_data(metrics, int(y.size), model.model_package_group, str(version))
        published = {
            "namespace": namespace,
            "dimensions": {
                CW_DIMENSION_GROUP: model.model_package_group,
                CW_DIMENSION_VERSION: str(version),
            },
            "values": {d["MetricName"]: d["Value"] for d in data},
        }
    report = {
        METRICS_KEY: metrics,
        MODEL_KEY: {
            "model_package_arn": model.model_package_arn,
            "model_package_group": model.model_package_group,
            "model_package_version": model.model_package_version,
            "approval_status": model.approval_status,
            "requested": requested or LATEST,
            "model_data_url": model.source,
        },
        DATASET_KEY: {
            "dataset_version": args.dataset_version,
            "data_digest": args.data_digest,
            "rows": int(y.size),
            "positives": int(y.sum()),
        },
        PUBLISHED_METRICS_KEY: published,
        "bootstrap_samples": args.bootstrap_samples,
        "threshold": THRESHOLD,
    }
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    version_label = model.model_package_version
    write_plots(output_dir, [(f"model v{version_label}" if version_label else "model", point)])
    if namespace:
        publish_metrics(cloudwatch_client or boto3.client("cloudwatch"), namespace, data)
    LOG.info(
        "%s: AUC %.4f, F1 %.4f on %d rows in %.1f s%s",
        model.model_package_arn,
        point["auc"],
        point["f1"],
        y.size,
        time.perf_counter() - started,
        f"; published to {namespace}" if namespace else "",
    )
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Score challenger and champion on the test set, or one registered model."
    )
    parser.add_argument(
        "--model-dir", default=None, help=f"challenger model (default {DEFAULT_MODEL_DIR})"
    )
    parser.add_argument("--test-dir", default=DEFAULT_TEST_DIR, help="prepare.py's test split")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help="evaluation.json, plots")
    parser.add_argument("--target", default="is_fraud", help="target column (is_fraud)")
    parser.add_argument("--metric", default="auc", help=f"gate metric, one of {GATE_METRICS}")
    parser.add_argument("--bootstrap-samples", type=int, default=1000, help="(1000)")
    parser.add_argument("--seed", type=int, default=42, help="bootstrap seed (42)")
    champion = parser.add_mutually_exclusive_group()
    champion.add_argument("--champion-model-dir", help="local champion model (optional)")
    champion.add_argument(
        "--champion-model-package-arn",
        help=f"registered champion chosen when the run started; '{NO_CHAMPION}': no champion",
    )
    champion.add_argument(
        "--model-package-group",
        help="registry group: the champion's, or the production model's with "
        "--model-package-arn latest",
    )
    one = parser.add_argument_group("score one registered model (no challenger, no gate)")
    one.add_argument(
        "--model-package-arn",
        # A bare flag counts as empty: the pipeline's empty default must work even if the
        # empty container argument were dropped.
        nargs="?",
        const="",
        default=None,
        help=f"model package to score; '{LATEST}' or empty: the newest Approved package of "
        "--model-package-group",
    )
    one.add_argument(
        "--metrics-namespace",
        default=None,
        help="CloudWatch namespace to publish the metrics to (default: do not publish)",
    )
    one.add_argument("--dataset-version", default=None, help="recorded in evaluation.json")
    one.add_argument("--data-digest", default=None, help="recorded in evaluation.json")
    return parser.parse_args(argv)


def report_failure(message: str) -> None:
    """Write the reason to stderr and to the file SageMaker shows as the job's message."""
    print(f"evaluate failed: {message}", file=sys.stderr, flush=True)
    path = Path(os.environ.get(FAILURE_FILE_ENV, DEFAULT_FAILURE_FILE))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = message.encode("utf-8")[:FAILURE_MESSAGE_MAX_BYTES]
        path.write_text(encoded.decode("utf-8", errors="ignore"), encoding="utf-8")
    except OSError as error:
        print(f"evaluate: could not write the failure reason to {path}: {error}", file=sys.stderr)


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    LOG.setLevel(logging.INFO)


def main(
    argv: list[str] | None = None,
    sagemaker_client: Any = None,
    s3_client: Any = None,
    cloudwatch_client: Any = None,
) -> int:
    """Run the step; 0 on success, 1 on failure (reason in the failure file and stderr).

    The clients default to boto3 clients, created only when needed (`--model-package-group`,
    `--model-package-arn`, `--metrics-namespace`).
    """
    _configure_logging()
    args = parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="evaluate-") as scratch:
            if args.model_package_arn is not None:
                score_registered_model(
                    args, Path(scratch), sagemaker_client, s3_client, cloudwatch_client
                )
            else:
                evaluate(args, Path(scratch), sagemaker_client, s3_client)
    except EvaluationError as error:
        report_failure(str(error))
        return 1
    except xgb.core.XGBoostError as error:
        LOG.exception("XGBoost error")
        report_failure(f"XGBoost error: {xgboost_message(error)}")
        return 1
    except Exception as error:  # a crash must still leave a reason where the user looks
        LOG.exception("unexpected error")
        report_failure(f"unexpected {type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
