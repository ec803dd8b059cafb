"""Writing evaluation.json: strict JSON (no NaN or Infinity, which JSON readers such as the
pipeline's JsonGet and the CLI reject; an undefined number is null), and registry metadata
values in the form CustomerMetadataProperties accepts."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Any

from evaluation_contract import EVALUATION_FILE

#: CustomerMetadataProperties values: 1 to 256 characters, letters, digits, spaces and these.
REGISTRY_VALUE_MAX_CHARS = 256
REGISTRY_VALUE_PUNCTUATION = "_.:/=+-@"


def finite(value: Any) -> Any:
    """`value` with every NaN and infinity (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def _allowed(character: str) -> bool:
    return unicodedata.category(character)[0] in "LNZ" or character in REGISTRY_VALUE_PUNCTUATION


def registry_text(text: str) -> str:
    """`text` as a metadata value: other characters become spaces (runs of them one), at most
    256 characters (ending in "..." when cut), never empty."""
    cleaned = re.sub(r" {2,}", " ", "".join(c if _allowed(c) else " " for c in text)).strip()
    if len(cleaned) > REGISTRY_VALUE_MAX_CHARS:
        cleaned = cleaned[: REGISTRY_VALUE_MAX_CHARS - 3].rstrip() + "..."
    return cleaned or "none"


def write_evaluation(output_dir: Path, report: dict[str, Any]) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / EVALUATION_FILE
    path.write_text(json.dumps(finite(report), indent=2, allow_nan=False) + "\n", "utf-8")
    return path
