"""Settings of the pipeline definitions (written by the CDK app) and their validation.

:class:`PipelineSettings` is importable without the SageMaker SDK; a wrong value raises
:class:`SettingsError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlops_config.errors import translate
from mlops_config.trainer import CustomConfig, SklearnConfig
from mlops_config.tuning import TuningConfig, tuning_refusal
from pipeline_code import offline
from pipeline_code.definition.contract import (
    MONITORING_ENGINE_EVIDENTLY,
    MONITORING_ENGINES,
    UNIT_INTERVAL,
)
from pipeline_code.definition.scoring_settings import ScoringSettings
from pipeline_code.definition.setting_rules import (
    DEFAULT_SPLIT,
    SettingsError,
    fail,
    gate_metric,
    get,
    instance_type,
    integer,
    metric_floor,
    number,
    problem_type,
    refuse_binary_only,
    reject_unknown,
    resolve_gate_method,
    text,
    train_threshold,
    train_weight,
    validate_schema,
    validate_split,
)
from pipeline_code.definition.sklearn_settings import custom_settings, sklearn_settings

_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_GROUP_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_DURATION_RE = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")
_TAG_RE = re.compile(r"^[\w.:/=+\-@ ]*$")
_FRAMEWORK_VERSION_RE = re.compile(r"^\d+\.\d+-\d+$")
# CloudWatch custom namespace: 1-255 of these characters, not AWS/..., no leading colon.
_NAMESPACE_RE = re.compile(r"^(?!AWS/)(?!:)[A-Za-z0-9._/#:\- ]{1,255}$")


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
            raise fail("hyperparameters", raw, "an object")
        prefix = "hyperparameters."
        reject_unknown(raw, {f.name for f in cls.__dataclass_fields__.values()}, prefix)
        return cls(
            num_round=integer(raw, "num_round", prefix),
            max_depth=integer(raw, "max_depth", prefix),
            eta=number(raw, "eta", prefix, low_open=True),
            subsample=number(raw, "subsample", prefix, low_open=True),
            colsample_bytree=number(raw, "colsample_bytree", prefix, low_open=True),
            min_child_weight=number(raw, "min_child_weight", prefix, high=float("inf")),
            early_stopping_rounds=integer(raw, "early_stopping_rounds", prefix),
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
        metric: Gate metric, one of the schema's problem type's
            (:data:`~pipeline_code.definition.contract.PROBLEM_METRICS`).
        metric_floor: The gate's floor, in [0, 1] for a metric in that range; a ceiling >= 0
            for a lower-is-better metric; <= 1 for r2 (an argument of Evaluate, which decides).
        champion_tolerance: The gate's tolerance, >= 0 (an argument of Evaluate).
        bootstrap_samples: Paired bootstrap resamples in evaluate.py (>= 1).
        min_positives: Rows of each class the gate needs (>= 1). Default: 100.
        gate_method: Standard error of the metric's difference: ``delong`` (auc only, its
            default) or ``bootstrap`` (every other metric's default).
        decision_threshold: train.py's ``decision_threshold``: ``max-f1``, ``max-accuracy`` or
            a number in (0, 1); given as ``max-f1``, ``max-gate-metric`` or a number.
            Default: ``max-f1``.
        scale_pos_weight: train.py's ``scale_pos_weight``: a positive number or ``balanced``.
            Default: ``"1"`` (no class weight).
        split: Prepare's split: ``id_column``, ``time_column`` (null or a column that is not
            the target or a feature; at most one), ``validation_fraction`` and
            ``test_fraction`` (each in (0, 1), summing below 1). Default: content hash,
            0.15 / 0.15.
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
        tuning: ``None`` (default: a training job) or ``pipeline.tuning`` of cdk.json
            (:class:`mlops_config.tuning.TuningConfig`): a tuning job in place of it.
        vpc: ``None`` (default: jobs use AWS's network) or ``{"subnets": N, "security_groups":
            M}``: every job gets a VpcConfig of N subnet and M security-group placeholders
            (``${VpcSubnet1}``.., ``${VpcSecurityGroup1}``..; N in 1..16, M in 1..5).
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
    min_positives: int = 100
    gate_method: str = "delong"
    decision_threshold: str = "max-f1"
    scale_pos_weight: str = "1"
    split: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_SPLIT))
    vpc: Mapping[str, int] | None = None
    # batch serving only: the scoring pipeline's settings (None: no scoring pipeline)
    scoring: ScoringSettings | None = None
    # pipeline.tuning (None: off): the tuning job in place of the training job
    tuning: TuningConfig | None = None
    # pipeline.sklearn with pipeline.trainer sklearn (None: the XGBoost trainer)
    sklearn: SklearnConfig | None = None
    # pipeline.custom with pipeline.trainer custom (None: another trainer)
    custom: CustomConfig | None = None

    @classmethod
    def from_dict(cls, raw: Any) -> PipelineSettings:
        """Validate a settings mapping; raises :class:`SettingsError` naming the key."""
        if not isinstance(raw, Mapping):
            raise SettingsError(f"settings: got {type(raw).__name__}; expected a JSON object")
        reject_unknown(raw, {f for f in cls.__dataclass_fields__})
        use_spot = get(raw, "use_spot")
        if not isinstance(use_spot, bool):
            raise fail("use_spot", use_spot, "true or false")
        max_runtime = integer(raw, "max_runtime_seconds")
        max_wait = integer(raw, "max_wait_seconds")
        if use_spot and max_wait < max_runtime:
            raise fail(
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
            raise fail("tags", tags, "an object of tag key -> value strings (AWS tag charset)")
        if {"project", "environment"} & set(tags):
            raise fail("tags", tags, "no 'project' or 'environment' key (set automatically)")
        code_commit = raw.get("code_commit", "unknown")
        if not isinstance(code_commit, str) or not re.match(r"^[\w.:/=+\-@]{1,256}$", code_commit):
            raise fail("code_commit", code_commit, "a commit id (letters, digits, _.:/=+-@)")
        project = text(raw, "project", pattern=_TAG_RE)
        environment = text(raw, "environment", pattern=_TAG_RE)
        derived = {
            "evaluation_pipeline_name": f"{project}-{environment}-evaluation",
            "model_quality_namespace": f"{project}-{environment}/ModelQuality",
            "monitoring_engine": MONITORING_ENGINE_EVIDENTLY,
        }
        with_defaults = {**derived, "min_positives": 100, **raw}
        if with_defaults["evaluation_pipeline_name"] == raw.get("pipeline_name"):
            raise fail(
                "evaluation_pipeline_name",
                with_defaults["evaluation_pipeline_name"],
                "a name other than pipeline_name",
            )
        schema = validate_schema(get(raw, "schema"))
        metric = gate_metric(raw, schema)
        refuse_binary_only(raw, schema)
        return cls(
            project=project,
            environment=environment,
            region=text(
                raw,
                "region",
                pattern=re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$"),
                allowed="an AWS region such as 'eu-west-1'",
            ),
            pipeline_name=text(
                raw,
                "pipeline_name",
                pattern=_NAME_RE,
                allowed="letters, digits and hyphens, at most 256",
            ),
            model_package_group_name=text(
                raw,
                "model_package_group_name",
                pattern=_GROUP_RE,
                allowed="letters, digits and hyphens, at most 63",
            ),
            schema=schema,
            processing_instance_type=instance_type(raw, "processing_instance_type"),
            processing_instance_count=integer(raw, "processing_instance_count"),
            training_instance_type=instance_type(raw, "training_instance_type"),
            training_instance_count=integer(raw, "training_instance_count"),
            use_spot=use_spot,
            max_runtime_seconds=max_runtime,
            max_wait_seconds=max_wait,
            hyperparameters=Hyperparameters.from_dict(get(raw, "hyperparameters")),
            metric=metric,
            metric_floor=metric_floor(raw, metric),
            champion_tolerance=number(
                raw, "champion_tolerance", high=1.0 if metric in UNIT_INTERVAL else 1e12
            ),
            bootstrap_samples=integer(raw, "bootstrap_samples"),
            cache_expire_after=text(
                raw,
                "cache_expire_after",
                pattern=_DURATION_RE,
                allowed="an ISO 8601 duration such as 'P30D'",
            ),
            xgboost_framework_version=text(
                raw,
                "xgboost_framework_version",
                pattern=_FRAMEWORK_VERSION_RE,
                allowed="a version such as '3.0-5'",
            ),
            tags=tuple(sorted(tags.items())),
            code_commit=code_commit,
            evaluation_pipeline_name=text(
                with_defaults,
                "evaluation_pipeline_name",
                pattern=_NAME_RE,
                allowed="letters, digits and hyphens, at most 256",
            ),
            model_quality_namespace=text(
                with_defaults,
                "model_quality_namespace",
                pattern=_NAMESPACE_RE,
                allowed="a CloudWatch namespace: 1-255 letters, digits or ._/#:- and spaces, "
                "not starting with 'AWS/' or ':'",
            ),
            monitoring_engine=text(
                with_defaults,
                "monitoring_engine",
                pattern=re.compile(f"^({'|'.join(map(re.escape, MONITORING_ENGINES))})\\Z"),
                allowed=f"one of {', '.join(MONITORING_ENGINES)}",
            ),
            min_positives=integer(with_defaults, "min_positives"),
            gate_method=resolve_gate_method(raw, metric),
            decision_threshold=train_threshold(raw, metric),
            scale_pos_weight=train_weight(raw),
            split=validate_split(raw.get("split", {}), schema),
            vpc=_vpc(raw.get("vpc")),
            scoring=_scoring(raw.get("scoring")),
            tuning=_tuning(
                raw.get("tuning"),
                metric,
                integer(raw, "training_instance_count"),
                problem_type(schema),
            ),
            sklearn=sklearn_settings(raw, schema),
            custom=custom_settings(raw),
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
    def trainer(self) -> str:
        """`pipeline.trainer`: the one whose block is set, else xgboost."""
        return "sklearn" if self.sklearn else "custom" if self.custom else "xgboost"

    @property
    def vpc_placeholders(self) -> tuple[list[str], list[str]]:
        """Placeholder names of the jobs' subnets and security groups (empty without a VPC)."""
        if self.vpc is None:
            return [], []
        return offline.vpc_placeholders(self.vpc["subnets"], self.vpc["security_groups"])

    @property
    def job_tags(self) -> tuple[tuple[str, str], ...]:
        """Static tags for every job: project, environment, then ``tags`` sorted by key."""
        return (("project", self.project), ("environment", self.environment), *self.tags)


