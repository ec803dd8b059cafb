"""The paired bootstrap: every model's metrics on the same resampled rows, so the interval of a
difference reflects the models, not the noise of the test set twice. Computed with resampling
counts in chunks (bounded memory) and array operations for every metric."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from quality_metrics import LOG_LOSS_EPS, SCALAR_METRICS, THRESHOLD

#: Bootstrap samples are drawn in chunks of about this many row indices (bounded memory).
BOOTSTRAP_CHUNK_CELLS = 4_000_000


def bootstrap_weights(rows: int, samples: int, seed: int) -> Iterator[np.ndarray]:
    """Resampling counts (samples x rows, in chunks): row i drawn w[b, i] times in sample b.

    Drawing row indices with replacement and counting them is exactly the classic bootstrap;
    counts let every metric be computed for a whole chunk of samples with array operations.
    Counting row by row keeps the scatter within one row's counts, which stays in cache.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, BOOTSTRAP_CHUNK_CELLS // rows)
    dtype = _weight_dtype(rows)
    for start in range(0, samples, chunk):
        k = min(chunk, samples - start)
        drawn = rng.integers(0, rows, size=(k, rows), dtype=np.int64 if rows >= 2**31 else np.int32)
        counts: np.ndarray = np.empty((k, rows), dtype=dtype)
        for row in range(k):
            counts[row] = np.bincount(drawn[row], minlength=rows)
        yield counts


def _weight_dtype(rows: int) -> type:
    # float32 holds every count and running sum exactly below 2**24 and halves memory traffic.
    return np.float32 if rows < 2**23 else np.float64


