"""The pipelines, built with the SageMaker Python SDK v3 and rendered offline.

Training: Prepare (Processing) -> Train (Training) -> Evaluate (Processing) -> Gate (Condition)
-> Register (model package, gate passed) | Fail (message with the numbers, gate failed).
With ``monitoring_engine="model-monitor"`` a Baseline step (QualityCheck: the Model Monitor
analyzer on Prepare's header-less ``baseline/features.csv``) runs after Prepare, parallel to
Train, and Register records its statistics.json/constraints.json as the package's data-quality
baselines.

Evaluation only: Validate (Processing: prepare.py --all-to-test) -> Evaluate (Processing:
evaluate.py scores the production model, or a given package, on the labelled data, writes a
report and publishes CloudWatch metrics). It never registers anything.

Everything account-specific is a ``${Placeholder}`` (see :mod:`pipeline_code.offline`); step
code is addressed by content hash, so an unchanged step keeps its cache key when another step's
script changes. :class:`PipelineSettings` is importable without the SDK; the SDK is imported
only inside the builders, after :func:`pipeline_code.offline.configure_environment`.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_code import offline

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.pipeline import Pipeline

SUPPORTED_SDK_VERSION = "3.27.0"
SUPPORTED_SDK_PACKAGES = {
    "sagemaker": SUPPORTED_SDK_VERSION,
    "sagemaker-core": "2.27.0",
    "sagemaker-mlops": "1.27.0",
    "sagemaker-serve": "1.27.0",
    "sagemaker-train": "1.27.0",
}

# Step names: part of the contract with the Lambdas/alarms that read execution steps.
STEP_PREPARE = "Prepare"
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_GATE = "Gate"
STEP_REGISTER = "Register"
STEP_FAIL = "Fail"
STEP_VALIDATE = "Validate"
STEP_BASELINE = "Baseline"

# Pipeline parameter names. The first three have no default: the start-training Lambda must
# pass them, so an execution without a dataset fails to start.
PARAM_INPUT_DATA_URI = "InputDataUri"
PARAM_DATASET_VERSION = "DatasetVersion"
PARAM_DATA_DIGEST = "DataDigest"
PARAM_CODE_COMMIT = "CodeCommit"
PARAM_PROCESSING_INSTANCE_TYPE = "ProcessingInstanceType"
PARAM_PROCESSING_INSTANCE_COUNT = "ProcessingInstanceCount"
PARAM_TRAINING_INSTANCE_TYPE = "TrainingInstanceType"
PARAM_NUM_ROUND = "NumRound"
PARAM_MAX_DEPTH = "MaxDepth"
PARAM_ETA = "Eta"
PARAM_SUBSAMPLE = "Subsample"
PARAM_COLSAMPLE_BYTREE = "ColsampleBytree"
PARAM_MIN_CHILD_WEIGHT = "MinChildWeight"
PARAM_EARLY_STOPPING_ROUNDS = "EarlyStoppingRounds"
PARAM_METRIC_FLOOR = "MetricFloor"
# The service has no arithmetic, so "delta_ci_low >= -ChampionTolerance" is expressed with a
# parameter that already holds the negated tolerance.
PARAM_MIN_DELTA_CI_LOW = "MinDeltaCiLow"
PARAM_MODEL_APPROVAL_STATUS = "ModelApprovalStatus"
# Training pipeline, no default: the package in production when the run started ("none" if
# there is none), chosen by the start-training Lambda. As an argument of Evaluate it is in that
# step's cache key, so a cache hit never compares against a champion that has been replaced.
PARAM_CHAMPION_MODEL_PACKAGE_ARN = "ChampionModelPackageArn"
# Evaluation pipeline: "" (the default) scores the group's newest Approved package.
PARAM_MODEL_PACKAGE_ARN = "ModelPackageArn"

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
# The gate requires "challenger >= floor", so only metrics where higher is better qualify.
GATE_METRICS = ("auc", "accuracy", "precision", "recall", "f1")
FEATURE_TYPES = ("float", "int", "bool")
SEED = 42

# Container paths of the step scripts' inputs and outputs (the scripts' defaults).
_PROCESSING = "/opt/ml/processing"
SCHEMA_FILE_NAME = "schema.json"
SCHEMA_CONTAINER_PATH = f"{_PROCESSING}/input/schema/{SCHEMA_FILE_NAME}"
PREPARE_OUTPUTS = ("train", "validation", "test", "baseline", "report")
EVALUATION_OUTPUT = "evaluation"
VALIDATE_OUTPUTS = ("test", "report")
BASELINE_STATISTICS_FILE = "statistics.json"
# prepare.py's header-less copy of baseline.csv (features in schema order): Model Monitor names
# the columns of header-less CSV _c0, _c1, ..., like the endpoint's captured CSV requests.
MODEL_MONITOR_BASELINE_FILE = "features.csv"
# Where the Baseline step's statistics.json and constraints.json go (per execution).
BASELINE_RESULTS_OUTPUT = "results"

# Drift monitoring: "evidently" (drift_check.py on a schedule, reads Prepare's baseline folder)
# or "model-monitor" (SageMaker Model Monitor, for accounts that still have it).
MONITORING_ENGINE_EVIDENTLY = "evidently"
MONITORING_ENGINE_MODEL_MONITOR = "model-monitor"
MONITORING_ENGINES = (MONITORING_ENGINE_EVIDENTLY, MONITORING_ENGINE_MODEL_MONITOR)
# Model package CustomerMetadataProperties key: Prepare's baseline folder (the drift job's
# reference); lambdas/start_drift_job reads it first.
BASELINE_METADATA_KEY = "baseline_s3_uri"
PROPERTY_FILE_EVALUATION = "EvaluationReport"

# evaluate.py constants the definition reads (one source of truth for evaluation.json).
EVALUATE_CONSTANTS = {
    "file": "EVALUATION_FILE",
    "gate": "GATE_KEY",
    "challenger": "GATE_CHALLENGER",
    "has_champion": "GATE_HAS_CHAMPION",
    "delta": "GATE_DELTA",
    "delta_ci_low": "GATE_DELTA_CI_LOW",
    "delta_ci_high": "GATE_DELTA_CI_HIGH",
}

# evaluate.py's CloudWatch contract (score-one-model mode), for alarms and dashboards.
MODEL_QUALITY_CONSTANTS = {
    "auc": "CW_METRIC_AUC",
    "accuracy": "CW_METRIC_ACCURACY",
    "precision": "CW_METRIC_PRECISION",
    "recall": "CW_METRIC_RECALL",
    "f1": "CW_METRIC_F1",
    "log_loss": "CW_METRIC_LOG_LOSS",
    "rows": "CW_METRIC_ROWS",
    "group_dimension": "CW_DIMENSION_GROUP",
    "version_dimension": "CW_DIMENSION_VERSION",
}
STEPS_DIR = Path(__file__).resolve().parent / "steps"

_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_GROUP_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_DURATION_RE = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")
_TAG_RE = re.compile(r"^[\w.:/=+\-@ ]*$")
_FRAMEWORK_VERSION_RE = re.compile(r"^\d+\.\d+-\d+$")
# CloudWatch custom namespace: 1-255 of these characters, not AWS/..., no leading colon.
_NAMESPACE_RE = re.compile(r"^(?!AWS/)(?!:)[A-Za-z0-9._/#:\- ]{1,255}$")


class SettingsError(ValueError):
    """A settings value is missing, of the wrong type or out of range."""


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


def _fail(path: str, value: Any, allowed: str) -> SettingsError:
    return SettingsError(f"settings.{path}: got {value!r}; expected {allowed}")


def _get(raw: Mapping[str, Any], key: str, prefix: str = "") -> Any:
    if key not in raw:
        raise SettingsError(f"settings.{prefix}{key}: missing")
    return raw[key]


def _str(
    raw: Mapping[str, Any],
    key: str,
    prefix: str = "",
    pattern: re.Pattern[str] | None = None,
    allowed: str = "a non-empty string",
) -> str:
    value = _get(raw, key, prefix)
    if not isinstance(value, str) or not value or (pattern and not pattern.match(value)):
        raise _fail(prefix + key, value, allowed)
    return value


def _int(raw: Mapping[str, Any], key: str, prefix: str = "", minimum: int = 1) -> int:
    value = _get(raw, key, prefix)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(prefix + key, value, f"an integer >= {minimum}")
    return value


def _float(
    raw: Mapping[str, Any],
    key: str,
    prefix: str = "",
    low: float = 0.0,
    high: float = 1.0,
    low_open: bool = False,
) -> float:
    value = _get(raw, key, prefix)
    bracket = "(" if low_open else "["
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value  # NaN
        or value > high
        or value < low
        or (low_open and value == low)
    ):
        raise _fail(prefix + key, value, f"a number in {bracket}{low}, {high}]")
    return float(value)


def _instance_type(raw: Mapping[str, Any], key: str) -> str:
    return _str(
        raw,
        key,
        pattern=re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$"),
        allowed="a SageMaker instance type such as 'ml.m5.xlarge'",
    )


def _reject_unknown(raw: Mapping[str, Any], known: set[str], prefix: str = "") -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(
            f"settings.{prefix}{unknown[0]}: unknown key; allowed keys: {', '.join(sorted(known))}"
        )


def _validate_schema(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        raise _fail("schema", schema, "an object with target, features, max_missing_fraction")
    _reject_unknown(schema, {"target", "features", "max_missing_fraction"}, "schema.")
    target = _str(schema, "target", "schema.")
    features = _get(schema, "features", "schema.")
    if not isinstance(features, list) or not features:
        raise _fail("schema.features", features, "a non-empty list of {name, type}")
    names: list[str] = []
    for index, feature in enumerate(features):
        where = f"schema.features[{index}]."
        if not isinstance(feature, Mapping):
            raise _fail(where.rstrip("."), feature, "an object with name and type")
        _reject_unknown(feature, {"name", "type"}, where)
        name = _str(feature, "name", where)
        _str(
            feature,
            "type",
            where,
            pattern=re.compile(f"^({'|'.join(FEATURE_TYPES)})$"),
            allowed=f"one of {', '.join(FEATURE_TYPES)}",
        )
        if name in names or name == target:
            raise _fail(where + "name", name, "a name unique among the features and the target")
        names.append(name)
    fraction = _float(schema, "max_missing_fraction", "schema.")
    if fraction >= 1.0:
        raise _fail("schema.max_missing_fraction", fraction, "a number in [0, 1)")
    return json.loads(json.dumps(schema))


@dataclass(frozen=True)
class Hyperparameters:
    """XGBoost hyperparameters (pipeline parameter defaults; see train.py for meanings).

    Attributes:
        num_round: Maximum boosting rounds (>= 1).
        max_depth: Maximum tree depth (>= 1).
        eta: Learning rate, in (0, 1].
        subsample: Row subsample ratio, in (0, 1].
        colsample_bytree: Column subsample ratio per tree, in (0, 1].
        min_child_weight: Minimum sum of instance weight in a child (>= 0).
        early_stopping_rounds: Rounds without validation improvement before stopping (>= 1).
    """

    num_round: int
    max_depth: int
    eta: float
    subsample: float
    colsample_bytree: float
    min_child_weight: float
    early_stopping_rounds: int

    @classmethod
    def from_dict(cls, raw: Any) -> Hyperparameters:
        """Validate ``settings.hyperparameters``; raises :class:`SettingsError`."""
        if not isinstance(raw, Mapping):
            raise _fail("hyperparameters", raw, "an object")
        prefix = "hyperparameters."
        _reject_unknown(raw, {f.name for f in cls.__dataclass_fields__.values()}, prefix)
        return cls(
            num_round=_int(raw, "num_round", prefix),
            max_depth=_int(raw, "max_depth", prefix),
            eta=_float(raw, "eta", prefix, low_open=True),
            subsample=_float(raw, "subsample", prefix, low_open=True),
            colsample_bytree=_float(raw, "colsample_bytree", prefix, low_open=True),
            min_child_weight=_float(raw, "min_child_weight", prefix, high=float("inf")),
            early_stopping_rounds=_int(raw, "early_stopping_rounds", prefix),
        )


@dataclass(frozen=True)
class PipelineSettings:
    """Everything the training pipeline definition depends on (written by the CDK app).

    Attributes:
        project: Project name, used in tags.
        environment: Environment name (dev, staging, prod), used in tags.
        region: AWS region; selects the XGBoost image URIs baked into the definition.
        pipeline_name: SageMaker pipeline name (also the S3 prefix of its outputs).
        model_package_group_name: Name of the model package group. Validated only: the
            definition uses the ``${ModelPackageGroupName}`` placeholder.
        schema: Feature schema in the pipeline-contract format.
        processing_instance_type: Default of ``ProcessingInstanceType``.
        processing_instance_count: Default of ``ProcessingInstanceCount`` (>= 1).
        training_instance_type: Default of ``TrainingInstanceType``.
        training_instance_count: Training instances (>= 1, fixed at synth time).
        use_spot: Managed spot training with checkpoints. A synth-time flag, not a pipeline
            parameter: the SDK types ``enable_managed_spot_training`` as a plain bool and the
            API rejects ``MaxWaitTimeInSeconds`` without spot.
        max_runtime_seconds: ``MaxRuntimeInSeconds`` of every job.
        max_wait_seconds: ``MaxWaitTimeInSeconds`` of spot training (>= max_runtime_seconds).
        hyperparameters: Defaults of the hyperparameter pipeline parameters.
        metric: Gate metric, one of :data:`GATE_METRICS` (higher is better).
        metric_floor: Default of ``MetricFloor``, in [0, 1].
        champion_tolerance: Non-inferiority margin, >= 0; ``MinDeltaCiLow`` defaults to its
            negation.
        bootstrap_samples: Paired bootstrap resamples in evaluate.py (>= 1).
        cache_expire_after: ISO 8601 duration for step caching, e.g. ``P30D``.
        xgboost_framework_version: SageMaker XGBoost container version, e.g. ``3.0-5``.
        tags: Extra static tags for every job (``project`` and ``environment`` are added).
        code_commit: Default of ``CodeCommit`` for lineage. Default: ``"unknown"``.
        evaluation_pipeline_name: Name of the evaluation-only pipeline (also the S3 prefix of
            its outputs). Default: ``<project>-<environment>-evaluation``.
        model_quality_namespace: CloudWatch namespace the evaluation pipeline publishes the
            model-quality metrics to. Default: ``<project>-<environment>/ModelQuality``.
        monitoring_engine: One of :data:`MONITORING_ENGINES`. ``"model-monitor"`` adds the
            Baseline step (Model Monitor statistics and constraints, registered with the model
            package). Default: ``"evidently"``.
    """

    project: str
    environment: str
    region: str
    pipeline_name: str
    model_package_group_name: str
    schema: Mapping[str, Any]
    processing_instance_type: str
    processing_instance_count: int
    training_instance_type: str
    training_instance_count: int
    use_spot: bool
    max_runtime_seconds: int
    max_wait_seconds: int
    hyperparameters: Hyperparameters
    metric: str
    metric_floor: float
    champion_tolerance: float
    bootstrap_samples: int
    cache_expire_after: str
    xgboost_framework_version: str
    tags: tuple[tuple[str, str], ...] = field(default=())
    code_commit: str = "unknown"
    evaluation_pipeline_name: str = ""
    model_quality_namespace: str = ""
    monitoring_engine: str = MONITORING_ENGINE_EVIDENTLY

    @classmethod
    def from_dict(cls, raw: Any) -> PipelineSettings:
        """Validate a settings mapping; raises :class:`SettingsError` naming the key."""
        if not isinstance(raw, Mapping):
            raise SettingsError(f"settings: got {type(raw).__name__}; expected a JSON object")
        _reject_unknown(raw, {f for f in cls.__dataclass_fields__})
        use_spot = _get(raw, "use_spot")
        if not isinstance(use_spot, bool):
            raise _fail("use_spot", use_spot, "true or false")
        max_runtime = _int(raw, "max_runtime_seconds")
        max_wait = _int(raw, "max_wait_seconds")
        if use_spot and max_wait < max_runtime:
            raise _fail(
                "max_wait_seconds",
                max_wait,
                f"at least max_runtime_seconds ({max_runtime}) when use_spot is true",
            )
        tags = raw.get("tags", {})
        if not isinstance(tags, Mapping) or not all(
            isinstance(k, str)
            and isinstance(v, str)
            and k
            and _TAG_RE.match(k)
            and _TAG_RE.match(v)
            and len(k) <= 128
            and len(v) <= 256
            for k, v in tags.items()
        ):
            raise _fail("tags", tags, "an object of tag key -> value strings (AWS tag charset)")
        if {"project", "environment"} & set(tags):
            raise _fail("tags", tags, "no 'project' or 'environment' key (set automatically)")
        code_commit = raw.get("code_commit", "unknown")
        if not isinstance(code_commit, str) or not re.match(r"^[\w.:/=+\-@]{1,256}$", code_commit):
            raise _fail("code_commit", code_commit, "a commit id (letters, digits, _.:/=+-@)")
        project = _str(raw, "project", pattern=_TAG_RE)
        environment = _str(raw, "environment", pattern=_TAG_RE)
        derived = {
            "evaluation_pipeline_name": f"{project}-{environment}-evaluation",
            "model_quality_namespace": f"{project}-{environment}/ModelQuality",
            "monitoring_engine": MONITORING_ENGINE_EVIDENTLY,
        }
        with_defaults = {**derived, **raw}
        if with_defaults["evaluation_pipeline_name"] == raw.get("pipeline_name"):
            raise _fail(
                "evaluation_pipeline_name",
                with_defaults["evaluation_pipeline_name"],
                "a name other than pipeline_name",
            )
        return cls(
            project=project,
            environment=environment,
            region=_str(
                raw,
                "region",
                pattern=re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$"),
                allowed="an AWS region such as 'eu-west-1'",
            ),
            pipeline_name=_str(
                raw,
                "pipeline_name",
                pattern=_NAME_RE,
                allowed="letters, digits and hyphens, at most 256",
            ),
            model_package_group_name=_str(
                raw,
                "model_package_group_name",
                pattern=_GROUP_RE,
                allowed="letters, digits and hyphens, at most 63",
            ),
            schema=_validate_schema(_get(raw, "schema")),
            processing_instance_type=_instance_type(raw, "processing_instance_type"),
            processing_instance_count=_int(raw, "processing_instance_count"),
            training_instance_type=_instance_type(raw, "training_instance_type"),
            training_instance_count=_int(raw, "training_instance_count"),
            use_spot=use_spot,
            max_runtime_seconds=max_runtime,
            max_wait_seconds=max_wait,
            hyperparameters=Hyperparameters.from_dict(_get(raw, "hyperparameters")),
            metric=_str(
                raw,
                "metric",
                pattern=re.compile(f"^({'|'.join(GATE_METRICS)})$"),
                allowed=f"one of {', '.join(GATE_METRICS)}",
            ),
            metric_floor=_float(raw, "metric_floor"),
            champion_tolerance=_float(raw, "champion_tolerance", high=1.0),
            bootstrap_samples=_int(raw, "bootstrap_samples"),
            cache_expire_after=_str(
                raw,
                "cache_expire_after",
                pattern=_DURATION_RE,
                allowed="an ISO 8601 duration such as 'P30D'",
            ),
            xgboost_framework_version=_str(
                raw,
                "xgboost_framework_version",
                pattern=_FRAMEWORK_VERSION_RE,
                allowed="a version such as '3.0-5'",
            ),
            tags=tuple(sorted(tags.items())),
            code_commit=code_commit,
            evaluation_pipeline_name=_str(
                with_defaults,
                "evaluation_pipeline_name",
                pattern=_NAME_RE,
                allowed="letters, digits and hyphens, at most 256",
            ),
            model_quality_namespace=_str(
                with_defaults,
                "model_quality_namespace",
                pattern=_NAMESPACE_RE,
                allowed="a CloudWatch namespace: 1-255 letters, digits or ._/#:- and spaces, "
                "not starting with 'AWS/' or ':'",
            ),
            monitoring_engine=_str(
                with_defaults,
                "monitoring_engine",
                pattern=re.compile(f"^({'|'.join(map(re.escape, MONITORING_ENGINES))})\\Z"),
                allowed=f"one of {', '.join(MONITORING_ENGINES)}",
            ),
        )

    @classmethod
    def from_json_file(cls, path: Path) -> PipelineSettings:
        """Read and validate a settings JSON file."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise SettingsError(f"settings file {path}: {error}") from error
        return cls.from_dict(raw)

    @property
    def job_tags(self) -> tuple[tuple[str, str], ...]:
        """Static tags for every job: project, environment, then ``tags`` sorted by key."""
        return (("project", self.project), ("environment", self.environment), *self.tags)


