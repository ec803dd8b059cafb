"""pipeline.trainer and pipeline.sklearn: xgboost by default; sklearn with an estimator that
fits the problem type (checked against scikit-learn's own classes and get_params()), on one
training instance, without tuning, in every serving mode (batch included); every refusal is one
line naming the key."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mlops_config import ConfigError, parse_environment, read_cdk_json_context
from tests.test_config_problem_types import with_problem


def _context(**pipeline: Any) -> dict[str, Any]:
    context = copy.deepcopy(read_cdk_json_context())
    context["environments"]["dev"].setdefault("pipeline", {}).update(pipeline)
    return context


def _error(context: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_environment(context, "dev")
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_xgboost_is_the_default_and_sklearn_defaults_to_hist_gradient_boosting() -> None:
    assert parse_environment(_context(), "dev").pipeline.trainer == "xgboost"
    pipeline = parse_environment(_context(trainer="sklearn"), "dev").pipeline
    assert pipeline.trainer == "sklearn" and pipeline.sklearn is None
    pipeline = parse_environment(
        _context(
            trainer="sklearn",
            sklearn={"estimator": "sklearn.svm.SVC", "params": {"C": 2.0, "probability": True}},
        ),
        "dev",
    ).pipeline
    assert pipeline.sklearn.estimator == "sklearn.svm.SVC"
    assert pipeline.sklearn.params == {"C": 2.0, "probability": True}
    assert pipeline.sklearn.framework_version == "1.9-0"


@pytest.mark.parametrize(
    ("problem", "estimator", "metric"),
    [
        ("multiclass", "sklearn.ensemble.RandomForestClassifier", "accuracy"),
        ("regression", "sklearn.ensemble.HistGradientBoostingRegressor", "rmse"),
    ],
)
def test_a_fitting_estimator_is_accepted_per_problem_type(
    problem: str, estimator: str, metric: str
) -> None:
    extra = {"metric_floor": 1000.0, "champion_tolerance": 10.0} if metric == "rmse" else {}
    context = with_problem(
        copy.deepcopy(read_cdk_json_context()),
        problem,
        metric=metric,
        trainer="sklearn",
        sklearn={"estimator": estimator},
        **extra,
    )
    if metric == "rmse":
        context["defaults"]["monitoring"]["quality_metric_floor"] = 1000.0
    assert parse_environment(context, "dev").pipeline.sklearn.estimator == estimator


def test_a_regression_target_without_pipeline_sklearn_names_the_missing_key() -> None:
    """The default estimator is a classifier: the error names pipeline.sklearn (the block the
    user did not set), not an estimator the user never wrote."""
    context = with_problem(
        copy.deepcopy(read_cdk_json_context()),
        "regression",
        metric="rmse",
        trainer="sklearn",
        metric_floor=1000.0,
        champion_tolerance=10.0,
    )
    context["defaults"]["monitoring"]["quality_metric_floor"] = 1000.0
    message = _error(context)
    assert "pipeline.sklearn = None is required with trainer sklearn and schema.problem_type" in (
        message
    )
    assert "HistGradientBoostingRegressor" in message


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ({"trainer": "lightgbm"}, "environments.dev.pipeline.trainer = 'lightgbm' is not allowed"),
        (
            {"trainer": "sklearn", "sklearn": {"estimator": "xgboost.XGBClassifier"}},
            "environments.dev.pipeline.sklearn.estimator = 'xgboost.XGBClassifier' is not "
            "allowed: a scikit-learn class path",
        ),
        (
            {"trainer": "sklearn", "sklearn": {"estimator": "sklearn.ensemble.NoSuchForest"}},
            "pipeline.sklearn.estimator = 'sklearn.ensemble.NoSuchForest' is not allowed: not "
            "a scikit-learn estimator",
        ),
        (
            {"trainer": "sklearn", "sklearn": {"estimator": "sklearn.linear_model.Ridge"}},
            "pipeline.sklearn.estimator = 'sklearn.linear_model.Ridge' is not allowed with "
            "schema.problem_type = 'binary': it needs a classifier",
        ),
        (
            {"trainer": "sklearn", "sklearn": {"params": {"max_iter": 50, "n_trees": 3}}},
            "pipeline.sklearn.params = ['n_trees'] is not allowed: not parameters of "
            "HistGradientBoostingClassifier",
        ),
        (
            {"trainer": "sklearn", "training_instance_count": 2},
            "pipeline.training_instance_count = 2 is not allowed: with trainer sklearn",
        ),
        (
            {"trainer": "sklearn", "tuning": {"ranges": {"eta": {"min": 0.01, "max": 0.3}}}},
            "pipeline.tuning is not allowed with trainer sklearn",
        ),
        (
            {"trainer": "sklearn", "scale_pos_weight": "balanced"},
            "environments.dev.pipeline.scale_pos_weight = 'balanced' is not allowed with "
            "trainer sklearn: only the xgboost trainer applies a class weight",
        ),
        (
            {"trainer": "sklearn", "scale_pos_weight": 3},
            "pipeline.scale_pos_weight = 3 is not allowed with trainer sklearn",
        ),
        (
            {"sklearn": {"estimator": "sklearn.svm.SVC"}},
            "pipeline.sklearn = '{...}' is not allowed: with trainer xgboost",
        ),
        (
            {"trainer": "sklearn", "sklearn": {"estimator": "sklearn.svm.SVC", "parms": {}}},
            "pipeline.sklearn.parms is not a known key: did you mean params?",
        ),
    ],
)
def test_a_trainer_that_cannot_run_is_refused_naming_the_key(
    pipeline: dict[str, Any], message: str
) -> None:
    assert message in _error(_context(**pipeline))


def test_the_scikit_learn_trainer_is_accepted_in_batch_mode() -> None:
    """The scoring run's model is the served package itself (its scikit-learn image and
    script-mode environment), so batch serves an sklearn model as realtime does (#15)."""
    context = _context(trainer="sklearn", sklearn={"estimator": "sklearn.svm.SVC"})
    context["environments"]["dev"].setdefault("serving", {})["mode"] = "batch"
    config = parse_environment(context, "dev")
    assert config.serving.is_batch
    assert config.pipeline.trainer == "sklearn"
    assert config.pipeline.sklearn.estimator == "sklearn.svm.SVC"


def test_in_batch_mode_an_unfit_estimator_is_still_refused_in_one_line() -> None:
    context = _context(trainer="sklearn", sklearn={"estimator": "sklearn.linear_model.Ridge"})
    context["environments"]["dev"].setdefault("serving", {})["mode"] = "batch"
    assert _error(context).endswith(
        "pipeline.sklearn.estimator = 'sklearn.linear_model.Ridge' is not allowed with "
        "schema.problem_type = 'binary': it needs a classifier"
    )


# ---- pipeline.trainer = custom ------------------------------------------------------------

DIGEST = "@sha256:" + "ab" * 32
OWN_IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/my-trainer" + DIGEST


def _custom(**block: Any) -> dict[str, Any]:
    return _context(
        trainer="custom",
        custom={"image_uri": OWN_IMAGE, "source_dir": "examples/custom_trainer", **block},
    )


def test_a_custom_trainer_in_the_environments_account_or_an_aws_image_is_accepted() -> None:
    import sagemaker.core

    pipeline = parse_environment(_custom(hyperparameters={"num_round": "50"}), "dev").pipeline
    assert pipeline.custom.image_uri == OWN_IMAGE
    assert pipeline.custom.entry_script == "train.py"
    assert pipeline.custom.hyperparameters == {"num_round": "50"}
    # An image AWS publishes for SageMaker in eu-west-1 (the SDK's table, read here).
    table = Path(sagemaker.core.__file__).parent / "image_uri_config" / "sklearn.json"
    aws = json.loads(table.read_text())["training"]["versions"]["1.9-0"]["registries"]["eu-west-1"]
    image = f"{aws}.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn{DIGEST}"
    assert parse_environment(_custom(image_uri=image), "dev").pipeline.custom.image_uri == image


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            {"image_uri": "222222222222.dkr.ecr.eu-west-1.amazonaws.com/my-trainer" + DIGEST},
            "account 222222222222 is neither the environment's (111111111111) nor one that "
            "publishes SageMaker images in eu-west-1",
        ),
        (
            {"image_uri": "111111111111.dkr.ecr.us-east-1.amazonaws.com/my-trainer" + DIGEST},
            "its region us-east-1 is not the environment's (eu-west-1)",
        ),
        (
            {"image_uri": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/my-trainer"},
            "pipeline.custom.image_uri = '111111111111.dkr.ecr.eu-west-1.amazonaws.com/"
            "my-trainer' is not allowed: an ECR image URI with its digest",
        ),
        (
            # A tag is mutable and the Train step's cache key holds the URI string.
            {"image_uri": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/my-trainer:1.0"},
            "pipeline.custom.image_uri = '111111111111.dkr.ecr.eu-west-1.amazonaws.com/"
            "my-trainer:1.0' is not allowed: name the image by its digest",
        ),
        ({"image_uri": "docker.io/library/python:3.12"}, "an ECR image URI"),
        ({"source_dir": "../outside"}, "pipeline.custom.source_dir = '../outside' is not allowed"),
        # Checked at config load (the definition would otherwise fail later, at generation).
        (
            {"source_dir": "no_such_folder"},
            "pipeline.custom.source_dir = 'no_such_folder' is not allowed: no such folder",
        ),
        (
            {"entry_script": "fit.py"},
            "pipeline.custom.entry_script = 'fit.py' is not allowed: no "
            "such file in examples/custom_trainer",
        ),
        ({"entry_script": "run.sh"}, "pipeline.custom.entry_script = 'run.sh' is not allowed"),
    ],
)
def test_a_custom_trainer_outside_the_contract_is_refused_naming_the_key(
    block: dict[str, Any], message: str
) -> None:
    assert message in _error(_custom(**block))


