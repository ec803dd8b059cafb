"""The registration gate, as the pipeline's ConditionStep applies it, for the local run.

register iff  challenger >= floor  AND  delta_ci_low >= -tolerance

The second condition is non-inferiority: with 95 % confidence the challenger is not worse than
the champion by more than `tolerance`. Without a champion, evaluate.py reports
delta_ci_low = 0.0, so only the floor applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pipeline_code.steps import load

# evaluate's evaluation.json names, imported as the container imports them.
_CONTRACT = load("evaluate", "evaluation_contract")
GATE_CHALLENGER = _CONTRACT.GATE_CHALLENGER
GATE_CHAMPION = _CONTRACT.GATE_CHAMPION
GATE_DELTA = _CONTRACT.GATE_DELTA
GATE_DELTA_CI_HIGH = _CONTRACT.GATE_DELTA_CI_HIGH
GATE_DELTA_CI_LOW = _CONTRACT.GATE_DELTA_CI_LOW
GATE_HAS_CHAMPION = _CONTRACT.GATE_HAS_CHAMPION
GATE_KEY = _CONTRACT.GATE_KEY
GATE_METRIC = _CONTRACT.GATE_METRIC


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger would be registered, and why (with the numbers)."""

    passed: bool
    reason: str


def _number(gate: dict[str, Any], key: str) -> float:
    value = gate.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"evaluation {GATE_KEY}.{key} = {value!r} is not a number")
    return float(value)


def gate_decision(evaluation: dict[str, Any], floor: float, tolerance: float) -> GateDecision:
    """Apply the gate to evaluate.py's evaluation.json content.

    Args:
        evaluation: the parsed evaluation.json (needs its `gate` section).
        floor: minimum value of the gate metric, e.g. 0.75 for AUC (same unit as the metric).
        tolerance: how much worse than the champion the challenger may be, in metric units,
            at the lower end of the 95 % confidence interval of the difference (>= 0).

    Raises:
        ValueError: the evaluation lacks the gate section or a number in it, or the
            arguments are out of range.
    """
    if math.isnan(tolerance) or tolerance < 0.0:
        raise ValueError(f"tolerance = {tolerance!r} is not allowed: at least 0")
    gate = evaluation.get(GATE_KEY)
    if not isinstance(gate, dict):
        raise ValueError(f"evaluation has no {GATE_KEY!r} section")
    metric = gate.get(GATE_METRIC, "metric")
    challenger = _number(gate, GATE_CHALLENGER)
    ci_low = _number(gate, GATE_DELTA_CI_LOW)
    above_floor = challenger >= floor  # False for NaN
    not_worse = ci_low >= -tolerance
    floor_text = (
        f"challenger {metric} {challenger:.4f} {'>=' if above_floor else '<'} floor {floor:.4f}"
    )
    if gate.get(GATE_HAS_CHAMPION):
        champion = _number(gate, GATE_CHAMPION)
        delta = _number(gate, GATE_DELTA)
        ci_high = _number(gate, GATE_DELTA_CI_HIGH)
        champion_text = (
            f"champion {metric} {champion:.4f}, delta {delta:+.4f} "
            f"(95% CI {ci_low:+.4f} to {ci_high:+.4f}), CI low "
            f"{'>=' if not_worse else '<'} -tolerance {-tolerance:+.4f}"
        )
    else:
        champion_text = "no champion (first model): only the floor applies"
    passed = above_floor and not_worse and not math.isnan(ci_low)
    verdict = "register" if passed else "do not register"
    return GateDecision(passed=passed, reason=f"{verdict}: {floor_text}; {champion_text}")
