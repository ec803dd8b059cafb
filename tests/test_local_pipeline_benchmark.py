"""The local pipeline benchmark's multi-class and regression data: five classes of equal share
(quantiles of a feature score) and a continuous target that depends on the features, so the 1M
row runs in the README measure a model that learns something."""

from __future__ import annotations

import numpy as np

from benchmarks.local_pipeline import CLASSES, STEPS, TYPED_TARGETS, table, typed_target
from pipeline_code import sample_data


def test_the_multiclass_target_has_five_classes_of_equal_share() -> None:
    frame = typed_target(sample_data.generate(5000, seed=3), "multiclass")
    assert "is_fraud" not in frame
    shares = frame[TYPED_TARGETS["multiclass"]].value_counts(normalize=True)
    assert sorted(shares.index) == list("ABCDE") and len(shares) == CLASSES
    assert np.allclose(shares.to_numpy(), 1 / CLASSES, atol=0.005)


def test_the_regression_target_depends_on_the_features() -> None:
    frame = typed_target(sample_data.generate(5000, seed=3), "regression")
    y = frame[TYPED_TARGETS["regression"]].to_numpy(np.float64)
    assert np.isfinite(y).all() and (y > 0).all()
    # the features the target is built from explain it, not all of it (noise)
    correlation = np.corrcoef(np.log(y), np.log1p(frame["amount"]))[0, 1]
    assert 0.3 < correlation < 0.99
    assert y.std() > 0


def test_the_table_shows_the_gate_metric_under_its_name() -> None:
    # the value column is the run's gate metric (here R²), not an AUC
    result = {
        "rows": 1000,
        "steps": {step: {"seconds": 1.0} for step in STEPS},
        "child_wall_seconds": 9.0,
        "peak_rss_mib": 300.0,
        "metric": "r2",
        "metric_value": 0.4321,
    }
    header, _, line = table([result]).splitlines()
    assert header.split()[-1] == "r2"
    assert line.split()[-1] == "0.4321"
