"""`pipeline.trainer` and `pipeline.sklearn`: which training code fits the challenger.

`xgboost` (default) is train.py in the SageMaker XGBoost image. `sklearn` is
train_sklearn.py in the SageMaker scikit-learn image, fitting the estimator class that
`pipeline.sklearn.estimator` names with `pipeline.sklearn.params`. `custom` is the user's script
(`pipeline.custom.source_dir`) in the user's image (`pipeline.custom.image_uri`: this
environment's account and region, or an image AWS publishes for SageMaker there), writing an
XGBoost model under the README's contract, evaluated and served by the XGBoost image (in script
mode with the loop's own inference.py when the schema has category features).

The estimator is checked here, offline, with the scikit-learn this checkout has (a class under
`sklearn.`, a classifier for binary and multiclass, a regressor for regression, parameters among
its `get_params()`); the training job checks it again with the image's version.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from mlops_config.rules import OneOf, Section, Text

TRAINERS = ("xgboost", "sklearn", "custom")
Trainer = Literal["xgboost", "sklearn", "custom"]
#: An ECR image: <account>.dkr.ecr.<region>.amazonaws.com/<repository>(:<tag>|@sha256:<digest>).
IMAGE_URI = (
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(-[a-z]+)+-\d)\.amazonaws\.com/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]{1,255})(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})$"
)
#: A folder of this repository, relative to its root (no segment starts with a dot: no "..").
SOURCE_DIR = r"^[\w-][\w.-]*(/[\w-][\w.-]*)*$"
#: With category features, the folder beside the custom script that holds the loop's train/
#: modules (serving_files, inference.py) and common/ (pipeline_code/definition/step_code.py
#: ships it): the script writes the serving files with them, and Evaluate checks they are what
#: the archive's code/ holds (README: Trainers).
LOOP_FOLDER = "mlops_loop"
#: The repository's root: pipeline.custom.source_dir is relative to it.
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
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


class CustomConfig(Section):
    """The custom trainer (with `pipeline.trainer = custom`): the user's image and script."""

    image_uri: Annotated[
        str,
        Text(IMAGE_URI, "an ECR image URI with its digest, e.g. "
             "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-trainer@sha256:<digest>"),
    ]  # fmt: skip
    """The training image, by digest (@sha256:..., since the Train step's cache key holds the
    URI and a tag is mutable): a repository of this environment's account and region, or a
    SageMaker image AWS publishes in the region; it needs bash, python3 (or python) and pip3 (or
    pip) on PATH (the SDK's sm_train.sh checks for both before its drivers run the entry
    script)."""
    source_dir: Annotated[str, Text(SOURCE_DIR, "a folder of this repository, e.g. trainer")]
    """The script's folder, relative to the repository root; uploaded content-addressed."""
    entry_script: Annotated[str, Text(r"^[\w.-]+\.py$", "a Python file name")] = "train.py"
    """The script SageMaker runs in source_dir."""
    hyperparameters: dict[str, str] = {}
    """Further hyperparameters the script receives (strings), besides target, seed and
    decision_threshold."""


def script_refusal(custom: CustomConfig, root: Path = REPOSITORY_ROOT) -> str | None:
    """Why `source_dir`/`entry_script` cannot be shipped (None: the script is there), at config
    load rather than when the definition is generated."""
    source = root / custom.source_dir
    if not source.is_dir():
        return (
            f"pipeline.custom.source_dir = {custom.source_dir!r} is not allowed: no such folder "
            f"in the repository ({root})"
        )
    if not (source / custom.entry_script).is_file():
        return (
            f"pipeline.custom.entry_script = {custom.entry_script!r} is not allowed: no such "
            f"file in {custom.source_dir}"
        )
    return None


def loop_folder_refusal(custom: CustomConfig, root: Path = REPOSITORY_ROOT) -> str | None:
    """Why `source_dir` cannot take the loop's serving code beside the script (with category
    features it is shipped in its `mlops_loop/` folder), None: it can."""
    if (root / custom.source_dir / LOOP_FOLDER).exists():
        return (
            f"pipeline.custom.source_dir = {custom.source_dir!r} is not allowed with category "
            f"features: it holds {LOOP_FOLDER}, where the loop ships its serving code beside "
            "your script (rename yours)"
        )
    return None


