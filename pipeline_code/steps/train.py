"""Train step (SageMaker Training job, script mode in the XGBoost 3.0-5 framework container).

Reads the `train` and `validation` channels (CSV with a header, the target column first, as
prepare.py writes them), trains a binary:logistic booster with early stopping on the
validation AUC, and writes `$SM_MODEL_DIR/xgboost-model`: the booster in XGBoost's UBJSON
format, which the SageMaker XGBoost serving container loads (it tries pickle, then
`Booster.load_model`). Every regular file in the model directory's top level is loaded as one
model of an ensemble by that container, so the metadata goes into a subfolder:
`$SM_MODEL_DIR/metadata/model-metadata.json` (feature names and order, xgboost version, best
iteration).

Hyperparameters arrive as command-line arguments with underscore names (script mode), falling
back to SM_HP_<NAME> environment variables. Checkpoints are written to `--checkpoint_dir`
(default /opt/ml/checkpoints, synced to S3 by SageMaker) every `--checkpoint_every` rounds; a
restarted job (managed spot interruption) resumes from the latest one.

On failure: exit code 1, the reason on stderr and in /opt/ml/output/failure (SageMaker's
FailureReason; override with the FAILURE_REASON_FILE environment variable).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import xgboost as xgb

LOG = logging.getLogger("train")

MODEL_FILE = "xgboost-model"
METADATA_DIR = "metadata"
METADATA_FILE = "model-metadata.json"
CHECKPOINT_PREFIX = "xgboost-checkpoint."
CHECKPOINTS_KEPT = 2
DEFAULT_CHECKPOINT_DIR = "/opt/ml/checkpoints"
DEFAULT_MODEL_DIR = "/opt/ml/model"
# A Training job reports the first 1 KB of this file as FailureReason (DescribeTrainingJob).
DEFAULT_FAILURE_FILE = "/opt/ml/output/failure"
FAILURE_FILE_ENV = "FAILURE_REASON_FILE"
FAILURE_MESSAGE_MAX_BYTES = 1024
EARLY_STOPPING_METRIC = "auc"
VALIDATION_NAME = "validation"

#: name -> (type, default) of the hyperparameters (CLI --name or SM_HP_NAME).
HYPERPARAMETERS: dict[str, tuple[type, Any]] = {
    "num_round": (int, 300),
    "max_depth": (int, 6),
    "eta": (float, 0.1),
    "subsample": (float, 0.8),
    "colsample_bytree": (float, 0.8),
    "min_child_weight": (float, 1.0),
    "early_stopping_rounds": (int, 20),
    "seed": (int, 42),
    "target": (str, "is_fraud"),
    "checkpoint_every": (int, 10),
}


class TrainingError(Exception):
    """The inputs or hyperparameters are not usable; the message says what and where."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    # exit_on_error=False: a bad hyperparameter value becomes a failure reason, not a usage dump.
    parser = argparse.ArgumentParser(
        description="Train the XGBoost challenger.", exit_on_error=False
    )
    for name, (kind, default) in HYPERPARAMETERS.items():
        env_value = os.environ.get(f"SM_HP_{name.upper()}")
        parser.add_argument(
            f"--{name}",
            type=kind,
            default=kind(env_value) if env_value is not None else default,
            help=f"(SM_HP_{name.upper()}, default {default})",
        )
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--model_dir", default=os.environ.get("SM_MODEL_DIR", DEFAULT_MODEL_DIR))
    parser.add_argument("--checkpoint_dir", default=DEFAULT_CHECKPOINT_DIR)
    # SageMaker may pass hyperparameters this script does not know: keep going, but say so.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        LOG.warning("ignoring unknown arguments: %s", unknown)
    return args


def _check_hyperparameters(args: argparse.Namespace) -> None:
    rules = [
        ("num_round", args.num_round >= 1, "at least 1"),
        ("max_depth", args.max_depth >= 1, "at least 1"),
        ("eta", 0.0 < args.eta <= 1.0, "above 0 and at most 1"),
        ("subsample", 0.0 < args.subsample <= 1.0, "above 0 and at most 1"),
        ("colsample_bytree", 0.0 < args.colsample_bytree <= 1.0, "above 0 and at most 1"),
        ("min_child_weight", args.min_child_weight >= 0.0, "at least 0"),
        ("early_stopping_rounds", args.early_stopping_rounds >= 1, "at least 1"),
        ("checkpoint_every", args.checkpoint_every >= 1, "at least 1"),
    ]
    for name, ok, allowed in rules:
        if not ok:
            raise TrainingError(f"hyperparameter {name} = {getattr(args, name)!r}: {allowed}")


