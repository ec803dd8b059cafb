"""Challenger vs champion: the challenger scored on its test split, the champion on the test
rows it never trained on, the gate decided (`gate_rule`), and evaluation.json written with its
gate, calibration, baseline, data-shift and registry sections, and the plots."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from calibration_metrics import calibration_section
from champion_choice import ANOTHER_PROBLEM, ChampionChoice, choose_champion, lineage_section
from common.problem_types import ALL_METRICS, BINARY, METRICS, check_metric
from common.stable_split import SplitRuleError, parse_summary, summary
from common.training_data import METADATA_KEY
from comparison_rows import ComparisonRows, champion_rows, key_column_names
from data_shift import data_shift_section
from evaluation_contract import (
    BASELINE_KEY,
    CALIBRATION_KEY,
    CHAMPION_CALIBRATION_KEY,
    CHAMPION_METRICS_KEY,
    CHAMPION_NONE,
    DATA_SHIFT_KEY,
    GATE_CHALLENGER,
    GATE_CHAMPION,
    GATE_CHAMPION_ARN,
    GATE_DECISION,
    GATE_DELTA,
    GATE_HAS_CHAMPION,
    GATE_KEY,
    GATE_LOWER_BOUND,
    GATE_METRIC,
    GATE_REASON,
    GATE_STANDARD_ERROR,
    GATE_TEST_ROWS,
    GATE_UPPER_BOUND,
    LINEAGE_KEY,
    METRICS_KEY,
    REGISTRY_CHAMPION_COMPARISON,
    REGISTRY_DATA_SHIFT,
    REGISTRY_DECISION_THRESHOLD,
    REGISTRY_KEY,
    REGISTRY_SPLIT_RULE,
    THRESHOLD_KEY,
)
from evaluation_plots import write_plots
from evaluation_report import registry_text, write_evaluation
from gate_evidence import compare_models, model_threshold
from gate_rule import Counts, Evidence, GateRule, Verdict, bounds, decide
from model_loading import EvaluationError, LoadedModel, load_challenger
from paired_bootstrap import bootstrap
from quality_metrics import majority_baseline, point_metrics, quality_section
from scoring_data import (
    category_names,
    check_labels,
    feature_matrix,
    read_keys,
    read_test_set,
)
from shard_predictions import scored
from typed_comparison import problem_of, score_typed

LOG = logging.getLogger("evaluate")

GATE_METRICS = ALL_METRICS


def _gate_rule(args: argparse.Namespace) -> GateRule:
    if args.metric not in GATE_METRICS:
        raise EvaluationError(f"--metric {args.metric!r}: one of {', '.join(GATE_METRICS)}")
    if args.bootstrap_samples < 1:
        raise EvaluationError(f"--bootstrap-samples {args.bootstrap_samples}: at least 1")
    if args.metrics_namespace:
        raise EvaluationError(
            "--metrics-namespace publishes the metrics of a registered model: use it with "
            "--model-package-arn, not with a challenger in --model-dir"
        )
    try:
        return GateRule(
            metric=args.metric,
            floor=args.floor,
            tolerance=args.tolerance,
            min_positives=args.min_positives,
            method=args.gate_method,
        )
    except ValueError as error:
        raise EvaluationError(f"gate arguments: {error}") from error


def champion_split_rule(champion: LoadedModel) -> dict[str, Any] | None:
    """The champion's split rule: its model's record, else its registry metadata's."""
    record = champion.metadata.get(METADATA_KEY) or {}
    if record.get("split_rule"):
        return dict(record["split_rule"])
    text = champion.registry_metadata.get(REGISTRY_SPLIT_RULE)
    if not text:
        return None
    try:
        return parse_summary(text, champion.feature_names or [])
    except SplitRuleError as error:
        LOG.warning("champion split rule not usable: %s", error)
        return None


