"""gate.py: register iff challenger >= floor and delta_ci_low >= -tolerance."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_code.gate import GateDecision, gate_decision


def evaluation(
    challenger: float = 0.91,
    champion: float | None = None,
    delta: float = 0.0,
    ci_low: float = 0.0,
    ci_high: float = 0.0,
) -> dict[str, Any]:
    return {
        "gate": {
            "metric": "auc",
            "challenger": challenger,
            "champion": champion,
            "has_champion": champion is not None,
            "delta": delta,
            "delta_ci_low": ci_low,
            "delta_ci_high": ci_high,
            "champion_model_package_arn": None,
            "test_rows": 3000,
        }
    }


def test_first_model_above_the_floor_registers() -> None:
    decision = gate_decision(evaluation(0.91), floor=0.8, tolerance=0.01)
    assert decision == GateDecision(
        passed=True,
        reason="register: challenger auc 0.9100 >= floor 0.8000; "
        "no champion (first model): only the floor applies",
    )


def test_first_model_below_the_floor_does_not_register() -> None:
    decision = gate_decision(evaluation(0.79), floor=0.8, tolerance=0.01)
    assert not decision.passed
    assert "do not register: challenger auc 0.7900 < floor 0.8000" in decision.reason


def test_a_challenger_within_the_tolerance_of_the_champion_registers() -> None:
    decision = gate_decision(
        evaluation(0.905, champion=0.91, delta=-0.005, ci_low=-0.009, ci_high=0.001),
        floor=0.8,
        tolerance=0.01,
    )
    assert decision.passed
    assert "champion auc 0.9100, delta -0.0050 (95% CI -0.0090 to +0.0010)" in decision.reason


def test_a_challenger_possibly_worse_beyond_the_tolerance_does_not_register() -> None:
    decision = gate_decision(
        evaluation(0.90, champion=0.91, delta=-0.01, ci_low=-0.02, ci_high=0.0),
        floor=0.8,
        tolerance=0.01,
    )
    assert not decision.passed
    assert "CI low < -tolerance -0.0100" in decision.reason
    assert decision.reason.startswith("do not register: challenger auc 0.9000 >= floor")


def test_a_better_challenger_below_the_floor_does_not_register() -> None:
    decision = gate_decision(
        evaluation(0.75, champion=0.70, delta=0.05, ci_low=0.03, ci_high=0.07),
        floor=0.8,
        tolerance=0.01,
    )
    assert not decision.passed


def test_the_boundaries_are_inclusive() -> None:
    decision = gate_decision(
        evaluation(0.8, champion=0.81, delta=-0.01, ci_low=-0.01, ci_high=0.0),
        floor=0.8,
        tolerance=0.01,
    )
    assert decision.passed


def test_an_undefined_metric_never_registers() -> None:
    assert not gate_decision(evaluation(float("nan")), floor=0.0, tolerance=0.01).passed
    undefined_ci = evaluation(0.9, champion=0.9, ci_low=float("nan"), ci_high=float("nan"))
    assert not gate_decision(undefined_ci, floor=0.0, tolerance=0.01).passed


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({}, "no 'gate' section"),
        ({"gate": {"challenger": "0.9", "delta_ci_low": 0.0}}, "gate.challenger = '0.9'"),
        ({"gate": {"challenger": 0.9}}, "gate.delta_ci_low = None"),
        ({"gate": {"challenger": 0.9, "delta_ci_low": 0.0, "has_champion": True}}, "champion"),
    ],
)
def test_a_malformed_evaluation_is_an_error(content: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match="is not a number|no 'gate'") as error:
        gate_decision(content, floor=0.8, tolerance=0.01)
    assert fragment in str(error.value)


def test_a_negative_tolerance_is_an_error() -> None:
    with pytest.raises(ValueError, match="tolerance = -0.01 is not allowed"):
        gate_decision(evaluation(), floor=0.8, tolerance=-0.01)
