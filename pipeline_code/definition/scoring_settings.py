"""The scoring pipeline's settings (batch serving): `serving.batch` as the generator gets it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline_code.definition.setting_rules import SettingsError

_LIMITS = {"instance_count": 20, "max_payload_mb": 100, "max_concurrent_transforms": 64}


@dataclass(frozen=True)
class ScoringSettings:
    """batch mode's `serving.batch` (mlops_config.serving.BatchScoringConfig), as the generator
    gets it, and the scoring pipeline's name."""

    pipeline_name: str
    instance_type: str
    instance_count: int
    id_column: str
    max_payload_mb: int
    max_concurrent_transforms: int

    @classmethod
    def from_dict(cls, raw: Any) -> ScoringSettings:
        if not isinstance(raw, dict) or set(raw) != set(cls.__dataclass_fields__):
            raise SettingsError(
                f"settings.scoring = {raw!r} is not allowed: an object with exactly "
                f"{', '.join(sorted(cls.__dataclass_fields__))}"
            )
        for key, high in _LIMITS.items():
            value = raw[key]
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
                raise SettingsError(
                    f"settings.scoring.{key} = {value!r} is not allowed: an integer from 1 to "
                    f"{high}"
                )
        for key in ("pipeline_name", "instance_type", "id_column"):
            if not isinstance(raw[key], str) or not raw[key]:
                raise SettingsError(f"settings.scoring.{key} = {raw[key]!r} is not allowed")
        return cls(**raw)
