"""What Train fits for each problem type: XGBoost's objective and early-stopping metric, the
checks of the labels across every host's shard, and the validation numbers recorded with the
model.

    binary      binary:logistic, early stopping on logloss; calibrated, with a decision
                threshold (train.py, `calibration`)
    multiclass  multi:softprob with num_class = the recorded class list's length, early
                stopping on mlogloss; the booster returns one probability per class (rows sum
                to 1); no calibration or threshold (the predicted class is the most probable)
    regression  reg:squarederror, early stopping on rmse; the booster returns the value

The problem type and the class list come from Prepare's record of the training data (`labels`
in the train channel's training_data.json); a channel without a record is binary, as before.
Every check sums its counts over the hosts first (`global_sum`), so training across instances
works for every type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibration import scale_pos_weight
from channels import TrainingError
from common.problem_types import BINARY, MULTICLASS, PROBLEM_TYPES, REGRESSION
from validation_metrics import auc, class_f1, log_loss, threshold_metrics


@dataclass(frozen=True)
class Objective:
    problem_type: str = BINARY
    #: multiclass only: class k is classes[k].
    classes: tuple[str, ...] = ()

    @property
    def xgboost_objective(self) -> str:
        return {
            BINARY: "binary:logistic",
            MULTICLASS: "multi:softprob",
            REGRESSION: "reg:squarederror",
        }[self.problem_type]

    @property
    def early_stopping_metric(self) -> str:
        return {BINARY: "logloss", MULTICLASS: "mlogloss", REGRESSION: "rmse"}[self.problem_type]

    def params(self) -> dict[str, Any]:
        """The objective's booster parameters (binary: train.py's, unchanged)."""
        if self.problem_type == MULTICLASS:
            return {
                "objective": self.xgboost_objective,
                "num_class": len(self.classes),
                "eval_metric": ["merror", self.early_stopping_metric],
            }
        return {"objective": self.xgboost_objective, "eval_metric": [self.early_stopping_metric]}


def objective_of(record: dict[str, Any] | None) -> Objective:
    """The objective Prepare's record of the training data asks for (no record: binary)."""
    labels = (record or {}).get("labels") or {}
    problem = labels.get("problem_type", BINARY) if isinstance(labels, dict) else BINARY
    if problem not in PROBLEM_TYPES:
        raise TrainingError(
            f"training_data.json labels.problem_type = {problem!r} is not allowed: one of "
            f"{', '.join(PROBLEM_TYPES)}"
        )
    if problem != MULTICLASS:
        return Objective(problem)
    classes = labels.get("classes")
    if not (
        isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)
    ):
        raise TrainingError(
            f"training_data.json labels.classes = {classes!r} is not allowed: the list of at "
            "least two class labels"
        )
    return Objective(problem, tuple(classes))


def check_labels(
    objective: Objective,
    name: str,
    labels: np.ndarray,
    target: str,
) -> None:
    """A channel's labels fit the objective: class codes 0..K-1, or finite numbers."""
    if objective.problem_type == MULTICLASS:
        k = len(objective.classes)
        bad = np.isnan(labels) | (labels < 0) | (labels >= k) | (labels != np.floor(labels))
        if bad.any():
            raise TrainingError(
                f"channel {name!r}: target {target!r} must be a class code from 0 to {k - 1} "
                f"in every row ({int(bad.sum())} row(s) are not, e.g. {labels[bad][0]!r})"
            )
    elif objective.problem_type == REGRESSION:
        bad = ~np.isfinite(labels)
        if bad.any():
            raise TrainingError(
                f"channel {name!r}: target {target!r} must be a finite number in every row "
                f"({int(bad.sum())} row(s) are not)"
            )


