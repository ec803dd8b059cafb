"""The statistics Evaluate reports, against independent computations: DeLong's AUC covariance
(scikit-learn, brute force over every pair, a hand-computed case), the Brier score and the
calibration error (scikit-learn, hand-computed bins), and the shift statistics (scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import brier_score_loss, roc_auc_score

from pipeline_code import sample_data
from pipeline_code.steps import load

delong = load("evaluate", "delong")
calibration_metrics = load("evaluate", "calibration_metrics")
feature_profile = load("common", "feature_profile")
feature_shift = load("common", "feature_shift")


def brute_force_covariance(y: np.ndarray, scores: list[np.ndarray]) -> np.ndarray:
    """DeLong (1988) from its definition: psi over every (positive, negative) pair."""
    v10, v01 = [], []
    for s in scores:
        positive, negative = s[y == 1], s[y == 0]
        psi = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative)
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    m, n = len(v10[0]), len(v01[0])
    return np.cov(np.array(v10)) / m + np.cov(np.array(v01)) / n


@pytest.mark.parametrize("decimals", [None, 2, 1])
def test_delong_matches_scikit_learn_and_the_pairwise_definition(decimals: int | None) -> None:
    rng = np.random.default_rng(decimals or 0)
    y = (rng.random(700) < 0.2).astype(int)
    scores = [rng.normal(size=700) + y * shift for shift in (1.0, 0.6, 1.4)]
    if decimals is not None:
        scores = [np.round(s, decimals) for s in scores]  # many ties
    aucs, covariance = delong.delong(y, scores)
    assert aucs == pytest.approx([roc_auc_score(y, s) for s in scores], abs=1e-12)
    assert covariance == pytest.approx(brute_force_covariance(y, scores), abs=1e-15)


def test_delong_on_a_hand_computed_case() -> None:
    # Positives score 0.9 and 0.4, negatives 0.5, 0.4 and 0.1.
    # V10 (positive's share of negatives below, ties half): 1 and (1 + 0.5) / 3 = 0.5.
    # V01 (negative's share of positives above): 0.5, (1 + 0.5) / 2 = 0.75, 1.
    # AUC = mean(V10) = 0.75; var = var(V10) / 2 + var(V01) / 3 = 0.125 / 2 + 0.0625 / 3.
    y = np.array([1, 1, 0, 0, 0])
    scores = np.array([0.9, 0.4, 0.5, 0.4, 0.1])
    aucs, covariance = delong.delong(y, [scores])
    assert aucs[0] == pytest.approx(0.75)
    assert covariance[0, 0] == pytest.approx(0.125 / 2 + 0.0625 / 3)


def test_the_paired_difference_uses_the_covariance() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.3).astype(int)
    a = rng.normal(size=500) + y
    b = a + rng.normal(0, 0.3, 500)  # strongly correlated with a
    delta, se, auc_a, auc_b = delong.auc_difference(y, a, b)
    full = brute_force_covariance(y, [a, b])
    assert delta == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert se == pytest.approx(math.sqrt(full[0, 0] + full[1, 1] - 2 * full[0, 1]))
    assert se < math.sqrt(full[0, 0] + full[1, 1])  # pairing removes the shared noise
    assert (auc_a, auc_b) == pytest.approx((roc_auc_score(y, a), roc_auc_score(y, b)))


def test_delong_needs_two_rows_of_each_class() -> None:
    with pytest.raises(ValueError, match="at least 2 positives and 2 negatives \\(got 1 and 3\\)"):
        delong.delong(np.array([1, 0, 0, 0]), [np.array([0.9, 0.1, 0.2, 0.3])])


# ---- calibration ---------------------------------------------------------------------------


def test_brier_and_ece_against_scikit_learn_and_hand_computed_bins() -> None:
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 0, 0])
    p = np.array([0.1, 0.2, 0.3, 0.1, 0.8, 0.9, 0.4, 0.6, 0.05, 0.2])
    assert calibration_metrics.brier(y, p) == pytest.approx(brier_score_loss(y, p))
    # 5 equal-count bins of 2 rows, by p: (0.05, 0.1), (0.1, 0.2), (0.2, 0.3), (0.4, 0.6),
    # (0.8, 0.9): mean p 0.075, 0.15, 0.25, 0.5, 0.85 against observed rates 0, 0, 0.5, 0.5, 1.
    gaps = [0.075, 0.15, 0.25, 0.0, 0.15]
    assert calibration_metrics.ece(y, p, bins=5) == pytest.approx(sum(g * 0.2 for g in gaps))
    curve = calibration_metrics.reliability(y, p, bins=5)
    assert [b["rows"] for b in curve] == [2] * 5
    assert [b["observed_rate"] for b in curve] == [0.0, 0.0, 0.5, 0.5, 1.0]


def test_the_calibration_section_names_its_scheme_and_the_base_rate() -> None:
    rng = np.random.default_rng(2)
    p = rng.beta(1, 20, 5000)
    y = (rng.random(5000) < p).astype(int)  # calibrated by construction
    section = calibration_metrics.calibration_section(y, p)
    assert section["ece_bins"] == 10 and section["ece_scheme"] == "equal-count"
    assert section["expected_calibration_error"] < 0.01
    assert section["brier_score_base_rate"] == pytest.approx(y.mean() * (1 - y.mean()))
    assert section["brier_score"] < section["brier_score_base_rate"]
    assert len(section["reliability"]) == 20
    inflated = calibration_metrics.calibration_section(y, np.sqrt(p))
    assert inflated["expected_calibration_error"] > 0.1


# ---- data shift ----------------------------------------------------------------------------


def test_binary_shift_is_seen_psi_included() -> None:
    reference = feature_profile.profile(np.r_[np.zeros(6500), np.ones(3500)], "bool")
    new = np.r_[np.zeros(400), np.ones(600)]
    result = feature_shift.compare_feature(reference, new)
    p, q = np.array([0.65, 0.35]), np.array([0.4, 0.6])
    assert result["psi"] == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert result["js"] == pytest.approx(jensenshannon(p, q, base=2))
    assert result["delta_p"] == pytest.approx(0.25)
    chi2 = stats.chi2_contingency([[6500, 3500], [400, 600]], correction=False)
    assert result["p_value"] == pytest.approx(chi2.pvalue)
    assert result["level"] == "large"


def test_numeric_ks_from_the_stored_percentiles_is_close_to_the_exact_one() -> None:
    rng = np.random.default_rng(4)
    reference_values, new = rng.lognormal(0, 1, 40_000), rng.lognormal(0.15, 1, 5000)
    result = feature_shift.compare_feature(feature_profile.profile(reference_values, "float"), new)
    exact = stats.ks_2samp(reference_values, new)
    assert result["ks"] == pytest.approx(exact.statistic, abs=0.01)
    assert result["level"] == "moderate"


def test_missing_values_are_a_shift_even_where_ks_sees_none() -> None:
    rng = np.random.default_rng(5)
    reference = feature_profile.profile(rng.normal(size=20_000), "float")
    new = rng.normal(size=5000)
    new[:500] = np.nan
    result = feature_shift.compare_feature(reference, new)
    assert result["ks"] < 0.03
    assert (result["missing_reference"], result["missing_new"]) == (0.0, 0.1)
    assert result["level"] == "large"


def test_unseen_and_rare_categories_are_pooled() -> None:
    reference = feature_profile.profile(
        np.r_[np.zeros(5000), np.ones(4990), np.full(10, 7.0)], "int"
    )
    assert reference["kind"] == "categorical"
    same = np.r_[np.zeros(250), np.ones(249), [7.0]]
    assert feature_shift.compare_feature(reference, same)["level"] == "none"
    unseen = np.r_[np.zeros(150), np.ones(150), np.full(200, 3.0)]
    assert feature_shift.compare_feature(reference, unseen)["level"] == "large"


def test_an_unshifted_sample_raises_no_flag_and_the_drifted_one_does() -> None:
    reference = sample_data.generate(20_000, 1)
    profiles = {
        name: feature_profile.profile(reference[name].to_numpy(np.float64), kind)
        for name, kind in sample_data.FEATURES
    }
    for new, expected in (
        (sample_data.generate(3000, 2), set()),
        (
            sample_data.generate(3000, 3, drift=True),
            {"amount", "hour", "distance_from_home_km", "distance_from_last_txn_km"}
            | {"used_chip", "used_pin", "online_order"},
        ),
    ):
        columns = {name: new[name].to_numpy(np.float64) for name, _ in sample_data.FEATURES}
        result = feature_shift.compare(profiles, columns)
        assert set(feature_shift.flagged(result, "large")) == expected


def test_the_summary_fits_the_registry() -> None:
    assert feature_shift.summary([], []) == "none"
    assert (
        feature_shift.summary(["amount", "hour"], ["used_pin"])
        == "large=amount/hour moderate=used_pin"
    )
    many = [f"feature_with_a_long_name_{i:03d}" for i in range(40)]
    text = feature_shift.summary(many, many[:5])
    assert len(text) <= 256 and text.startswith("large=feature_with_a_long_name_000/")
    assert text.endswith(" more")


def test_class_balance_is_large_when_the_rate_moves_a_fifth() -> None:
    moved = feature_shift.class_balance(390, 10_000, 490, 10_000)
    assert moved["ratio"] == pytest.approx(490 / 390) and moved["level"] == "large"
    table = [[390, 9610], [490, 9510]]
    assert moved["p_value"] == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
    assert feature_shift.class_balance(390, 10_000, 400, 10_000)["level"] == "none"
