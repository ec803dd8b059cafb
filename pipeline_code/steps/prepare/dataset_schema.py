"""The feature schema prepare.py checks the data against (`--schema`), and the error every
check raises: bad input, with a message naming the column, the problem and the limit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from common.problem_types import BINARY, MULTICLASS, PROBLEM_TYPES, REGRESSION

FEATURE_TYPES = ("float", "int", "bool", "category")
CATEGORY = "category"


class ValidationError(Exception):
    """The input or the arguments are not usable; the message says what and where."""


@dataclass(frozen=True)
class Schema:
    target: str
    features: tuple[tuple[str, str], ...]
    max_missing_fraction: float
    #: The target value that is class 1 (None: the target is 0/1 or true/false).
    positive_class: str | None = None
    #: binary, multiclass or regression (common.problem_types).
    problem_type: str = BINARY

    @property
    def category_features(self) -> list[str]:
        return [name for name, kind in self.features if kind == CATEGORY]

    @property
    def feature_names(self) -> list[str]:
        return [name for name, _ in self.features]

    @property
    def columns(self) -> list[str]:
        return [self.target, *self.feature_names]

    def type_of(self, column: str) -> str:
        """Schema type of a column; a binary target is read like a bool (0/1, true/false), or
        as text (a category) when positive_class names its class 1; a multi-class target as
        text, a regression target as a float."""
        if column == self.target:
            if self.problem_type == MULTICLASS:
                return CATEGORY  # labels as text, coded by common.labels.multiclass_labels
            if self.problem_type == REGRESSION:
                return "float"
            return "bool" if self.positive_class is None else CATEGORY
        return dict(self.features)[column]

    def is_text(self, column: str) -> bool:
        """True for the columns read as text: category features and a labelled target."""
        return self.type_of(column) == CATEGORY


def parse_schema(value: str) -> Schema:
    """Parse and check `--schema`: the schema JSON itself, or the path of a file holding it.

    A file is how the pipeline passes it (container arguments are limited to 256 characters).
    """
    text = value
    if not value.lstrip().startswith("{"):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as error:
            raise ValidationError(
                f"--schema {value!r} is neither a JSON object nor a readable file: {error}"
            ) from error
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationError(f"--schema is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise ValidationError("--schema must be a JSON object with target, features")
    target = raw.get("target")
    if not isinstance(target, str) or not target:
        raise ValidationError(f"--schema target = {target!r} is not allowed: a column name")
    features = raw.get("features")
    if not isinstance(features, list) or not features:
        raise ValidationError("--schema features must be a non-empty list of {name, type}")
    parsed: list[tuple[str, str]] = []
    for i, feature in enumerate(features):
        name = feature.get("name") if isinstance(feature, dict) else None
        kind = feature.get("type") if isinstance(feature, dict) else None
        if not isinstance(name, str) or not name:
            raise ValidationError(f"--schema features[{i}].name = {name!r}: a column name")
        if kind not in FEATURE_TYPES:
            raise ValidationError(
                f"--schema features[{i}].type = {kind!r} is not allowed: one of "
                f"{', '.join(FEATURE_TYPES)}"
            )
        parsed.append((name, kind))
    names = [name for name, _ in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationError(f"--schema features has duplicate names {duplicates}")
    if target in names:
        raise ValidationError(f"--schema target {target!r} is also listed as a feature")
    fraction = raw.get("max_missing_fraction", 0.0)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ValidationError(f"--schema max_missing_fraction = {fraction!r}: a number")
    if not 0.0 <= fraction < 1.0:
        raise ValidationError(
            f"--schema max_missing_fraction = {fraction!r} is not allowed: from 0 to below 1"
        )
    positive_class = raw.get("positive_class")
    if positive_class is not None and (not isinstance(positive_class, str) or not positive_class):
        raise ValidationError(
            f"--schema positive_class = {positive_class!r} is not allowed: a label value as text"
        )
    problem_type = raw.get("problem_type", BINARY)
    if problem_type not in PROBLEM_TYPES:
        raise ValidationError(
            f"--schema problem_type = {problem_type!r} is not allowed: one of "
            f"{', '.join(PROBLEM_TYPES)}"
        )
    if positive_class is not None and problem_type != BINARY:
        raise ValidationError(
            f"--schema positive_class = {positive_class!r} is not allowed with problem_type "
            f"{problem_type!r}: binary only"
        )
    return Schema(
        target=target,
        features=tuple(parsed),
        max_missing_fraction=float(fraction),
        positive_class=positive_class,
        problem_type=problem_type,
    )
