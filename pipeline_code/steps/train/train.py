"""Train step (SageMaker Training job, script mode in the XGBoost 3.0-5 framework container).

Reads the `train` and `validation` channels (CSV with a header, the target column first, as
prepare.py writes them), trains a booster for the record's problem type (`objectives`:
binary:logistic, multi:softprob or reg:squarederror) with early stopping on the validation log
loss (multi-class: mlogloss, regression: rmse), and writes `$SM_MODEL_DIR/xgboost-model`: the
booster in XGBoost's UBJSON format, which the SageMaker XGBoost serving container loads (it
tries pickle, then `Booster.load_model`). Every regular file in the model directory's top level
is loaded as one model of an ensemble by that container, so the metadata goes into a subfolder:
`$SM_MODEL_DIR/metadata/model-metadata.json` (feature names and order, xgboost version, best
iteration, the decision threshold, the calibration, and Prepare's record of the training data:
split rule and profile, from the train channel's `training_data.json`).

Category features (the record's `feature_types`) are encoded with an encoding fitted on the
train channel only and trained with XGBoost's native categorical support; the model directory
then also holds the encoding and the endpoint's inference script (`serving_files`).

A binary model's served probabilities are calibrated: by default there is no class weight
(`scale_pos_weight` 1), and a configured weight (a number, or `balanced` = negatives/positives)
is undone by Platt scaling on the validation split, baked into the booster (see
`calibration`). The decision threshold (`decision_threshold`: `max-f1`, `max-accuracy` or a
number) is chosen on the validation split and recorded in the metadata; the booster itself
returns probabilities.

Hyperparameters arrive as command-line arguments with underscore names (script mode), falling
back to SM_HP_<NAME> environment variables. Checkpoints are written to `--checkpoint_dir`
(default /opt/ml/checkpoints, synced to S3 by SageMaker) every `--checkpoint_every` rounds; a
restarted job (managed spot interruption) resumes from the latest one.

On failure: exit code 1, the reason on stderr and in /opt/ml/output/failure (SageMaker's
FailureReason; override with the FAILURE_REASON_FILE environment variable).

With several instances (`SM_HOSTS`), the hosts train one model together (see `training_cluster`):
each reads its shard of the train channel and the whole validation channel, the class counts
are summed over the hosts, and only the master (the first host) writes checkpoints and the
model. The training data record then arrives in its own `train_record` channel (a record in the
sharded train channel would reach one host only).

Uploaded with its folder (`calibration`, `channels`, `checkpoints`, `objectives`,
`serving_files`, `training_cluster`, `validation_metrics`) and the shared `common` package as
one source directory; SageMaker runs `python3 train.py` from it.
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

from calibration import (
    MAX_F1,
    CalibrationError,
    bake_platt,
    choose_threshold,
    fit_platt,
    parse_threshold_rule,
    sigmoid,
)
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
from common.problem_types import BINARY
from common.runner import configure_logging, run_step
from common.training_data import METADATA_KEY, read_record
from objectives import check_labels, objective_of, training_rows, validation_summary
from serving_files import category_features, feature_types, write_serving_files
from training_cluster import (
    Cluster,
    cluster_from_environment,
    communicator,
    from_master,
    global_sum,
    resume_point,
    training_device,
)

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
    "scale_pos_weight": (str, "1"),
    "decision_threshold": (str, MAX_F1),
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
    parser.add_argument("--train_record", default=os.environ.get("SM_CHANNEL_TRAIN_RECORD"))
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
    """Train (on every host of the job, together), save the model and its metadata on the
    master; returns the metadata (on the other hosts: their share of the work)."""
    cluster = cluster_from_environment(os.environ)
    if cluster.size > 1 and training_device(os.environ) == "cuda":
        raise TrainingError(
            f"training on {cluster.size} GPU instances is untested: use one GPU instance "
            "(TrainingInstanceCount 1) or CPU instances"
        )
    with communicator(cluster, os.environ):
        return _train(args, cluster)


def _train(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    _check_hyperparameters(args)
    threshold_rule = parse_threshold_rule(args.decision_threshold)
    started = time.perf_counter()
    try:
        # several hosts: the record comes on its own channel (a sharded one reaches one host)
        record = args.train_record or args.train
        training_data = read_record(Path(record)) if record else None
    except ValueError as error:
        raise TrainingError(f"channel 'train': {error}") from error
    categories = category_features(training_data)
    if categories and cluster.size > 1:
        # each host would fit its own category codes on its own shard
        raise TrainingError(
            f"category features {categories} cannot be trained on {cluster.size} instances "
            "yet (each host would encode its own shard's categories differently): set "
            "pipeline.training_instance_count = 1"
        )
    objective = objective_of(training_data)
    binary = objective.problem_type == BINARY
    x_train, y_train, features, encoding = read_channel(
        "train", args.train, args.target, categories, allow_empty=cluster.size > 1, binary=binary
    )
    x_valid, y_valid, valid_features, _ = read_channel(
        "validation", args.validation, args.target, categories, encoding, binary=binary
    )
    check_labels(objective, "train", y_train, args.target)
    check_labels(objective, "validation", y_valid, args.target)
    if not features:
        # ShardedByS3Key promises each host about 1/n of the objects, not one: a host without a
        # shard joins with no rows (the validation split names the features).
        features, x_train = valid_features, np.empty((0, len(valid_features)), dtype=np.float32)
    if valid_features != features:
        raise TrainingError(
            f"the validation channel's features {valid_features} differ from the train "
            f"channel's {features}"
        )
    if from_master(features) != features:
        raise TrainingError(
            f"host {cluster.current_host}'s train shard has the features {features}, the "
            "master's differ"
        )
    train_rows, described, weight = training_rows(
        objective, args.scale_pos_weight, y_train, y_valid, global_sum
    )
    LOG.info(
        "train %d rows (%d on this host; %s), validation %d rows, %d features, read in %.1f s",
        train_rows,
        y_train.size,
        described,
        y_valid.size,
        len(features),
        time.perf_counter() - started,
    )
    device = training_device(os.environ)
    LOG.info("training on %s", device)
    types = feature_types(features, encoding)
    dtrain = xgb.DMatrix(x_train, label=y_train, **types)
    dvalid = xgb.DMatrix(x_valid, label=y_valid, **types)
    del x_train, x_valid
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["auc", EARLY_STOPPING_METRIC],
        "tree_method": "hist",
        "device": device,
        "max_depth": args.max_depth,
        "eta": args.eta,
        "subsample": args.subsample,
        "colsample_bytree": args.colsample_bytree,
        "min_child_weight": args.min_child_weight,
        # 1 unless configured: a weight trades calibrated probabilities for recall.
        "scale_pos_weight": weight,
        "seed": args.seed,
    }
    if not binary:
        del params["scale_pos_weight"]
        params.update(objective.params())

    checkpoint_dir = Path(args.checkpoint_dir)
    # Every host resumes from the master's checkpoint (only the master writes them).
    resumed = resume_point(cluster, lambda: load_latest_checkpoint(checkpoint_dir))
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
            # Only the validation split: an AUC over the training rows every round would cost
            # as much as the boosting itself at a million rows.
            evals=[(dvalid, VALIDATION_NAME)],
            xgb_model=resumed,
            verbose_eval=10,
            callbacks=[
                ResumableEarlyStopping(
                    rounds=args.early_stopping_rounds,
                    metric_name=objective.early_stopping_metric,
                    data_name=VALIDATION_NAME,
                    maximize=False,
                ),
                *(
                    [CheckpointCallback(checkpoint_dir, args.checkpoint_every)]
                    if cluster.is_master
                    else []
                ),
            ],
        )
    assert booster is not None
    rounds = booster.num_boosted_rounds()
    best_iteration = int(booster.attr("best_iteration") or rounds - 1)
    best_score = booster.attr("best_score")
    if not cluster.is_master:
        LOG.info("worker %d of %d done after %d rounds", cluster.rank, cluster.size, rounds)
        return {"host": cluster.current_host, "rounds_trained": rounds, "train_rows": y_train.size}
    # Serve exactly the best trees: the serving container predicts with every tree it loads.
    model = booster[: best_iteration + 1]
    model.feature_names = features
    model.feature_types = types["feature_types"]

    if best_score is not None and not np.isfinite(float(best_score)):
        raise TrainingError(
            f"the best validation {objective.early_stopping_metric} is {best_score}: the "
            "validation channel cannot score the model (no model written)"
        )
    calibration = None
    if weight != 1.0:
        model, calibration = _calibrate(model, dvalid, y_valid, weight)
        model.feature_names = features
        model.feature_types = types["feature_types"]
    p_valid = model.predict(dvalid)
    threshold = choose_threshold(threshold_rule, y_valid, p_valid) if binary else None
    scores = validation_summary(objective, y_valid, p_valid, threshold)
    summary = ", ".join(f"{k.removeprefix('best_')} {v:.4f}" for k, v in scores.items())
    if threshold is not None:
        summary += f", threshold {threshold:.4f}"
    metadata = {
        "model_file": MODEL_FILE,
        "format": "ubj",
        "xgboost_version": xgb.__version__,
        "objective": objective.xgboost_objective,
        **({"num_class": len(objective.classes)} if objective.classes else {}),
        "target": args.target,
        "feature_names": features,
        "feature_types": types["feature_types"],
        "labels": (training_data or {}).get("labels"),
        "best_iteration": best_iteration,
        **scores,
        "rounds_trained": rounds,
        "resumed_from_round": done or None,
        "training_device": device,
        "train_rows": train_rows,
        "validation_rows": int(y_valid.size),
    }
    if binary:
        metadata |= {
            "scale_pos_weight": weight,
            "calibration": calibration,
            # Predict 1 when p >= decision_threshold (chosen on the validation split).
            "decision_threshold": threshold,
            "decision_threshold_rule": threshold_rule,
        }
    metadata |= {
        "hyperparameters": {name: getattr(args, name) for name in HYPERPARAMETERS},
        METADATA_KEY: training_data,
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
    if encoding:
        write_serving_files(model_dir, encoding)
    LOG.info(
        "best iteration %d of %d (%s); saved %s in %.1f s",
        best_iteration,
        rounds,
        summary,
        model_dir / MODEL_FILE,
        time.perf_counter() - started,
    )
    return metadata


def _calibrate(
    model: xgb.Booster, dvalid: xgb.DMatrix, y_valid: np.ndarray, weight: float
) -> tuple[xgb.Booster, dict[str, Any]]:
    """Platt scaling on the validation split, baked into the booster (checked: the baked model
    predicts exactly what the fitted scaling says)."""
    margin = model.predict(dvalid, output_margin=True).astype(np.float64)
    a, b = fit_platt(y_valid, margin)
    baked = bake_platt(model, a, b)
    expected = sigmoid(a * margin + b)
    gap = float(np.max(np.abs(baked.predict(dvalid) - expected)))
    if gap > 1e-5:
        raise TrainingError(f"the calibrated booster is off by {gap:.2e} from Platt's scaling")
    LOG.info(
        "scale_pos_weight %.4g: Platt scaling a=%.4f b=%.4f baked into the booster", weight, a, b
    )
    return baked, {"method": "platt", "a": a, "b": b, "fitted_on": "validation split"}


def main(argv: list[str] | None = None) -> int:
    """Run the step; 0 on success, 1 on failure (reason in the failure file and stderr)."""
    configure_logging(LOG)
    return run_step(
        "train",
        LOG,
        lambda: train(parse_args(argv)),
        failure_file=TRAINING_FAILURE_FILE,
        # A bad hyperparameter value is an ArgumentError (exit_on_error=False) or ValueError.
        expected=(TrainingError, CalibrationError, ValueError, argparse.ArgumentError),
        xgboost_errors=(xgb.core.XGBoostError,),
    )


if __name__ == "__main__":
    sys.exit(main())
