"""What the local run prints after the steps: the metrics table (challenger, and the champion on
the rows it was compared on), accuracy beside the always-majority baseline, calibration, the
decision thresholds, the data-shift flags, and the gate's decision with its reason."""

from __future__ import annotations

from typing import Any

from pipeline_code.steps import load

contract = load("evaluate", "evaluation_contract")
quality_metrics = load("evaluate", "quality_metrics")


def _cell(entry: dict[str, float]) -> str:
    return f"{entry['value']:.4f} ± {entry['standard_deviation']:.4f}"


problem_types = load("common", "problem_types")

#: The metrics a multi-class or regression report's table shows, by its section (the step
#: code's own section names and metric lists).
TYPED_SECTIONS = {
    problem: (load("evaluate", f"metrics_{problem}").SECTION, problem_types.METRICS[problem])
    for problem in (problem_types.MULTICLASS, problem_types.REGRESSION)
}


def _typed_table(evaluation: dict[str, Any], problem: str) -> str:
    name, metrics = TYPED_SECTIONS[problem]
    challenger, champion = evaluation[name], evaluation.get(f"champion_{name}")
    header = f"{'metric':<12} {'challenger':>22}" + (f" {'champion':>22}" if champion else "")
    lines = [f"problem type: {problem}", header, "-" * len(header)]
    for metric in metrics:
        row = f"{metric:<12} {_cell(challenger[metric]):>22}"
        if champion:
            row += f" {_cell(champion[metric]):>22}"
        lines.append(row)
    if problem == "multiclass":
        baseline = challenger["accuracy_best_constant_classifier"]["value"]
        lines.append(f"accuracy of always predicting the most frequent class: {baseline:.4f}")
        recalls = challenger.get("recall_per_class") or {}
        lines.append("recall per class: " + ", ".join(f"{c} {r:.3f}" for c, r in recalls.items()))
    return "\n".join(lines)


def metrics_table(evaluation: dict[str, Any]) -> str:
    """Challenger (and champion) metrics, value ± bootstrap standard deviation."""
    problem = evaluation.get("problem_type", "binary")
    if problem in TYPED_SECTIONS:
        return _typed_table(evaluation, problem)
    challenger = evaluation[contract.METRICS_KEY]
    champion = evaluation.get(contract.CHAMPION_METRICS_KEY)
    header = f"{'metric':<10} {'challenger':>20}" + (f" {'champion':>20}" if champion else "")
    lines = [header, "-" * len(header)]
    for metric in quality_metrics.SCALAR_METRICS:
        row = f"{metric:<10} {_cell(challenger[metric]):>20}"
        if champion:
            row += f" {_cell(champion[metric]):>20}"
        lines.append(row)
    baseline = evaluation.get(contract.BASELINE_KEY)
    if baseline:
        lines.append(
            f"{'accuracy of always predicting class ' + str(baseline['majority_class'])}: "
            f"{baseline['always_majority_accuracy']:.4f} (the baseline accuracy must beat)"
        )
    matrix = challenger["confusion_matrix"]
    lines.append(
        f"confusion matrix (actual/predicted): TN {matrix['0']['0']:,}  FP {matrix['0']['1']:,}"
        f"  FN {matrix['1']['0']:,}  TP {matrix['1']['1']:,}"
    )
    return "\n".join(lines)


def calibration_lines(evaluation: dict[str, Any]) -> list[str]:
    lines = []
    for label, key in (
        ("challenger", contract.CALIBRATION_KEY),
        ("champion", contract.CHAMPION_CALIBRATION_KEY),
    ):
        section = evaluation.get(key)
        if section:
            ece = section["expected_calibration_error"]
            lines.append(
                f"calibration ({label}): Brier {section['brier_score']:.4f} (base rate "
                f"{section['brier_score_base_rate']:.4f}), ECE {ece:.4f} ({section['ece_bins']} "
                f"{section['ece_scheme']} bins), mean p {section['mean_predicted']:.4f} vs "
                f"positive rate {section['positive_rate']:.4f}"
            )
    return lines


def threshold_lines(evaluation: dict[str, Any]) -> list[str]:
    section = evaluation.get(contract.THRESHOLD_KEY) or {}
    if not section:
        return []
    rule = section.get("challenger_rule")
    text = (
        f"decision threshold: predict 1 when p >= {section['challenger']:.4f} "
        f"({'chosen on validation: ' + str(rule) if rule else section['challenger_source']})"
    )
    if section.get("champion") is not None:
        text += f"; champion {section['champion']:.4f} ({section['champion_source']})"
    return [text]


def shift_lines(evaluation: dict[str, Any]) -> list[str]:
    section = evaluation.get(contract.DATA_SHIFT_KEY) or {}
    if not section:
        return []
    lines = [f"data shift vs the champion's training data: {section['summary']}"]
    for name in section.get("large", []) + section.get("moderate", []):
        stats = section.get("features", {}).get(name)
        if stats is None:
            balance = section["class_balance"]
            lines.append(
                f"  {name}: positive rate {balance['positive_rate_reference']:.4f} -> "
                f"{balance['positive_rate_new']:.4f}"
            )
            continue
        numbers = ", ".join(
            f"{key} {stats[key]:+.3f}" if key == "delta_p" else f"{key} {stats[key]:.3f}"
            for key in ("psi", "js", "ks", "delta_p")
            if stats.get(key) is not None
        )
        lines.append(f"  {name} ({stats['kind']}, {stats['level']}): {numbers}")
    return lines


def comparison_lines(evaluation: dict[str, Any]) -> list[str]:
    gate = evaluation.get(contract.GATE_KEY) or {}
    comparison = gate.get("comparison") or {}
    if not gate.get(contract.GATE_HAS_CHAMPION):
        return []
    return [f"comparison rows: {comparison.get('reason')}"]


def summary(evaluation: dict[str, Any]) -> str:
    """Everything after the metrics table, one finding per line."""
    lines = [
        *calibration_lines(evaluation),
        *threshold_lines(evaluation),
        *comparison_lines(evaluation),
        *shift_lines(evaluation),
    ]
    return "\n".join(lines)
