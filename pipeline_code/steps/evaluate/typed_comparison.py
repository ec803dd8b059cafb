"""Challenger vs champion for a multi-class or regression model (the binary flow: `comparison`).

The same steps as the binary flow, with the problem type's metrics (`metrics_multiclass`,
`metrics_regression`) in SageMaker's model-quality layout and the gate decided by `gate_rule`
with the metric's direction: the challenger scored on its test split, the champion (chosen and
verified by `champion_choice`) on the test rows it never trained on, the improvement
(challenger - champion, negated for a lower-is-better metric) with the paired bootstrap's
standard error. A champion of another problem type or class list is not compared (floor only,
the reason stated: `champion_choice.comparable_champion`). The test labels are the model's
class codes: a multi-class test split's codes are read back to labels through its
`labels.json` and coded with the model's class list.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

import metrics_multiclass
import metrics_regression
from champion_choice import choose_champion, lineage_section, problem_of
from common.labels import read_class_list
from common.problem_types import MULTICLASS, REGRESSION, improvement
from common.stable_split import summary
from common.training_data import METADATA_KEY
from comparison_rows import ComparisonRows, champion_rows, key_column_names
from data_shift import data_shift_section
from evaluation_contract import (
    DATA_SHIFT_KEY,
    GATE_KEY,
    LINEAGE_KEY,
    REGISTRY_CHAMPION_COMPARISON,
    REGISTRY_DATA_SHIFT,
    REGISTRY_DECISION_THRESHOLD,
    REGISTRY_KEY,
    REGISTRY_SPLIT_RULE,
)
from evaluation_report import registry_text, write_evaluation
from gate_evidence import bootstrap_interval, bootstrap_standard_error
from gate_rule import Comparison, Evidence, GateRule, TypedCounts, Verdict, decide
from model_loading import EvaluationError, LoadedModel
from scoring_data import category_names, feature_matrix, read_keys, read_test_set

LOG = logging.getLogger("evaluate")


def counts(problem: str, y: np.ndarray, classes: tuple[str, ...]) -> TypedCounts:
    if problem == MULTICLASS:
        per_class = np.bincount(y.astype(np.int64), minlength=len(classes))
        return TypedCounts(int(y.size), tuple(zip(classes, map(int, per_class), strict=True)))
    return TypedCounts(int(y.size))


def model_labels(
    problem: str, y: np.ndarray, test_dir: Path, classes: tuple[str, ...]
) -> np.ndarray:
    """The test labels as the model's numbers: class codes of its class list, or finite values;
    a class the model never learned is refused (its own test split cannot hold one)."""
    codes, every = labelled_codes(problem, y, test_dir, classes)
    if len(every) > len(classes):
        raise EvaluationError(
            f"test set holds class(es) {list(every[len(classes) :])} the model never learned "
            f"(its classes: {list(classes)})"
        )
    return codes


def labelled_codes(
    problem: str, y: np.ndarray, test_dir: Path, classes: tuple[str, ...]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(labels as numbers, the classes they code): regression's finite values and no classes;
    multi-class codes of the model's class list followed by the labels it never learned
    (sorted), so a row of such a label can be scored as wrong instead of failing the run."""
    if problem == REGRESSION:
        if not np.isfinite(y).all():
            raise EvaluationError(
                "test set: a regression target must be a finite number in every row"
            )
        return y.astype(np.float64), ()
    written = read_class_list(test_dir)
    if written is None:
        raise EvaluationError(
            "test set: no class list beside it (labels.json): a multi-class test split is "
            "written by Prepare with its classes"
        )
    codes = y.astype(np.int64)
    if np.any(codes != y) or codes.min() < 0 or codes.max() >= len(written):
        raise EvaluationError(f"test set: labels must be class codes of {written}")
    unknown = sorted(set(written[c] for c in np.unique(codes)) - set(classes))
    every = (*classes, *unknown)
    position = {label: i for i, label in enumerate(every)}
    # -1 for a written label no row holds (never indexed)
    return np.array([position.get(label, -1) for label in written], dtype=np.int64)[codes], every


def _metrics(problem: str, y: np.ndarray, p: np.ndarray, classes: tuple[str, ...]) -> dict:
    if problem == MULTICLASS:
        return metrics_multiclass.point_metrics(y, p, classes)
    return metrics_regression.point_metrics(y, p)


def _bootstrap(problem: str, y: np.ndarray, scores: list[np.ndarray], n: int, seed: int) -> list:
    module = metrics_multiclass if problem == MULTICLASS else metrics_regression
    return module.bootstrap(y, scores, n, seed)


def _section(problem: str, point: dict, samples: dict | None) -> dict:
    module = metrics_multiclass if problem == MULTICLASS else metrics_regression
    return module.quality_section(point, samples)


