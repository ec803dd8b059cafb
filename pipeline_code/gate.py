"""The registration gate for the local run: Evaluate's decision, checked against its numbers.

Evaluate decides the gate (`pipeline_code/steps/evaluate/gate_rule.py`) and records the
decision, its reason and every input in evaluation.json's gate section; the pipeline's
ConditionStep registers iff that decision is `register`. This module re-applies the very same
rule (imported from the step's code, as the container imports it) to the recorded inputs, so
the local run and the pipeline decide identically and a decision that does not follow from its
numbers is an error, never silently trusted:

    register  <=>  at least `min_positives` rows of each class  and  challenger >= floor  and
                   (no champion compared  or  L >= -tolerance  or  U >= 0)

with L and U the one-sided 97.5 % lower and upper confidence bounds of the delta
(challenger - champion) on the rows neither model trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline_code.steps import load

_CONTRACT = load("evaluate", "evaluation_contract")
_RULE = load("evaluate", "gate_rule")
GATE_KEY = _CONTRACT.GATE_KEY
GATE_DECISION = _CONTRACT.GATE_DECISION
GATE_REASON = _CONTRACT.GATE_REASON
GATE_REGISTER = _CONTRACT.GATE_REGISTER

# The rule itself, for callers that decide on numbers (the benchmark, the tests).
GateRule = _RULE.GateRule
Evidence = _RULE.Evidence
Comparison = _RULE.Comparison
Counts = _RULE.Counts
decide = _RULE.decide
Z_97_5 = _RULE.Z_97_5


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger would be registered, and why (with the numbers)."""

    passed: bool
    reason: str


def gate_decision(evaluation: dict[str, Any]) -> GateDecision:
    """The decision in evaluate.py's evaluation.json, re-derived from its recorded inputs.

    Raises:
        ValueError: no gate section, a missing or malformed number, or a recorded decision
            the rule does not give for the recorded numbers.
    """
    section = evaluation.get(GATE_KEY)
    if not isinstance(section, dict):
        raise ValueError(f"evaluation has no {GATE_KEY!r} section")
    rule, evidence = _RULE.from_section(section)
    verdict = decide(rule, evidence)
    recorded = (section.get(GATE_DECISION), section.get(GATE_REASON))
    if recorded != (verdict.decision, verdict.reason):
        raise ValueError(
            f"evaluation gate.{GATE_DECISION} = {recorded[0]!r} does not follow from its "
            f"numbers: the gate gives {verdict.decision!r} ({verdict.reason})"
        )
    return GateDecision(passed=verdict.decision == GATE_REGISTER, reason=verdict.reason)
