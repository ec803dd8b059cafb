"""How the pipeline settings' values are checked: one error per bad value naming the key, the
value and what is allowed (:class:`SettingsError`), and the checks of the feature schema, the
split and the training choices that the generator turns into step arguments."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pipeline_code.definition.contract import (
    DEFAULT_PROBLEM_TYPE,
    FEATURE_TYPES,
    PROBLEM_METRICS,
    PROBLEM_TYPES,
    UNIT_INTERVAL,
)

#: decision_threshold words; max-gate-metric needs a metric a threshold can maximise.
THRESHOLD_RULES = {"max-f1": "max-f1", "max-gate-metric": None}
THRESHOLD_METRICS = {"f1": "max-f1", "accuracy": "max-accuracy"}
GATE_METHODS = ("delong", "bootstrap")
DEFAULT_SPLIT: Mapping[str, Any] = {
    "id_column": None,
    "time_column": None,
    "validation_fraction": 0.15,
    "test_fraction": 0.15,
}
_COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class SettingsError(ValueError):
    """A settings value is missing, of the wrong type or out of range."""


def fail(path: str, value: Any, allowed: str) -> SettingsError:
    return SettingsError(f"settings.{path}: got {value!r}; expected {allowed}")


def get(raw: Mapping[str, Any], key: str, prefix: str = "") -> Any:
    if key not in raw:
        raise SettingsError(f"settings.{prefix}{key}: missing")
    return raw[key]


def text(
    raw: Mapping[str, Any],
    key: str,
    prefix: str = "",
    pattern: re.Pattern[str] | None = None,
    allowed: str = "a non-empty string",
) -> str:
    value = get(raw, key, prefix)
    if not isinstance(value, str) or not value or (pattern and not pattern.match(value)):
        raise fail(prefix + key, value, allowed)
    return value


def integer(raw: Mapping[str, Any], key: str, prefix: str = "", minimum: int = 1) -> int:
    value = get(raw, key, prefix)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(prefix + key, value, f"an integer >= {minimum}")
    return value


def number(
    raw: Mapping[str, Any],
    key: str,
    prefix: str = "",
    low: float = 0.0,
    high: float = 1.0,
    low_open: bool = False,
) -> float:
    value = get(raw, key, prefix)
    bracket = "(" if low_open else "["
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value  # NaN
        or value > high
        or value < low
        or (low_open and value == low)
    ):
        raise fail(prefix + key, value, f"a number in {bracket}{low}, {high}]")
    return float(value)


def instance_type(raw: Mapping[str, Any], key: str) -> str:
    return text(
        raw,
        key,
        pattern=re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$"),
        allowed="a SageMaker instance type such as 'ml.m5.xlarge'",
    )


def reject_unknown(raw: Mapping[str, Any], known: set[str], prefix: str = "") -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(
            f"settings.{prefix}{unknown[0]}: unknown key; allowed keys: {', '.join(sorted(known))}"
        )


def validate_split(raw: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise fail("split", raw, "an object with id_column, time_column and the fractions")
    reject_unknown(raw, set(DEFAULT_SPLIT), "split.")
    split = {**DEFAULT_SPLIT, **raw}
    taken = {schema["target"], *(f["name"] for f in schema["features"])}
    for key in ("id_column", "time_column"):
        column = split[key]
        if column is not None and (
            not isinstance(column, str) or not _COLUMN_RE.match(column) or column in taken
        ):
            raise fail(
                f"split.{key}", column, "null or a column that is not the target or a feature"
            )
    if split["id_column"] and split["time_column"]:
        raise fail("split.time_column", split["time_column"], "null when id_column is set")
    for key in ("validation_fraction", "test_fraction"):
        number(split, key, "split.", low=0.0, high=1.0, low_open=True)
    if split["validation_fraction"] + split["test_fraction"] >= 1.0:
        raise fail("split.test_fraction", split["test_fraction"], "fractions summing below 1")
    return dict(split)


def train_threshold(raw: Mapping[str, Any], metric: str) -> str:
    """decision_threshold as train.py's hyperparameter: max-f1, max-accuracy or a number."""
    value = raw.get("decision_threshold", "max-f1")
    if isinstance(value, str) and value in THRESHOLD_RULES:
        resolved = THRESHOLD_RULES[value] or THRESHOLD_METRICS.get(metric)
        if resolved is None:
            raise fail(
                "decision_threshold",
                value,
                f"max-f1 or a number with metric {metric!r} (max-gate-metric needs f1 or accuracy)",
            )
        return resolved
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise fail("decision_threshold", value, "max-f1, max-gate-metric or a number in (0, 1)")
    return repr(float(value))


