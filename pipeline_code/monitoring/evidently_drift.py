"""Evidently's DataDriftPreset on the reference and current frames, read back as one method,
score and verdict per feature and the dataset's drifted share."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline_code.monitoring.features import DriftCheckError, Feature

if TYPE_CHECKING:
    import pandas as pd
    from evidently.core.report import Snapshot

# Evidently (about 4 s) and pandas are imported where they are used, so importing the job's
# modules stays cheap.


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    method: str
    threshold: float
    score: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    drifted_count: int
    drifted_share: float
    features: tuple[FeatureDrift, ...]


def _import_evidently() -> Any:
    """Import Evidently (about 4 s, so only when needed) and return the module."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's usage telemetry
    import pandas.core.dtypes.common as pandas_common

    if not hasattr(pandas_common, "infer_dtype_from_object"):
        # Evidently 0.7.23 imports this pandas-2 helper at module level for one legacy test
        # (TestColumnsType) that this job never runs; pandas 3 removed it, which breaks the
        # import of the whole package.
        def _removed_in_pandas_3(dtype: Any) -> Any:
            raise NotImplementedError("infer_dtype_from_object was removed in pandas 3")

        pandas_common.infer_dtype_from_object = _removed_in_pandas_3  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        # Deprecation notices from Evidently's dependencies (plotly, litestar) at import.
        warnings.simplefilter("ignore", DeprecationWarning)
        import evidently

    return evidently


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[Feature],
    drift_share: float,
    stattest: str | None = None,
    num_stattest: str | None = None,
    cat_stattest: str | None = None,
    stattest_threshold: float | None = None,
) -> tuple[Snapshot, DriftResult]:
    """Run Evidently's DataDriftPreset and read each feature's method, score and verdict."""
    evidently = _import_evidently()
    from evidently.presets import DataDriftPreset

    definition = evidently.DataDefinition(
        numerical_columns=[f.name for f in features if f.type in ("float", "int")],
        categorical_columns=[f.name for f in features if f.type == "bool"],
    )
    preset = DataDriftPreset(
        drift_share=drift_share,
        method=stattest,
        num_method=num_stattest,
        cat_method=cat_stattest,
        threshold=stattest_threshold,
    )
    try:
        with warnings.catch_warnings():
            # Evidently 0.7.23 uses pandas APIs that pandas 3.1 deprecates (dropna inplace=...).
            warnings.simplefilter("ignore", DeprecationWarning)
            snapshot = evidently.Report([preset], include_tests=True).run(
                current_data=evidently.Dataset.from_pandas(current, data_definition=definition),
                reference_data=evidently.Dataset.from_pandas(reference, data_definition=definition),
            )
    except (ValueError, KeyError) as error:
        raise DriftCheckError(f"Evidently could not run the drift tests: {error}") from error
    return snapshot, _read_result(snapshot, features)


def _read_result(snapshot: Snapshot, features: Sequence[Feature]) -> DriftResult:
    by_column: dict[str, FeatureDrift] = {}
    count = share = None
    for result in snapshot.metric_results.values():
        params = result.metric_value_location.metric.params
        kind = params.get("type", "")
        if kind.endswith(":DriftedColumnsCount"):
            count, share = int(result.count.value), float(result.share.value)
        elif kind.endswith(":ValueDrift"):
            # Evidently attaches one test per column: FAIL means drift was detected.
            statuses = {str(test.status.value) for test in result.tests}
            by_column[params["column"]] = FeatureDrift(
                name=params["column"],
                method=str(params["method"]),
                threshold=float(params["threshold"]),
                score=float(result.value),
                drifted="FAIL" in statuses,
            )
    absent = [f.name for f in features if f.name not in by_column]
    if count is None or share is None or absent:
        raise DriftCheckError(f"Evidently returned no drift result for {absent or 'the dataset'}")
    return DriftResult(count, share, tuple(by_column[f.name] for f in features))