def _tuning(raw: Any, metric: str, training_instances: int, problem: str) -> TuningConfig | None:
    """`pipeline.tuning` as cdk.json spells it, validated by the configuration model."""
    if raw is None:
        return None
    try:
        tuning = TuningConfig.model_validate(raw)
    except ValidationError as error:
        raise SettingsError(str(translate(error, TuningConfig, "settings.tuning"))) from None
    refusal = tuning_refusal(
        metric, training_instances, problem, tuning.strategy, tuning.early_stopping
    )
    if refusal is not None:
        raise SettingsError(f"settings.tuning {refusal}")
    return tuning


def _scoring(raw: Any) -> ScoringSettings | None:
    return None if raw is None else ScoringSettings.from_dict(raw)


# SageMaker's VpcConfig: 1 to 16 subnets, 1 to 5 security groups.
_VPC_BOUNDS = {"subnets": 16, "security_groups": 5}


def _vpc(raw: Any) -> Mapping[str, int] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise fail("vpc", raw, 'null or {"subnets": N, "security_groups": M}')
    reject_unknown(raw, set(_VPC_BOUNDS), "vpc.")
    counts = {}
    for key, high in _VPC_BOUNDS.items():
        value = get(raw, key, "vpc.")
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
            raise fail(f"vpc.{key}", value, f"an integer from 1 to {high}")
        counts[key] = value
    return counts
