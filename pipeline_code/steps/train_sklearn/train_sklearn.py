"""Train step for `pipeline.trainer = sklearn` (SageMaker scikit-learn framework container,
script mode): fits the configured scikit-learn estimator on the `train` channel and writes it
where Evaluate and the endpoint read it.

Reads the same channels as train.py (`train`, `validation`: CSV with a header, the target
first; the train channel's `training_data.json`), with the same reader (`channels`), category
encoding (fitted on the train channel only, `common.categories`) and label checks
(`objectives`). Writes into `$SM_MODEL_DIR`:

    model.joblib                  the fitted estimator (joblib)
    metadata/model-metadata.json  train.py's keys (feature names and types, labels, validation
                                  scores, decision threshold for binary, ...) plus `trainer`
                                  "sklearn", `sklearn_version`, `estimator`, `estimator_params`
    metadata/categories.json      the encoding (category features only)
    code/inference.py             the endpoint's script (train/inference.py: the same CSV
    code/common/...               contract as an XGBoost model's), with the modules it imports

Hyperparameters (script mode: command-line arguments, else SM_HP_<NAME>): `estimator` (a class
path under `sklearn.`), `estimator_params` (a JSON object of its parameters), `target`, `seed`
(given as random_state when the estimator has one and the params do not), `decision_threshold`.
A HistGradientBoosting estimator gets `categorical_features` for the category columns unless
the params set it. Probabilities are served as the estimator returns them (no recalibration);
the binary decision threshold is chosen on the validation split as train.py chooses it.

Uploaded with train/'s modules (`train/`, beside this script) and `common`; imports nothing the
scikit-learn image lacks (no xgboost). On failure: exit code 1, the reason on stderr and in
/opt/ml/output/failure.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# train/'s modules: uploaded into train/ beside this script; in this repository, the sibling.
sys.path.append(
    str(
        Path(__file__).resolve().parent / "train"
        if (Path(__file__).resolve().parent / "train").is_dir()
        else Path(__file__).resolve().parent.parent / "train"
    )
)

import joblib
import numpy as np
import sklearn
from sklearn.base import is_classifier, is_regressor

from calibration import MAX_F1, CalibrationError, choose_threshold, parse_threshold_rule
from channels import TrainingError, read_channel
from common.failure import TRAINING_FAILURE_FILE
from common.model_files import METADATA_DIR, METADATA_FILE, SKLEARN_MODEL_FILE, SKLEARN_TRAINER
from common.problem_types import BINARY, REGRESSION
from common.runner import configure_logging, run_step
from common.sklearn_predictions import PredictionError, predict
from common.training_data import METADATA_KEY, read_record
from objectives import check_labels, objective_of, validation_summary
from serving_files import category_features, write_serving_files

LOG = logging.getLogger("train_sklearn")
DEFAULT_MODEL_DIR = "/opt/ml/model"
#: name -> (type, default) of the hyperparameters (CLI --name or SM_HP_NAME).
HYPERPARAMETERS: dict[str, tuple[type, Any]] = {
    "estimator": (str, "sklearn.ensemble.HistGradientBoostingClassifier"),
    "estimator_params": (str, "{}"),
    "target": (str, "is_fraud"),
    "seed": (int, 42),
    "decision_threshold": (str, MAX_F1),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train the scikit-learn challenger.", exit_on_error=False
    )
    for name, (kind, default) in HYPERPARAMETERS.items():
        env_value = os.environ.get(f"SM_HP_{name.upper()}")
        parser.add_argument(
            f"--{name}", type=kind, default=kind(env_value) if env_value is not None else default
        )
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--model_dir", default=os.environ.get("SM_MODEL_DIR", DEFAULT_MODEL_DIR))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        LOG.warning("ignoring unknown arguments: %s", unknown)
    return args


def make_estimator(path: str, params_text: str, problem_type: str, seed: int) -> Any:
    """The estimator `path` names, built with its parameters; a clear error when the class is
    not scikit-learn's, not of the problem type's kind, or a parameter is not one of its own."""
    module_name, _, class_name = path.rpartition(".")
    if not module_name.startswith("sklearn."):
        raise TrainingError(f"hyperparameter estimator = {path!r}: a class path under sklearn.")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
        default = cls()
    except (ImportError, AttributeError, TypeError) as error:
        raise TrainingError(
            f"hyperparameter estimator = {path!r} is not an estimator of scikit-learn "
            f"{sklearn.__version__}: {error}"
        ) from None
    kind, fits = (
        ("regressor", is_regressor(default))
        if problem_type == REGRESSION
        else ("classifier", is_classifier(default))
    )
    if not fits:
        raise TrainingError(
            f"hyperparameter estimator = {path!r} is not a {kind}: a {problem_type} target "
            f"needs one"
        )
    try:
        params = json.loads(params_text)
    except json.JSONDecodeError as error:
        raise TrainingError(f"hyperparameter estimator_params is not JSON: {error}") from None
    if not isinstance(params, dict):
        raise TrainingError("hyperparameter estimator_params must be a JSON object")
    known = default.get_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise TrainingError(
            f"hyperparameter estimator_params: {unknown} are not parameters of {class_name} "
            f"(it takes {', '.join(sorted(known))})"
        )
    if "random_state" in known and "random_state" not in params:
        params["random_state"] = seed
    return cls(**params)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Fit, check and save the estimator with its metadata and serving code; returns the
    metadata."""
    threshold_rule = parse_threshold_rule(args.decision_threshold)
    try:
        training_data = read_record(Path(args.train)) if args.train else None
    except ValueError as error:
        raise TrainingError(f"channel 'train': {error}") from error
    objective = objective_of(training_data)
    binary = objective.problem_type == BINARY
    n_classes = len(objective.classes) or 2
    categories = category_features(training_data)
    x_train, y_train, features, encoding = read_channel(
        "train", args.train, args.target, categories, binary=binary
    )
    x_valid, y_valid, valid_features, _ = read_channel(
        "validation", args.validation, args.target, categories, encoding, binary=binary
    )
    check_labels(objective, "train", y_train, args.target)
    check_labels(objective, "validation", y_valid, args.target)
    if valid_features != features:
        raise TrainingError(
            f"the validation channel's features {valid_features} differ from the train "
            f"channel's {features}"
        )
    estimator = make_estimator(
        args.estimator, args.estimator_params, objective.problem_type, args.seed
    )
    params = json.loads(args.estimator_params)
    if (
        type(estimator).__name__.startswith("HistGradientBoosting")
        and "categorical_features" not in params
    ):
        estimator.set_params(categorical_features=[name in encoding for name in features])
    LOG.info(
        "fitting %s on %d rows, %d features (validation %d rows)",
        args.estimator,
        y_train.size,
        len(features),
        y_valid.size,
    )
    estimator.fit(x_train, y_train if objective.problem_type == REGRESSION else y_train.astype(int))
    try:
        p_valid = predict(estimator, x_valid, objective.problem_type, n_classes)
    except PredictionError as error:
        raise TrainingError(f"the fitted estimator: {error}") from error
    if not np.isfinite(p_valid).all():
        raise TrainingError("the estimator predicts non-finite values on the validation split")
    scores = validation_summary(objective, y_valid, p_valid)
    metadata: dict[str, Any] = {
        "model_file": SKLEARN_MODEL_FILE,
        "format": "joblib",
        "trainer": SKLEARN_TRAINER,
        "sklearn_version": sklearn.__version__,
        "estimator": args.estimator,
        "estimator_params": params,
        **({"num_class": n_classes} if objective.classes else {}),
        "target": args.target,
        "feature_names": features,
        "feature_types": ["c" if name in encoding else "q" for name in features],
        "labels": (training_data or {}).get("labels"),
        **scores,
        "train_rows": int(y_train.size),
        "validation_rows": int(y_valid.size),
    }
    if binary:
        metadata |= {
            "calibration": None,
            "decision_threshold": choose_threshold(threshold_rule, y_valid, p_valid),
            "decision_threshold_rule": threshold_rule,
        }
    metadata |= {
        "hyperparameters": {name: getattr(args, name) for name in HYPERPARAMETERS},
        METADATA_KEY: training_data,
    }
    try:
        metadata_text = json.dumps(metadata, indent=2, allow_nan=False) + "\n"
    except ValueError as error:
        raise TrainingError(f"cannot write {METADATA_FILE} ({error}): no model written") from error
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, model_dir / SKLEARN_MODEL_FILE)
    (model_dir / METADATA_DIR).mkdir(exist_ok=True)
    (model_dir / METADATA_DIR / METADATA_FILE).write_text(metadata_text, encoding="utf-8")
    # Always: the scikit-learn image has no algorithm mode, the script is how it serves.
    write_serving_files(model_dir, encoding, sklearn_model=True)
    LOG.info("saved %s (%s)", model_dir / SKLEARN_MODEL_FILE, scores)
    return metadata


def main(argv: list[str] | None = None) -> int:
    """Run the step; 0 on success, 1 on failure (reason in the failure file and stderr)."""
    configure_logging(LOG)
    return run_step(
        "train",
        LOG,
        lambda: train(parse_args(argv)),
        failure_file=TRAINING_FAILURE_FILE,
        expected=(TrainingError, CalibrationError, ValueError, argparse.ArgumentError),
    )


if __name__ == "__main__":
    sys.exit(main())
