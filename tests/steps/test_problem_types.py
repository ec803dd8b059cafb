"""The problem types' table of gate metrics: one table for the config, the generator and the
step code, each metric with its direction."""

from __future__ import annotations

import pytest

from mlops_config.pipeline import LOWER_IS_BETTER, METRICS, PROBLEM_METRICS, UNIT_INTERVAL
from mlops_config.schema import PROBLEM_TYPES
from pipeline_code.steps import load

STEP_TYPES = load("common", "problem_types")


def test_the_step_code_and_the_config_share_one_table_of_metrics() -> None:
    assert STEP_TYPES.PROBLEM_TYPES == PROBLEM_TYPES
    assert STEP_TYPES.METRICS == PROBLEM_METRICS
    assert set(STEP_TYPES.ALL_METRICS) == set(METRICS)
    assert STEP_TYPES.LOWER_IS_BETTER == LOWER_IS_BETTER
    assert STEP_TYPES.UNIT_INTERVAL == UNIT_INTERVAL


def test_the_generators_table_of_metrics_is_the_step_codes() -> None:
    from pipeline_code.definition import contract

    assert contract.PROBLEM_TYPES == STEP_TYPES.PROBLEM_TYPES
    assert contract.PROBLEM_METRICS == STEP_TYPES.METRICS
    assert contract.UNIT_INTERVAL == STEP_TYPES.UNIT_INTERVAL


@pytest.mark.parametrize(
    ("metric", "challenger", "champion", "better"),
    [("auc", 0.9, 0.8, True), ("rmse", 3.0, 4.0, True), ("rmse", 4.0, 3.0, False),
     ("log_loss", 0.2, 0.3, True), ("r2", 0.5, 0.6, False)],
)  # fmt: skip
def test_each_metric_knows_its_direction(
    metric: str, challenger: float, champion: float, better: bool
) -> None:
    assert (STEP_TYPES.improvement(metric, challenger, champion) > 0) is better
    assert STEP_TYPES.clears(metric, challenger, champion) is better
