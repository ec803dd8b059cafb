"""Run tracker on multiclass and regression evaluations: their intervals are clipped to where
each metric can lie (F-scores and shares in [0, 1], errors at least 0, r2 at most 1: the
definitions, not the code), and a champion scored on fewer rows than the challenger is tagged
as for binary runs. Pure: run_content only, no server."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pipeline_code.steps import load
from tests.lambda_loader import load_lambda_module
from tests.tracking_world import END, START, evaluation

record_module = load_lambda_module("track_runs", "run_record")
multiclass = load("evaluate", "metrics_multiclass")
regression = load("evaluate", "metrics_regression")
Z = 1.96  # the two-sided 95% normal quantile, to 4 decimals


def content(report: dict[str, Any]) -> Any:
    return record_module.run_content(
        record_module.ExecutionRecord(
            pipeline_name="mlops-dev-training",
            execution_arn="arn:aws:sagemaker:eu-west-1:123456789012:pipeline/mlops-dev-training"
            "/execution/typed1",
            status="Succeeded",
            start_ms=int(START.timestamp() * 1000),
            end_ms=int(END.timestamp() * 1000),
            evaluation=report,
        )
    )


def metrics_of(report: dict[str, Any]) -> dict[str, float]:
    return {m["key"]: m["value"] for m in content(report).metrics}


def typed(section: str, metrics: dict[str, tuple[float, float]], compared_rows: int) -> dict:
    """evaluation.json of a typed run: the binary fixture's gate (the same layout for every
    problem type, comparison.gate_section) with `section` and its champion copy in place of the
    binary sections."""
    report = copy.deepcopy(evaluation(compared_rows=compared_rows))
    del report["binary_classification_metrics"], report["champion_binary_classification_metrics"]
    block = {name: {"value": v, "standard_deviation": sd} for name, (v, sd) in metrics.items()}
    report[section] = block
    report[f"champion_{section}"] = copy.deepcopy(block)
    return report


@pytest.mark.parametrize("name", ["macro_f1", "weighted_f1", "weighted_recall"])
def test_multiclass_shares_and_f_scores_are_clipped_to_one_and_zero(name: str) -> None:
    high = metrics_of(typed(multiclass.SECTION, {name: (0.99, 0.02)}, 4562))
    assert high[f"challenger.{name}.ci95_high"] == 1.0  # not 1.0292
    assert high[f"challenger.{name}.ci95_low"] == pytest.approx(0.99 - Z * 0.02, abs=1e-4)
    low = metrics_of(typed(multiclass.SECTION, {name: (0.01, 0.02)}, 4562))
    assert low[f"challenger.{name}.ci95_low"] == 0.0  # not -0.0292
    assert low[f"champion.{name}.ci95_low"] == 0.0


@pytest.mark.parametrize("name", ["rmse", "mae", "mse"])
def test_regression_errors_are_clipped_at_zero_and_unbounded_above(name: str) -> None:
    metrics = metrics_of(typed(regression.SECTION, {name: (0.05, 0.1)}, 4562))
    assert metrics[f"challenger.{name}.ci95_low"] == 0.0  # not -0.146
    assert metrics[f"challenger.{name}.ci95_high"] == pytest.approx(0.05 + Z * 0.1, abs=1e-4)


def test_multiclass_log_loss_is_clipped_at_zero() -> None:
    metrics = metrics_of(typed(multiclass.SECTION, {"log_loss": (0.02, 0.05)}, 4562))
    assert metrics["challenger.log_loss.ci95_low"] == 0.0


def test_r2_is_clipped_at_one_and_unbounded_below() -> None:
    near_one = metrics_of(typed(regression.SECTION, {"r2": (0.98, 0.03)}, 4562))
    assert near_one["challenger.r2.ci95_high"] == 1.0  # not 1.0388
    below_zero = metrics_of(typed(regression.SECTION, {"r2": (-0.5, 0.3)}, 4562))
    assert below_zero["challenger.r2.ci95_low"] == pytest.approx(-0.5 - Z * 0.3, abs=1e-4)


def test_every_typed_scalar_the_evaluate_step_reports_has_a_range() -> None:
    """Each scalar multiclass and regression evaluations carry (the step's own SCALARS) is
    clipped; a new one without a range would log impossible bounds."""
    for name in (*multiclass.SCALARS, *regression.SCALARS):
        assert name in record_module.METRIC_RANGES, name


@pytest.mark.parametrize(
    ("section", "metric"),
    [(multiclass.SECTION, "macro_f1"), (regression.SECTION, "rmse")],
)
def test_a_typed_champion_on_fewer_rows_is_tagged_and_not_logged(section: str, metric: str) -> None:
    partial = content(typed(section, {metric: (0.5, 0.01)}, compared_rows=3000))
    assert partial.tags["mlops.champion_rows"].startswith(
        "the champion scored 3000 of 4562 test rows"
    )
    assert not [m for m in partial.metrics if m["key"].startswith("champion.")]
    full = content(typed(section, {metric: (0.5, 0.01)}, compared_rows=4562))
    assert "mlops.champion_rows" not in full.tags
    assert {m["key"] for m in full.metrics} >= {f"champion.{metric}", f"challenger.{metric}"}
