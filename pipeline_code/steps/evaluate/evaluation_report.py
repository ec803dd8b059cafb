"""Writing evaluation.json: strict JSON (no NaN or Infinity, which JSON readers such as the
pipeline's JsonGet and the CLI reject; an undefined number is null), and registry metadata
values cut to what CustomerMetadataProperties holds."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from evaluation_contract import EVALUATION_FILE

#: CustomerMetadataProperties values hold at most 256 characters.
REGISTRY_VALUE_MAX_CHARS = 256


def finite(value: Any) -> Any:
    """`value` with every NaN and infinity (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def registry_text(text: str) -> str:
    """At most 256 characters, ending in "..." when cut."""
    if len(text) <= REGISTRY_VALUE_MAX_CHARS:
        return text
    return text[: REGISTRY_VALUE_MAX_CHARS - 3] + "..."


def write_evaluation(output_dir: Path, report: dict[str, Any]) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / EVALUATION_FILE
    path.write_text(json.dumps(finite(report), indent=2, allow_nan=False) + "\n", "utf-8")
    return path