# --------------------------------------------------------------------------------------------
# Step code
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeLocations:
    """Where each step's code lives (placeholder S3 URIs) and where SDK uploads go.

    Attributes:
        prepare_script: URI of prepare.py.
        train_source_dir: URI prefix (ending in ``/``) of the directory holding train.py.
        evaluate_script: URI of evaluate.py.
        schema_file: URI of the feature schema JSON given to prepare.py.
        store: Receives what the SDK uploads while rendering (ModelTrainer's drivers).
        evaluation_keys: evaluation.json's file and gate key names, read from evaluate.py
            (see :func:`evaluation_keys`).
    """

    prepare_script: str
    train_source_dir: str
    evaluate_script: str
    schema_file: str
    store: offline.CodeStore
    evaluation_keys: Mapping[str, str]


def read_string_constants(path: Path) -> dict[str, str]:
    """Module-level ``NAME = "literal"`` assignments of a Python file, without importing it.

    Reading evaluate.py's key names this way keeps one source of truth without paying for its
    imports (pandas, xgboost) in the generator.
    """
    constants: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                constants[target.id] = value.value
    return constants


def evaluation_keys(evaluate_script: Path) -> dict[str, str]:
    """evaluation.json's file name and gate key names, as evaluate.py defines them.

    Returns a mapping from the keys of :data:`EVALUATE_CONSTANTS` to their values.

    Raises:
        ValueError: evaluate.py no longer defines one of the constants.
    """
    constants = read_string_constants(evaluate_script)
    missing = sorted(name for name in EVALUATE_CONSTANTS.values() if name not in constants)
    if missing:
        raise ValueError(
            f"{evaluate_script} does not define {', '.join(missing)}: the pipeline's gate "
            "reads evaluation.json through these constants"
        )
    return {key: constants[name] for key, name in EVALUATE_CONSTANTS.items()}


