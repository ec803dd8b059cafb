"""What the local run needs besides the data, resolved as the pipeline resolves it: the command
line first, then the project configuration (`cdk.json`, environment dev), then the bundled
sample's schema and the configuration model's defaults.

The split, the training choices (class weight, decision threshold) and the gate's thresholds
reach the step scripts as the same arguments the pipeline definition gives them, translated by
the same code (`pipeline_code.definition.setting_rules`).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_code import sample_data
from pipeline_code.definition.setting_rules import (
    DEFAULT_SPLIT,
    SettingsError,
    default_gate_method,
    train_threshold,
    train_weight,
)
from pipeline_code.problem_inference import floor_range, local_gate
from pipeline_code.schema_inference import describe, infer

#: Used only when neither the command line nor cdk.json says otherwise.
FALLBACK_FLOOR = 0.8
FALLBACK_TOLERANCE = 0.01
FALLBACK_METRIC = "auc"
FALLBACK_BOOTSTRAP_SAMPLES = 1000
FALLBACK_MIN_POSITIVES = 100
FALLBACK_GATE_METHOD = "delong"


class LocalRunError(Exception):
    """The run cannot start or a step failed; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """Everything the run needs besides the data.

    `decision_threshold` and `scale_pos_weight` are train.py's hyperparameter values
    (`max-f1`, `max-accuracy` or a number; a number or `balanced`)."""

    schema: dict[str, Any]
    floor: float
    tolerance: float
    metric: str = FALLBACK_METRIC
    bootstrap_samples: int = FALLBACK_BOOTSTRAP_SAMPLES
    min_positives: int = FALLBACK_MIN_POSITIVES
    gate_method: str = FALLBACK_GATE_METHOD
    decision_threshold: str = "max-f1"
    scale_pos_weight: str = "1"
    split: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SPLIT))
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _project_config() -> Any | None:
    """The dev environment's parsed config, or None when the project has no cdk.json yet."""
    try:
        import mlops_config as config
    except ImportError:
        return None
    if not config.CDK_JSON.exists():
        return None
    try:
        return config.load_config("dev")
    except config.ConfigError as error:
        raise LocalRunError(f"cdk.json: {error}") from error


def _schema(args: argparse.Namespace, cfg: Any, notes: list[str]) -> dict[str, Any]:
    if args.schema_json:
        try:
            schema = json.loads(args.schema_json)
        except json.JSONDecodeError as error:
            raise LocalRunError(f"--schema-json is not valid JSON: {error}") from error
        if not isinstance(schema, dict):
            raise LocalRunError("--schema-json must be a JSON object")
        notes.append("schema from --schema-json")
    elif args.data and args.target:
        schema, ignored, why = infer(
            Path(args.data),
            args.target,
            getattr(args, "positive_class", None),
            getattr(args, "problem", None),
        )
        notes.append(f"schema inferred from {args.data}: {describe(schema, ignored, why)}")
    elif cfg is not None:
        schema = json.loads(cfg.schema.to_json())
        notes.append("schema from cdk.json")
    elif args.data:
        raise LocalRunError(
            "no schema for --data: give --target COLUMN (features are inferred) or --schema-json"
        )
    else:
        schema = sample_data.sample_schema()
        notes.append("schema of the bundled sample data (no cdk.json found)")
    if args.data is None and schema.get("target") != sample_data.TARGET:
        raise LocalRunError(
            f"the bundled sample data has target {sample_data.TARGET!r}, the schema "
            f"{schema.get('target')!r}: pass --data with your own file"
        )
    return schema


def _checked_floor(floor: float, metric: str) -> float:
    """`floor` within `metric`'s range (a ceiling for a lower-is-better metric)."""
    low, high = floor_range(metric)
    if not (math.isfinite(floor) and low <= floor <= high):
        allowed = (
            "from 0 to 1"
            if (low, high) == (0.0, 1.0)
            else (f"at most {high:g}" if low == -math.inf else f"at least {low:g}")
        )
        raise LocalRunError(f"--floor {floor} is not allowed: {allowed} (metric {metric})")
    return float(floor)