def read_channel(
    name: str, directory: str | None, target: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features (float32), labels and feature names of every CSV file in a channel."""
    if not directory:
        raise TrainingError(
            f"channel {name!r} is missing: SM_CHANNEL_{name.upper()} is not set and "
            f"--{name} was not given"
        )
    path = Path(directory)
    files = sorted(
        p for p in path.rglob("*") if p.is_file() and p.name.endswith((".csv", ".csv.gz"))
    )
    if not files:
        raise TrainingError(f"channel {name!r} has no CSV files in {directory}")
    tables = [_read_csv(name, file) for file in files]
    columns = tables[0].column_names
    for file, table in zip(files, tables, strict=True):
        if table.column_names != columns:
            raise TrainingError(
                f"channel {name!r}: {file.name} has columns {table.column_names}, "
                f"{files[0].name} has {columns}"
            )
    if target not in columns:
        raise TrainingError(f"channel {name!r}: no target column {target!r} in {columns}")
    features = [c for c in columns if c != target]
    if not features:
        raise TrainingError(
            f"channel {name!r} has no feature columns: {files[0].name} holds only the target "
            f"{target!r}"
        )
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if table.num_rows == 0:
        raise TrainingError(f"channel {name!r} has no rows")
    labels = _numbers(name, table, target, pa.float64())
    if np.isnan(labels).any() or not np.isin(labels, (0.0, 1.0)).all():
        raise TrainingError(f"channel {name!r}: target {target!r} must be 0 or 1 in every row")
    matrix = np.column_stack([_finite_feature(name, table, c) for c in features])
    return matrix, labels, features


def _read_csv(channel: str, file: Path) -> pa.Table:
    """One CSV file of a channel (gzip-compressed if it ends in .gz), refusing duplicate names."""
    try:
        table = pa_csv.read_csv(file)
        # pyarrow decodes the column names only when asked: a non-UTF-8 header fails here.
        names = table.column_names
    except UnicodeDecodeError as error:
        raise TrainingError(
            f"channel {channel!r}: cannot read {file.name}: not UTF-8 text ({error})"
        ) from error
    except (pa.ArrowInvalid, OSError, EOFError) as error:
        raise TrainingError(f"channel {channel!r}: cannot read {file.name}: {error}") from error
    duplicates = sorted({c for c in names if names.count(c) > 1})
    if duplicates:
        raise TrainingError(
            f"channel {channel!r}: {file.name} has column(s) {duplicates} more than once"
        )
    return table


def _numbers(channel: str, table: pa.Table, column: str, kind: pa.DataType) -> np.ndarray:
    """A column as numbers of `kind`, NaN where missing; text is refused naming the column."""
    try:
        # Unchecked: an int beyond 2**24 rounds to the nearest float32 (as XGBoost would
        # store it) instead of failing; a float beyond float32 becomes inf, refused later.
        return table.column(column).cast(kind, safe=False).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise TrainingError(
            f"channel {channel!r}: column {column!r} must hold numbers: {error}"
        ) from error


def _finite_feature(channel: str, table: pa.Table, column: str) -> np.ndarray:
    """A feature column as float32; infinite values (XGBoost refuses them) are refused here."""
    values = _numbers(channel, table, column, pa.float32())
    infinite = np.isinf(values)
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        raise TrainingError(
            f"channel {channel!r}: column {column!r} has {int(infinite.sum())} value(s) that "
            f"are infinite or beyond the float32 range XGBoost stores features in "
            f"(magnitude at most {np.finfo(np.float32).max:.7g}), e.g. "
            f"{table.column(column)[first].as_py()!r} in row {first + 1}"
        )
    return values


# -------------------------------------------------------------------------- checkpoints


class CheckpointCallback(xgb.callback.TrainingCallback):
    """Save the booster every `every` rounds (atomically); keep the newest `keep` files."""

    def __init__(self, directory: Path, every: int, keep: int = CHECKPOINTS_KEPT) -> None:
        super().__init__()
        self.directory = directory
        self.every = every
        self.keep = keep

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: Any) -> bool:
        rounds = model.num_boosted_rounds()
        if self.every and rounds % self.every == 0:
            try:
                save_checkpoint(model, self.directory, rounds, self.keep)
            except OSError as error:
                # Checkpoints only speed up a restart; a job without them still trains.
                LOG.warning("cannot write checkpoints to %s (%s): disabled", self.directory, error)
                self.every = 0
        return False


def save_checkpoint(model: xgb.Booster, directory: Path, rounds: int, keep: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{CHECKPOINT_PREFIX}{rounds:06d}"
    partial = path.with_name(path.name + ".partial")
    # Write-then-rename: an interruption never leaves a half-written "latest" checkpoint.
    partial.write_bytes(model.save_raw(raw_format="ubj"))
    os.replace(partial, path)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    pattern = re.compile(re.escape(CHECKPOINT_PREFIX) + r"(\d+)$")
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := pattern.match(p.name))]
    return [p for _, p in sorted(found)]


def load_latest_checkpoint(directory: Path) -> xgb.Booster | None:
    for path in reversed(list_checkpoints(directory)):
        try:
            booster = xgb.Booster()
            booster.load_model(bytearray(path.read_bytes()))
            return booster
        except xgb.core.XGBoostError as error:
            LOG.warning(
                "checkpoint %s is unreadable (%s): trying an older one",
                path,
                xgboost_message(error),
            )
    return None


class ResumableEarlyStopping(xgb.callback.EarlyStopping):
    """Early stopping that remembers the best score of the rounds before a resume.

    The stock callback starts its history afresh when training continues from a checkpoint,
    so the first resumed round would count as "best". The checkpointed booster carries the
    best score and iteration as attributes; seed the history with them.
    """

    def before_training(self, model: xgb.Booster) -> xgb.Booster:
        model = super().before_training(model)
        best_score, best_iteration = model.attr("best_score"), model.attr("best_iteration")
        if self.starting_round > 0 and best_score is not None and best_iteration is not None:
            score = float(best_score)
            data = self.data or VALIDATION_NAME
            metric = self.metric_name or EARLY_STOPPING_METRIC
            self.stopping_history = {data: {metric: [score]}}
            self.best_scores = {data: {metric: [score]}}
            self.current_rounds = self.starting_round - 1 - int(best_iteration)
        return model


# ------------------------------------------------------------------------------ train


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train, save the model and its metadata; returns the metadata."""
    _check_hyperparameters(args)
    started = time.perf_counter()
    x_train, y_train, features = read_channel("train", args.train, args.target)
    x_valid, y_valid, valid_features = read_channel("validation", args.validation, args.target)
    if valid_features != features:
        raise TrainingError(
            f"the validation channel's features {valid_features} differ from the train "
            f"channel's {features}"
        )
    positives = float(y_train.sum())
    negatives = float(y_train.size - positives)
    if positives == 0 or negatives == 0:
        raise TrainingError(
            f"the train channel has a single class ({y_train.size} rows): need 0 and 1"
        )
    if np.unique(y_valid).size < 2:
        raise TrainingError(
            f"the validation channel has a single class (all {y_valid.size} rows are "
            f"{int(y_valid[0])}): early stopping uses the validation AUC, which needs rows of "
            "both 0 and 1"
        )
    LOG.info(
        "train %d rows (%.2f%% positive), validation %d rows, %d features, read in %.1f s",
        y_train.size,
        100 * positives / y_train.size,
        y_valid.size,
        len(features),
        time.perf_counter() - started,
    )
    dtrain = xgb.DMatrix(x_train, label=y_train, feature_names=features)
    dvalid = xgb.DMatrix(x_valid, label=y_valid, feature_names=features)
    del x_train, x_valid
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", EARLY_STOPPING_METRIC],
        "tree_method": "hist",
        "max_depth": args.max_depth,
        "eta": args.eta,
        "subsample": args.subsample,
        "colsample_bytree": args.colsample_bytree,
        "min_child_weight": args.min_child_weight,
        # Rare positives would otherwise be drowned out by the majority class.
        "scale_pos_weight": negatives / positives,
        "seed": args.seed,
    }

    checkpoint_dir = Path(args.checkpoint_dir)
    resumed = load_latest_checkpoint(checkpoint_dir)
    done = resumed.num_boosted_rounds() if resumed is not None else 0
    if resumed is not None:
        LOG.info("resuming from the checkpoint after round %d in %s", done, checkpoint_dir)
    remaining = max(args.num_round - done, 0)
    booster = resumed
    if remaining:
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=remaining,
            evals=[(dtrain, "train"), (dvalid, VALIDATION_NAME)],
            xgb_model=resumed,
            verbose_eval=10,
            callbacks=[
                ResumableEarlyStopping(
                    rounds=args.early_stopping_rounds,
                    metric_name=EARLY_STOPPING_METRIC,
                    data_name=VALIDATION_NAME,
                    maximize=True,
                ),
                CheckpointCallback(checkpoint_dir, args.checkpoint_every),
            ],
        )
    assert booster is not None
    rounds = booster.num_boosted_rounds()
    best_iteration = int(booster.attr("best_iteration") or rounds - 1)
    best_score = booster.attr("best_score")
    # Serve exactly the best trees: the serving container predicts with every tree it loads.
    model = booster[: best_iteration + 1]
    model.feature_names = features

    if best_score is not None and not np.isfinite(float(best_score)):
        raise TrainingError(
            f"the best validation AUC is {best_score}: the validation channel cannot rank "
            "the model (no model written)"
        )
    metadata = {
        "model_file": MODEL_FILE,
        "format": "ubj",
        "xgboost_version": xgb.__version__,
        "objective": "binary:logistic",
        "target": args.target,
        "feature_names": features,
        "best_iteration": best_iteration,
        "best_validation_auc": float(best_score) if best_score is not None else None,
        "rounds_trained": rounds,
        "resumed_from_round": done or None,
        "train_rows": int(y_train.size),
        "validation_rows": int(y_valid.size),
        "scale_pos_weight": params["scale_pos_weight"],
        "hyperparameters": {name: getattr(args, name) for name in HYPERPARAMETERS},
    }
    try:
        # Strict JSON, before anything is written: a NaN would make the metadata unreadable.
        metadata_text = json.dumps(metadata, indent=2, allow_nan=False) + "\n"
    except ValueError as error:
        raise TrainingError(f"cannot write {METADATA_FILE} ({error}): no model written") from error
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / MODEL_FILE).write_bytes(model.save_raw(raw_format="ubj"))
    metadata_path = model_dir / METADATA_DIR / METADATA_FILE
    metadata_path.parent.mkdir(parents=True, exist_ok=True)
    metadata_path.write_text(metadata_text, encoding="utf-8")
    LOG.info(
        "best iteration %d of %d (validation auc %s); saved %s in %.1f s",
        best_iteration,
        rounds,
        best_score,
        model_dir / MODEL_FILE,
        time.perf_counter() - started,
    )
    return metadata


