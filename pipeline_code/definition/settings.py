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

from pipeline_code.definition.contract import (
    FEATURE_TYPES,
    GATE_METRICS,
    MONITORING_ENGINE_EVIDENTLY,
    MONITORING_ENGINES,
)

_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_GROUP_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_DURATION_RE = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")
_TAG_RE = re.compile(r"^[\w.:/=+\-@ ]*$")
_FRAMEWORK_VERSION_RE = re.compile(r"^\d+\.\d+-\d+$")
# CloudWatch custom namespace: 1-255 of these characters, not AWS/..., no leading colon.
_NAMESPACE_RE = re.compile(r"^(?!AWS/)(?!:)[A-Za-z0-9._/#:\- ]{1,255}$")


class SettingsError(ValueError):
    """A settings value is missing, of the wrong type or out of range."""


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