def score_challenger(
    args: argparse.Namespace,
    scratch: Path,
    sagemaker_client: Any = None,
    s3_client: Any = None,
) -> dict[str, Any]:
    """Score challenger (and champion), decide the gate, write evaluation.json and plots."""
    rule = _gate_rule(args)
    started = time.perf_counter()
    challenger = load_challenger(args.model_dir, scratch, args.trainer)
    problem = problem_of(challenger)[0]
    try:
        check_metric(problem, rule.metric)
    except ValueError:
        raise EvaluationError(
            f"--metric {rule.metric!r} is not allowed for the challenger, a {problem} model: "
            f"one of {', '.join(METRICS[problem])}"
        ) from None
    if problem != BINARY:
        return score_typed(args, rule, challenger, scratch, sagemaker_client, s3_client)
    challenger_record = challenger.metadata.get(METADATA_KEY)
    challenger_rule = (challenger_record or {}).get("split_rule")
    key_names = key_column_names(challenger_rule)
    test_dir = Path(args.test_dir)
    check_labels(challenger, test_dir, "challenger")
    columns, y = read_test_set(
        test_dir, args.target, keys=key_names, categories=category_names(challenger)
    )
    keys = read_keys(test_dir, key_names)
    choice = choose_champion(args, columns, challenger, scratch, sagemaker_client, s3_client)
    champion = choice.model

    thresholds = [model_threshold(challenger)]
    matrix = feature_matrix(challenger, columns, "challenger")
    scores = [scored(args, "challenger", challenger, matrix, y)]
    rows = ComparisonRows(None, "no champion")
    if champion is not None:
        thresholds.append(model_threshold(champion))
        scores.append(scored(args, "champion", champion, choice.matrix, y))
        rows = champion_rows(
            champion_split_rule(champion),
            challenger_rule,
            columns,
            keys,
            y.size,
            champion.feature_names,
            (champion.metadata.get(METADATA_KEY) or {}).get("feature_types"),
        )
    cut = [t.value for t in thresholds]
    points = [point_metrics(y, scores[0], cut[0])]
    # Every test row compared (the usual case): one bootstrap serves the report and the gate.
    compared_all = rows.keep is not None and bool(rows.keep.all())
    models = len(scores) if compared_all else 1
    samples = bootstrap(y, scores[:models], args.bootstrap_samples, args.seed, cut[:models])
    evidence = Evidence(
        challenger=float(points[0][rule.metric]),
        test=Counts(int(y.sum()), int(y.size - y.sum())),
        skipped=skipped_reason(choice, rows),
    )
    champion_section = comparison_extras = None
    compared = y
    if champion is not None and rows.keep is not None:
        keep = rows.keep
        compared = y[keep]
        pair = (scores[0][keep], scores[1][keep])
        pair_points = (
            point_metrics(compared, pair[0], cut[0]),
            point_metrics(compared, pair[1], cut[1]),
        )
        pair_samples = (
            (samples[0], samples[1])
            if compared_all
            else tuple(bootstrap(compared, list(pair), args.bootstrap_samples, args.seed, cut))
        )
        comparison, comparison_extras = compare_models(
            compared, pair_points, pair, pair_samples, rule.metric, rule.method
        )
        evidence = Evidence(evidence.challenger, evidence.test, comparison)
        points.append(pair_points[1])
        champion_section = quality_section(pair_points[1], pair_samples[1])
    verdict = decide(rule, evidence)

    report: dict[str, Any] = {
        METRICS_KEY: quality_section(points[0], samples[0]),
        CHAMPION_METRICS_KEY: champion_section,
        GATE_KEY: _gate_section(rule, evidence, verdict, champion, rows, comparison_extras),
        CALIBRATION_KEY: calibration_section(y, scores[0]),
        CHAMPION_CALIBRATION_KEY: (
            calibration_section(compared, scores[1][rows.keep])
            if champion is not None and rows.keep is not None
            else None
        ),
        BASELINE_KEY: majority_baseline(y),
        THRESHOLD_KEY: {
            "challenger": cut[0],
            "challenger_source": thresholds[0].source,
            "challenger_rule": challenger.metadata.get("decision_threshold_rule"),
            "champion": cut[1] if champion is not None else None,
            "champion_source": thresholds[1].source if champion is not None else None,
            "meaning": "predict 1 when the probability is at least the threshold",
        },
        DATA_SHIFT_KEY: data_shift_section(
            champion.metadata.get(METADATA_KEY) if champion else None,
            challenger_record,
            columns,
            y,
            champion is not None,
        ),
        "bootstrap_samples": args.bootstrap_samples,
        "challenger_source": challenger.source,
        "champion_source": champion.source if champion else None,
        LINEAGE_KEY: lineage_section(challenger, choice),
    }
    report[REGISTRY_KEY] = {
        REGISTRY_SPLIT_RULE: registry_text(
            summary(challenger_rule) if challenger_rule else "unknown: no training data record"
        ),
        REGISTRY_DECISION_THRESHOLD: repr(cut[0]),
        REGISTRY_DATA_SHIFT: registry_text(report[DATA_SHIFT_KEY]["summary"]),
        REGISTRY_CHAMPION_COMPARISON: registry_text(_comparison_text(champion, rows, evidence)),
    }
    output_dir = Path(args.output_dir)
    write_evaluation(output_dir, report)
    calibrations = [("challenger", report[CALIBRATION_KEY])]
    if report[CHAMPION_CALIBRATION_KEY]:
        calibrations.append(("champion", report[CHAMPION_CALIBRATION_KEY]))
    write_plots(
        output_dir,
        [("challenger", points[0])] + ([("champion", points[1])] if len(points) > 1 else []),
        cut[0],
        calibrations,
    )
    LOG.info("%s in %.1f s", verdict.reason, time.perf_counter() - started)
    return report


