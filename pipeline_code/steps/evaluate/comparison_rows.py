"""Which test rows the champion never trained on: the rows the gate compares the two models on.

The champion's model carries the split rule of the data it was trained on (see
`common.training_data`). Then:

1. Its rule is this run's (same method, key, seed and fractions): a row's split depends on the
   row alone, so every test row of this version was in the champion's test split or is new:
   all are clean.
2. Its rule differs (other fractions, seed or key, a time split): the rule is applied to the
   test rows as the champion's Prepare applied it, and the rows it puts into its train or
   validation split are left out (counted per reason). Rows its version did not hold are left
   out too when the rule would have trained on them: without the champion's data, which rows
   it held cannot be known, and leaving a few clean rows out costs only power.
3. It records no rule (a model from before stable splits), or the test rows lack what its rule
   needs (its id column, its time column, a key feature this version no longer has): the rows
   it trained on cannot be known, and the comparison is skipped with that reason; only the
   floor applies.

A content key hashes a number's bits but a category's text, so a key feature whose type
changed since the champion (`int` to `category` or back) is hashed as the champion's Prepare
hashed it: its values converted to the champion's type, and the rule applied (case 2) even
when it reads the same; values that cannot be converted (text that is not a number) make it
case 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.categories import canonical_array
from common.stable_split import SplitRuleError, apply_rule, same_rule, summary

CATEGORY = "category"


@dataclass(frozen=True)
class ComparisonRows:
    """`keep` marks the compared test rows (None: no comparison); `excluded` counts the rows
    left out per reason; `reason` says how the rows were chosen, or why there is no
    comparison."""

    keep: np.ndarray | None
    reason: str
    excluded: dict[str, int] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {"excluded": dict(self.excluded), "reason": self.reason}


def key_column_names(rule: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The id or time column a rule reads (the test split holds this run's)."""
    if not rule:
        return ()
    column = rule.get("id_column") or rule.get("time_column")
    return (column,) if column else ()


def champion_rows(
    champion_rule: Mapping[str, Any] | None,
    challenger_rule: Mapping[str, Any] | None,
    columns: Mapping[str, np.ndarray],
    keys: Mapping[str, np.ndarray],
    rows: int,
    champion_features: Sequence[str] | None = None,
    champion_types: Mapping[str, str] | None = None,
) -> ComparisonRows:
    """The test rows to compare on (see the module's cases 1-3).

    Args:
        champion_rule: the champion's recorded split rule (None: none recorded).
        challenger_rule: this run's rule.
        columns: the test split's features (float64), for content keys.
        keys: the test split's key columns as :func:`scoring_data.read_keys` returns them.
        rows: the number of test rows.
        champion_features: the champion's feature names, the key columns of a content rule
            recorded in its short form.
        champion_types: the champion's schema type per feature (None: recorded by no
            type, a model from before category features: every feature a number).
    """
    if not champion_rule:
        return ComparisonRows(
            None,
            "the champion records no split rule (trained before stable splits), so the rows "
            "it trained on cannot be known",
        )
    retyped = _retyped(champion_rule, columns, champion_features, champion_types or {})
    if challenger_rule and same_rule(champion_rule, challenger_rule) and not retyped:
        return ComparisonRows(
            np.ones(rows, dtype=bool),
            f"same split rule as the champion ({summary(champion_rule)}): no test row was in "
            "its train or validation split",
            {"champion_train": 0, "champion_validation": 0},
        )
    rule = dict(champion_rule)
    if rule.get("key") == "content" and not rule.get("key_columns") and champion_features:
        rule["key_columns"] = sorted(champion_features)
    id_column, time_column = str(rule.get("id_column")), str(rule.get("time_column"))
    try:
        times = None
        if time_column in keys:
            times = np.asarray(keys[time_column]).astype(np.float64)
        ids = keys.get(id_column)
        split = apply_rule(
            rule, {**columns, **_as_champion(retyped, columns)}, ids=ids, times=times
        )
    except (SplitRuleError, ValueError) as error:
        return ComparisonRows(
            None,
            f"the champion's split rule ({summary(rule)}) cannot be applied to this version's "
            f"test rows ({error}), so the rows it trained on cannot be known",
        )
    excluded = {
        "champion_train": int((split == 0).sum()),
        "champion_validation": int((split == 1).sum()),
    }
    return ComparisonRows(
        split == 2,
        f"the champion's split rule ({summary(rule)}) differs from this run's: it puts "
        f"{excluded['champion_train']:,} of the test rows in its train split and "
        f"{excluded['champion_validation']:,} in its validation split, which are not compared",
        excluded,
    )


def _retyped(
    rule: Mapping[str, Any],
    columns: Mapping[str, np.ndarray],
    features: Sequence[str] | None,
    types: Mapping[str, str],
) -> dict[str, bool]:
    """Content-key columns held as another kind than the champion hashed them: name -> True
    when the champion hashed it as category text."""
    if rule.get("key") != "content":
        return {}
    names = rule.get("key_columns") or sorted(features or [])
    retyped = {}
    for name in names:
        if name not in columns:
            continue
        as_text = types.get(name) == CATEGORY
        if as_text != (columns[name].dtype == object):
            retyped[name] = as_text
    return retyped


def _as_champion(retyped: Mapping[str, bool], columns: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The retyped columns as the champion's Prepare held them (text, or float64)."""
    converted: dict[str, np.ndarray] = {}
    for name, as_text in retyped.items():
        values = columns[name]
        if as_text:
            converted[name] = canonical_array(values.tolist())
            continue
        try:
            converted[name] = np.array(
                [np.nan if v is None else float(v) for v in values], dtype=np.float64
            )
        except ValueError as error:
            raise SplitRuleError(
                f"key feature {name!r} is category text now, a number for the champion: {error}"
            ) from error
    return converted
