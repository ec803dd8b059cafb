"""How far data moved from a reference profile (see `feature_profile`): per feature, statistics
that work for binary, categorical and numeric values alike, a level (none, moderate, large),
and the class balance.

Per feature, over bins that always include one for missing values:

    psi        population stability index; binary/categorical: one bin per reference
               category plus one for unseen values, where bins the new rows would fill with
               fewer than 5 rows if nothing moved are pooled into one; numeric: the
               reference's decile bins. Shares are floored at 1e-4, so one empty bin cannot
               dominate.
    js         Jensen-Shannon distance (base 2, 0 to 1) over the same bins
    ks         numeric: the largest gap between the two cumulative distributions, read at the
               reference's 99 percentiles (missing values left out)
    delta_p    binary: the new share of 1s minus the reference's
    p_value    chi-square test of homogeneity (binary, categorical) or the Kolmogorov-Smirnov
               test (numeric)
    missing_reference / missing_new   the shares of missing values

Levels flag effect sizes that the feature's test also finds (p < 0.001; the missing share has
its own two-proportion test). The effect sizes alone are not enough on a few hundred rows, and
the p-values alone flag trivial shifts on 10^5 rows. Thresholds (measured on the sample data:
no false flag in 500 unshifted comparisons at 2k or 100k rows):

    large      numeric PSI >= 0.25 or KS >= 0.10; binary PSI >= 0.25 or |delta_p| >= 0.10;
               categorical PSI >= 0.25 or JS >= 0.10; or the missing share moved >= 0.05
    moderate   numeric PSI >= 0.10 or KS >= 0.05; binary PSI >= 0.10 or |delta_p| >= 0.05;
               categorical PSI >= 0.10; or the missing share moved >= 0.01
Class balance is large when the positive rate moved by >= 20 % (relative) with p < 0.001.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from common.feature_profile import BINARY, CATEGORICAL, NUMERIC

SHARE_FLOOR = 1e-4
#: Binary and categorical bins expected to hold fewer new rows than this are pooled into one.
RARE_ROWS = 5
LARGE = {"psi": 0.25, "js": 0.10, "ks": 0.10, "delta_p": 0.10, "missing": 0.05}
MODERATE = {"psi": 0.10, "ks": 0.05, "delta_p": 0.05, "missing": 0.01}
SIGNIFICANT = 1e-3
CLASS_BALANCE_RATIO = 0.20
NONE, MODERATE_LEVEL, LARGE_LEVEL = "none", "moderate", "large"
#: The registry's CustomerMetadataProperties values hold at most 256 characters.
SUMMARY_MAX_CHARS = 256


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, dtype=np.float64)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    p = np.maximum(expected, SHARE_FLOOR)
    q = np.maximum(actual, SHARE_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance in base 2 (0: same, 1: disjoint)."""
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        keep = a > 0
        return float(np.sum(a[keep] * np.log2(a[keep] / m[keep])))

    return math.sqrt(max((kl(p) + kl(q)) / 2, 0.0))


