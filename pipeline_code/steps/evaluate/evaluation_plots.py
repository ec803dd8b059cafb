"""The evaluation's plots: roc.png and confusion_matrix.png (when matplotlib is available; it is
in the SageMaker XGBoost 3.0-5 container)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from quality_metrics import THRESHOLD

LOG = logging.getLogger("evaluate")

ROC_PLOT = "roc.png"
CONFUSION_MATRIX_PLOT = "confusion_matrix.png"


def write_plots(output_dir: Path, curves: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """roc.png (every curve) and confusion_matrix.png (the first); none without matplotlib.

    `curves` holds (label, point metrics) pairs, e.g. [("challenger", ..), ("champion", ..)].
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
        title=f"{label} at p > {THRESHOLD}",
    )
    figure.tight_layout()
    figure.savefig(output_dir / CONFUSION_MATRIX_PLOT, dpi=100)
    plt.close(figure)
    return [ROC_PLOT, CONFUSION_MATRIX_PLOT]
