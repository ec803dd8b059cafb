"""The evaluation's plots: roc.png, confusion_matrix.png and, with calibration curves,
reliability.png (when matplotlib is available; it is in the SageMaker XGBoost 3.0-5
container)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from quality_metrics import THRESHOLD

LOG = logging.getLogger("evaluate")

ROC_PLOT = "roc.png"
CONFUSION_MATRIX_PLOT = "confusion_matrix.png"
RELIABILITY_PLOT = "reliability.png"


def write_plots(
    output_dir: Path,
    curves: list[tuple[str, dict[str, Any]]],
    threshold: float = THRESHOLD,
    calibration: list[tuple[str, dict[str, Any]]] | None = None,
) -> list[str]:
    """roc.png (every curve), confusion_matrix.png (the first, at `threshold`) and, given
    `calibration` sections, reliability.png; none without matplotlib.

    `curves` holds (label, point metrics) pairs, e.g. [("challenger", ..), ("champion", ..)];
    `calibration` (label, calibration section) pairs.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        LOG.warning(
            "matplotlib is not installed: skipping %s and %s", ROC_PLOT, CONFUSION_MATRIX_PLOT
        )
        return []
    figure, axes = plt.subplots(figsize=(5, 5))
    for label, metrics in curves:
        axes.plot(
            metrics["roc"]["false_positive_rates"],
            metrics["roc"]["true_positive_rates"],
            label=f"{label} (AUC {metrics['auc']:.3f})",
        )
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(output_dir / ROC_PLOT, dpi=100)
    plt.close(figure)

    label, first = curves[0]
    matrix = first["confusion_matrix"]
    counts = np.array([[matrix[a][p] for p in ("0", "1")] for a in ("0", "1")])
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.imshow(counts, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        axes.text(column, row, f"{count:,}", ha="center", va="center")
    axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xlabel="predicted",
        ylabel="actual",
        title=f"{label} at p >= {threshold:.4g}",
    )
    figure.tight_layout()
    figure.savefig(output_dir / CONFUSION_MATRIX_PLOT, dpi=100)
    plt.close(figure)
    written = [ROC_PLOT, CONFUSION_MATRIX_PLOT]
    if calibration:
        _reliability_plot(plt, output_dir / RELIABILITY_PLOT, calibration)
        written.append(RELIABILITY_PLOT)
    return written


def _reliability_plot(plt: Any, path: Path, sections: list[tuple[str, dict[str, Any]]]) -> None:
    """Observed rate against mean predicted probability per equal-count bin, on log-log axes
    (rare positives put most bins near 0); the diagonal is perfect calibration."""
    figure, axes = plt.subplots(figsize=(5, 5))
    low = 1.0
    for label, section in sections:
        points = [b for b in section["reliability"] if b["mean_predicted"] > 0]
        x = [b["mean_predicted"] for b in points]
        # An empty bin's rate is 0, which a log axis cannot show: draw it at the axis floor.
        y = [max(b["observed_rate"], 1e-4) for b in points]
        low = min([low, *x, *y])
        axes.plot(
            x,
            y,
            marker="o",
            label=f"{label} (ECE {section['expected_calibration_error']:.4f}, "
            f"Brier {section['brier_score']:.4f})",
        )
    low = max(low / 2, 1e-4)
    axes.plot([low, 1], [low, 1], linestyle="--", color="grey", linewidth=1)
    axes.set(
        xscale="log",
        yscale="log",
        xlim=(low, 1),
        ylim=(low, 1),
        xlabel="mean predicted probability",
        ylabel="observed positive rate",
        title="Reliability (equal-count bins)",
    )
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
