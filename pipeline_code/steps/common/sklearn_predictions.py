"""What a scikit-learn model (pipeline.trainer = sklearn) predicts, in the numbers Evaluate and
the endpoint use for an XGBoost model of the same problem type: the probability of class 1
(binary), one probability per class in the recorded class order (multi-class), the value
(regression). Labels reach the estimator as codes (0/1, or 0..K-1 of the class list), so
`classes_` are those codes; a class the estimator never saw is an error, not a silent column
shift."""

from __future__ import annotations

from typing import Any

import numpy as np


class PredictionError(ValueError):
    """The estimator's classes do not match the model's record; the message says how."""


def probability_columns(estimator: Any, n_classes: int) -> list[int]:
    """Positions in `predict_proba`'s columns of the class codes 0..n_classes-1."""
    classes = [float(c) for c in getattr(estimator, "classes_", [])]
    missing = [code for code in range(n_classes) if float(code) not in classes]
    if missing or len(classes) != n_classes:
        raise PredictionError(
            f"the estimator's classes {classes} are not the codes 0..{n_classes - 1} of the "
            f"model's {n_classes} classes (missing {missing})"
        )
    return [classes.index(float(code)) for code in range(n_classes)]


def predict(estimator: Any, matrix: np.ndarray, problem_type: str, n_classes: int) -> np.ndarray:
    """The model's numbers for `matrix` (rows x features, float) as float64."""
    if problem_type == "regression":
        return np.asarray(estimator.predict(matrix), dtype=np.float64)
    columns = probability_columns(estimator, 2 if problem_type == "binary" else n_classes)
    probabilities = np.asarray(estimator.predict_proba(matrix), dtype=np.float64)
    if problem_type == "binary":
        return probabilities[:, columns[1]]
    return probabilities[:, columns]