def binary_rows(
    weight_setting: str,
    y_train: np.ndarray,
    y_valid: np.ndarray,
    global_sum: Callable[[np.ndarray], np.ndarray],
) -> tuple[int, str, float]:
    """Rows of a binary train split (over every host), a line describing them and the class
    weight (`scale_pos_weight`); a split holding a single class is an error."""
    local_positives = float(y_train.sum())
    positives, negatives = (
        float(v) for v in global_sum(np.array([local_positives, y_train.size - local_positives]))
    )
    train_rows = int(positives + negatives)
    if positives == 0 or negatives == 0:
        raise TrainingError(
            f"the train channel has a single class ({train_rows} rows): need 0 and 1"
        )
    if np.unique(y_valid).size < 2:
        raise TrainingError(
            f"the validation channel has a single class (all {y_valid.size} rows are "
            f"{int(y_valid[0])}): the decision threshold and the calibration are chosen on it, "
            "which needs rows of both 0 and 1"
        )
    weight = scale_pos_weight(weight_setting, positives, negatives)
    return train_rows, f"{100 * positives / train_rows:.2f}% positive", weight


def training_rows(
    objective: Objective,
    weight_setting: str,
    y_train: np.ndarray,
    y_valid: np.ndarray,
    global_sum: Callable[[np.ndarray], np.ndarray],
) -> tuple[int, str, float]:
    """Rows of the train split summed over the hosts, a line describing them and the class
    weight (binary's `scale_pos_weight`, else 1); a binary split with one class, a multi-class
    train split missing a class or a constant regression target is an error."""
    if objective.problem_type == BINARY:
        return binary_rows(weight_setting, y_train, y_valid, global_sum)
    if objective.problem_type == MULTICLASS:
        k = len(objective.classes)
        counts = global_sum(np.bincount(y_train.astype(np.int64), minlength=k).astype(np.float64))
        absent = [objective.classes[i] for i in range(k) if counts[i] == 0]
        if absent:
            raise TrainingError(
                f"the train channel has no rows of class(es) {absent}: every class of "
                f"{list(objective.classes)} needs training rows"
            )
        if np.unique(y_valid).size < 2:
            raise TrainingError(
                f"the validation channel has a single class ({y_valid.size} rows): early "
                "stopping needs rows of at least two"
            )
        rows = int(counts.sum())
        shares = ", ".join(
            f"{c} {100 * n / rows:.1f}%" for c, n in zip(objective.classes, counts, strict=True)
        )
        return rows, f"{k} classes: {shares}", 1.0
    # regression: sum, sum of squares and rows, for the target's spread over every host
    moments = global_sum(
        np.array([y_train.size, y_train.sum(), np.square(y_train).sum()], dtype=np.float64)
    )
    rows = int(moments[0])
    if rows == 0:
        raise TrainingError("the train channel has no rows")
    mean = moments[1] / rows
    std = float(np.sqrt(max(moments[2] / rows - mean**2, 0.0)))
    if std == 0.0:
        raise TrainingError(
            f"the train channel's target is constant ({mean:g} in all {rows} rows): nothing "
            "to learn"
        )
    return rows, f"target mean {mean:.4g}, std {std:.4g}", 1.0


def validation_summary(
    objective: Objective, y: np.ndarray, p: np.ndarray, threshold: float | None = None
) -> dict[str, float]:
    """The validation numbers recorded with the model (a binary model's threshold metrics only
    with its decision `threshold`)."""
    if objective.problem_type == BINARY:
        scores = {"best_validation_logloss": log_loss(y, p), "best_validation_auc": auc(y, p)}
        if threshold is not None:
            found = threshold_metrics(y, p, threshold)
            scores |= {f"best_validation_{name}": value for name, value in found.items()}
        return scores
    if objective.problem_type == MULTICLASS:
        codes = y.astype(np.int64)
        chosen = np.clip(p[np.arange(y.size), codes].astype(np.float64), 1e-15, 1.0)
        return {
            "best_validation_mlogloss": float(-np.mean(np.log(chosen))),
            "best_validation_accuracy": float(np.mean(np.argmax(p, axis=1) == codes)),
            **{f"best_validation_{k}": v for k, v in class_f1(codes, p).items()},
        }
    error = p.astype(np.float64) - y
    return {
        "best_validation_rmse": float(np.sqrt(np.mean(np.square(error)))),
        "best_validation_mae": float(np.mean(np.abs(error))),
    }