def model_quality_metrics(evaluate_script: Path = STEPS_DIR / "evaluate.py") -> dict[str, str]:
    """CloudWatch metric and dimension names the evaluation pipeline publishes (from evaluate.py).

    Returns a mapping from the keys of :data:`MODEL_QUALITY_CONSTANTS` to names, e.g.
    ``{"auc": "AUC", ..., "rows": "RowsEvaluated", "group_dimension": "ModelPackageGroup",
    "version_dimension": "ModelVersion"}``. The namespace is
    :attr:`PipelineSettings.model_quality_namespace`. Alarms should use only the
    ``group_dimension`` (the version changes with every promotion).

    Raises:
        ValueError: evaluate.py no longer defines one of the constants.
    """
    constants = read_string_constants(evaluate_script)
    missing = sorted(n for n in MODEL_QUALITY_CONSTANTS.values() if n not in constants)
    if missing:
        raise ValueError(f"{evaluate_script} does not define {', '.join(missing)}")
    return {key: constants[name] for key, name in MODEL_QUALITY_CONSTANTS.items()}


def publish_step_code(
    settings: PipelineSettings, steps_dir: Path, store: offline.CodeStore
) -> CodeLocations:
    """Copy the step scripts and the schema into ``store``, one content hash per file.

    Args:
        settings: Provides the schema.
        steps_dir: Directory with prepare.py, train.py and evaluate.py.
        store: Content-addressed destination.
    """
    scripts = {name: steps_dir / f"{name}.py" for name in ("prepare", "train", "evaluate")}
    missing = [str(path) for path in scripts.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"step scripts not found: {', '.join(missing)}")
    train_uri = store.put_file(scripts["train"])
    schema = json.dumps(settings.schema, sort_keys=True, separators=(",", ":")) + "\n"
    return CodeLocations(
        prepare_script=store.put_file(scripts["prepare"]),
        train_source_dir=train_uri.rsplit("/", 1)[0] + "/",
        evaluate_script=store.put_file(scripts["evaluate"]),
        schema_file=store.put_bytes(SCHEMA_FILE_NAME, schema.encode()),
        store=store,
        evaluation_keys=evaluation_keys(scripts["evaluate"]),
    )


