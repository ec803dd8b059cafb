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

FeatureType = Literal["float", "int", "bool"]
FEATURE_TYPES: tuple[str, ...] = get_args(FeatureType)
Column = Annotated[str, Text(COLUMN, "a column name (letters, digits, _)")]


class Feature(Section):
    name: Column
    """Column name."""
    type: Annotated[FeatureType, OneOf()]
    """Column type."""


class Schema(Section):
    """The feature schema: defined once here, handed to the step scripts as JSON."""

    target: Column
    """Binary (0/1) target column."""
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
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "features": [{"name": f.name, "type": f.type} for f in self.features],
            "max_missing_fraction": self.max_missing_fraction,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)
