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

Uploaded with its folder (`channels`, `checkpoints`) and the shared `common` package as one
source directory; SageMaker runs `python3 train.py` from it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

# The step's modules and `common` are uploaded beside this script: import them from here,
# however Python was started.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import xgboost as xgb

from channels import TrainingError, read_channel
from checkpoints import (
    DEFAULT_CHECKPOINT_DIR,
    EARLY_STOPPING_METRIC,
    VALIDATION_NAME,
    CheckpointCallback,
    ResumableEarlyStopping,
    load_latest_checkpoint,
)
from common.failure import TRAINING_FAILURE_FILE
from common.model_files import METADATA_DIR, METADATA_FILE, MODEL_FILE
from common.runner import configure_logging, run_step

LOG = logging.getLogger("train")

DEFAULT_MODEL_DIR = "/opt/ml/model"

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


def main(argv: list[str] | None = None) -> int:
    """Run the step; 0 on success, 1 on failure (reason in the failure file and stderr)."""
    configure_logging(LOG)
    return run_step(
        "train",
        LOG,
        lambda: train(parse_args(argv)),
        failure_file=TRAINING_FAILURE_FILE,
        # A bad hyperparameter value is an ArgumentError (exit_on_error=False) or ValueError.
        expected=(TrainingError, ValueError, argparse.ArgumentError),
        xgboost_errors=(xgb.core.XGBoostError,),
    )


if __name__ == "__main__":
    sys.exit(main())
