"""A worked example of `pipeline.trainer = custom`: a training script written against the
contract in the README's *Trainers* section, using nothing of this repository but, with
category features, the loop's code the contract ships beside it (`mlops_loop/`).

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
`SM_MODEL_DIR/metadata/model-metadata.json` (`feature_names` in column order and
`feature_types`, both exactly the booster's own, `labels` copied from training_data.json, for
binary a `decision_threshold`). This one fits a plain booster with
a fixed number of rounds and picks the threshold that maximises F1 on the validation split.

With category features (training_data.json's `feature_types` says `category`), their CSV
values are text as the data has them, and the loop ships its serving code beside this script
in `mlops_loop/`. This script then reads those columns as raw text, fits the encoding on the
train channel with the loop's `common.categories` (as train.py does), trains on its codes with
XGBoost's native categorical support (feature type `c`), and writes the encoding and the
endpoint's inference code with `serving_files.write_serving_files`: `metadata/categories.json`
and `code/`, which Evaluate checks is the loop's own, byte for byte, before the model can be
registered. The endpoint then takes the category values as text, an unseen one as missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

OBJECTIVES = {
    "binary": {"objective": "binary:logistic"},
    "multiclass": {"objective": "multi:softprob"},
    "regression": {"objective": "reg:squarederror"},
}


#: The loop's serving code, shipped beside this script when the schema has category features.
LOOP = Path(__file__).resolve().parent / "mlops_loop"


def read(folder: str, categories: list[str]) -> pd.DataFrame:
    """Every CSV file of a channel; category columns as the raw text of each field."""
    files = sorted(Path(folder).rglob("*.csv"))
    text = {name: str for name in categories}
    return pd.concat([pd.read_csv(f, converters=text) for f in files], ignore_index=True)


def matrix(frame: pd.DataFrame, features: list[str], encoding: dict[str, list[str]]) -> Any:
    """The feature matrix: numbers as they are, category text as its code in `encoding`
    (unseen or missing: NaN), with the loop's canonical-text rule."""
    if not encoding:
        return frame[features]
    from common.categories import canonical_array, encode

    columns = {
        name: encode(canonical_array(frame[name]), encoding[name])
        if name in encoding
        else frame[name].to_numpy(dtype=np.float32)
        for name in features
    }
    return np.column_stack([columns[name] for name in features])


def dmatrix(frame: pd.DataFrame, target: str, features: list[str], encoding: dict[str, Any]) -> Any:
    types = ["c" if name in encoding else "q" for name in features]
    return xgb.DMatrix(
        matrix(frame, features, encoding),
        label=frame[target],
        feature_names=features,
        feature_types=types,
        enable_categorical=bool(encoding),
    )


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
    record = json.loads((Path(train_dir) / "training_data.json").read_text())
    labels = record["labels"]
    problem = labels.get("problem_type", "binary")
    kinds = record.get("feature_types") or {}
    categories = [name for name, kind in kinds.items() if kind == "category"]
    train, valid = read(train_dir, categories), read(valid_dir, categories)
    features = [c for c in train.columns if c != args.target]
    encoding: dict[str, list[str]] = {}
    if categories:
        sys.path.insert(0, str(LOOP))
        from common.categories import canonical_array, fit_encoding

        # fitted on the train channel only, as train.py does
        encoding = fit_encoding({name: canonical_array(train[name]) for name in categories})
    params = {**OBJECTIVES[problem], "seed": args.seed, "max_depth": 4, "eta": 0.1}
    if problem == "multiclass":
        params["num_class"] = len(labels["classes"])
    dtrain = dmatrix(train, args.target, features, encoding)
    dvalid = dmatrix(valid, args.target, features, encoding)
    booster = xgb.train(params, dtrain, num_boost_round=args.num_round)
    metadata = {"trainer": "custom", "feature_names": features, "labels": labels}
    metadata["feature_types"] = list(booster.feature_types or [])
    if problem == "binary":
        rule = args.decision_threshold
        p = booster.predict(dvalid)
        threshold = best_f1_threshold(valid[args.target].to_numpy(), p)
        metadata["decision_threshold"] = float(rule) if rule[0].isdigit() else threshold
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(model_dir / "xgboost-model")
    (model_dir / "metadata").mkdir(exist_ok=True)
    (model_dir / "metadata" / "model-metadata.json").write_text(json.dumps(metadata, indent=2))
    if encoding:
        from serving_files import write_serving_files

        # metadata/categories.json and code/: what the endpoint runs (Evaluate checks it)
        write_serving_files(model_dir, encoding)
    print(f"trained {params['objective']} on {len(train)} rows, {len(features)} features")


if __name__ == "__main__":
    main()