# --------------------------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------------------------


def xgboost_image_uri(settings: PipelineSettings, scope: str) -> str:
    """SageMaker XGBoost framework image for ``settings.region`` (``scope``: training|inference)."""
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve(
            "xgboost",
            region=settings.region,
            version=settings.xgboost_framework_version,
            image_scope=scope,
        )
    except ValueError as error:
        raise SettingsError(f"settings.xgboost_framework_version / region: {error}") from error


@dataclass(frozen=True)
class _Parameters:
    input_data_uri: Any
    dataset_version: Any
    data_digest: Any
    code_commit: Any
    processing_instance_type: Any
    processing_instance_count: Any
    training_instance_type: Any
    num_round: Any
    max_depth: Any
    eta: Any
    subsample: Any
    colsample_bytree: Any
    min_child_weight: Any
    early_stopping_rounds: Any
    metric_floor: Any
    min_delta_ci_low: Any
    model_approval_status: Any
    champion_model_package_arn: Any

    def all(self) -> list[Any]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


def _parameters(settings: PipelineSettings) -> _Parameters:
    from sagemaker.core.workflow.parameters import (
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )

    hp = settings.hyperparameters
    tolerance = settings.champion_tolerance
    return _Parameters(
        input_data_uri=ParameterString(PARAM_INPUT_DATA_URI),
        dataset_version=ParameterString(PARAM_DATASET_VERSION),
        data_digest=ParameterString(PARAM_DATA_DIGEST),
        code_commit=ParameterString(PARAM_CODE_COMMIT, default_value=settings.code_commit),
        processing_instance_type=ParameterString(
            PARAM_PROCESSING_INSTANCE_TYPE, default_value=settings.processing_instance_type
        ),
        processing_instance_count=ParameterInteger(
            PARAM_PROCESSING_INSTANCE_COUNT, default_value=settings.processing_instance_count
        ),
        training_instance_type=ParameterString(
            PARAM_TRAINING_INSTANCE_TYPE, default_value=settings.training_instance_type
        ),
        num_round=ParameterInteger(PARAM_NUM_ROUND, default_value=hp.num_round),
        max_depth=ParameterInteger(PARAM_MAX_DEPTH, default_value=hp.max_depth),
        eta=ParameterFloat(PARAM_ETA, default_value=hp.eta),
        subsample=ParameterFloat(PARAM_SUBSAMPLE, default_value=hp.subsample),
        colsample_bytree=ParameterFloat(PARAM_COLSAMPLE_BYTREE, default_value=hp.colsample_bytree),
        min_child_weight=ParameterFloat(PARAM_MIN_CHILD_WEIGHT, default_value=hp.min_child_weight),
        early_stopping_rounds=ParameterInteger(
            PARAM_EARLY_STOPPING_ROUNDS, default_value=hp.early_stopping_rounds
        ),
        metric_floor=ParameterFloat(PARAM_METRIC_FLOOR, default_value=settings.metric_floor),
        min_delta_ci_low=ParameterFloat(
            PARAM_MIN_DELTA_CI_LOW, default_value=-tolerance if tolerance else 0.0
        ),
        model_approval_status=ParameterString(
            PARAM_MODEL_APPROVAL_STATUS,
            default_value=APPROVAL_STATUSES[0],
            enum_values=list(APPROVAL_STATUSES),
        ),
        champion_model_package_arn=ParameterString(PARAM_CHAMPION_MODEL_PACKAGE_ARN),
    )


