"""Challenger vs champion: both scored on the same test split, the gate metric's difference with
a paired-bootstrap confidence interval, written as evaluation.json (with its `gate` section)
and plots."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from champion_choice import choose_champion, lineage_section
from evaluation_contract import (
    CHAMPION_METRICS_KEY,
    EVALUATION_FILE,
    GATE_CHALLENGER,
    GATE_CHAMPION,
    GATE_CHAMPION_ARN,
    GATE_DELTA,
    GATE_DELTA_CI_HIGH,
    GATE_DELTA_CI_LOW,
    GATE_HAS_CHAMPION,
    GATE_KEY,
    GATE_METRIC,
    GATE_TEST_ROWS,
    LINEAGE_KEY,
    METRICS_KEY,
)
from evaluation_plots import write_plots
from model_loading import EvaluationError, load_model_dir
from paired_bootstrap import bootstrap
from quality_metrics import THRESHOLD, point_metrics, quality_section
from scoring_data import feature_matrix, predict, read_test_set

LOG = logging.getLogger("evaluate")

DEFAULT_MODEL_DIR = "/opt/ml/processing/model"
GATE_METRICS = ("auc", "f1", "accuracy", "precision", "recall")
CONFIDENCE = 0.95


def score_challenger(
    args: argparse.Namespace,
    scratch: Path,
    sagemaker_client: Any = None,
    s3_client: Any = None,
) -> dict[str, Any]:
    """Score challenger (and champion), write evaluation.json and plots; returns the JSON."""
    if args.metric not in GATE_METRICS:
        raise EvaluationError(f"--metric {args.metric!r}: one of {', '.join(GATE_METRICS)}")
    if args.bootstrap_samples < 1:
        raise EvaluationError(f"--bootstrap-samples {args.bootstrap_samples}: at least 1")
    if args.metrics_namespace:
        raise EvaluationError(
            "--metrics-namespace publishes the metrics of a registered model: use it with "
            "--model-package-arn, not with a challenger in --model-dir"
        )
    started = time.perf_counter()
    columns, y = read_test_set(Path(args.test_dir), args.target)
    challenger = load_model_dir(Path(args.model_dir or DEFAULT_MODEL_DIR), scratch, "challenger")
    choice = choose_champion(args, columns, challenger, scratch, sagemaker_client, s3_client)
    champion = choice.model

    scores = [predict(challenger, feature_matrix(challenger, columns, "challenger"))]
    if champion is not None:
        scores.append(predict(champion, choice.matrix))
    points = [point_metrics(y, p) for p in scores]
    samples = bootstrap(y, scores, args.bootstrap_samples, args.seed)

    metric = args.metric
    gate: dict[str, Any] = {
        GATE_METRIC: metric,
        GATE_CHALLENGER: points[0][metric],
        GATE_CHAMPION: None,
        GATE_HAS_CHAMPION: champion is not None,
        GATE_DELTA: 0.0,
        GATE_DELTA_CI_LOW: 0.0,
        GATE_DELTA_CI_HIGH: 0.0,
        GATE_CHAMPION_ARN: None,
        GATE_TEST_ROWS: int(y.size),
    }
    if champion is not None:
        deltas = samples[0][metric] - samples[1][metric]
        deltas = deltas[np.isfinite(deltas)]
        tail = 100 * (1 - CONFIDENCE) / 2
        low, high = np.percentile(deltas, [tail, 100 - tail]) if deltas.size else (np.nan,) * 2
        gate.update(
            {
                GATE_CHAMPION: points[1][metric],
                GATE_DELTA: points[0][metric] - points[1][metric],
                GATE_DELTA_CI_LOW: float(low),
                GATE_DELTA_CI_HIGH: float(high),
                GATE_CHAMPION_ARN: champion.model_package_arn,
            }
        )
    report = {
        METRICS_KEY: quality_section(points[0], samples[0]),
        CHAMPION_METRICS_KEY: quality_section(points[1], samples[1]) if champion else None,
        GATE_KEY: gate,
        "bootstrap_samples": args.bootstrap_samples,
        "threshold": THRESHOLD,
        "challenger_source": challenger.source,
        "champion_source": champion.source if champion else None,
        LINEAGE_KEY: lineage_section(challenger, choice),
    }
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    write_plots(
        output_dir,
        [("challenger", points[0])] + ([("champion", points[1])] if champion else []),
    )
    LOG.info(
        "%s challenger %.4f, champion %s, delta %.4f [%.4f, %.4f] on %d rows in %.1f s",
        metric,
        gate[GATE_CHALLENGER],
        "none" if champion is None else f"{gate[GATE_CHAMPION]:.4f}",
        gate[GATE_DELTA],
        gate[GATE_DELTA_CI_LOW],
        gate[GATE_DELTA_CI_HIGH],
        y.size,
        time.perf_counter() - started,
    )
    return report
