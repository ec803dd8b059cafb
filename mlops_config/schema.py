"""The feature schema: the data's target and feature columns, defined once here and handed to
the step scripts as JSON."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from mlops_config.rules import (
    COLUMN,
    Allowed,
    Number,
    OneOf,
    Section,
    Text,
    allowed,
    field_error,
    rule_error,
)

FeatureType = Literal["float", "int", "bool", "category"]
FEATURE_TYPES: tuple[str, ...] = get_args(FeatureType)
ProblemType = Literal["binary", "multiclass", "regression"]
PROBLEM_TYPES: tuple[str, ...] = get_args(ProblemType)
Column = Annotated[str, Text(COLUMN, "a column name (letters, digits, _)")]
#: A label value as written in the data, in the characters the registry's metadata values allow.
LABEL = r"^[\w .:/=+@-]{1,100}$"
PositiveClass = Annotated[
    str | None,
    Text(
        LABEL,
        "a label value as written in the data (letters, digits, spaces and _ . : / = + - @)",
        True,
    ),
]


class Feature(Section):
    name: Column
    """Column name."""
    type: Annotated[FeatureType, OneOf()]
    """Column type: `float`, `int`, `bool` (0/1, true/false) or `category` (text or integer
    codes; the trainer encodes them, the endpoint takes them as text)."""


class Schema(Section):
    """The feature schema: defined once here, handed to the step scripts as JSON."""

    target: Column
    """Target column. binary: 0/1, true/false, or two text values with `positive_class`;
    multiclass: text or integer class labels; regression: finite numbers."""
    problem_type: Annotated[ProblemType, OneOf()] = "binary"
    """What the model predicts: `binary` (a probability of the positive class), `multiclass`
    (a probability per class) or `regression` (a number); `pipeline.metric` must be one of
    its metrics."""
    positive_class: PositiveClass = None
    """binary only: the target value that counts as class 1 (e.g. `female`); required when
    the target's values are not 0/1 or true/false. Default: none (0/1 or true/false)."""
    features: Annotated[
        tuple[Feature, ...],
        Allowed("a non-empty list of {name, type}"),
        Field(json_schema_extra={"minItems": 1}),
    ]
    """Feature columns; their order is the serving CSV column order."""
    max_missing_fraction: Annotated[float, Number(0.0, 0.5)] = 0.05
    """A column with a larger share of missing values fails validation."""

    @model_validator(mode="after")
    def _names_are_distinct(self) -> Schema:
        if not self.features:
            raise field_error("features", [], allowed("at least one feature"))
        names = [f.name for f in self.features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            verdict = f"has duplicate names {duplicated}: names are unique"
            raise rule_error(verdict, field="features")
        if self.target in names:
            raise field_error("target", self.target, "is also a feature: keep it out")
        if self.positive_class is not None and self.problem_type != "binary":
            verdict = f"is not allowed with problem_type {self.problem_type!r}: binary only"
            raise field_error("positive_class", self.positive_class, verdict)
        return self

    def to_dict(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "target": self.target,
            "features": [{"name": f.name, "type": f.type} for f in self.features],
            "max_missing_fraction": self.max_missing_fraction,
        }
        if self.positive_class is not None:
            schema["positive_class"] = self.positive_class
        # Written only when not binary, so a binary schema (and its definition) is unchanged.
        if self.problem_type != "binary":
            schema["problem_type"] = self.problem_type
        return schema

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)
