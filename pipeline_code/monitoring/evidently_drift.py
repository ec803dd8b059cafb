"""Evidently's report on the reference and current frames: a value test per feature that has
enough values (ValueDrift, with DataDriftPreset's choice of method), each feature's missing share
beside it, and the value tests read back as one method, score and verdict per feature."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline_code.monitoring.features import CATEGORICAL_TYPES, DriftCheckError, Feature
from pipeline_code.monitoring.missing_values import MissingShare

if TYPE_CHECKING:
    import pandas as pd
    from evidently.core.report import Snapshot

# Evidently (about 4 s) and pandas are imported where they are used, so importing the job's
# modules stays cheap.


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's value test: Evidently's method, its threshold, the score and the verdict."""

    name: str
    method: str
    threshold: float
    score: float
    drifted: bool


@dataclass(frozen=True)
class DriftOptions:
    """How the value tests decide (None: Evidently's choice) and the missing-share rule."""

    missing_share_threshold: float
    stattest: str | None = None
    num_stattest: str | None = None
    cat_stattest: str | None = None
    stattest_threshold: float | None = None


def _import_evidently() -> Any:
    """Import Evidently (about 4 s, so only when needed) and return the module."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's usage telemetry
    with warnings.catch_warnings():
        # Deprecation notices from Evidently's dependencies (plotly, litestar) at import.
        warnings.simplefilter("ignore", DeprecationWarning)
        import evidently

    return evidently


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[Feature],
    tested: Sequence[str],
    missing: Sequence[MissingShare],
    options: DriftOptions,
) -> tuple[Snapshot, dict[str, FeatureDrift]]:
    """Run the value tests of the `tested` features and report every feature's
    missing share, tested against the same bound as `missing` (reference share + threshold);
    return the snapshot and the value test of each tested feature by name."""
    evidently = _import_evidently()
    from evidently.legacy.options.data_drift import DataDriftOptions
    from evidently.metrics import MissingValueCount, ValueDrift
    from evidently.tests import lte

    definition = evidently.DataDefinition(
        numerical_columns=[f.name for f in features if f.type in ("float", "int")],
        categorical_columns=[f.name for f in features if f.type in CATEGORICAL_TYPES],
    )
    # DataDriftPreset's own resolution of a column's method and threshold; the preset itself
    # would also compute every column's drift twice more for its dataset-level table, whose
    # count leaves out the missing-share rule.
    resolve = DataDriftOptions(
        all_features_stattest=options.stattest,
        num_features_stattest=options.num_stattest,
        cat_features_stattest=options.cat_stattest,
        threshold=options.stattest_threshold,
    )
    kinds = {f.name: "cat" if f.type in CATEGORICAL_TYPES else "num" for f in features}
    metrics: list[Any] = [
        ValueDrift(
            column=name,
            method=resolve.get_feature_stattest_func(name, kinds[name]),
            threshold=resolve.get_threshold(name, kinds[name]),
        )
        for name in tested
    ]
    metrics += [
        MissingValueCount(
            column=share.name,
            share_tests=[lte(share.reference + options.missing_share_threshold)],
        )
        for share in missing
    ]
    try:
        with warnings.catch_warnings():
            # Evidently 0.7.23 uses pandas APIs that later pandas releases deprecate.
            warnings.simplefilter("ignore", DeprecationWarning)
            snapshot = evidently.Report(metrics, include_tests=True).run(
                current_data=evidently.Dataset.from_pandas(current, data_definition=definition),
                reference_data=evidently.Dataset.from_pandas(reference, data_definition=definition),
            )
    except (ValueError, KeyError) as error:
        raise DriftCheckError(f"Evidently could not run the drift tests: {error}") from error
    return snapshot, _value_tests(snapshot, tested)


def _value_tests(snapshot: Snapshot, tested: Sequence[str]) -> dict[str, FeatureDrift]:
    by_column: dict[str, FeatureDrift] = {}
    for result in snapshot.metric_results.values():
        params = result.metric_value_location.metric.params
        if params.get("type", "").endswith(":ValueDrift"):
            # Evidently attaches one test per column: FAIL means drift was detected.
            statuses = {str(test.status.value) for test in result.tests}
            by_column[params["column"]] = FeatureDrift(
                name=params["column"],
                method=str(params["method"]),
                threshold=float(params["threshold"]),
                score=float(result.value),
                drifted="FAIL" in statuses,
            )
    absent = [name for name in tested if name not in by_column]
    if absent:
        raise DriftCheckError(f"Evidently returned no drift result for {absent}")
    return by_column