class BootstrapScorer:
    """Metric values of one model's scores under a chunk of bootstrap weights."""

    def __init__(self, y: np.ndarray, p: np.ndarray, threshold: float = THRESHOLD) -> None:
        dtype = _weight_dtype(y.size)
        self.order = np.argsort(p, kind="stable")
        sorted_p = p[self.order]
        # Positions (in score order) of the positive rows: the AUC counts, for each of them,
        # the negatives ranked below.
        self.positive_at = np.flatnonzero(y[self.order] == 1)
        self.positive_rows = self.order[self.positive_at]
        # Rows with equal scores count half. Ties are rare among a booster's outputs, so
        # they are corrected afterwards instead of grouping every row.
        starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
        sizes = np.diff(np.r_[starts, sorted_p.size])
        tied_positive = np.repeat(sizes, sizes)[self.positive_at] > 1
        self.tied = np.flatnonzero(tied_positive)  # indices into positive_at
        self.tied_start = np.repeat(starts, sizes)[self.positive_at[self.tied]]
        self.tied_end = np.repeat(starts + sizes - 1, sizes)[self.positive_at[self.tied]]
        # Positives at or before a position = their count in positive_at up to it.
        self.positives_through_start = np.searchsorted(
            self.positive_at, self.tied_start - 1, "right"
        )
        self.positives_through_end = np.searchsorted(self.positive_at, self.tied_end, "right")
        # The AUC needs the weighted rows ranked at or before a few positions only (each
        # positive's, a tie group's ends): every row is assigned the first of those positions
        # at or after its rank, so one pass of its weight per sample (a bincount) and a
        # running total over the positions give them, instead of a running total over every
        # row in score order (which first gathered the weights in that order). Counts are
        # whole numbers, so both are exact and equal.
        rank = np.empty(p.size, dtype=np.int64)
        rank[self.order] = np.arange(p.size)
        self.queries = np.unique(
            np.r_[self.positive_at, np.maximum(self.tied_start - 1, 0), self.tied_end]
        )
        self.segment = np.searchsorted(self.queries, rank, "left")
        self.query_of_positive = np.searchsorted(self.queries, self.positive_at)
        self.query_before_tie = np.searchsorted(self.queries, np.maximum(self.tied_start - 1, 0))
        self.query_of_tie_end = np.searchsorted(self.queries, self.tied_end)
        predicted = p >= threshold
        self.y: np.ndarray = y.astype(dtype)
        self.predicted: np.ndarray = predicted.astype(dtype)
        self.true_positive: np.ndarray = (y.astype(bool) & predicted).astype(dtype)
        clipped = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
        self.loss: np.ndarray = np.where(y == 1, -np.log(clipped), -np.log(1 - clipped)).astype(
            dtype
        )

    def score(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        total = weights.sum(axis=1, dtype=np.float64)
        positives = (weights @ self.y).astype(np.float64)
        predicted = (weights @ self.predicted).astype(np.float64)
        tp = (weights @ self.true_positive).astype(np.float64)
        fp, fn = predicted - tp, positives - tp
        tn = total - tp - fp - fn

        rows_through = self._rows_through(weights)
        w_positive = weights[:, self.positive_rows]
        positives_through = np.cumsum(w_positive, axis=1)
        # At a positive row, every row at or before it that is not positive is a negative
        # ranked below it (ties aside).
        negatives_below = rows_through[:, self.query_of_positive] - positives_through
        pairs_won = (w_positive * negatives_below).sum(axis=1, dtype=np.float64)
        if self.tied.size:
            start = self.tied_start
            before_group = np.where(
                start > 0,
                rows_through[:, self.query_before_tie]
                - _take_or_zero(positives_through, self.positives_through_start),
                0.0,
            )
            through_group = rows_through[:, self.query_of_tie_end] - _take_or_zero(
                positives_through, self.positives_through_end
            )
            exact = before_group + 0.5 * (through_group - before_group)
            pairs_won += (w_positive[:, self.tied] * (exact - negatives_below[:, self.tied])).sum(
                axis=1, dtype=np.float64
            )
        negatives = total - positives
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = pairs_won / (positives * negatives)
            precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
            recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
            f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        return {
            "accuracy": (tp + tn) / total,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "auc": auc,  # NaN when a sample drew a single class: ignored below
            "log_loss": (weights @ self.loss).astype(np.float64) / total,
        }

    def _rows_through(self, weights: np.ndarray) -> np.ndarray:
        """Per sample, the weighted rows ranked at or before each of `queries` (in the
        weights' type, as a running total of them would be)."""
        found = self.queries.size
        counts = np.empty((weights.shape[0], found), dtype=np.float64)
        for sample, row in enumerate(weights):
            counts[sample] = np.bincount(self.segment, weights=row, minlength=found + 1)[:found]
        return np.cumsum(counts, axis=1).astype(weights.dtype)


def _take_or_zero(cumulative: np.ndarray, count: np.ndarray) -> np.ndarray:
    """cumulative[:, count - 1]: the running total over the first `count` entries (0 if none)."""
    if cumulative.shape[1] == 0:
        return np.zeros((cumulative.shape[0], count.size))
    previous = cumulative[:, np.maximum(count - 1, 0)]
    return np.where(count > 0, previous, 0.0)


def bootstrap(
    y: np.ndarray,
    scores: list[np.ndarray],
    samples: int,
    seed: int,
    thresholds: list[float] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Per model, per metric: the values over `samples` paired bootstrap samples (threshold
    metrics at each model's `thresholds`, default THRESHOLD)."""
    thresholds = thresholds or [THRESHOLD] * len(scores)
    scorers = [BootstrapScorer(y, p, t) for p, t in zip(scores, thresholds, strict=True)]
    parts: list[dict[str, list[np.ndarray]]] = [{m: [] for m in SCALAR_METRICS} for _ in scores]
    for weights in bootstrap_weights(y.size, samples, seed):
        for scorer, part in zip(scorers, parts, strict=True):
            for metric, values in scorer.score(weights).items():
                part[metric].append(values)
    return [{m: np.concatenate(v) for m, v in part.items()} for part in parts]
