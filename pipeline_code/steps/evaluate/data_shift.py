"""The split report's view across versions: this version's test rows against the data the
champion was trained on (the profile its model carries), per feature and in class balance,
with the large shifts flagged (statistics and thresholds in `common.feature_shift`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from common.feature_shift import (
    LARGE_LEVEL,
    MODERATE_LEVEL,
    class_balance,
    compare,
    flagged,
    summary,
)

CLASS_BALANCE = "class_balance"
# Why a multi-class or regression version's target is not compared with the champion's.
NO_CLASS_COUNTS = (
    "the champion's training profile records a positive count only for a binary target: a "
    "multi-class target's class shares and a regression target's distribution are not compared"
)


def skipped(reason: str) -> dict[str, Any]:
    return {"summary": f"skipped: {reason}", "large": [], "moderate": []}


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
    balance = (
        class_balance(
            int(reference["positives"]), int(reference["rows"]), int(y.sum()), int(y.size)
        )
        if "positives" in reference
        else {"level": "none", "skipped": NO_CLASS_COUNTS}
    )
    shifted = balance["level"] == LARGE_LEVEL
    large = ([CLASS_BALANCE] if shifted else []) + flagged(features, LARGE_LEVEL)
    moderate = flagged(features, MODERATE_LEVEL)
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