def test_a_custom_trainer_needs_its_block_and_one_instance_and_takes_category_features() -> None:
    assert "pipeline.custom = None is required with trainer custom" in _error(
        _context(trainer="custom")
    )
    two = _context(
        trainer="custom",
        training_instance_count=2,
        custom={"image_uri": OWN_IMAGE, "source_dir": "examples/custom_trainer"},
    )
    assert "pipeline.training_instance_count = 2 is not allowed: with trainer custom" in _error(two)
    # Category features: served in script mode by the loop's inference.py (Evaluate checks the
    # archive's code/ is that, byte for byte); accepted like the other trainers'.
    context = _custom()
    context["schema"]["features"][0]["type"] = "category"
    accepted = parse_environment(context, "dev")
    assert accepted.pipeline.trainer == "custom"
    assert [f.type for f in accepted.schema.features][0] == "category"
    balanced = _custom()
    balanced["environments"]["dev"]["pipeline"]["scale_pos_weight"] = "balanced"
    assert "pipeline.scale_pos_weight = 'balanced' is not allowed with trainer custom" in _error(
        balanced
    )


def test_a_custom_trainer_is_accepted_in_batch_mode() -> None:
    """The scoring run's model is the served package itself (the SageMaker XGBoost image the
    custom contract registers), so batch serves a custom model as realtime does (#15)."""
    for category in (False, True):
        context = _custom(hyperparameters={"num_round": "50"})
        context["environments"]["dev"].setdefault("serving", {})["mode"] = "batch"
        if category:
            context["schema"]["features"][0]["type"] = "category"
        config = parse_environment(context, "dev")
        assert config.serving.is_batch
        assert config.pipeline.trainer == "custom"
        custom = config.pipeline.custom
        assert custom is not None
        assert custom.image_uri == OWN_IMAGE
        assert custom.hyperparameters == {"num_round": "50"}


