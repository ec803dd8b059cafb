"""The gate: one rule (evaluate's gate_rule), decided in Evaluate and re-derived by gate.py.

Expected values are computed here independently: AUCs and DeLong's variance by brute force over
every (positive, negative) pair, the normal quantile by the standard library, the decision by
the rule's closed form L >= -max(tolerance, 2 z SE).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any

import numpy as np
import pytest

from pipeline_code.gate import (
    Z_97_5,
    Comparison,
    Counts,
    Evidence,
    GateDecision,
    GateRule,
    decide,
    gate_decision,
)
from pipeline_code.steps import load

gate_evidence = load("evaluate", "gate_evidence")
gate_rule = load("evaluate", "gate_rule")
quality_metrics = load("evaluate", "quality_metrics")
paired_bootstrap = load("evaluate", "paired_bootstrap")

RULE = GateRule(metric="auc", floor=0.8, tolerance=0.01, min_positives=100)


def brute_force_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(AUC(a) - AUC(b), SE) from every pair: psi = 1, 1/2 on ties, 0; DeLong's V10/V01."""
    components = []
    for scores in (a, b):
        positive, negative = scores[y == 1], scores[y == 0]
        psi = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative)
        components.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (auc_a, v10_a, v01_a), (auc_b, v10_b, v01_b) = components
    m, n = len(v10_a), len(v01_a)
    variance = np.var(v10_a - v10_b, ddof=1) / m + np.var(v01_a - v01_b, ddof=1) / n
    return float(auc_a - auc_b), math.sqrt(variance)


