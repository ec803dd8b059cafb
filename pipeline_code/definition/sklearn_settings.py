"""`settings.sklearn` and `settings.custom`: the trainers' blocks of the definition settings,
validated as the configuration validates `pipeline.sklearn` and `pipeline.custom` (a block's
presence selects its trainer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from mlops_config.errors import translate
from mlops_config.trainer import CustomConfig, SklearnConfig, estimator_refusal
from pipeline_code.definition.setting_rules import SettingsError, fail


def sklearn_settings(raw: Mapping[str, Any], schema: Mapping[str, Any]) -> SklearnConfig | None:
    """The block (None: the XGBoost trainer); one training instance, no tuning, an estimator
    that fits the schema's problem type."""
    if raw.get("sklearn") is None:
        return None
    try:
        sklearn = SklearnConfig.model_validate(raw["sklearn"])
    except ValidationError as error:
        raise SettingsError(str(translate(error, SklearnConfig, "settings.sklearn"))) from None
    if raw.get("tuning") is not None or raw.get("training_instance_count") != 1:
        raise fail("sklearn", raw["sklearn"], "one training instance and no tuning")
    refusal = estimator_refusal(sklearn, schema.get("problem_type", "binary"))
    if refusal is not None:
        raise SettingsError(f"settings: {refusal}")
    return sklearn


def custom_settings(raw: Mapping[str, Any]) -> CustomConfig | None:
    """The custom trainer's block (None: another trainer); one training instance, no tuning,
    no sklearn block beside it. Its image was checked against the environment by the
    configuration (the settings hold no account)."""
    if raw.get("custom") is None:
        return None
    try:
        custom = CustomConfig.model_validate(raw["custom"])
    except ValidationError as error:
        raise SettingsError(str(translate(error, CustomConfig, "settings.custom"))) from None
    if raw.get("tuning") is not None or raw.get("training_instance_count") != 1:
        raise fail("custom", raw["custom"], "one training instance and no tuning")
    if raw.get("sklearn") is not None:
        raise fail("custom", raw["custom"], "not with a sklearn block (one trainer)")
    return custom
