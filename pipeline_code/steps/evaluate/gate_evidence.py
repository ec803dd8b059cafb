"""The numbers the gate decides on, from the two models' scores on the compared rows: the
metric's difference and its standard error (DeLong's for AUC, the paired bootstrap's for the
threshold metrics), and each model's decision threshold."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from delong import auc_difference
from gate_rule import Comparison, Counts
from model_loading import LoadedModel
from quality_metrics import THRESHOLD

#: The percentile interval of the bootstrap deltas reported beside the bounds (two-sided 95 %).
BOOTSTRAP_INTERVAL = (2.5, 97.5)


@dataclass(frozen=True)
class Threshold:
    """A model's decision threshold (predict 1 when p >= value) and where it comes from."""

    value: float
    source: str


def model_threshold(model: LoadedModel) -> Threshold:
    """The threshold the model's metadata records, else its registry metadata's, else
    THRESHOLD (a model trained before thresholds were chosen on validation data)."""
    candidates = (
        ("the model's metadata", model.metadata.get("decision_threshold")),
        ("the registry metadata", model.registry_metadata.get("decision_threshold")),
    )
    for source, value in candidates:
        try:
            number = float(value) if value is not None and not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is not None and 0.0 < number < 1.0:
            return Threshold(number, source)
    return Threshold(THRESHOLD, f"none recorded: {THRESHOLD} assumed")


def bootstrap_standard_error(deltas: np.ndarray) -> float:
    """The standard deviation (n - 1) of the finite bootstrap deltas; NaN with fewer than two.

    A sample that drew a single class has no AUC: it is left out, never counted as 0."""
    finite = deltas[np.isfinite(deltas)]
    return float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan


def bootstrap_interval(deltas: np.ndarray) -> list[float] | None:
    finite = deltas[np.isfinite(deltas)]
    if finite.size == 0:
        return None
    return [float(v) for v in np.percentile(finite, BOOTSTRAP_INTERVAL)]


def compare_models(
    y: np.ndarray,
    points: tuple[dict[str, Any], dict[str, Any]],
    scores: tuple[np.ndarray, np.ndarray],
    samples: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    metric: str,
    method: str,
) -> tuple[Comparison, dict[str, Any]]:
    """Challenger vs champion on the compared rows `y`.

    Args:
        points: each model's point metrics on these rows.
        scores: each model's probabilities on these rows (DeLong needs them).
        samples: each model's metrics over the same paired bootstrap samples of these rows.
        metric: the gate metric; method: `delong` or `bootstrap` (AUC; the threshold metrics
            always use the bootstrap).

    Returns:
        The comparison, and the report's extras (the bootstrap's percentile interval and
        standard error, whichever method decided).
    """
    deltas = samples[0][metric] - samples[1][metric]
    counts = Counts(int(np.sum(y)), int(y.size - np.sum(y)))
    delta = points[0][metric] - points[1][metric]
    bootstrap_se = bootstrap_standard_error(deltas)
    if metric == "auc" and method == "delong":
        try:
            delta, se, _, _ = auc_difference(y, scores[0], scores[1])
        except ValueError:  # fewer than 2 rows of a class: no variance to estimate
            se = math.nan
        used = "DeLong"
    else:
        se, used = bootstrap_se, "paired bootstrap"
    comparison = Comparison(
        challenger=float(points[0][metric]),
        champion=float(points[1][metric]),
        delta=float(delta),
        se=float(se),
        method=used,
        counts=counts,
    )
    extras = {
        "bootstrap_standard_error": bootstrap_se,
        "bootstrap_interval_95": bootstrap_interval(deltas),
        "bootstrap_samples_without_a_value": int((~np.isfinite(deltas)).sum()),
    }
    return comparison, extras