@dataclass(frozen=True)
class _EvaluationParameters:
    input_data_uri: Any
    dataset_version: Any
    data_digest: Any
    model_package_arn: Any
    processing_instance_type: Any

    def all(self) -> list[Any]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


def _evaluation_parameters(settings: PipelineSettings) -> _EvaluationParameters:
    from sagemaker.core.workflow.parameters import ParameterString

    return _EvaluationParameters(
        # Same names as the training pipeline's: the start-training Lambda starts both.
        input_data_uri=ParameterString(PARAM_INPUT_DATA_URI),
        dataset_version=ParameterString(PARAM_DATASET_VERSION),
        data_digest=ParameterString(PARAM_DATA_DIGEST),
        model_package_arn=ParameterString(PARAM_MODEL_PACKAGE_ARN, default_value=""),
        processing_instance_type=ParameterString(
            PARAM_PROCESSING_INSTANCE_TYPE, default_value=settings.processing_instance_type
        ),
    )


@dataclass(frozen=True)
class _Context:
    settings: PipelineSettings
    code: CodeLocations
    session: PipelineSession
    params: Any  # _Parameters or _EvaluationParameters
    pipeline_name: str

    @property
    def bucket(self) -> str:
        return offline.placeholder(offline.ARTIFACT_BUCKET)

    @property
    def kms_key(self) -> str:
        return offline.placeholder(offline.KMS_KEY_ARN)

    @property
    def role(self) -> str:
        return offline.placeholder(offline.ROLE_ARN)

    @property
    def job_tags(self) -> list[dict[str, str]]:
        """Cost-allocation tags of every job: project, environment, pipeline, extra tags.
        (SageMaker adds the pipeline execution ARN to the jobs a pipeline starts itself.)"""
        project, environment, *extra = self.settings.job_tags
        tags = [project, environment, ("pipeline", self.pipeline_name), *extra]
        return [{"Key": key, "Value": value} for key, value in tags]

    def cache_config(self) -> Any:
        from sagemaker.mlops.workflow.steps import CacheConfig

        return CacheConfig(enable_caching=True, expire_after=self.settings.cache_expire_after)

    def execution_output(self, step: str, output: str) -> Any:
        """Per-execution output prefix.

        Outputs are not part of a step's cache key (the key is AppSpecification, Environment and
        ProcessingInputs for processing; AlgorithmSpecification, CheckpointConfig, Environment,
        HyperParameters and InputDataConfig for training:
        https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-default-keys.html), so the
        execution id costs no cache hits and keeps concurrent executions from overwriting each
        other's data. A cache hit passes the original execution's URIs downstream.
        """
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join

        return Join(
            on="/",
            values=[
                "s3:/",
                self.bucket,
                "pipelines",
                self.pipeline_name,
                "executions",
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                step,
                output,
            ],
        )

    def processor(
        self,
        *,
        network_isolation: bool,
        env: dict[str, str] | None = None,
        instance_count: Any = None,
    ) -> Any:
        """A python3 processor in the XGBoost image; ``instance_count`` defaults to the
        ``ProcessingInstanceCount`` parameter."""
        from sagemaker.core.network import NetworkConfig
        from sagemaker.core.processing import ScriptProcessor

        return ScriptProcessor(
            role=self.role,
            image_uri=xgboost_image_uri(self.settings, "training"),
            command=["python3"],
            instance_type=self.params.processing_instance_type,
            instance_count=(
                self.params.processing_instance_count if instance_count is None else instance_count
            ),
            volume_kms_key=self.kms_key,
            output_kms_key=self.kms_key,
            max_runtime_in_seconds=self.settings.max_runtime_seconds,
            env=env,
            tags=self.job_tags,
            network_config=NetworkConfig(
                enable_network_isolation=network_isolation,
                encrypt_inter_container_traffic=True,
            ),
            sagemaker_session=self.session,
        )


def _s3_input(name: str, uri: Any, local_path: str) -> Any:
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri,
            local_path=local_path,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def _s3_output(ctx: _Context, step: str, name: str, local_path: str, s3_uri: Any = None) -> Any:
    """Output ``name`` of ``step``; ``s3_uri`` defaults to the per-execution prefix."""
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=ctx.execution_output(step, name) if s3_uri is None else s3_uri,
            local_path=local_path,
            s3_upload_mode="EndOfJob",
        ),
    )


def _prepare_processing_step(
    ctx: _Context,
    *,
    step: str,
    outputs: tuple[str, ...],
    mode_arguments: list[str],
    description: str,
    instance_count: Any = None,
) -> Any:
    """prepare.py on the dataset version at InputDataUri, network-isolated and cached.

    The schema travels as a file (a ContainerArgument is limited to 256 characters); the data
    digest is an argument so it is in the cache key: new data under an old prefix (a
    re-upload) is never a cache hit."""
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = ctx.processor(network_isolation=True, instance_count=instance_count)
    step_args = processor.run(
        code=ctx.code.prepare_script,
        inputs=[
            _s3_input("data", ctx.params.input_data_uri, f"{_PROCESSING}/input/data"),
            _s3_input("schema", ctx.code.schema_file, f"{_PROCESSING}/input/schema"),
        ],
        outputs=[_s3_output(ctx, step, name, f"{_PROCESSING}/output/{name}") for name in outputs],
        arguments=[
            "--input-dir",
            f"{_PROCESSING}/input/data",
            "--output-dir",
            f"{_PROCESSING}/output",
            "--schema",
            SCHEMA_CONTAINER_PATH,
            *mode_arguments,
            "--data-digest",
            ctx.params.data_digest,
        ],
    )
    return ProcessingStep(
        name=step,
        step_args=step_args,
        description=description,
        cache_config=ctx.cache_config(),
    )


def _prepare_step(ctx: _Context) -> Any:
    return _prepare_processing_step(
        ctx,
        step=STEP_PREPARE,
        outputs=PREPARE_OUTPUTS,
        mode_arguments=["--seed", str(SEED)],
        description="Validate the dataset version, split it, compute the drift baseline.",
    )


