"""`pipeline.trainer` and `pipeline.sklearn`: which training code fits the challenger.

`xgboost` (default) is train.py in the SageMaker XGBoost image. `sklearn` is
train_sklearn.py in the SageMaker scikit-learn image, fitting the estimator class that
`pipeline.sklearn.estimator` names with `pipeline.sklearn.params`. The estimator is checked
here, offline, with the scikit-learn this checkout has (a class under `sklearn.`, a classifier
for binary and multiclass, a regressor for regression, parameters among its `get_params()`);
the training job checks it again with the image's version.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any, Literal

from mlops_config.rules import OneOf, Section, Text

TRAINERS = ("xgboost", "sklearn")
Trainer = Literal["xgboost", "sklearn"]
#: A dotted class path inside scikit-learn, e.g. sklearn.ensemble.HistGradientBoostingClassifier.
ESTIMATOR_PATH = r"^sklearn(\.[A-Za-z_][A-Za-z0-9_]*)+\.[A-Za-z_][A-Za-z0-9_]*$"


class SklearnConfig(Section):
    """The scikit-learn trainer's estimator (with `pipeline.trainer = sklearn`)."""

    estimator: Annotated[
        str,
        Text(ESTIMATOR_PATH, "a scikit-learn class path such as sklearn.svm.SVC"),
    ] = "sklearn.ensemble.HistGradientBoostingClassifier"
    """The estimator class: a classifier for binary and multiclass, a regressor for
    regression."""
    params: dict[str, Any] = {}
    """Its constructor parameters (JSON values), each one of the class's get_params() keys;
    random_state defaults to the pipeline's seed."""
    framework_version: Annotated[Literal["1.9-0"], OneOf()] = "1.9-0"
    """SageMaker scikit-learn image (scikit-learn 1.9) of training, Evaluate and serving."""


def trainer_refusal(pipeline: Any, problem_type: str, batch: bool) -> str | None:
    """Why `pipeline.trainer` cannot run with this problem type and serving mode (None: it
    can); the message starts with the key, below the environment."""
    if pipeline.trainer != "sklearn":
        return None
    if batch:
        return (
            "pipeline.trainer = 'sklearn' is not allowed with serving.mode = 'batch' yet: the "
            "scoring pipeline transforms with the XGBoost image (serve realtime or serverless)"
        )
    return estimator_refusal(pipeline.sklearn or SklearnConfig(), problem_type)


def estimator_refusal(sklearn: SklearnConfig, problem_type: str) -> str | None:
    """Why the estimator cannot fit a `problem_type` target (None: it can, or scikit-learn is
    not installed here and the training job will tell)."""
    try:
        from sklearn.base import is_classifier, is_regressor
    except ImportError:
        return None
    path = sklearn.estimator
    module_name, _, class_name = path.rpartition(".")
    try:
        estimator = getattr(importlib.import_module(module_name), class_name)()
        known = estimator.get_params()
    except (ImportError, AttributeError, TypeError) as error:
        return (
            f"pipeline.sklearn.estimator = {path!r} is not allowed: not a scikit-learn "
            f"estimator ({error})"
        )
    kind, fits = (
        ("regressor", is_regressor(estimator))
        if problem_type == "regression"
        else ("classifier", is_classifier(estimator))
    )
    if not fits:
        return (
            f"pipeline.sklearn.estimator = {path!r} is not allowed with schema.problem_type = "
            f"{problem_type!r}: it needs a {kind}"
        )
    unknown = sorted(set(sklearn.params) - set(known))
    if unknown:
        return (
            f"pipeline.sklearn.params = {unknown} is not allowed: not parameters of "
            f"{class_name} (it takes {', '.join(sorted(known))})"
        )
    return None