def test_in_batch_mode_a_custom_trainer_outside_the_contract_is_still_refused() -> None:
    context = _custom(entry_script="fit.py")
    context["environments"]["dev"].setdefault("serving", {})["mode"] = "batch"
    assert (
        "pipeline.custom.entry_script = 'fit.py' is not allowed: no such file in "
        "examples/custom_trainer" in _error(context)
    )


def test_the_default_class_weight_is_accepted_with_every_trainer() -> None:
    """1 (also written 1.0) is no weight: nothing is ignored, so nothing is refused."""
    for weight in (1, 1.0):
        assert parse_environment(_context(trainer="sklearn", scale_pos_weight=weight), "dev")
        custom = _custom()
        custom["environments"]["dev"]["pipeline"]["scale_pos_weight"] = weight
        assert parse_environment(custom, "dev").pipeline.trainer == "custom"


def test_with_category_features_a_source_dir_holding_mlops_loop_is_refused(tmp_path: Path) -> None:
    """The loop ships its serving code in `mlops_loop/` beside the script: a folder of the
    user's by that name would collide, so it is refused naming the key at config load."""
    from mlops_config.trainer import LOOP_FOLDER, CustomConfig, loop_folder_refusal

    (tmp_path / "trainer" / LOOP_FOLDER).mkdir(parents=True)
    (tmp_path / "trainer" / "train.py").write_text("")
    custom = CustomConfig(image_uri=OWN_IMAGE, source_dir="trainer")
    message = loop_folder_refusal(custom, root=tmp_path)
    assert message is not None
    assert message.startswith(
        "pipeline.custom.source_dir = 'trainer' is not allowed with category features: it "
        "holds mlops_loop"
    )
    (tmp_path / "trainer" / LOOP_FOLDER).rmdir()
    assert loop_folder_refusal(custom, root=tmp_path) is None
    # the worked example has no such folder: accepted with category features (above)
    assert (
        loop_folder_refusal(CustomConfig(image_uri=OWN_IMAGE, source_dir="examples/custom_trainer"))
        is None
    )