def scored_rows(
    positives: int, negatives: int, challenger_shift: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models' scores sharing a latent signal; the challenger's separation is
    lowered by `challenger_shift` (0: equally good)."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(positives, dtype=np.int8), np.zeros(negatives, dtype=np.int8)]
    signal = rng.normal(0, 1, y.size) + 1.6 * y
    champion = signal + rng.normal(0, 0.5, y.size)
    challenger = signal - challenger_shift * y + rng.normal(0, 0.5, y.size)
    to_p = lambda z: 1 / (1 + np.exp(-(z - 3)))  # noqa: E731 - a probability scale
    return y, to_p(challenger), to_p(champion)


def verdict_on_scores(
    y: np.ndarray, challenger: np.ndarray, champion: np.ndarray, rule: GateRule = RULE
) -> Any:
    """Evaluate's path: point metrics, paired bootstrap, comparison, decision."""
    points = (
        quality_metrics.point_metrics(y, challenger),
        quality_metrics.point_metrics(y, champion),
    )
    samples = paired_bootstrap.bootstrap(y, [challenger, champion], 200, 1)
    comparison, _ = gate_evidence.compare_models(
        y, points, (challenger, champion), tuple(samples), rule.metric, rule.method
    )
    evidence = Evidence(
        challenger=points[0]["auc"],
        test=Counts(int(y.sum()), int(y.size - y.sum())),
        comparison=comparison,
    )
    return decide(rule, evidence), comparison


def test_the_bounds_are_one_sided_97_5_percent() -> None:
    assert statistics.NormalDist().inv_cdf(0.975) == pytest.approx(Z_97_5, abs=1e-15)
    assert statistics.NormalDist().inv_cdf(0.80) == pytest.approx(gate_rule.Z_80, abs=1e-15)
    numbers = gate_rule.bounds(delta=0.01, se=0.02, tolerance=0.01)
    assert numbers["lower_97_5"] == pytest.approx(
        0.01 - 0.02 * statistics.NormalDist().inv_cdf(0.975)
    )
    assert numbers["upper_97_5"] == pytest.approx(
        0.01 + 0.02 * statistics.NormalDist().inv_cdf(0.975)
    )
    assert numbers["margin"] == pytest.approx(2 * 1.959963984540054 * 0.02)
    normal = statistics.NormalDist()
    assert numbers["detectable_drop_80"] == pytest.approx(
        (normal.inv_cdf(0.975) + normal.inv_cdf(0.80)) * 0.02
    )


@pytest.mark.parametrize(
    ("case", "shift", "positives", "passes", "verdict"),
    [
        ("equal", 0.0, 300, True, "within tolerance"),
        ("slightly worse", 0.06, 300, True, "not shown worse"),
        ("much worse", 0.6, 300, False, "worse: upper bound"),
    ],
)
def test_equal_and_slightly_worse_pass_much_worse_fails(
    case: str, shift: float, positives: int, passes: bool, verdict: str
) -> None:
    y, challenger, champion = scored_rows(positives, 2000, shift)
    delta, se = brute_force_delong(y, challenger, champion)
    z = statistics.NormalDist().inv_cdf(0.975)
    expected = delta - z * se >= -max(RULE.tolerance, 2 * z * se)

    result, comparison = verdict_on_scores(y, challenger, champion)

    assert comparison.delta == pytest.approx(delta, abs=1e-12)
    assert comparison.se == pytest.approx(se, rel=1e-9)
    assert result.bounds["lower_97_5"] == pytest.approx(delta - z * se, abs=1e-12)
    assert result.bounds["upper_97_5"] == pytest.approx(delta + z * se, abs=1e-12)
    assert result.passed is expected is passes, case
    assert verdict in result.reason
    if not passes:
        assert result.reason.endswith(f"< -tolerance {-RULE.tolerance:+.4f}")
        assert result.reason.endswith("< -tolerance -0.0100")
    assert f"delta {delta:+.4f}, standard error {se:.4f} (DeLong)" in result.reason


def test_too_few_positives_fail_with_the_counts_with_or_without_a_champion() -> None:
    y, challenger, champion = scored_rows(60, 2000, 0.0)
    with_champion, _ = verdict_on_scores(y, challenger, champion)
    alone = decide(RULE, Evidence(challenger=0.95, test=Counts(60, 2000)))
    for result in (with_champion, alone):
        assert not result.passed
        assert result.reason == (
            "do not register: too little evaluation data to decide: the test split has 60 "
            "positive and 2,000 negative rows, the gate needs at least 100 of each "
            "(pipeline.min_positives); land more labelled rows or raise the test fraction"
        )


def test_too_few_negatives_count_as_too_little_data() -> None:
    result = decide(RULE, Evidence(challenger=0.95, test=Counts(5000, 99)))
    assert not result.passed and "5,000 positive and 99 negative rows" in result.reason


def test_a_comparison_on_too_few_unseen_rows_falls_back_to_the_floor_with_the_reason() -> None:
    comparison = Comparison(
        challenger=0.79,
        champion=0.99,
        delta=-0.2,
        se=0.01,
        method="DeLong",
        counts=Counts(41, 5212),
    )
    result = decide(RULE, Evidence(challenger=0.85, test=Counts(300, 9000), comparison=comparison))
    assert result.passed
    assert (
        "champion comparison skipped: the rows the champion never trained on hold 41 positive"
        in (result.reason)
    )
    assert result.reason.endswith("only the floor applies")


def test_the_first_model_is_judged_by_the_floor_alone() -> None:
    assert decide(RULE, Evidence(0.91, Counts(100, 100))) == gate_rule.Verdict(
        True,
        "register: challenger auc 0.9100 >= floor 0.8000; no champion (first model): only the "
        "floor applies",
    )
    assert not decide(RULE, Evidence(0.7999, Counts(100, 100))).passed


def test_the_boundaries_are_inclusive() -> None:
    at_floor = decide(RULE, Evidence(0.8, Counts(100, 100)))
    assert at_floor.passed
    exact = Comparison(0.8, 0.81, -0.01, 0.0, "DeLong", Counts(100, 100))
    assert decide(RULE, Evidence(0.8, Counts(100, 100), exact)).passed
    beyond = Comparison(0.8, 0.81, -0.0100001, 0.0, "DeLong", Counts(100, 100))
    assert not decide(RULE, Evidence(0.8, Counts(100, 100), beyond)).passed


def test_an_upper_bound_of_exactly_zero_is_not_shown_worse() -> None:
    """U >= 0 is inclusive: with no tolerance, L = -2 z SE < 0 and U = 0 exactly still pass."""
    strict = GateRule(metric="auc", floor=0.8, tolerance=0.0, min_positives=100)
    se = 0.01
    delta = -(Z_97_5 * se)  # the same product, so U is 0.0 exactly (Z_97_5 is pinned above)
    on_the_bound = Comparison(0.85, 0.85 - delta, delta, se, "DeLong", Counts(100, 100))
    result = decide(strict, Evidence(0.85, Counts(100, 100), on_the_bound))
    assert result.bounds["upper_97_5"] == 0.0 and result.bounds["lower_97_5"] < 0
    assert result.passed and "not shown worse: upper bound +0.0000 >= 0" in result.reason
    shifted = Comparison(0.85, 0.85 - delta, delta - 1e-9, se, "DeLong", Counts(100, 100))
    assert not decide(strict, Evidence(0.85, Counts(100, 100), shifted)).passed


def test_the_row_count_is_both_classes() -> None:
    assert Counts(positives=300, negatives=9000).rows == 9300


def test_undefined_numbers_never_register() -> None:
    assert not decide(RULE, Evidence(math.nan, Counts(500, 500))).passed
    undefined = Comparison(0.9, 0.9, 0.0, math.nan, "paired bootstrap", Counts(500, 500))
    result = decide(RULE, Evidence(0.9, Counts(500, 500), undefined))
    assert not result.passed and "cannot decide" in result.reason


def test_non_finite_bootstrap_deltas_are_left_out_of_the_standard_error() -> None:
    deltas = np.array([0.01, np.nan, -0.02, 0.03, np.inf, 0.0, -np.inf, 0.015])
    finite = [0.01, -0.02, 0.03, 0.0, 0.015]
    assert gate_evidence.bootstrap_standard_error(deltas) == pytest.approx(statistics.stdev(finite))
    assert math.isnan(gate_evidence.bootstrap_standard_error(np.array([np.nan, 0.1])))
    low, high = gate_evidence.bootstrap_interval(deltas)
    assert (low, high) == pytest.approx(tuple(np.percentile(finite, [2.5, 97.5])))


def test_threshold_metrics_use_the_bootstrap_standard_error() -> None:
    y, challenger, champion = scored_rows(300, 2000, 0.0)
    rule = GateRule(metric="f1", floor=0.1, tolerance=0.02, min_positives=100)
    result, comparison = verdict_on_scores(y, challenger, champion, rule)
    samples = paired_bootstrap.bootstrap(y, [challenger, champion], 200, 1)
    deltas = samples[0]["f1"] - samples[1]["f1"]
    assert comparison.method == "paired bootstrap"
    assert comparison.se == pytest.approx(statistics.stdev(deltas.tolist()))
    assert "(paired bootstrap)" in result.reason


def test_bad_rule_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="tolerance = -0.01 is not allowed"):
        GateRule(metric="auc", floor=0.8, tolerance=-0.01, min_positives=100)
    with pytest.raises(ValueError, match="min_positives = 0 is not allowed"):
        GateRule(metric="auc", floor=0.8, tolerance=0.01, min_positives=0)
    with pytest.raises(ValueError, match="method = 'exact' is not allowed"):
        GateRule(metric="auc", floor=0.8, tolerance=0.01, min_positives=1, method="exact")
    for floor in (-0.01, 1.01, 1.5, math.nan, math.inf):
        with pytest.raises(ValueError, match=f"floor = {floor!r} is not allowed: from 0 to 1"):
            GateRule(metric="auc", floor=floor, tolerance=0.01, min_positives=100)
    with pytest.raises(ValueError, match="tolerance = inf is not allowed"):
        GateRule(metric="auc", floor=0.8, tolerance=math.inf, min_positives=100)


