"""One verdict per feature, and the share of drifted features the drift alarm watches.

A feature drifted when its value test says so (Evidently, on the values that are present) or
when its missing share rose by more than the threshold (`missing_values`). The value test runs
only where both the reference and the window hold at least `min_values` values of the feature
(the job's --min-rows, the floor it already applies to the window as a whole): on a feature that
is 90 % missing, a test on a handful of values reports noise, and the missing-share rule has
already named what happened. An all-missing feature in the window is a verdict, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline_code.monitoring.evidently_drift import FeatureDrift
from pipeline_code.monitoring.features import Feature
from pipeline_code.monitoring.missing_values import MissingShare

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FeatureVerdict:
    feature: Feature
    value_test: FeatureDrift | None  # None: too few values to test
    values: tuple[int, int]  # values present in the reference and in the window
    missing: MissingShare

    @property
    def drifted(self) -> bool:
        return self.missing.drifted or (self.value_test is not None and self.value_test.drifted)


@dataclass(frozen=True)
class DriftResult:
    features: tuple[FeatureVerdict, ...]

    @property
    def drifted_count(self) -> int:
        return sum(verdict.drifted for verdict in self.features)

    @property
    def drifted_share(self) -> float:
        """Drifted features / all features of the schema (the alarm's metric)."""
        return self.drifted_count / len(self.features)


def value_counts(frame: pd.DataFrame, features: Sequence[Feature]) -> dict[str, int]:
    """Values present (not missing) per feature."""
    return {feature.name: int(frame[feature.name].notna().sum()) for feature in features}


def testable(
    reference: Mapping[str, int], current: Mapping[str, int], min_values: int
) -> list[str]:
    """Features with at least `min_values` values in both frames, in the order given."""
    return [name for name in current if min(reference[name], current[name]) >= min_values]


def combine(
    features: Sequence[Feature],
    value_tests: Mapping[str, FeatureDrift],
    missing: Sequence[MissingShare],
    reference_values: Mapping[str, int],
    current_values: Mapping[str, int],
) -> DriftResult:
    by_name = {share.name: share for share in missing}
    return DriftResult(
        tuple(
            FeatureVerdict(
                feature=feature,
                value_test=value_tests.get(feature.name),
                values=(reference_values[feature.name], current_values[feature.name]),
                missing=by_name[feature.name],
            )
            for feature in features
        )
    )
