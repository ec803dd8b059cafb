"""Condition and Fail steps: evaluate the conditions (all must hold) with their operands
resolved, and render a Fail step's ErrorMessage, which SageMaker shows as the step's failure
reason."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline_code.local_pipeline.errors import StepError
from pipeline_code.local_pipeline.expressions import Scope, as_text, resolve

_COMPARISONS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "Equals": ("==", operator.eq),
    "GreaterThan": (">", operator.gt),
    "GreaterThanOrEqualTo": (">=", operator.ge),
    "LessThan": ("<", operator.lt),
    "LessThanOrEqualTo": ("<=", operator.le),
}


@dataclass(frozen=True)
class Decision:
    """A Condition step's outcome and one line per condition, e.g.
    `EvaluationReport gate.challenger (0.91) >= Parameters.MetricFloor (0.8): true`."""

    outcome: bool
    lines: list[str]


def describe(expression: Any) -> str:
    """A short name for an operand: the parameter, property or property-file path it reads."""
    if isinstance(expression, dict) and len(expression) == 1:
        (function, argument), *_ = expression.items()
        if function == "Get":
            return str(argument)
        if function == "Std:JsonGet":
            reference = argument["PropertyFile"]["Get"].rsplit(".", 1)[-1]
            return f"{reference} {argument['Path']}"
        if function == "Std:Join":
            return "Std:Join(" + ", ".join(describe(v) for v in argument["Values"]) + ")"
    return as_text(expression)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(kind: str, left: Any, right: Any, step: str) -> bool:
    symbol, compare = _COMPARISONS[kind]
    if _number(left) and _number(right):
        return bool(compare(left, right))
    if type(left) is not type(right):
        raise StepError(
            step,
            f"condition {kind}: cannot compare {left!r} ({type(left).__name__}) "
            f"with {right!r} ({type(right).__name__})",
        )
    if kind != "Equals" and not isinstance(left, str):
        raise StepError(step, f"condition {kind}: {type(left).__name__} values have no order")
    return bool(compare(left, right))


def evaluate(condition: dict[str, Any], scope: Scope, step: str) -> Decision:
    kind = condition["Type"]
    if kind in _COMPARISONS:
        left = resolve(condition["LeftValue"], scope, step)
        right = resolve(condition["RightValue"], scope, step)
        outcome = _compare(kind, left, right, step)
        symbol = _COMPARISONS[kind][0]
        line = (
            f"{describe(condition['LeftValue'])} ({as_text(left)}) {symbol} "
            f"{describe(condition['RightValue'])} ({as_text(right)}): {as_text(outcome)}"
        )
        return Decision(outcome, [line])
    if kind == "In":
        value = resolve(condition["QueryValue"], scope, step)
        options = [resolve(v, scope, step) for v in condition["Values"]]
        outcome = value in options
        line = (
            f"{describe(condition['QueryValue'])} ({as_text(value)}) in "
            f"[{', '.join(as_text(o) for o in options)}]: {as_text(outcome)}"
        )
        return Decision(outcome, [line])
    if kind == "Not":
        inner = evaluate(condition["Expression"], scope, step)
        return Decision(not inner.outcome, [f"not ({'; '.join(inner.lines)})"])
    if kind == "Or":
        parts = [evaluate(c, scope, step) for c in condition["Conditions"]]
        return Decision(
            any(p.outcome for p in parts),
            ["any of: " + "; ".join(line for p in parts for line in p.lines)],
        )
    raise StepError(step, f"condition type {kind} is not supported by the local run")


def run_condition(arguments: dict[str, Any], scope: Scope, step: str) -> Decision:
    """All conditions must hold (every one is evaluated, as the report shows each)."""
    decisions = [evaluate(c, scope, step) for c in arguments["Conditions"]]
    return Decision(
        all(d.outcome for d in decisions), [line for d in decisions for line in d.lines]
    )


def fail_message(arguments: dict[str, Any], scope: Scope, step: str) -> str:
    """The Fail step's ErrorMessage with its expressions resolved ('' without one)."""
    if "ErrorMessage" not in arguments:
        return ""
    return as_text(resolve(arguments["ErrorMessage"], scope, step))