@pytest.mark.parametrize(("floor", "tolerance"), [(0.0, 0.0), (1.0, 0.0), (1.0, 1.5)])
def test_the_rule_arguments_boundaries_are_allowed(floor: float, tolerance: float) -> None:
    rule = GateRule(metric="auc", floor=floor, tolerance=tolerance, min_positives=1)
    assert (rule.floor, rule.tolerance, rule.min_positives) == (floor, tolerance, 1)


def test_a_validated_rule_cannot_be_changed_afterwards() -> None:
    """The checks run once, when the rule is made: a rule that could be changed later could
    hold a floor of 5 or a negative tolerance."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        RULE.floor = 5.0  # type: ignore[misc]


# ---- gate.py: the recorded decision, re-derived ---------------------------------------------


def section(**overrides: Any) -> dict[str, Any]:
    """An evaluation.json gate section as Evaluate writes it (see comparison._gate_section)."""
    base: dict[str, Any] = {
        "metric": "auc",
        "method": "delong",
        "floor": 0.8,
        "tolerance": 0.01,
        "min_positives": 100,
        "challenger": 0.905,
        "champion": 0.91,
        "test_positives": 300,
        "test_negatives": 9000,
        "test_rows": 9300,
        "comparison": {
            "compared": True,
            "challenger": 0.905,
            "positives": 300,
            "negatives": 9000,
            "method": "DeLong",
        },
        "delta": -0.005,
        "standard_error": 0.002,
    }
    base.update(overrides)
    rule, evidence = gate_rule.from_section(base)
    verdict = decide(rule, evidence)
    return {"decision": verdict.decision, "reason": verdict.reason, **base}


def test_gate_py_returns_evaluates_decision() -> None:
    decision = gate_decision({"gate": section()})
    assert decision == GateDecision(
        passed=True,
        reason="register: challenger auc 0.9050 >= floor 0.8000; on 300 positive and 9,000 "
        "negative rows neither model trained on, challenger 0.9050 vs champion 0.9100: delta "
        "-0.0050, standard error 0.0020 (DeLong), one-sided 97.5 % bounds -0.0089 and -0.0011; "
        "within tolerance: lower bound -0.0089 >= -tolerance -0.0100",
    )


def test_gate_py_refuses_a_decision_its_numbers_do_not_give() -> None:
    tampered = {**section(delta=-0.05), "decision": "register"}
    with pytest.raises(ValueError, match="does not follow from its numbers"):
        gate_decision({"gate": tampered})


def test_a_null_number_in_strict_json_reads_as_undefined_and_fails() -> None:
    decision = gate_decision({"gate": section(standard_error=None)})
    assert not decision.passed and "is not defined" in decision.reason


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({}, "no 'gate' section"),
        ({"gate": {**section(), "challenger": "0.9"}}, "gate.challenger = '0.9' is not a number"),
        ({"gate": {**section(), "min_positives": 1.5}}, "gate.min_positives = 1.5 is not a count"),
        ({"gate": {**section(), "tolerance": -1}}, "tolerance = -1.0 is not allowed"),
    ],
)
def test_a_malformed_evaluation_is_an_error(content: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError) as error:
        gate_decision(content)
    assert fragment in str(error.value)
