"""The paired bootstrap's AUC counts (issue #22: Evaluate at 10M rows): the weighted rows
ranked at or before each position the AUC reads are found with one bincount per sample
instead of a running total over every row in score order. Counts are whole numbers, so the
two must agree exactly, and so must every metric and therefore every gate decision."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline_code.steps import load

paired_bootstrap = load("evaluate", "paired_bootstrap")


def scores(rows: int, decimals: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.1).astype(np.float64)
    p = np.clip(rng.random(rows) * 0.7 + y * 0.2, 0.0, 1.0)
    return y, (p if decimals is None else np.round(p, decimals))  # rounded: many ties


@pytest.mark.parametrize("decimals", [None, 3, 1, 0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_counts_equal_a_running_total_over_every_row_in_score_order(
    decimals: int | None, dtype: type
) -> None:
    y, p = scores(4000, decimals, seed=5)
    scorer = paired_bootstrap.BootstrapScorer(y, p)
    weights = next(paired_bootstrap.bootstrap_weights(y.size, 7, seed=3)).astype(dtype)
    direct = np.cumsum(np.take(weights, scorer.order, axis=1), axis=1)
    assert scorer.queries.size < y.size  # only the positions the AUC reads
    assert np.array_equal(scorer._rows_through(weights), direct[:, scorer.queries])
    assert scorer._rows_through(weights).dtype == weights.dtype


def test_the_positions_read_are_every_positive_and_every_tie_groups_ends() -> None:
    y = np.array([0, 1, 0, 1, 1, 0, 0], dtype=np.float64)
    p = np.array([0.1, 0.2, 0.2, 0.5, 0.7, 0.7, 0.9])
    scorer = paired_bootstrap.BootstrapScorer(y, p)
    # already in score order: positives at 1, 3 and 4; tied positives in the groups 1-2 and
    # 4-5, whose counts are read just before them (0, 3) and at their ends (2, 5)
    assert scorer.queries.tolist() == [0, 1, 2, 3, 4, 5]
    weights = np.ones((1, 7), dtype=np.float32)
    assert scorer._rows_through(weights).tolist() == [[1, 2, 3, 4, 5, 6]]


@pytest.mark.parametrize("decimals", [None, 2])
def test_every_bootstrap_metric_is_what_scikit_learn_computes_on_the_resampled_rows(
    decimals: int | None,
) -> None:
    from sklearn.metrics import roc_auc_score

    y, p = scores(2500, decimals, seed=8)
    weights = next(paired_bootstrap.bootstrap_weights(y.size, 4, seed=2))
    auc = paired_bootstrap.BootstrapScorer(y, p).score(weights)["auc"]
    for sample in range(4):
        rows = np.repeat(np.arange(y.size), weights[sample].astype(int))
        assert auc[sample] == pytest.approx(roc_auc_score(y[rows], p[rows]), abs=1e-12)