def image_refusal(
    image_uri: str, account: str, region: str, aws_accounts: frozenset[str]
) -> str | None:
    """Why the training job may not run `image_uri` (None: it may): only this environment's
    account in its region, or an AWS account that publishes SageMaker images there; and only by
    digest (a tag is mutable and the Train step's cache key holds the URI string)."""
    match = re.match(IMAGE_URI, image_uri)
    if match is None:  # the field's own rule has refused it already
        return None
    if match["region"] != region:
        return (
            f"pipeline.custom.image_uri = {image_uri!r} is not allowed: its region "
            f"{match['region']} is not the environment's ({region})"
        )
    if match["account"] != account and match["account"] not in aws_accounts:
        return (
            f"pipeline.custom.image_uri = {image_uri!r} is not allowed: account "
            f"{match['account']} is neither the environment's ({account}) nor one that "
            f"publishes SageMaker images in {region}"
        )
    if "@sha256:" not in image_uri:
        # The Train step is cached (pipeline.cache_expire_after) on a key that holds the URI
        # string: a tag pushed again would reuse the model the old image trained.
        return (
            f"pipeline.custom.image_uri = {image_uri!r} is not allowed: name the image by its "
            "digest (<repository>@sha256:<64 hex>, from `aws ecr describe-images`), not a tag: "
            "the Train step's cache key holds the URI, so a tag pushed again would reuse the "
            "model of the old image"
        )
    return None


@cache
def sagemaker_image_accounts(region: str) -> frozenset[str]:
    """The AWS accounts that publish SageMaker images in `region`: every `registries` entry of
    the SageMaker SDK's image tables (read as JSON files; empty without the SDK)."""
    spec = importlib.util.find_spec("sagemaker")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    tables = Path(next(iter(spec.submodule_search_locations))) / "core" / "image_uri_config"
    accounts: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            registries = node.get("registries")
            if isinstance(registries, dict) and isinstance(registries.get(region), str):
                accounts.add(registries[region])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for table in sorted(tables.glob("*.json")):
        walk(json.loads(table.read_text(encoding="utf-8")))
    return frozenset(accounts)


def trainer_refusal(settings: Any, schema: Any) -> str | None:
    """Why `pipeline.trainer` cannot run with this environment's account, region and schema
    (None: it can, in every serving mode); the message starts with the key, below the
    environment."""
    pipeline = settings.pipeline
    if pipeline.trainer != "xgboost" and pipeline.scale_pos_weight != 1:
        # only train.py weights the positives: another trainer would silently ignore it
        return (
            f"pipeline.scale_pos_weight = {pipeline.scale_pos_weight!r} is not allowed with "
            f"trainer {pipeline.trainer}: only the xgboost trainer applies a class weight "
            "(leave it at 1)"
        )
    if pipeline.trainer == "custom":
        assert pipeline.custom is not None  # PipelineConfig requires the block
        # Category features are served in script mode by the archive's code/inference.py,
        # which Evaluate checks is byte for byte the loop's own (README: Trainers).
        categories = any(f.type == "category" for f in schema.features)
        return (
            script_refusal(pipeline.custom)
            or (loop_folder_refusal(pipeline.custom) if categories else None)
            or image_refusal(
                pipeline.custom.image_uri,
                settings.account,
                settings.region,
                sagemaker_image_accounts(settings.region),
            )
        )
    if pipeline.trainer != "sklearn":
        return None
    if pipeline.sklearn is None and schema.problem_type == "regression":
        return (
            "pipeline.sklearn = None is required with trainer sklearn and schema.problem_type "
            f"= 'regression': the default estimator, {SklearnConfig().estimator}, is a "
            'classifier; name a regressor, e.g. {"estimator": '
            '"sklearn.ensemble.HistGradientBoostingRegressor"}'
        )
    return estimator_refusal(pipeline.sklearn or SklearnConfig(), schema.problem_type)


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
