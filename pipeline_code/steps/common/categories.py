"""Category values as text, and the one encoding that training, evaluation and serving share.

A `category` feature arrives as text (`Adelie`) or integer codes (`3`). Every reader turns a
value into its *canonical text* with the same rule, so a CSV field, a Parquet integer and a
request field that mean one thing are one category:

    blanks around the value are dropped; the missing-value words (empty, NA, N/A, NaN, nan,
    NULL, null, None) are missing; a number with a whole value (`3`, `3.0`, `3e0`) is its
    integer's digits (`3`); anything else is the text as written.

Train fits the encoding on the training split only (`fit_encoding`: the canonical values seen
there, sorted; value i has code i) and stores it with the model as `metadata/categories.json`.
Evaluate, the endpoint's inference script and the local run encode with that file
(`encode`), so a model is always fed the codes it was trained with: no training/serving
skew. A value the training split never had (unseen) and a missing value both become a missing
value, which XGBoost's categorical splits send down their learned default branch; nothing
crashes on a new category.

Plain Python and numpy only (pyarrow optional): this module travels inside the model archive
to the serving container.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: The file next to the model's metadata holding the fitted encoding.
CATEGORIES_FILE = "categories.json"
ENCODING_FORMAT = "category-codes-v1"
NULL_WORDS = frozenset({"", "NA", "N/A", "NaN", "nan", "NULL", "null", "None"})
#: Most categories a feature may have in the training split: more is an identifier, not a
#: category, and would bloat the model's metadata.
MAX_CATEGORIES = 1_000
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_EXACT_INT = 2**53


def canonical(value: Any) -> str | None:
    """The canonical text of one value (see the module's rule), or None when it is missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        return _whole(number) or repr(number)
    text = str(value).strip()
    if text in NULL_WORDS:
        return None
    if _NUMBER.match(text):
        return _whole(float(text)) or text
    return text


def _whole(number: float) -> str | None:
    if math.isfinite(number) and number == math.floor(number) and abs(number) < _EXACT_INT:
        return str(int(number))
    return None


def canonical_array(values: Iterable[Any]) -> np.ndarray:
    """Canonical text of every value (object array, None where missing); each distinct raw
    value is converted once, so a million rows of a few categories cost a dictionary look-up
    each."""
    items = values.to_pylist() if hasattr(values, "to_pylist") else list(values)
    memo: dict[Any, str | None] = {}
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        key = (type(item), item)
        if key not in memo:
            memo[key] = canonical(item)
        out[i] = memo[key]
    return out


def is_missing(values: np.ndarray) -> np.ndarray:
    """Missing values of a feature column: NaN for numbers, None for category text."""
    if values.dtype == object:
        return np.array([v is None for v in values], dtype=bool)
    return np.isnan(values)


def category_counts(values: np.ndarray) -> dict[str, int]:
    """Rows per category (missing values left out), most frequent first, then by name."""
    present = [v for v in values if v is not None]
    names, counts = np.unique(np.asarray(present, dtype=object).astype(str), return_counts=True)
    pairs = sorted(zip(names.tolist(), counts.tolist(), strict=True), key=lambda p: (-p[1], p[0]))
    return {str(name): int(count) for name, count in pairs}


class EncodingError(ValueError):
    """An encoding that cannot be fitted or read; the message names the feature or file."""


def fit_encoding(columns: Mapping[str, np.ndarray]) -> dict[str, list[str]]:
    """The categories of each feature in the training split (canonical text, sorted)."""
    encoding: dict[str, list[str]] = {}
    for name, values in columns.items():
        seen = sorted({v for v in values if v is not None})
        if not seen:
            raise EncodingError(f"category feature {name!r} has no value in the training split")
        if len(seen) > MAX_CATEGORIES:
            raise EncodingError(
                f"category feature {name!r} has {len(seen)} distinct values in the training "
                f"split, more than {MAX_CATEGORIES}: an identifier is not a category (leave it "
                "out of the schema, or make it a number)"
            )
        encoding[name] = seen
    return encoding


def encode(values: np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """Codes (float32) of canonical values; missing and unseen values are NaN."""
    lookup = {name: float(code) for code, name in enumerate(categories)}
    return np.array(
        [lookup.get(v, math.nan) if v is not None else math.nan for v in values],
        dtype=np.float32,
    )


def unseen(values: np.ndarray, categories: Sequence[str]) -> int:
    """How many present values the encoding does not know."""
    known = set(categories)
    return sum(1 for v in values if v is not None and v not in known)


def write_encoding(directory: Path, encoding: Mapping[str, Sequence[str]]) -> Path:
    """Store the encoding as `<directory>/categories.json`; returns its path."""
    path = directory / CATEGORIES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": ENCODING_FORMAT,
        "unseen": "missing",
        "features": {name: list(values) for name, values in encoding.items()},
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def read_encoding(directory: Path) -> dict[str, list[str]]:
    """The encoding stored in `directory`; {} when the model has no category feature."""
    path = directory / CATEGORIES_FILE
    if not path.is_file():
        return {}
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EncodingError(f"{CATEGORIES_FILE} is not readable JSON: {error}") from error
    features = payload.get("features") if isinstance(payload, dict) else None
    if payload.get("format") != ENCODING_FORMAT or not isinstance(features, dict):
        raise EncodingError(
            f"{CATEGORIES_FILE} must be an object with format {ENCODING_FORMAT!r} and features"
        )
    for name, values in features.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise EncodingError(f"{CATEGORIES_FILE}: feature {name!r} must list text values")
    return {str(name): list(values) for name, values in features.items()}