def _two_proportions_p_value(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """Two-sided p-value of the difference of two proportions (pooled z test)."""
    if n_a == 0 or n_b == 0:
        return 1.0
    pooled = (hits_a + hits_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return 1.0
    z = abs(hits_a / n_a - hits_b / n_b) / spread
    return math.erfc(z / math.sqrt(2))


def _category_bins(reference: Mapping[str, Any], new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference and new counts per category, then unseen, then missing."""
    categories = reference["categories"]
    values = np.array([float(name) for name in categories])
    counts = np.array([categories[name] for name in categories], dtype=np.float64)
    order = np.argsort(values)
    values, counts = values[order], counts[order]
    missing = np.isnan(new)
    present = new[~missing]
    if values.size:
        position = np.clip(np.searchsorted(values, present), 0, values.size - 1)
        code = np.where(values[position] == present, position, values.size)
    else:
        code = np.zeros(present.size, dtype=np.int64)
    actual = np.bincount(code, minlength=values.size + 1).astype(np.float64)
    expected = np.concatenate([counts, [0.0, float(reference["missing"])]])
    return expected, np.append(actual, float(missing.sum()))


def _pool_rare(expected: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bins the new data would fill with fewer than RARE_ROWS rows if nothing moved (rare
    categories, unseen values, few missing values) pooled into one: a single row in a bin
    expected to hold 0.01 would otherwise dominate the chi-square and the distances."""
    share = _shares(expected)
    rare = share * actual.sum() < RARE_ROWS
    if rare.sum() < 2:
        return expected, actual
    return (
        np.append(expected[~rare], expected[rare].sum()),
        np.append(actual[~rare], actual[rare].sum()),
    )


def _numeric_bins(reference: Mapping[str, Any], new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference and new shares over the reference's decile bins, then missing."""
    rows = reference["rows"]
    present_share = (rows - reference["missing"]) / rows if rows else 0.0
    grid = np.asarray(reference["percentiles"])
    at_or_below = np.asarray(reference["share_at_or_below"])
    edges, first = np.unique(grid[9::10], return_index=True)
    cumulative = np.concatenate([[0.0], at_or_below[9::10][first], [1.0]])
    expected = np.append(np.diff(cumulative) * present_share, 1 - present_share)
    missing = np.isnan(new)
    code = np.searchsorted(edges, new[~missing], side="left")
    actual = np.append(np.bincount(code, minlength=edges.size + 1), missing.sum())
    return expected, _shares(actual.astype(np.float64))


def _text_as_codes(
    reference: Mapping[str, Any], new: np.ndarray
) -> tuple[Mapping[str, Any], np.ndarray]:
    """A category feature's text values as numbered categories: reference category i is
    the number i, a value the reference never had is the number after the last, missing is
    NaN; the reference's counts keyed by those numbers."""
    names = list(reference.get("categories", {}))
    number = {name: float(i) for i, name in enumerate(names)}
    codes = np.array(
        [np.nan if v is None else number.get(str(v), float(len(names))) for v in new],
        dtype=np.float64,
    )
    counts = {str(i): reference["categories"][name] for i, name in enumerate(names)}
    return {**reference, "categories": counts}, codes


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except ValueError:
        return math.nan


def compare_feature(reference: Mapping[str, Any], new: np.ndarray) -> dict[str, Any]:
    """Shift statistics and level of one feature's `new` values against its profile (a
    category feature's values as text, None = missing)."""
    if np.asarray(new).dtype == object and reference["kind"] == CATEGORICAL:
        reference, new = _text_as_codes(reference, np.asarray(new))
    elif np.asarray(new).dtype == object:  # a number for the reference, category text now
        new = np.array([_number(v) for v in new], dtype=np.float64)
    new = np.asarray(new, dtype=np.float64)
    kind = reference["kind"]
    result: dict[str, Any] = {
        "kind": kind,
        "missing_reference": reference["missing"] / reference["rows"] if reference["rows"] else 0.0,
        "missing_new": float(np.isnan(new).mean()) if new.size else 0.0,
    }
    if kind == NUMERIC:
        if "percentiles" in reference:
            expected, actual = _numeric_bins(reference, new)
        else:  # the reference had no value at all: only the missing shares can be compared
            expected = np.array([0.0, 1.0])
            actual = np.array([1 - result["missing_new"], result["missing_new"]])
        result.update(psi=psi(expected, actual), js=js_distance(expected, actual))
        result.update(_ks(reference, new))
    else:
        expected_counts, actual_counts = _pool_rare(*_category_bins(reference, new))
        expected, actual = _shares(expected_counts), _shares(actual_counts)
        result.update(psi=psi(expected, actual), js=js_distance(expected, actual))
        result["p_value"] = _chi_square_p_value(expected_counts, actual_counts)
        if kind == BINARY:
            ones_ref = reference["categories"].get("1", 0)
            present_ref = reference["rows"] - reference["missing"]
            present_new = new[~np.isnan(new)]
            if present_ref and present_new.size:
                result["delta_p"] = float((present_new == 1).mean() - ones_ref / present_ref)
    result["level"] = _level(result, reference, new)
    return result


def _ks(reference: Mapping[str, Any], new: np.ndarray) -> dict[str, Any]:
    present = np.sort(new[~np.isnan(new)])
    if "percentiles" not in reference or present.size == 0:
        return {"ks": None, "p_value": None}
    grid = np.asarray(reference["percentiles"])
    at_or_below = np.asarray(reference["share_at_or_below"])
    ks = float(
        np.max(np.abs(np.searchsorted(present, grid, side="right") / present.size - at_or_below))
    )
    n = reference["rows"] - reference["missing"]
    m = present.size
    from scipy.special import kolmogorov

    return {"ks": ks, "p_value": float(kolmogorov(ks * math.sqrt(n * m / (n + m))))}


def _chi_square_p_value(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    """Pearson's chi-square test of homogeneity of the two rows of counts (no continuity
    correction; scipy.special only: scipy.stats costs a second to import)."""
    keep = (expected_counts + actual_counts) > 0
    if keep.sum() < 2 or expected_counts.sum() == 0 or actual_counts.sum() == 0:
        return 1.0
    from scipy.special import chdtrc

    table = np.vstack([expected_counts[keep], actual_counts[keep]])
    fitted = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    statistic = float(np.sum((table - fitted) ** 2 / fitted))
    return float(chdtrc(table.shape[1] - 1, statistic))


def _level(result: Mapping[str, Any], reference: Mapping[str, Any], new: np.ndarray) -> str:
    """large or moderate: an effect at least the threshold that its test also finds (p <
    0.001); none otherwise. Without the test, a few hundred rows over 24 categories already
    reach JS 0.1 by chance."""
    kind = result["kind"]
    delta_p = abs(result.get("delta_p") or 0.0)
    ks = result.get("ks") or 0.0

    def effect(limits: Mapping[str, float]) -> bool:
        found = result["psi"] >= limits["psi"]
        found |= kind == NUMERIC and ks >= limits["ks"]
        found |= kind == BINARY and delta_p >= limits["delta_p"]
        return found or (kind == CATEGORICAL and result["js"] >= limits.get("js", math.inf))

    p_value = result.get("p_value")
    shifted = p_value is not None and p_value < SIGNIFICANT
    moved = abs(result["missing_new"] - result["missing_reference"])
    missing_moved = (
        _two_proportions_p_value(
            int(reference["missing"]),
            int(reference["rows"]),
            int(np.isnan(new).sum()),
            int(new.size),
        )
        < SIGNIFICANT
    )
    if (shifted and effect(LARGE)) or (missing_moved and moved >= LARGE["missing"]):
        return LARGE_LEVEL
    if (shifted and effect(MODERATE)) or (missing_moved and moved >= MODERATE["missing"]):
        return MODERATE_LEVEL
    return NONE


def class_balance(
    reference_positives: int, reference_rows: int, positives: int, rows: int
) -> dict[str, Any]:
    """Positive rates of the reference and the new data, their ratio and a two-proportion
    test; large when the rate moved by >= 20 % relative with p < 0.001."""
    rate_reference = reference_positives / reference_rows if reference_rows else 0.0
    rate_new = positives / rows if rows else 0.0
    ratio = rate_new / rate_reference if rate_reference else None
    p_value = _two_proportions_p_value(reference_positives, reference_rows, positives, rows)
    large = ratio is not None and abs(ratio - 1) >= CLASS_BALANCE_RATIO and p_value < SIGNIFICANT
    return {
        "positive_rate_reference": rate_reference,
        "positive_rate_new": rate_new,
        "ratio": ratio,
        "p_value": p_value,
        "level": LARGE_LEVEL if large else NONE,
    }


def compare(
    reference: Mapping[str, Mapping[str, Any]], columns: Mapping[str, np.ndarray]
) -> dict[str, dict[str, Any]]:
    """Every profiled feature that `columns` also holds, in the reference's order."""
    return {
        name: compare_feature(profile, columns[name])
        for name, profile in reference.items()
        if name in columns
    }


def flagged(features: Mapping[str, Mapping[str, Any]], level: str) -> list[str]:
    return [name for name, stats in features.items() if stats["level"] == level]


def _listing(level: str, names: list[str], budget: int) -> str:
    """`level=a/b` with as many names as fit in `budget` characters, then `and N more`."""
    for shown in range(len(names), -1, -1):
        rest = len(names) - shown
        text = f"{level}={'/'.join(names[:shown])}" + (f" and {rest} more" if rest else "")
        if len(text) <= budget:
            return text
    return ""


def summary(large: list[str], moderate: list[str], limit: int = SUMMARY_MAX_CHARS) -> str:
    """`large=amount/hour moderate=used_pin` (or `none`) in at most `limit` characters; names
    that do not fit are counted (`and 3 more`). Only characters the registry's metadata values
    allow (letters, digits, spaces, _ . : / = + - @)."""
    if not large and not moderate:
        return NONE
    text = _listing(LARGE_LEVEL, large, limit) if large else ""
    if moderate:
        budget = limit - len(text) - (1 if text else 0)
        more = _listing(MODERATE_LEVEL, moderate, budget)
        text = f"{text} {more}" if text and more else text or more
    return text
