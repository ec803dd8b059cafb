"""A worked example of `pipeline.trainer = custom`: a training script written against the
contract in the README's *Trainers* section, using nothing of this repository.

SageMaker (and `make local-run TRAINER=custom`, which runs this script the same way, without
Docker) starts it in `pipeline.custom.image_uri` from `pipeline.custom.source_dir` with

    SM_CHANNEL_TRAIN, SM_CHANNEL_VALIDATION  folders of CSV files: a header, the target column
                                             first, then the features in schema order; the
                                             train folder also holds training_data.json
                                             (`labels`: problem_type, classes, positive_class)
    --target, --seed, --decision_threshold   and pipeline.custom.hyperparameters, as arguments
    SM_MODEL_DIR                             where the model goes (packed as model.tar.gz)

and must write `SM_MODEL_DIR/xgboost-model` (an XGBoost booster, JSON or UBJSON, that returns
the probability of class 1 / one probability per class / the value) and
`SM_MODEL_DIR/metadata/model-metadata.json` (`feature_names` in column order, `labels` copied
from training_data.json, for binary a `decision_threshold`). This one fits a plain booster with
a fixed number of rounds and picks the threshold that maximises F1 on the validation split.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

OBJECTIVES = {
    "binary": {"objective": "binary:logistic"},
    "multiclass": {"objective": "multi:softprob"},
    "regression": {"objective": "reg:squarederror"},
}


def read(folder: str) -> pd.DataFrame:
    files = sorted(Path(folder).rglob("*.csv"))
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    candidates = np.unique(np.round(p, 4))
    scores = []
    for t in candidates:
        predicted = p >= t
        tp = np.sum(predicted & (y == 1))
        scores.append(2 * tp / max(np.sum(predicted) + np.sum(y == 1), 1))
    return float(np.clip(candidates[int(np.argmax(scores))], 1e-6, 1 - 1e-6))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--decision_threshold", default="max-f1")
    parser.add_argument("--num_round", type=int, default=100)
    args, _ = parser.parse_known_args()
    train_dir, valid_dir = os.environ["SM_CHANNEL_TRAIN"], os.environ["SM_CHANNEL_VALIDATION"]
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    labels = json.loads((Path(train_dir) / "training_data.json").read_text())["labels"]
    problem = labels.get("problem_type", "binary")
    train, valid = read(train_dir), read(valid_dir)
    features = [c for c in train.columns if c != args.target]
    params = {**OBJECTIVES[problem], "seed": args.seed, "max_depth": 4, "eta": 0.1}
    if problem == "multiclass":
        params["num_class"] = len(labels["classes"])
    dtrain = xgb.DMatrix(train[features], label=train[args.target])
    dvalid = xgb.DMatrix(valid[features], label=valid[args.target])
    booster = xgb.train(params, dtrain, num_boost_round=args.num_round)
    metadata = {"trainer": "custom", "feature_names": features, "labels": labels}
    if problem == "binary":
        rule = args.decision_threshold
        p = booster.predict(dvalid)
        threshold = best_f1_threshold(valid[args.target].to_numpy(), p)
        metadata["decision_threshold"] = float(rule) if rule[0].isdigit() else threshold
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(model_dir / "xgboost-model")
    (model_dir / "metadata").mkdir(exist_ok=True)
    (model_dir / "metadata" / "model-metadata.json").write_text(json.dumps(metadata, indent=2))
    print(f"trained {params['objective']} on {len(train)} rows, {len(features)} features")


if __name__ == "__main__":
    main()
