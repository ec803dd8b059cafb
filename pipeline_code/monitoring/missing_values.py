"""Missing values as drift: per feature, the share of rows without a value in the reference and
in the window, and whether it rose by more than the threshold.

A feature that production stops sending (an upstream field renamed, a join that lost its key)
arrives as blanks. The value test cannot see that: Evidently compares only the values that are
present. So the rise of the missing share is a verdict of its own: with the default 0.1, a
feature whose share of missing values in the window exceeds the baseline's by more than 10
percentage points drifted, whatever its remaining values look like. Only a rise counts: a
feature that becomes more complete harms no input of the model, and if the gaps are now filled
with a default value, the value test sees the new values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline_code.monitoring.features import Feature

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_MISSING_SHARE_THRESHOLD = 0.1


@dataclass(frozen=True)
class MissingShare:
    """Shares of rows (0..1) without a value: blank, or not a number."""

    name: str
    reference: float
    current: float
    drifted: bool  # current > reference + threshold

    @property
    def rise(self) -> float:
        return self.current - self.reference


def missing_shares(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[Feature],
    threshold: float,
) -> tuple[MissingShare, ...]:
    """The missing share of every feature in both frames (numeric, NaN = missing)."""
    shares = []
    for feature in features:
        before = float(reference[feature.name].isna().mean())
        now = float(current[feature.name].isna().mean())
        shares.append(MissingShare(feature.name, before, now, now > before + threshold))
    return tuple(shares)