def xgboost_message(error: BaseException, limit: int = 300) -> str:
    """The first line of an error (at most `limit` characters), without the timestamp and
    source location XGBoost puts before it; XGBoost's native stack trace follows that line
    and would fill the 1 KB failure reason."""
    lines = str(error).strip().splitlines()
    if not lines:
        return type(error).__name__
    line = re.sub(r"^\[[\d:]+\]\s*(\S+:\d+:\s*)?", "", lines[0])
    return line if len(line) <= limit else line[: limit - 3] + "..."


def report_failure(message: str) -> None:
    """Write the reason to stderr and to the file SageMaker shows as FailureReason."""
    print(f"train failed: {message}", file=sys.stderr, flush=True)
    path = Path(os.environ.get(FAILURE_FILE_ENV, DEFAULT_FAILURE_FILE))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = message.encode("utf-8")[:FAILURE_MESSAGE_MAX_BYTES]
        path.write_text(encoded.decode("utf-8", errors="ignore"), encoding="utf-8")
    except OSError as error:
        print(f"train: could not write the failure reason to {path}: {error}", file=sys.stderr)


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    LOG.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Run the step; 0 on success, 1 on failure (reason in the failure file and stderr)."""
    _configure_logging()
    try:
        args = parse_args(argv)
        train(args)
    except xgb.core.XGBoostError as error:  # a ValueError too: caught first
        LOG.exception("XGBoost error")
        report_failure(f"XGBoost error: {xgboost_message(error)}")
        return 1
    except (TrainingError, ValueError, argparse.ArgumentError) as error:
        report_failure(str(error))
        return 1
    except Exception as error:  # a crash must still leave a reason where the user looks
        LOG.exception("unexpected error")
        report_failure(f"unexpected {type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