def skipped_reason(choice: ChampionChoice, rows: ComparisonRows) -> str | None:
    """Why a champion was not compared: it was left out (lineage), or no test row is one it
    never trained on (comparison_rows); None when it was compared or there was none. A
    champion of another problem type says which types (`champion_choice.comparable_champion`)."""
    if choice.model is None:
        if choice.comparison == ANOTHER_PROBLEM:
            return str(choice.details["reason"])
        return None if choice.comparison == CHAMPION_NONE else choice.comparison
    return rows.reason if rows.keep is None else None


def _comparison_text(champion: LoadedModel | None, rows: ComparisonRows, evidence: Evidence) -> str:
    """How the champion was compared, for the registry (its metadata values allow letters,
    digits, spaces and _ . : / = + - @ only)."""
    if evidence.comparison is None and evidence.skipped:
        return f"skipped: {evidence.skipped}"
    if champion is None:
        return "no champion"
    if evidence.comparison is None:
        return f"skipped: {rows.reason}"
    counts = evidence.comparison.counts
    excluded = rows.excluded
    return (
        f"compared rows={counts.rows} positives={counts.positives} "
        f"excluded_train={excluded.get('champion_train', 0)} "
        f"excluded_validation={excluded.get('champion_validation', 0)}"
    )


def _gate_section(
    rule: GateRule,
    evidence: Evidence,
    verdict: Verdict,
    champion: LoadedModel | None,
    rows: ComparisonRows,
    extras: dict[str, Any] | None,
) -> dict[str, Any]:
    """evaluation.json's gate section of a binary model."""
    compared = evidence.comparison.counts if evidence.comparison else None
    return gate_section(
        rule,
        evidence,
        verdict,
        champion,
        rows,
        extras,
        test_counts={
            "test_positives": evidence.test.positives,
            "test_negatives": evidence.test.negatives,
        },
        compared_counts={
            "positives": compared.positives if compared else None,
            "negatives": compared.negatives if compared else None,
        },
    )


def gate_section(
    rule: GateRule,
    evidence: Evidence,
    verdict: Verdict,
    champion: LoadedModel | None,
    rows: ComparisonRows,
    extras: dict[str, Any] | None,
    *,
    test_counts: dict[str, Any],
    compared_counts: dict[str, Any],
    head: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """evaluation.json's gate section of every problem type: `head` first (the type's own
    keys), the rule's inputs, the numbers and the decision, with the type's class counts of
    the test rows and of the rows compared (`gate_rule.from_section` reads the rule and
    evidence back)."""
    comparison = evidence.comparison
    section: dict[str, Any] = {
        **(head or {}),
        GATE_METRIC: rule.metric,
        "method": rule.method,
        "floor": rule.floor,
        "tolerance": rule.tolerance,
        "min_positives": rule.min_positives,
        GATE_CHALLENGER: evidence.challenger,
        GATE_CHAMPION: comparison.champion if comparison else None,
        GATE_HAS_CHAMPION: champion is not None,
        GATE_CHAMPION_ARN: champion.model_package_arn if champion else None,
        GATE_TEST_ROWS: evidence.test.rows,
        **test_counts,
        "comparison": {
            "compared": comparison is not None,
            "challenger": comparison.challenger if comparison else None,
            "rows": comparison.counts.rows if comparison else None,
            **compared_counts,
            "method": comparison.method if comparison else None,
            **rows.record(),
            "skipped": evidence.skipped,
        },
        # the improvement: challenger - champion, negated for a lower-is-better metric
        GATE_DELTA: comparison.delta if comparison else None,
        GATE_STANDARD_ERROR: comparison.se if comparison else None,
    }
    numbers = verdict.bounds or (
        bounds(comparison.delta, comparison.se, rule.tolerance) if comparison else {}
    )
    section[GATE_LOWER_BOUND] = numbers.get("lower_97_5")
    section[GATE_UPPER_BOUND] = numbers.get("upper_97_5")
    section["margin"] = numbers.get("margin")
    section["detectable_drop_80"] = numbers.get("detectable_drop_80")
    section.update(extras or {})
    section[GATE_DECISION] = verdict.decision
    section[GATE_REASON] = verdict.reason
    return section