def _prepare_output(prepare: Any, name: str) -> Any:
    return prepare.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri


def _baseline_step(ctx: _Context, prepare: Any) -> Any:
    """Model Monitor data-quality baseline (statistics.json with KLL sketches, constraints.json)
    of Prepare's header-less ``features.csv``, computed by the analyzer image of
    ``settings.region``; registered with the model package, never checked against anything."""
    from sagemaker.core.model_monitor import DatasetFormat
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
    from sagemaker.mlops.workflow.quality_check_step import (
        DataQualityCheckConfig,
        QualityCheckStep,
    )

    # DefaultModelMonitor takes the analyzer image's region from the session: the offline
    # session's boto session is in settings.region (never the environment's default region).
    if ctx.session.boto_session.region_name != ctx.settings.region:
        raise RuntimeError(
            f"session region {ctx.session.boto_session.region_name!r} is not the settings' "
            f"region {ctx.settings.region!r}: the Model Monitor image would be another region's"
        )
    check_job = CheckJobConfig(
        role=ctx.role,
        instance_count=1,
        instance_type=ctx.params.processing_instance_type,
        volume_kms_key=ctx.kms_key,
        output_kms_key=ctx.kms_key,
        max_runtime_in_seconds=ctx.settings.max_runtime_seconds,
        tags=ctx.job_tags,
        sagemaker_session=ctx.session,
        # The analyzer reads its input and writes its output through SageMaker's channels and
        # publishes no metrics here: no network. A request-shaped dict, because the check-step
        # request builder copies this value into CreateProcessingJob as it is.
        network_config={
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
        },
    )
    quality_check = DataQualityCheckConfig(
        baseline_dataset=Join(
            on="/", values=[_prepare_output(prepare, "baseline"), MODEL_MONITOR_BASELINE_FILE]
        ),
        dataset_format=DatasetFormat.csv(header=False),
        output_s3_uri=ctx.execution_output(STEP_BASELINE, BASELINE_RESULTS_OUTPUT),
    )
    return QualityCheckStep(
        name=STEP_BASELINE,
        description="Model Monitor data-quality baseline (statistics, constraints) of the "
        "test split's features.",
        quality_check_config=quality_check,
        check_job_config=check_job,
        # Nothing to check against: the step only computes the baseline the package carries.
        skip_check=True,
        register_new_baseline=True,
        cache_config=ctx.cache_config(),
    )


def _train_step(ctx: _Context, prepare: Any) -> Any:
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        InputData,
        Networking,
        OutputDataConfig,
        SourceCode,
        StoppingCondition,
        Tag,
    )
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.steps import TrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    class _OfflineModelTrainer(ModelTrainer):
        def _resolve_staging_bucket(self) -> tuple[str, None]:
            # Upstream asks IAM (SimulatePrincipalPolicy) whether the role may write to the
            # default bucket; offline the staging bucket is the artifact bucket, always.
            return self.sagemaker_session.default_bucket(), None

    settings, params = ctx.settings, ctx.params
    hp = {
        "num_round": params.num_round,
        "max_depth": params.max_depth,
        "eta": params.eta,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "min_child_weight": params.min_child_weight,
        "early_stopping_rounds": params.early_stopping_rounds,
    }
    checkpoint = None
    if settings.use_spot:
        # CheckpointConfig is part of the training cache key, so the prefix is derived from
        # what determines the model (data, code, hyperparameters), never the execution id.
        code_digest = ctx.code.train_source_dir.rstrip("/").rsplit("/", 1)[-1]
        checkpoint = CheckpointConfig(
            s3_uri=Join(
                on="/",
                values=[
                    "s3:/",
                    ctx.bucket,
                    "pipelines",
                    settings.pipeline_name,
                    "checkpoints",
                    params.data_digest,
                    code_digest[:16],
                    Join(on="-", values=list(hp.values())),
                ],
            ),
            local_path="/opt/ml/checkpoints",
        )
    trainer = _OfflineModelTrainer(
        # The SDK accepts only ARN-shaped roles without an IAM call; replaced right below.
        role=offline.arn_shaped_role(),
        sagemaker_session=ctx.session,
        training_image=xgboost_image_uri(settings, "training"),
        source_code=SourceCode(
            source_dir=ctx.code.train_source_dir,
            entry_script="train.py",
        ),
        compute=Compute(
            instance_type=params.training_instance_type,
            instance_count=settings.training_instance_count,
            volume_size_in_gb=30,
            volume_kms_key_id=ctx.kms_key,
            enable_managed_spot_training=True if settings.use_spot else None,
        ),
        networking=Networking(
            enable_network_isolation=True,
            enable_inter_container_traffic_encryption=True,
        ),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=settings.max_runtime_seconds,
            max_wait_time_in_seconds=settings.max_wait_seconds if settings.use_spot else None,
        ),
        output_data_config=OutputDataConfig(
            s3_output_path=f"s3://{ctx.bucket}/pipelines/{settings.pipeline_name}/training",
            kms_key_id=ctx.kms_key,
            compression_type="GZIP",
        ),
        checkpoint_config=checkpoint,
        # HyperParameters is a string map: numeric parameters are converted at run time.
        hyperparameters={
            **{name: value.to_string() for name, value in hp.items()},
            "seed": str(SEED),
            "target": settings.schema["target"],
        },
        tags=[Tag(key=tag["Key"], value=tag["Value"]) for tag in ctx.job_tags],
        base_job_name=f"{settings.pipeline_name}-train",
    )
    trainer.role = ctx.role
    step_args = trainer.train(
        input_data_config=[
            InputData(
                channel_name=channel,
                data_source=_prepare_output(prepare, channel),
                content_type="text/csv",
            )
            for channel in ("train", "validation")
        ],
    )
    return TrainingStep(
        name=STEP_TRAIN,
        step_args=step_args,
        description="Train the XGBoost challenger with early stopping on the validation split.",
        cache_config=ctx.cache_config(),
    )


