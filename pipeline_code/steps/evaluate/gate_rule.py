"""The registration gate: one rule, applied by Evaluate (its decision is what the pipeline's
ConditionStep tests) and re-applied by `pipeline_code.gate` to the numbers Evaluate recorded.

    register  <=>  enough data  and  challenger >= floor  and  (no comparison  or
                                                               L >= -tolerance  or  U >= 0)

    L = delta - z * SE,  U = delta + z * SE,  z = 1.95996 (the 97.5th normal percentile)

delta = challenger - champion on rows neither model trained on; SE is DeLong's for AUC and the
standard deviation of the paired-bootstrap deltas for threshold metrics (or AUC with method
`bootstrap`). L and U are the one-sided 97.5 % lower and upper confidence bounds of delta
(together the two-sided 95 % interval). The challenger fails only when the champion is better
with 97.5 % confidence (U < 0) and the data cannot show the shortfall is within the tolerance
(L < -tolerance); equivalently L >= -max(tolerance, 2 z SE). With a large evaluation set this is
the non-inferiority test at the tolerance; with a small one, a challenger as good as the
champion still passes 97.5 % of the time, and a clearly worse one fails.

For a lower-is-better metric (log_loss, rmse, mae, mse: `common.problem_types`) the floor is
a ceiling (challenger <= floor) and delta is the improvement champion - challenger, so the
rule above reads the same for every metric: a positive delta means the challenger is better.

Enough data: at least `min_positives` rows of each class among the test rows (for the floor)
and among the compared rows; for a regression model, at least `min_positives` rows. Too few
test rows fail the gate ("too little evaluation data");
too few compared rows (the champion trained on the others) skip the comparison, and only the
floor applies, with the reason stated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from common.problem_types import clears, floor_range, higher_is_better
from evaluation_contract import GATE_DO_NOT_REGISTER, GATE_REGISTER

#: The 97.5th percentile of the standard normal distribution: one-sided 97.5 % bounds.
Z_97_5 = 1.959963984540054
#: The 80th percentile: delta + (Z_97_5 + Z_80) SE is the drop found 80 % of the time.
Z_80 = 0.8416212335729143
REGISTER = GATE_REGISTER
DO_NOT_REGISTER = GATE_DO_NOT_REGISTER
METHODS = ("delong", "bootstrap")


@dataclass(frozen=True)
class GateRule:
    """The deployed configuration's thresholds (Evaluate's arguments)."""

    metric: str
    floor: float
    tolerance: float
    min_positives: int
    method: str = "delong"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"tolerance = {self.tolerance!r} is not allowed: at least 0")
        low, high = floor_range(self.metric)
        if not (math.isfinite(self.floor) and low <= self.floor <= high):
            allowed = (
                "from 0 to 1"
                if (low, high) == (0.0, 1.0)
                else (f"at most {high:g}" if low == -math.inf else f"at least {low:g}")
            )
            raise ValueError(f"floor = {self.floor!r} is not allowed: {allowed}")
        if self.min_positives < 1:
            raise ValueError(f"min_positives = {self.min_positives!r} is not allowed: at least 1")
        if self.method not in METHODS:
            raise ValueError(
                f"method = {self.method!r} is not allowed: one of {', '.join(METHODS)}"
            )


@dataclass(frozen=True)
class Counts:
    positives: int
    negatives: int

    @property
    def rows(self) -> int:
        return self.positives + self.negatives

    def enough(self, minimum: int) -> bool:
        return min(self.positives, self.negatives) >= minimum

    def text(self) -> str:
        return f"{self.positives:,} positive and {self.negatives:,} negative rows"

    def needed(self, minimum: int) -> str:
        return f"{minimum:,} of each"


@dataclass(frozen=True)
class TypedCounts:
    """The rows of a multi-class (`classes`: rows per class label) or regression (no classes)
    evaluation: enough when every class, or the rows, reach the minimum."""

    rows: int
    classes: tuple[tuple[str, int], ...] = ()

    def enough(self, minimum: int) -> bool:
        return (min(n for _, n in self.classes) if self.classes else self.rows) >= minimum

    def text(self) -> str:
        if not self.classes:
            return f"{self.rows:,} rows"
        label, fewest = min(self.classes, key=lambda item: item[1])
        return (
            f"{self.rows:,} rows of {len(self.classes)} classes (the rarest, {label!r}: {fewest:,})"
        )

    def needed(self, minimum: int) -> str:
        return f"{minimum:,} of each class" if self.classes else f"{minimum:,} rows"


@dataclass(frozen=True)
class Comparison:
    """Challenger vs champion on the compared rows (`challenger` is the challenger's metric on
    these rows, which may be fewer than its test split)."""

    challenger: float
    champion: float
    delta: float
    se: float
    method: str
    counts: Counts | TypedCounts


@dataclass(frozen=True)
class Evidence:
    """What the rule decides on. `skipped` says why a champion was not compared (None: there
    was no champion, or `comparison` holds the comparison)."""

    challenger: float
    test: Counts | TypedCounts
    comparison: Comparison | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    bounds: dict[str, float] = field(default_factory=dict)

    @property
    def decision(self) -> str:
        return REGISTER if self.passed else DO_NOT_REGISTER


def bounds(delta: float, se: float, tolerance: float) -> dict[str, float]:
    """The one-sided 97.5 % bounds, the margin the rule allows and the drop found 80 % of the
    time."""
    return {
        "lower_97_5": delta - Z_97_5 * se,
        "upper_97_5": delta + Z_97_5 * se,
        "margin": max(tolerance, 2 * Z_97_5 * se),
        "detectable_drop_80": (Z_97_5 + Z_80) * se,
    }


def _verdict(passed: bool, text: str, numbers: dict[str, float] | None = None) -> Verdict:
    return Verdict(passed, f"{REGISTER if passed else 'do not register'}: {text}", numbers or {})


def decide(rule: GateRule, evidence: Evidence) -> Verdict:
    """Apply the gate; the reason states the decision, the numbers and the rule that decided."""
    m = rule.metric
    if not evidence.test.enough(rule.min_positives):
        return _verdict(
            False,
            f"too little evaluation data to decide: the test split has {evidence.test.text()}, "
            f"the gate needs at least {evidence.test.needed(rule.min_positives)} "
            "(pipeline.min_positives); "
            "land more labelled rows or raise the test fraction",
        )
    if not math.isfinite(evidence.challenger):
        return _verdict(False, f"the challenger's {m} is not defined ({evidence.challenger})")
    above = clears(m, evidence.challenger, rule.floor)
    if higher_is_better(m):
        relation, bound = (">=" if above else "<"), "floor"
    else:
        relation, bound = ("<=" if above else ">"), "ceiling"
    floor_text = f"challenger {m} {evidence.challenger:.4f} {relation} {bound} {rule.floor:.4f}"
    comparison = evidence.comparison
    if comparison is None:
        why = (
            f"champion comparison skipped: {evidence.skipped}"
            if evidence.skipped
            else "no champion (first model)"
        )
        return _verdict(above, f"{floor_text}; {why}: only the floor applies")
    if not comparison.counts.enough(rule.min_positives):
        return _verdict(
            above,
            f"{floor_text}; champion comparison skipped: the rows the champion never trained on "
            f"hold {comparison.counts.text()}, fewer than "
            f"{comparison.counts.needed(rule.min_positives)} (pipeline.min_positives): only the "
            "floor applies",
        )
    if not (math.isfinite(comparison.delta) and math.isfinite(comparison.se)):
        return _verdict(
            False,
            f"{floor_text}; the delta to the champion ({comparison.delta}) or its standard error "
            f"({comparison.se}) is not defined: the comparison cannot decide",
        )
    numbers = bounds(comparison.delta, comparison.se, rule.tolerance)
    lower, upper = numbers["lower_97_5"], numbers["upper_97_5"]
    within, not_worse = lower >= -rule.tolerance, upper >= 0
    if within:
        verdict = f"within tolerance: lower bound {lower:+.4f} >= -tolerance {-rule.tolerance:+.4f}"
    elif not_worse:
        verdict = f"not shown worse: upper bound {upper:+.4f} >= 0"
    else:
        verdict = (
            f"worse: upper bound {upper:+.4f} < 0 and lower bound {lower:+.4f} < -tolerance "
            f"{-rule.tolerance:+.4f}"
        )
    return _verdict(
        above and (within or not_worse),
        f"{floor_text}; on {comparison.counts.text()} neither model trained on, challenger "
        f"{comparison.challenger:.4f} vs champion {comparison.champion:.4f}: delta "
        f"{comparison.delta:+.4f}, standard error {comparison.se:.4f} ({comparison.method}), "
        f"one-sided 97.5 % bounds {lower:+.4f} and {upper:+.4f}; {verdict}",
        numbers,
    )


def _number(section: dict[str, Any], key: str, where: str = "gate") -> float:
    value = section.get(key)
    if value is None:
        return math.nan  # strict JSON has no NaN: an undefined number is written as null
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"evaluation {where}.{key} = {value!r} is not a number")
    return float(value)


def _count(section: dict[str, Any], key: str, where: str = "gate") -> int:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"evaluation {where}.{key} = {value!r} is not a count")
    return value


def from_section(section: dict[str, Any]) -> tuple[GateRule, Evidence]:
    """The rule and evidence recorded in evaluation.json's gate section (see `comparison`)."""
    rule = GateRule(
        metric=str(section.get("metric")),
        floor=_number(section, "floor"),
        tolerance=_number(section, "tolerance"),
        min_positives=_count(section, "min_positives"),
        method=str(section.get("method")),
    )
    compared = section.get("comparison") or {}
    typed = section.get("problem_type", "binary") != "binary"
    comparison = None
    if compared.get("compared"):
        comparison = Comparison(
            challenger=_number(compared, "challenger", "gate.comparison"),
            champion=_number(section, "champion"),
            delta=_number(section, "delta"),
            se=_number(section, "standard_error"),
            method=str(compared.get("method")),
            counts=(
                _typed_counts(compared, "rows", "class_counts", "gate.comparison")
                if typed
                else Counts(
                    _count(compared, "positives", "gate.comparison"),
                    _count(compared, "negatives", "gate.comparison"),
                )
            ),
        )
    evidence = Evidence(
        challenger=_number(section, "challenger"),
        test=(
            _typed_counts(section, "test_rows", "test_class_counts")
            if typed
            else Counts(_count(section, "test_positives"), _count(section, "test_negatives"))
        ),
        comparison=comparison,
        skipped=compared.get("skipped"),
    )
    return rule, evidence


def _typed_counts(
    section: dict[str, Any], rows_key: str, classes_key: str, where: str = "gate"
) -> TypedCounts:
    classes = section.get(classes_key) or {}
    if not isinstance(classes, dict):
        raise ValueError(f"evaluation {where}.{classes_key} = {classes!r} is not an object")
    return TypedCounts(
        _count(section, rows_key, where),
        tuple((str(label), _count(classes, label, f"{where}.{classes_key}")) for label in classes),
    )
