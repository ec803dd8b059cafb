"""Probabilities the serving container can return as they are, and the decision threshold.

Training with a class weight (`scale_pos_weight` != 1) inflates the predicted probabilities of
the weighted class. Platt scaling on the validation split, p' = sigmoid(a * logit(p) + b), puts
them back on the scale of observed frequencies; :func:`bake_platt` folds it into the booster
(every leaf value times a, the base score moved to sigmoid(a * logit(base) + b)), because the
SageMaker XGBoost container serves `booster.predict` and nothing else.

The decision threshold (predict 1 when p >= t) is chosen on the validation split: a fixed value,
the one that maximises F1 (`max-f1`), or accuracy (`max-accuracy`).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xgboost as xgb

MAX_F1 = "max-f1"
MAX_ACCURACY = "max-accuracy"
THRESHOLD_RULES = (MAX_F1, MAX_ACCURACY)
BALANCED = "balanced"
_LOGIT_CLIP = 1e-7


class CalibrationError(ValueError):
    """Calibration or the threshold cannot be computed; the message says why."""


def logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(p, dtype=np.float64), _LOGIT_CLIP, 1 - _LOGIT_CLIP)
    return np.log(clipped / (1 - clipped))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def fit_platt(y: np.ndarray, margin: np.ndarray, iterations: int = 100) -> tuple[float, float]:
    """(a, b) maximising the likelihood of sigmoid(a * margin + b) on labels `y` (Newton's
    method on two parameters; `margin` is the booster's raw output, logit(p))."""
    z = np.asarray(margin, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    a, b = 1.0, 0.0
    for _ in range(iterations):
        q = sigmoid(a * z + b)
        gradient = np.array([np.sum((q - y) * z), np.sum(q - y)])
        w = q * (1 - q)
        hessian = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]])
        step = np.linalg.solve(hessian + 1e-9 * np.eye(2), gradient)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    if not (math.isfinite(a) and math.isfinite(b)):
        raise CalibrationError(
            f"Platt scaling did not converge on the validation split (a={a}, b={b})"
        )
    return float(a), float(b)


def _base_score(learner: dict) -> float:
    raw = learner["learner_model_param"]["base_score"]
    return float(json.loads(raw)[0]) if raw.startswith("[") else float(raw)


def bake_platt(booster: xgb.Booster, a: float, b: float) -> xgb.Booster:
    """A copy of a binary:logistic tree booster predicting sigmoid(a * margin + b)."""
    # Imported here: the scikit-learn trainer uses this module's thresholds in an image
    # without xgboost.
    import xgboost as xgb

    model = json.loads(booster.save_raw(raw_format="json"))
    learner = model["learner"]
    objective = learner["objective"]["name"]
    if objective != "binary:logistic":
        raise CalibrationError(f"objective {objective!r}: only binary:logistic is recalibrated")
    base = _base_score(learner)
    new_base = float(sigmoid(a * logit(np.array([base]))[0] + b))
    for tree in learner["gradient_booster"]["model"]["trees"]:
        for node, child in enumerate(tree["left_children"]):
            if child == -1:  # a leaf keeps its value in split_conditions
                tree["split_conditions"][node] *= a
        tree["base_weights"] = [w * a for w in tree["base_weights"]]
    baked = xgb.Booster()
    baked.load_model(bytearray(json.dumps(model).encode()))
    # set_param, not the JSON text: XGBoost silently ignores a base_score string it cannot
    # parse; a parameter is stored in the model and survives the UBJSON round trip.
    baked.set_param({"base_score": new_base})
    return baked


def scale_pos_weight(setting: str, positives: float, negatives: float) -> float:
    """The class weight: `balanced` (negatives / positives) or a positive number."""
    if setting.strip().lower() == BALANCED:
        return negatives / positives
    try:
        weight = float(setting)
    except ValueError:
        weight = float("nan")
    if not (math.isfinite(weight) and weight > 0):
        raise CalibrationError(
            f"hyperparameter scale_pos_weight = {setting!r}: a number above 0 or {BALANCED!r}"
        )
    return weight


def parse_threshold_rule(setting: str) -> str | float:
    """`max-f1`, `max-accuracy` or a fixed threshold strictly between 0 and 1."""
    text = setting.strip().lower()
    if text in THRESHOLD_RULES:
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise CalibrationError(
            f"hyperparameter decision_threshold = {setting!r}: {MAX_F1}, {MAX_ACCURACY} or a "
            "number between 0 and 1"
        )
    return value


def choose_threshold(rule: str | float, y: np.ndarray, p: np.ndarray) -> float:
    """The threshold t (predict 1 when p >= t): fixed, or the validation score maximising F1
    or accuracy among the scores seen (ties: the highest such score)."""
    if not isinstance(rule, str):
        return float(rule)
    y = np.asarray(y).astype(np.int64)
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="stable")
    scores, labels = np.asarray(p, dtype=np.float64)[order], y[order]
    tp = np.cumsum(labels)
    fp = np.cumsum(1 - labels)
    last = np.r_[scores[1:] != scores[:-1], True]  # cut only between distinct scores
    tp, fp, cuts = tp[last], fp[last], scores[last]
    positives = int(y.sum())
    if rule == MAX_F1:
        quality = 2 * tp / (tp + fp + positives)
    else:
        negatives = y.size - positives
        quality = (tp + (negatives - fp)) / y.size
    return float(cuts[int(np.argmax(quality))])