def _evaluate_step(ctx: _Context, prepare: Any, train: Any) -> tuple[Any, Any]:
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import ProcessingStep

    report = PropertyFile(
        name=PROPERTY_FILE_EVALUATION,
        output_name=EVALUATION_OUTPUT,
        path=ctx.code.evaluation_keys["file"],
    )
    # No network isolation: the champion package is described in the registry, read from S3.
    processor = ctx.processor(
        network_isolation=False, env={"AWS_DEFAULT_REGION": ctx.settings.region}
    )
    step_args = processor.run(
        code=ctx.code.evaluate_script,
        inputs=[
            _s3_input(
                "model", train.properties.ModelArtifacts.S3ModelArtifacts, f"{_PROCESSING}/model"
            ),
            _s3_input("test", _prepare_output(prepare, "test"), f"{_PROCESSING}/test"),
        ],
        outputs=[
            _s3_output(ctx, STEP_EVALUATE, EVALUATION_OUTPUT, f"{_PROCESSING}/evaluation"),
        ],
        arguments=[
            "--model-dir",
            f"{_PROCESSING}/model",
            "--test-dir",
            f"{_PROCESSING}/test",
            "--output-dir",
            f"{_PROCESSING}/evaluation",
            "--target",
            ctx.settings.schema["target"],
            "--metric",
            ctx.settings.metric,
            "--bootstrap-samples",
            str(ctx.settings.bootstrap_samples),
            "--seed",
            str(SEED),
            "--champion-model-package-arn",
            ctx.params.champion_model_package_arn,
        ],
    )
    step = ProcessingStep(
        name=STEP_EVALUATE,
        step_args=step_args,
        description="Score challenger and champion on the same test split; bootstrap the delta.",
        property_files=[report],
        # Cached: the champion is a parameter (fixed when the run starts), so it is part of the
        # cache key; a new champion is a new key.
        cache_config=ctx.cache_config(),
    )
    return step, report


def _gate_value(ctx: _Context, evaluate: Any, report: Any, key: str) -> Any:
    from sagemaker.core.workflow.functions import JsonGet

    keys = ctx.code.evaluation_keys
    return JsonGet(
        step_name=evaluate.name, property_file=report, json_path=f"{keys['gate']}.{keys[key]}"
    )


def _register_step(
    ctx: _Context, prepare: Any, train: Any, evaluate: Any, report: Any, baseline: Any = None
) -> Any:
    """The model package. ``baseline`` (the Model Monitor Baseline step, if any) replaces
    Prepare's statistics.json as the data-quality metrics and drift-check baselines."""
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.metadata_properties import MetadataProperties
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    settings, params = ctx.settings, ctx.params
    evaluation_json = Join(
        on="/",
        values=[
            evaluate.properties.ProcessingOutputConfig.Outputs[EVALUATION_OUTPUT].S3Output.S3Uri,
            ctx.code.evaluation_keys["file"],
        ],
    )
    baseline_statistics = Join(
        on="/", values=[_prepare_output(prepare, "baseline"), BASELINE_STATISTICS_FILE]
    )
    model_quality = MetricsSource(content_type="application/json", s3_uri=evaluation_json)
    data_statistics = MetricsSource(content_type="application/json", s3_uri=baseline_statistics)
    data_constraints = None
    monitor_metadata: dict[str, Any] = {}
    if baseline is not None:
        data_statistics = MetricsSource(
            content_type="application/json",
            s3_uri=baseline.properties.CalculatedBaselineStatistics,
        )
        data_constraints = MetricsSource(
            content_type="application/json",
            s3_uri=baseline.properties.CalculatedBaselineConstraints,
        )
        monitor_metadata[BASELINE_METADATA_KEY] = _prepare_output(prepare, "baseline")
    inference_image = xgboost_image_uri(settings, "inference")
    builder = ModelBuilder(
        image_uri=inference_image,
        role_arn=ctx.role,
        sagemaker_session=ctx.session,
        instance_type=settings.processing_instance_type,
        # The default ({"auto": False}) is truthy and switches on script mode, which adds
        # empty SAGEMAKER_PROGRAM/SAGEMAKER_SUBMIT_DIRECTORY variables to the serving container.
        dependencies=None,
    )
    # Not constructor arguments in v3; the default model name is random (uuid4).
    builder.s3_model_data_url = train.properties.ModelArtifacts.S3ModelArtifacts
    builder.model_name = f"{settings.pipeline_name}-model"
    step_args = builder.register(
        model_package_group_name=offline.placeholder(offline.MODEL_PACKAGE_GROUP_NAME),
        content_types=["text/csv"],
        response_types=["text/csv"],
        approval_status=params.model_approval_status,
        model_metrics=ModelMetrics(
            model_statistics=model_quality,
            model_data_statistics=data_statistics,
            model_data_constraints=data_constraints,
        ),
        drift_check_baselines=DriftCheckBaselines(
            model_statistics=model_quality,
            model_data_statistics=data_statistics,
            model_data_constraints=data_constraints,
        ),
        metadata_properties=MetadataProperties(
            commit_id=params.code_commit,
            generated_by=ExecutionVariables.PIPELINE_EXECUTION_ARN,
            project_id=settings.project,
        ),
        customer_metadata_properties={
            "input_data_uri": params.input_data_uri,
            "dataset_version": params.dataset_version,
            "data_digest": params.data_digest,
            "code_commit": params.code_commit,
            "pipeline_execution_id": ExecutionVariables.PIPELINE_EXECUTION_ID,
            "sdk_version": SUPPORTED_SDK_VERSION,
            "image_uri": inference_image,
            "metric": settings.metric,
            "challenger": _gate_value(ctx, evaluate, report, "challenger").to_string(),
            "training_job_name": train.properties.TrainingJobName,
            **monitor_metadata,
        },
        domain="MACHINE_LEARNING",
        task="CLASSIFICATION",
    )
    return ModelStep(name=STEP_REGISTER, step_args=step_args)


def _gate_step(ctx: _Context, evaluate: Any, report: Any, register: Any) -> Any:
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep

    params = ctx.params
    challenger = _gate_value(ctx, evaluate, report, "challenger")
    delta_ci_low = _gate_value(ctx, evaluate, report, "delta_ci_low")
    fail = FailStep(
        name=STEP_FAIL,
        error_message=Join(
            on="",
            values=[
                f"Gate failed: {ctx.settings.metric} of the challenger ",
                challenger,
                " (floor ",
                params.metric_floor,
                "); champion present: ",
                _gate_value(ctx, evaluate, report, "has_champion"),
                ", delta ",
                _gate_value(ctx, evaluate, report, "delta"),
                ", 95% CI [",
                delta_ci_low,
                ", ",
                _gate_value(ctx, evaluate, report, "delta_ci_high"),
                "] (CI low must be >= ",
                params.min_delta_ci_low,
                ").",
            ],
        ),
    )
    return ConditionStep(
        name=STEP_GATE,
        description="Register iff challenger >= floor and delta CI low >= -tolerance.",
        conditions=[
            ConditionGreaterThanOrEqualTo(left=challenger, right=params.metric_floor),
            ConditionGreaterThanOrEqualTo(left=delta_ci_low, right=params.min_delta_ci_low),
        ],
        if_steps=[register],
        else_steps=[fail],
    )


