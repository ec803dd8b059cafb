"""A regression model's metrics on the test set, in SageMaker's model-quality layout
(`regression_metrics`: `mae`, `mse`, `rmse`, `r2`, each {value, standard_deviation}), with
paired-bootstrap spreads, and the residual and predicted-vs-actual plots.

The bootstrap computes each resample's metrics from resampling counts
(`paired_bootstrap.bootstrap_weights`): weighted sums of the squared and absolute errors and of
y and y squared (R² = 1 - SSE / SST about the resample's own mean).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from paired_bootstrap import bootstrap_weights

LOG = logging.getLogger("evaluate")
SECTION = "regression_metrics"
SCALARS = ("mae", "mse", "rmse", "r2")
RESIDUAL_PLOT = "residuals.png"
PREDICTED_PLOT = "predicted_vs_actual.png"
#: Points drawn in a plot at most (a sample of the rows beyond).
PLOT_MAX_POINTS = 5000


def _from_sums(
    weight: np.ndarray, squared: np.ndarray, absolute: np.ndarray, y: np.ndarray, y2: np.ndarray
) -> dict[str, np.ndarray]:
    mse = squared / weight
    sst = y2 - y * y / weight
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(sst > 0, 1.0 - squared / sst, np.nan)
    return {"mae": absolute / weight, "mse": mse, "rmse": np.sqrt(mse), "r2": r2}


def point_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    error = p.astype(np.float64) - y
    values = _from_sums(
        np.array(float(y.size)),
        np.square(error).sum(),
        np.abs(error).sum(),
        y.sum(),
        np.square(y).sum(),
    )
    return {name: float(values[name]) for name in SCALARS}


def bootstrap(
    y: np.ndarray, scores: list[np.ndarray], samples: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """Every model's metrics on the same `samples` resamples of the rows (paired)."""
    y = y.astype(np.float64)
    errors = [p.astype(np.float64) - y for p in scores]
    rows = np.column_stack(
        [y, np.square(y)] + [c for e in errors for c in (np.square(e), np.abs(e))]
    )
    out: list[dict[str, list[np.ndarray]]] = [{m: [] for m in SCALARS} for _ in scores]
    for weights in bootstrap_weights(y.size, samples, seed):
        w = weights.astype(np.float64)
        sums = w @ rows
        total = w.sum(axis=1)
        for model in range(len(scores)):
            squared, absolute = sums[:, 2 + 2 * model], sums[:, 3 + 2 * model]
            values = _from_sums(total, squared, absolute, sums[:, 0], sums[:, 1])
            for name in SCALARS:
                out[model][name].append(values[name])
    return [{m: np.concatenate(v) for m, v in model.items()} for model in out]


def quality_section(point: dict[str, float], samples: dict[str, np.ndarray] | None) -> dict:
    """The `regression_metrics` layout."""

    def spread(name: str) -> float:
        if not samples:
            return 0.0
        finite = samples[name][np.isfinite(samples[name])]
        return float(np.std(finite, ddof=1)) if finite.size > 1 else 0.0

    return {name: {"value": point[name], "standard_deviation": spread(name)} for name in SCALARS}


def write_plots(output_dir: Path, y: np.ndarray, p: np.ndarray, label: str) -> list[str]:
    """residuals.png (residual vs prediction) and predicted_vs_actual.png; none without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        LOG.warning("matplotlib is not installed: skipping %s, %s", RESIDUAL_PLOT, PREDICTED_PLOT)
        return []
    if y.size > PLOT_MAX_POINTS:
        keep = np.random.default_rng(0).choice(y.size, PLOT_MAX_POINTS, replace=False)
        y, p = y[keep], p[keep]
    output_dir.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.scatter(p, y - p, s=4, alpha=0.4)
    axes.axhline(0.0, color="grey", linewidth=1, linestyle="--")
    axes.set(xlabel="predicted", ylabel="actual - predicted", title=f"{label}: residuals")
    figure.tight_layout()
    figure.savefig(output_dir / RESIDUAL_PLOT, dpi=100)
    plt.close(figure)
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.scatter(y, p, s=4, alpha=0.4)
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    axes.plot([low, high], [low, high], color="grey", linewidth=1, linestyle="--")
    axes.set(xlabel="actual", ylabel="predicted", title=f"{label}: predicted vs actual")
    figure.tight_layout()
    figure.savefig(output_dir / PREDICTED_PLOT, dpi=100)
    plt.close(figure)
    return [RESIDUAL_PLOT, PREDICTED_PLOT]


def summary(point: dict[str, Any]) -> str:
    return ", ".join(f"{name} {point[name]:.4g}" for name in SCALARS)
