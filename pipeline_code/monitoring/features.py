"""The features the drift job checks and their numeric columns, built from captured CSV rows or
the baseline file; `DriftCheckError` stops the job.

The features come from the served model's own baseline folder (Prepare's output, registered with
the model package): names in the order of baseline.csv's header, which is the schema's and so
the serving CSV's column order, and types from statistics.json beside it. Nothing per feature
travels in the job's arguments, so the job takes any number of features. `--schema` (the
contract's JSON) overrides them for local runs.
"""

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
#: Prepare's per-feature statistics of the test split: {"features": {name: {"type": ...}}}.
STATISTICS_FILE = "statistics.json"
FEATURE_TYPES = ("float", "int", "bool", "category")
#: The types Evidently tests as categorical (a category feature's values stay text).
CATEGORICAL_TYPES = ("bool", "category")
_BOOL_WORDS = {"true": "1", "false": "0"}
#: The step scripts' missing-value words (steps/common/categories.py, NULL_WORDS).
_NULL_WORDS = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None"]


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


def baseline_features(baseline_dir: Path) -> list[Feature]:
    """The served model's features from its baseline folder: baseline.csv's header order (the
    schema's), each with the type statistics.json records for it."""
    statistics_path = baseline_dir / STATISTICS_FILE
    if not statistics_path.is_file():
        raise DriftCheckError(
            f"no baseline statistics: {statistics_path} does not exist (Prepare writes it beside "
            f"{BASELINE_FILE}; it names each feature's type)"
        )
    try:
        statistics = json.loads(statistics_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DriftCheckError(f"{statistics_path} is not valid JSON: {error}") from None
    per_feature = statistics.get("features") if isinstance(statistics, dict) else None
    if not isinstance(per_feature, dict) or not per_feature:
        raise DriftCheckError(f'{statistics_path} has no "features" object of name -> statistics')
    header = _baseline_header(baseline_dir / BASELINE_FILE)
    if sorted(header) != sorted(per_feature):
        raise DriftCheckError(
            f"baseline mismatch: the columns of {BASELINE_FILE} {header} are not the features "
            f"{STATISTICS_FILE} describes {list(per_feature)}"
        )
    return _validated([(name, _type_of(per_feature[name])) for name in header])


def _type_of(statistics: Any) -> Any:
    return statistics.get("type") if isinstance(statistics, dict) else None


def _baseline_header(path: Path) -> list[str]:
    if not path.is_file():
        raise DriftCheckError(f"no baseline: {path} does not exist")
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    if not header:
        raise DriftCheckError(f"no baseline: {path} is empty")
    return header


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
    """Parse CSV lines (no header, schema order) into a numeric frame (category features as
    text); also return, per feature, how many non-blank values were not numbers (they become
    NaN). With category features, quoted fields are read as CSV quotes them (a category value
    may hold a comma); without, quotes are not special, as before."""
    import pandas as pd

    texts = any(f.type == "category" for f in features)
    raw = pd.read_csv(
        io.StringIO("\n".join(lines)),
        header=None,
        names=[f.name for f in features],
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_MINIMAL if texts else csv.QUOTE_NONE,
        skipinitialspace=True,
    )
    return to_numeric(raw, features)


def to_numeric(
    raw: pd.DataFrame, features: Sequence[Feature]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Numeric columns (bools as 0/1, true/false accepted) and the per-feature count of
    non-blank values that did not parse; blanks are missing values, not invalid ones. A
    category feature stays text in the step scripts' canonical form (blanks around it
    dropped, a whole number as its integer's digits, the missing-value words missing)."""
    import pandas as pd

    columns = {}
    invalid = {}
    for feature in features:
        column = raw[feature.name].astype("string").str.strip()
        if feature.type == "category":
            columns[feature.name] = _canonical_text(column)
            invalid[feature.name] = 0
            continue
        if feature.type == "bool":
            column = column.str.lower().replace(_BOOL_WORDS)
        values = pd.to_numeric(column, errors="coerce").astype("float64")
        invalid[feature.name] = int((values.isna() & (column != "")).sum())
        columns[feature.name] = values
    # One frame from all columns at once: inserting hundreds one by one fragments it.
    return pd.DataFrame(columns, index=raw.index), invalid


def _canonical_text(column: pd.Series) -> pd.Series:
    import pandas as pd

    numbers = pd.to_numeric(column, errors="coerce")
    whole = numbers.notna() & (numbers == numbers.round()) & (numbers.abs() < 2**53)
    digits = numbers.where(whole).round().astype("Int64").astype(str)
    text = column.astype(object).where(~whole, digits)
    return text.where(~column.isin(_NULL_WORDS) & column.notna(), None).astype(object)


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
