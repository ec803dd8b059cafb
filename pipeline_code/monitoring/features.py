"""The features the drift job checks (from the schema or --feature arguments) and their numeric
columns, built from captured CSV rows or the baseline file; `DriftCheckError` stops the job."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported where it is used, so importing the job's modules (for the parser, the
# names, the metric contract) stays cheap.

BASELINE_FILE = "baseline.csv"
FEATURE_TYPES = ("float", "int", "bool")
_BOOL_WORDS = {"true": "1", "false": "0"}


class DriftCheckError(Exception):
    """A reason to stop the job with a clear message (exit code 1)."""


@dataclass(frozen=True)
class Feature:
    name: str
    type: str


def parse_schema(text: str) -> list[Feature]:
    """Features of the pipeline contract's schema JSON, in order; target and limits are unused."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        raise DriftCheckError(f"--schema is not valid JSON: {error}") from None
    features = schema.get("features") if isinstance(schema, dict) else None
    if not isinstance(features, list) or not features:
        raise DriftCheckError('--schema needs a non-empty "features" list')
    return _validated([(item.get("name"), item.get("type")) for item in features])


def parse_feature_args(values: Sequence[str]) -> list[Feature]:
    """Features from repeated `--feature NAME:TYPE` arguments (for callers limited to
    256-character arguments, such as SageMaker's ContainerArguments)."""
    pairs = []
    for value in values:
        name, sep, kind = value.rpartition(":")
        if not sep:
            raise DriftCheckError(f"--feature {value!r}: expected NAME:TYPE, e.g. amount:float")
        pairs.append((name, kind))
    return _validated(pairs)


def _validated(pairs: Iterable[tuple[Any, Any]]) -> list[Feature]:
    features = []
    for name, kind in pairs:
        if not isinstance(name, str) or not name:
            raise DriftCheckError(f"schema feature name {name!r} is not a non-empty string")
        if kind not in FEATURE_TYPES:
            raise DriftCheckError(
                f"schema feature {name!r} has type {kind!r}; allowed: {', '.join(FEATURE_TYPES)}"
            )
        features.append(Feature(name, kind))
    duplicates = sorted(n for n, c in Counter(f.name for f in features).items() if c > 1)
    if duplicates:
        raise DriftCheckError(f"schema lists features more than once: {duplicates}")
    return features


def frame_from_lines(
    lines: Sequence[str], features: Sequence[Feature]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Parse CSV lines (no header, schema order) into a numeric frame; also return, per
    feature, how many non-blank values were not numbers (they become NaN)."""
    import pandas as pd

    raw = pd.read_csv(
        io.StringIO("\n".join(lines)),
        header=None,
        names=[f.name for f in features],
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        skipinitialspace=True,
    )
    return to_numeric(raw, features)


def to_numeric(
    raw: pd.DataFrame, features: Sequence[Feature]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Numeric columns (bools as 0/1, true/false accepted) and the per-feature count of
    non-blank values that did not parse; blanks are missing values, not invalid ones."""
    import pandas as pd

    frame = pd.DataFrame(index=raw.index)
    invalid = {}
    for feature in features:
        column = raw[feature.name].astype("string").str.strip()
        if feature.type == "bool":
            column = column.str.lower().replace(_BOOL_WORDS)
        values = pd.to_numeric(column, errors="coerce").astype("float64")
        invalid[feature.name] = int((values.isna() & (column != "")).sum())
        frame[feature.name] = values
    return frame, invalid


def load_baseline(baseline_dir: Path, features: Sequence[Feature]) -> pd.DataFrame:
    """The reference sample (baseline.csv: header, features in any order, extra columns ignored)."""
    import pandas as pd

    path = baseline_dir / BASELINE_FILE
    if not path.is_file():
        raise DriftCheckError(f"no baseline: {path} does not exist")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [f.name for f in features if f.name not in raw.columns]
    if missing:
        raise DriftCheckError(
            f"schema mismatch: {path} lacks the schema features {missing} "
            f"(it has {list(raw.columns)})"
        )
    if raw.empty:
        raise DriftCheckError(f"no baseline: {path} has a header but no rows")
    return to_numeric(raw, features)[0]
