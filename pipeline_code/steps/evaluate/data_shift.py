"""The split report's view across versions: this version's test rows against the data the
champion was trained on (the profile its model carries), per feature and in the target, with
the large shifts flagged (statistics and thresholds in `common.feature_shift`).

The target: a binary target's positive rate (`class_balance`); a multi-class target's class
shares and a regression target's distribution are tested like a category and a numeric
feature against the champion's training target profile (chi-square + PSI/JS, KS + PSI), under
`class_balance` too, flagged as `target` when large. A champion trained before target profiles
were recorded is not compared (the reason is stated)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from common.feature_shift import (
    LARGE_LEVEL,
    MODERATE_LEVEL,
    class_balance,
    compare,
    compare_feature,
    flagged,
    summary,
)

CLASS_BALANCE = "class_balance"
#: The large-shift name of a multi-class or regression target.
TARGET = "target"
# Why a multi-class or regression version's target is not compared with the champion's.
NO_TARGET_PROFILE = (
    "the champion's training profile records no target profile (trained before multi-class "
    "class shares and regression target distributions were recorded): the target is not "
    "compared"
)


def skipped(reason: str) -> dict[str, Any]:
    return {"summary": f"skipped: {reason}", "large": [], "moderate": []}


def target_shift(reference: Mapping[str, Any], y: np.ndarray) -> tuple[dict[str, Any], str]:
    """The target's shift against the champion's training reference, and its flag name.

    `y`: 0/1 (binary), class labels as text (multi-class) or numbers (regression)."""
    if "positives" in reference:
        return class_balance(
            int(reference["positives"]), int(reference["rows"]), int(y.sum()), int(y.size)
        ), CLASS_BALANCE
    if "target_profile" in reference:
        return compare_feature(reference["target_profile"], y), TARGET
    return {"level": "none", "skipped": NO_TARGET_PROFILE}, TARGET


def data_shift_section(
    champion_record: Mapping[str, Any] | None,
    challenger_record: Mapping[str, Any] | None,
    columns: Mapping[str, np.ndarray],
    y: np.ndarray,
    has_champion: bool,
) -> dict[str, Any]:
    """How this version's test rows differ from the champion's training split.

    `summary` is the registry's compact form: `large=amount/hour moderate=used_pin`, `none`,
    or `skipped: <why>`.
    """
    if not has_champion:
        return skipped("no champion to compare with")
    reference = (champion_record or {}).get("reference")
    if not reference:
        return skipped("the champion records no profile of its training data")
    features = compare(reference["features"], columns)
    balance, name = target_shift(reference, y)
    large = ([name] if balance["level"] == LARGE_LEVEL else []) + flagged(features, LARGE_LEVEL)
    moderate = ([name] if balance["level"] == MODERATE_LEVEL else []) + flagged(
        features, MODERATE_LEVEL
    )
    rows = {
        "champion_training": int(reference["rows"]),
        "champion_version": (champion_record or {}).get("version_rows"),
        "new_version": (challenger_record or {}).get("version_rows"),
        "compared": int(y.size),
    }
    missing = sorted(set(reference["features"]) - set(columns))
    return {
        "reference": "the champion's training split",
        "compared": "this version's test split",
        "rows": rows,
        "class_balance": balance,
        "features": features,
        "features_not_in_this_version": missing,
        "large": large,
        "moderate": moderate,
        "summary": summary(large, moderate),
    }