def build_training_pipeline(
    settings: PipelineSettings, code: CodeLocations, session: PipelineSession
) -> Pipeline:
    """Build the training pipeline (nothing is uploaded or called until it is rendered).

    Args:
        settings: Validated settings.
        code: Step code locations from :func:`publish_step_code`.
        session: An offline session from :func:`pipeline_code.offline.offline_session`; the SDK
            runs step code lazily while rendering, so render inside the same context.
    """
    from sagemaker.core.workflow.pipeline_definition_config import PipelineDefinitionConfig
    from sagemaker.mlops.workflow.pipeline import Pipeline

    ctx = _Context(
        settings=settings,
        code=code,
        session=session,
        params=_parameters(settings),
        pipeline_name=settings.pipeline_name,
    )
    prepare = _prepare_step(ctx)
    baseline = None
    if settings.monitoring_engine == MONITORING_ENGINE_MODEL_MONITOR:
        baseline = _baseline_step(ctx, prepare)
    train = _train_step(ctx, prepare)
    evaluate, report = _evaluate_step(ctx, prepare, train)
    register = _register_step(ctx, prepare, train, evaluate, report, baseline)
    gate = _gate_step(ctx, evaluate, report, register)
    return Pipeline(
        name=settings.pipeline_name,
        parameters=ctx.params.all(),
        steps=[prepare, *([baseline] if baseline is not None else []), train, evaluate, gate],
        sagemaker_session=session,
        # Experiments/trials per execution are noise here and region-dependent in the SDK.
        pipeline_experiment_config=None,
        pipeline_definition_config=PipelineDefinitionConfig(use_custom_job_prefix=False),
    )


def _validate_step(ctx: _Context) -> Any:
    return _prepare_processing_step(
        ctx,
        step=STEP_VALIDATE,
        outputs=VALIDATE_OUTPUTS,
        mode_arguments=["--all-to-test"],
        description="Validate the labelled data with the training rules; keep every row.",
        instance_count=1,
    )


def evaluation_report_uri(ctx: _Context) -> Any:
    """``s3://${ArtifactBucket}/pipelines/<evaluation pipeline>/reports/<DatasetVersion>/<id>``:
    reports grouped by dataset version, one folder per execution."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="/",
        values=[
            "s3:/",
            ctx.bucket,
            "pipelines",
            ctx.pipeline_name,
            "reports",
            ctx.params.dataset_version,
            ExecutionVariables.PIPELINE_EXECUTION_ID,
        ],
    )


def _score_step(ctx: _Context, validate: Any) -> Any:
    from sagemaker.mlops.workflow.steps import ProcessingStep

    settings, params = ctx.settings, ctx.params
    # No network isolation: the model is resolved in the registry, read from S3, and the
    # metrics go to CloudWatch.
    processor = ctx.processor(
        network_isolation=False, env={"AWS_DEFAULT_REGION": settings.region}, instance_count=1
    )
    step_args = processor.run(
        code=ctx.code.evaluate_script,
        inputs=[_s3_input("test", _prepare_output(validate, "test"), f"{_PROCESSING}/test")],
        outputs=[
            _s3_output(
                ctx,
                STEP_EVALUATE,
                EVALUATION_OUTPUT,
                f"{_PROCESSING}/evaluation",
                s3_uri=evaluation_report_uri(ctx),
            ),
        ],
        arguments=[
            "--test-dir",
            f"{_PROCESSING}/test",
            "--output-dir",
            f"{_PROCESSING}/evaluation",
            "--target",
            settings.schema["target"],
            "--bootstrap-samples",
            str(settings.bootstrap_samples),
            "--seed",
            str(SEED),
            "--model-package-arn",
            params.model_package_arn,
            "--model-package-group",
            offline.placeholder(offline.MODEL_PACKAGE_GROUP_NAME),
            "--metrics-namespace",
            settings.model_quality_namespace,
            "--dataset-version",
            params.dataset_version,
            "--data-digest",
            params.data_digest,
        ],
    )
    return ProcessingStep(
        name=STEP_EVALUATE,
        step_args=step_args,
        description="Score the production model (or ModelPackageArn) on the labelled data; "
        "publish the metrics.",
        # Not cached: "the production model" is resolved when the step runs and changes with
        # every approval (a cache hit would report an old model's numbers), and publishing
        # the metrics is the point of the run (a cache hit would publish nothing).
    )


def build_evaluation_pipeline(
    settings: PipelineSettings, code: CodeLocations, session: PipelineSession
) -> Pipeline:
    """Build the evaluation-only pipeline (Validate -> Evaluate; nothing is registered).

    Args: as for :func:`build_training_pipeline`.
    """
    from sagemaker.core.workflow.pipeline_definition_config import PipelineDefinitionConfig
    from sagemaker.mlops.workflow.pipeline import Pipeline

    ctx = _Context(
        settings=settings,
        code=code,
        session=session,
        params=_evaluation_parameters(settings),
        pipeline_name=settings.evaluation_pipeline_name,
    )
    validate = _validate_step(ctx)
    score = _score_step(ctx, validate)
    return Pipeline(
        name=settings.evaluation_pipeline_name,
        parameters=ctx.params.all(),
        steps=[validate, score],
        sagemaker_session=session,
        pipeline_experiment_config=None,
        pipeline_definition_config=PipelineDefinitionConfig(use_custom_job_prefix=False),
    )


def _render(
    settings: PipelineSettings,
    code: CodeLocations,
    build: Callable[[PipelineSettings, CodeLocations, PipelineSession], Pipeline],
) -> str:
    with offline.offline_session(settings.region, code.store) as session:
        check_sdk_version()
        pipeline = build(settings, code, session)
        raw = pipeline.definition()
    offline.check_no_internal_values(raw)
    return json.dumps(json.loads(raw), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_training_definition(settings: PipelineSettings, code: CodeLocations) -> str:
    """Build and render the definition offline; return canonical JSON (sorted keys, indent 2).

    Raises:
        pipeline_code.offline.OfflineViolationError: The SDK tried to reach AWS, or an
            internal stand-in value leaked into the definition.
    """
    return _render(settings, code, build_training_pipeline)


def render_evaluation_definition(settings: PipelineSettings, code: CodeLocations) -> str:
    """The evaluation-only pipeline's definition, like :func:`render_training_definition`."""
    return _render(settings, code, build_evaluation_pipeline)


def installed_sdk_version() -> str:
    """Version of the installed ``sagemaker`` distribution."""
    from importlib.metadata import version

    return version("sagemaker")


def check_sdk_version() -> None:
    """Refuse to render with SDK packages other than the pinned ones (output differs by version).

    ``sagemaker`` does not pin its parts exactly, and sagemaker-train ships the training drivers
    that end up in the definition's code, so every part is checked.
    """
    from importlib.metadata import PackageNotFoundError, version

    wrong = []
    for package, pinned in SUPPORTED_SDK_PACKAGES.items():
        try:
            installed = version(package)
        except PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            wrong.append(f"{package} {installed} (pinned: {pinned})")
    if wrong:
        raise RuntimeError(
            "the definition is pinned to sagemaker "
            f"{SUPPORTED_SDK_VERSION}, but found {', '.join(wrong)}; install the pinned versions "
            "(requirements.lock) or update SUPPORTED_SDK_PACKAGES and the definition snapshot "
            "together"
        )