def _check_trainer(requested: str | None, cfg: Any) -> None:
    """The step scripts run train.py (XGBoost) only: another trainer, from `--trainer` or
    cdk.json's `pipeline.trainer`, is the pipeline runner's (it would be silently replaced)."""
    configured = cfg.pipeline.trainer if cfg is not None and cfg.pipeline is not None else None
    trainer = requested or configured or "xgboost"
    if trainer != "xgboost":
        where = "--trainer" if requested else "cdk.json's pipeline.trainer"
        raise LocalRunError(
            f"{where} = {trainer!r} is not allowed with the scripts runner, which trains "
            "train.py's XGBoost only: use the pipeline runner (make local-run without FAST, "
            "RUNNER=scripts or TUNE)"
        )


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Command line first, then cdk.json (dev), then the bundled sample's schema."""
    notes: list[str] = []
    cfg = _project_config()
    _check_trainer(getattr(args, "trainer", None), cfg)
    schema = _schema(args, cfg, notes)
    pipeline = cfg.pipeline if cfg is not None else None
    floor = (
        args.floor
        if args.floor is not None
        else (pipeline.metric_floor if pipeline else FALLBACK_FLOOR)
    )
    tolerance = (
        args.tolerance
        if args.tolerance is not None
        else (pipeline.champion_tolerance if pipeline else FALLBACK_TOLERANCE)
    )
    if tolerance < 0.0:
        raise LocalRunError(f"--tolerance {tolerance} is not allowed: at least 0")
    min_positives = (
        args.min_positives
        if args.min_positives is not None
        else (pipeline.min_positives if pipeline else FALLBACK_MIN_POSITIVES)
    )
    if min_positives < 1:
        raise LocalRunError(f"--min-positives {min_positives} is not allowed: at least 1")
    if cfg is None or pipeline is None:
        gate = local_gate(schema.get("problem_type", "binary"), FALLBACK_METRIC)
        metric = FALLBACK_METRIC if gate is None else gate[0]
        return Settings(
            schema=schema,
            floor=_checked_floor(
                floor if gate is None or args.floor is not None else gate[1], metric
            ),
            tolerance=float(tolerance if gate is None or args.tolerance is not None else gate[2]),
            metric=metric,
            gate_method=default_gate_method(metric),
            min_positives=min_positives,
            notes=tuple(notes),
        )
    hp = pipeline.hyperparameters
    try:
        threshold = train_threshold(
            {"decision_threshold": pipeline.decision_threshold}, pipeline.metric
        )
        weight = train_weight({"scale_pos_weight": pipeline.scale_pos_weight})
    except SettingsError as error:
        raise LocalRunError(f"cdk.json: {error}") from error
    split = cfg.split
    if (split.id_column or split.time_column) and args.data is None:
        raise LocalRunError(
            f"cdk.json splits by {split.id_column or split.time_column!r}, which the "
            "bundled sample data does not have: pass --data with your own file"
        )
    metric = pipeline.metric
    gate_method = pipeline.gate_method or default_gate_method(metric)  # resolved when parsed
    gate = local_gate(schema.get("problem_type", "binary"), metric)
    if gate is not None:
        # cdk.json's floor, tolerance and gate method are in (or for) the other metric's units.
        notes.append(
            f"metric {gate[0]} (floor {gate[1]}, tolerance {gate[2]}): cdk.json's {metric!r} "
            f"is not a {schema.get('problem_type')} metric"
        )
        metric = gate[0]
        floor = args.floor if args.floor is not None else gate[1]
        tolerance = args.tolerance if args.tolerance is not None else gate[2]
        gate_method = default_gate_method(metric)
    return Settings(
        schema=schema,
        floor=_checked_floor(floor, metric),
        tolerance=float(tolerance),
        metric=metric,
        bootstrap_samples=pipeline.bootstrap_samples,
        min_positives=min_positives,
        gate_method=gate_method,
        decision_threshold=threshold,
        scale_pos_weight=weight,
        split=split.model_dump(),
        hyperparameters=hp.model_dump(),
        notes=tuple(notes),
    )