def train_weight(raw: Mapping[str, Any]) -> str:
    """scale_pos_weight as train.py's hyperparameter: a positive number or balanced."""
    value = raw.get("scale_pos_weight", 1)
    if value == "balanced":
        return "balanced"
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise fail("scale_pos_weight", value, "a number above 0 or 'balanced'")
    return repr(value)


#: The binary-only settings and the defaults every other problem type must keep.
BINARY_ONLY_DEFAULTS = {"decision_threshold": "max-f1", "scale_pos_weight": 1}


def refuse_binary_only(raw: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """A decision threshold or positive-class weight for a multi-class or regression model
    is a mistake (train.py would ignore it): refused unless it is the default."""
    problem = problem_type(schema)
    if problem == DEFAULT_PROBLEM_TYPE:
        return
    for key, default in BINARY_ONLY_DEFAULTS.items():
        if key in raw and raw[key] != default:
            raise fail(
                key, raw[key], f"not set with schema.problem_type {problem!r} (binary models only)"
            )


def problem_type(schema: Mapping[str, Any]) -> str:
    """The schema's problem type (absent: binary)."""
    if "problem_type" not in schema:
        return DEFAULT_PROBLEM_TYPE
    return text(
        schema,
        "problem_type",
        "schema.",
        pattern=re.compile(f"^({'|'.join(PROBLEM_TYPES)})$"),
        allowed=f"one of {', '.join(PROBLEM_TYPES)}",
    )


def gate_metric(raw: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """The gate metric, one of the problem type's."""
    metrics = PROBLEM_METRICS[problem_type(schema)]
    return text(
        raw,
        "metric",
        pattern=re.compile(f"^({'|'.join(metrics)})$"),
        allowed=f"one of {', '.join(metrics)} (schema.problem_type {problem_type(schema)!r})",
    )


def default_gate_method(metric: str) -> str:
    """DeLong's standard error is AUC's: every other metric takes the paired bootstrap."""
    return "delong" if metric == "auc" else "bootstrap"


def resolve_gate_method(raw: Mapping[str, Any], metric: str) -> str:
    """The gate's standard error: unset (or None) it follows `metric`; delong for another
    metric than auc is refused."""
    value = raw.get("gate_method")
    if value is None:
        return default_gate_method(metric)
    if value not in GATE_METHODS:
        raise fail("gate_method", value, f"one of {', '.join(GATE_METHODS)}")
    if value == "delong" and metric != "auc":
        raise fail("gate_method", value, f"bootstrap with metric {metric} (delong is AUC's)")
    return str(value)


def metric_floor(raw: Mapping[str, Any], metric: str) -> float:
    """The gate's floor (a ceiling for a lower-is-better metric), in the metric's range."""
    if metric in UNIT_INTERVAL:
        return number(raw, "metric_floor")
    if metric == "r2":
        return number(raw, "metric_floor", low=-1e12, high=1.0)
    return number(raw, "metric_floor", high=1e12)


def validate_schema(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        raise fail("schema", schema, "an object with target, features, max_missing_fraction")
    reject_unknown(
        schema,
        {"target", "problem_type", "positive_class", "features", "max_missing_fraction"},
        "schema.",
    )
    target = text(schema, "target", "schema.")
    problem_type(schema)
    if "positive_class" in schema:
        text(schema, "positive_class", "schema.")
    features = get(schema, "features", "schema.")
    if not isinstance(features, list) or not features:
        raise fail("schema.features", features, "a non-empty list of {name, type}")
    names: list[str] = []
    for index, feature in enumerate(features):
        where = f"schema.features[{index}]."
        if not isinstance(feature, Mapping):
            raise fail(where.rstrip("."), feature, "an object with name and type")
        reject_unknown(feature, {"name", "type"}, where)
        name = text(feature, "name", where)
        text(
            feature,
            "type",
            where,
            pattern=re.compile(f"^({'|'.join(FEATURE_TYPES)})$"),
            allowed=f"one of {', '.join(FEATURE_TYPES)}",
        )
        if name in names or name == target:
            raise fail(where + "name", name, "a name unique among the features and the target")
        names.append(name)
    fraction = number(schema, "max_missing_fraction", "schema.")
    if fraction >= 1.0:
        raise fail("schema.max_missing_fraction", fraction, "a number in [0, 1)")
    return json.loads(json.dumps(schema))