def score_typed(
    args: argparse.Namespace,
    rule: GateRule,
    challenger: LoadedModel,
    scratch: Path,
    sagemaker_client: Any = None,
    s3_client: Any = None,
) -> dict[str, Any]:
    """Score challenger (and champion), decide the gate, write evaluation.json and plots."""
    from comparison import champion_split_rule, skipped_reason
    from shard_predictions import scored

    started = time.perf_counter()
    problem, classes = problem_of(challenger)
    # every typed metric's standard error is the paired bootstrap's (DeLong is AUC's only)
    rule = dataclasses.replace(rule, method="bootstrap")
    record = challenger.metadata.get(METADATA_KEY)
    split_rule = (record or {}).get("split_rule")
    key_names = key_column_names(split_rule)
    test_dir = Path(args.test_dir)
    columns, raw_y = read_test_set(
        test_dir, args.target, keys=key_names, categories=category_names(challenger), binary=False
    )
    y = model_labels(problem, raw_y, test_dir, classes)
    keys = read_keys(test_dir, key_names)
    choice = choose_champion(args, columns, challenger, scratch, sagemaker_client, s3_client)
    champion = choice.model
    matrix = feature_matrix(challenger, columns, "challenger")
    scores = [scored(args, "challenger", challenger, matrix, raw_y)]
    point = _metrics(problem, y, scores[0], classes)
    samples = _bootstrap(problem, y, scores, args.bootstrap_samples, args.seed)[0]
    rows = ComparisonRows(None, "no champion")
    if champion is not None:
        scores.append(scored(args, "champion", champion, choice.matrix, raw_y))
        rows = champion_rows(
            champion_split_rule(champion),
            split_rule,
            columns,
            keys,
            y.size,
            champion.feature_names,
            (champion.metadata.get(METADATA_KEY) or {}).get("feature_types"),
        )
    evidence = Evidence(
        challenger=float(point[rule.metric]),
        test=counts(problem, y, classes),
        skipped=skipped_reason(choice, rows),
    )
    champion_section = extras = None
    if champion is not None and rows.keep is not None:
        kept = y[rows.keep]
        pair = [scores[0][rows.keep], scores[1][rows.keep]]
        points = [_metrics(problem, kept, p, classes) for p in pair]
        pair_samples = _bootstrap(problem, kept, pair, args.bootstrap_samples, args.seed)
        m = rule.metric
        deltas = improvement(m, pair_samples[0][m], pair_samples[1][m])
        comparison = Comparison(
            challenger=float(points[0][m]),
            champion=float(points[1][m]),
            delta=float(improvement(m, points[0][m], points[1][m])),
            se=bootstrap_standard_error(deltas),
            method="paired bootstrap",
            counts=counts(problem, kept, classes),
        )
        evidence = Evidence(evidence.challenger, evidence.test, comparison)
        champion_section = _section(problem, points[1], pair_samples[1])
        extras = {
            "bootstrap_standard_error": comparison.se,
            "bootstrap_interval_95": bootstrap_interval(deltas),
            "bootstrap_samples_without_a_value": int((~np.isfinite(deltas)).sum()),
        }
    verdict = decide(rule, evidence)
    name = metrics_multiclass.SECTION if problem == MULTICLASS else metrics_regression.SECTION
    report: dict[str, Any] = {
        "problem_type": problem,
        name: _section(problem, point, samples),
        f"champion_{name}": champion_section,
        GATE_KEY: _gate_section(problem, rule, evidence, verdict, champion, rows, extras),
        DATA_SHIFT_KEY: data_shift_section(
            champion.metadata.get(METADATA_KEY) if champion else None,
            record,
            columns,
            # the target as the champion's profile holds it: class labels, or the numbers
            np.array(classes, dtype=object)[y] if problem == MULTICLASS else y,
            champion is not None,
        ),
        "bootstrap_samples": args.bootstrap_samples,
        "challenger_source": challenger.source,
        "champion_source": champion.source if champion else None,
        LINEAGE_KEY: lineage_section(challenger, choice),
    }
    if problem == MULTICLASS:
        report["classes"] = list(classes)
    comparison_text = (
        f"skipped: {evidence.skipped}"
        if evidence.comparison is None and evidence.skipped
        else "no champion"
        if evidence.comparison is None
        else f"compared rows={evidence.comparison.counts.rows}"
    )
    report[REGISTRY_KEY] = {
        REGISTRY_SPLIT_RULE: registry_text(
            summary(split_rule) if split_rule else "unknown: no training data record"
        ),
        REGISTRY_DECISION_THRESHOLD: "not applicable",
        REGISTRY_DATA_SHIFT: registry_text(report[DATA_SHIFT_KEY]["summary"]),
        REGISTRY_CHAMPION_COMPARISON: registry_text(comparison_text),
    }
    output_dir = Path(args.output_dir)
    write_evaluation(output_dir, report)
    if problem == REGRESSION:
        metrics_regression.write_plots(output_dir, y, scores[0], "challenger")
    LOG.info("%s in %.1f s", verdict.reason, time.perf_counter() - started)
    return report


def _gate_section(
    problem: str,
    rule: GateRule,
    evidence: Evidence,
    verdict: Verdict,
    champion: LoadedModel | None,
    rows: ComparisonRows,
    extras: dict[str, Any] | None,
) -> dict[str, Any]:
    """The gate section (comparison.gate_section) with the type, the metric's direction and
    the class counts (multi-class) instead of positives and negatives."""
    from comparison import gate_section

    test = evidence.test
    assert isinstance(test, TypedCounts)
    compared = evidence.comparison.counts if evidence.comparison else None
    direction = "higher" if improvement(rule.metric, 1.0, 0.0) > 0 else "lower"
    return gate_section(
        rule,
        evidence,
        verdict,
        champion,
        rows,
        extras,
        test_counts={"test_class_counts": dict(test.classes) if test.classes else None},
        compared_counts={
            "class_counts": (
                dict(compared.classes)
                if isinstance(compared, TypedCounts) and compared.classes
                else None
            )
        },
        head={"problem_type": problem, "direction": f"{direction} is better"},
    )
