"""What `pipeline.trainer` changes in the training pipeline: the training job's image, code and
hyperparameters, the image Evaluate runs in, and the registered package's inference image.

    xgboost  train.py in the SageMaker XGBoost image; Evaluate in the same image; served by it
             (algorithm mode, or script mode with category features)
    sklearn  train_sklearn.py in the SageMaker scikit-learn image; Evaluate in that image too,
             because a scikit-learn model is a pickle that only the scikit-learn version that
             wrote it loads safely (the XGBoost 3.0-5 image has scikit-learn 1.5.2, pinned
             by aws/deep-learning-containers docker/xgboost/3.0-5/requirements.txt; the
             scikit-learn 1.9-0 image 1.9.0); served by that image in script mode with the
             archive's own inference.py (the same CSV contract)
    custom   the user's script (pipeline.custom.source_dir) in the user's image; it writes an
             XGBoost model (README: Trainers), so Evaluate and serving are XGBoost's; with
             category features the script gets the loop's serving code (step_code's
             mlops_loop/) and writes the encoding and code/inference.py with it, and Evaluate
             refuses an archive whose code/ is not that code byte for byte (script mode as for
             xgboost)
"""

from __future__ import annotations

import json
from typing import Any

from pipeline_code.definition.context import Context, xgboost_image_uri
from pipeline_code.definition.contract import SEED
from pipeline_code.definition.settings import PipelineSettings, SettingsError

#: botocore's CreateTrainingJob HyperParameters: values of at most 2,500 characters.
MAX_HYPERPARAMETER_LENGTH = 2500


def sklearn_image_uri(settings: PipelineSettings, scope: str) -> str:
    """SageMaker scikit-learn framework image for ``settings.region`` (training|inference)."""
    from sagemaker.core import image_uris

    assert settings.sklearn is not None
    try:
        return image_uris.retrieve(
            "sklearn",
            region=settings.region,
            version=settings.sklearn.framework_version,
            image_scope=scope,
        )
    except ValueError as error:
        raise SettingsError(f"settings.sklearn.framework_version / region: {error}") from error


def trainer_image_uri(settings: PipelineSettings, scope: str) -> str:
    """The trainer's image for ``scope`` (training: the job and Evaluate; inference: serving)."""
    if settings.sklearn is not None:
        return sklearn_image_uri(settings, scope)
    if settings.custom is not None and scope == "training":
        return settings.custom.image_uri
    return xgboost_image_uri(settings, scope)


def evaluate_image_uri(settings: PipelineSettings) -> str | None:
    """Evaluate's image: the scikit-learn one for the scikit-learn trainer (None: the
    processors' default, the XGBoost image)."""
    return sklearn_image_uri(settings, "training") if settings.sklearn is not None else None


def evaluate_trainer_arguments(settings: PipelineSettings) -> list[str]:
    """Evaluate's `--trainer`: it loads a scikit-learn pickle only when this says sklearn, not
    because a model's own metadata says so (omitted for xgboost, Evaluate's default, so the
    XGBoost definitions keep their bytes)."""
    return [] if settings.trainer == "xgboost" else ["--trainer", settings.trainer]


def train_source(ctx: Context) -> tuple[str, str]:
    """(source directory URI, entry script) of the training job."""
    if ctx.settings.sklearn is not None:
        return ctx.code.train_sklearn_source_dir, "train_sklearn.py"
    if ctx.settings.custom is not None:
        return ctx.code.custom_source_dir, ctx.settings.custom.entry_script
    return ctx.code.train_source_dir, "train.py"


def train_description(settings: PipelineSettings) -> str:
    if settings.sklearn is not None:
        return f"Fit the scikit-learn challenger ({settings.sklearn.estimator})."
    if settings.custom is not None:
        return f"Train the challenger with {settings.custom.entry_script} in the custom image."
    return "Train the XGBoost challenger with early stopping on the validation split."


def train_hyperparameters(ctx: Context, hp: dict[str, Any]) -> dict[str, str]:
    """The training job's HyperParameters (a string map). XGBoost: `hp` (pipeline parameters
    or, under tuning, fixed values) and the fixed ones; scikit-learn: the estimator, its
    parameters as JSON, and the fixed ones; custom: pipeline.custom.hyperparameters (sorted by
    name) and the fixed ones, which win a clash."""
    settings = ctx.settings
    fixed = {
        "seed": str(SEED),
        "target": settings.schema["target"],
        # Fixed by the deployed configuration: the threshold is chosen on the validation split.
        **(
            {"scale_pos_weight": settings.scale_pos_weight} if settings.trainer == "xgboost" else {}
        ),
        "decision_threshold": settings.decision_threshold,
    }
    if settings.custom is not None:
        return {**dict(sorted(settings.custom.hyperparameters.items())), **fixed}
    if settings.sklearn is None:
        # A class weight is undone by calibration (train.py).
        return {
            **{k: v.to_string() if hasattr(v, "to_string") else str(v) for k, v in hp.items()},
            **fixed,
        }
    params = json.dumps(settings.sklearn.params, sort_keys=True, separators=(",", ":"))
    if len(params) > MAX_HYPERPARAMETER_LENGTH:
        raise SettingsError(
            f"settings.sklearn.params is {len(params)} characters as JSON: a training job's "
            f"hyperparameter holds at most {MAX_HYPERPARAMETER_LENGTH}"
        )
    return {"estimator": settings.sklearn.estimator, "estimator_params": params, **fixed}
