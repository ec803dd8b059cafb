"""What a run prints at the end: the step table (name, type, status, time, cache), each
Condition's decision with its operands, what Evaluate's report says (metrics beside the
always-majority baseline, calibration, threshold, data shift), and the execution's outcome
with the failed step's reason as SageMaker shows it (a Fail step's reason is its rendered
ErrorMessage)."""

from __future__ import annotations

from pipeline_code.local_pipeline.definition import Pipeline
from pipeline_code.local_pipeline.execution import FAILED, NOT_STARTED, ExecutionResult

_COLUMNS = ("step", "type", "status", "time", "cache")


def step_table(result: ExecutionResult) -> str:
    rows = [
        (
            r.name,
            r.type,
            r.status,
            f"{r.seconds:.1f} s" if r.status != NOT_STARTED and r.seconds else "",
            r.cache,
        )
        for r in result.steps
    ]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(_COLUMNS, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def decisions(result: ExecutionResult, pipeline: Pipeline) -> list[str]:
    """One block per Condition step that ran: outcome, the branch taken, every condition."""
    lines = []
    for name, decision in result.decisions.items():
        branch = "IfSteps" if decision.outcome else "ElseSteps"
        taken = [
            s.name for s in pipeline.steps.values() if s.condition == name and s.branch == branch
        ]
        verdict = str(decision.outcome).lower()
        lines.append(f"{name}: {verdict} -> {branch} ({', '.join(taken) or 'no steps'})")
        lines += [f"  {line}" for line in decision.lines]
    return lines


def outcome(result: ExecutionResult) -> list[str]:
    if result.status != FAILED:
        return [f"execution {result.execution_id}: {result.status}"]
    failed = result.record(result.failed_step)
    return [
        f"execution {result.execution_id}: Failed ({result.failure_reason})",
        f"{failed.name} ({failed.type}) FailureReason: {failed.reason}",
    ]


def evaluation_reports(result: ExecutionResult) -> list[str]:
    """One block per evaluation report read (a property file with the model-quality layout)."""
    from pipeline_code.local_report import contract, metrics_table, summary

    blocks = []
    for name, content in result.property_files.items():
        if not (
            isinstance(content, dict)
            and (contract.METRICS_KEY in content or "problem_type" in content)
        ):
            continue
        lines = [f"{name}:", metrics_table(content), summary(content)]
        gate = content.get(contract.GATE_KEY)
        if isinstance(gate, dict) and gate.get(contract.GATE_REASON):
            lines.append(f"gate decision: {gate[contract.GATE_REASON]}")
        blocks.append("\n".join(line for line in lines if line))
    return blocks


def render(result: ExecutionResult, pipeline: Pipeline) -> str:
    parts = [step_table(result)]
    parts += evaluation_reports(result)
    gate = decisions(result, pipeline)
    if gate:
        parts.append("\n".join(gate))
    notes = [f"{r.name}: {note}" for r in result.steps for note in r.notes]
    if notes:
        parts.append("\n".join(notes))
    parts.append("\n".join(outcome(result)))
    return "\n\n".join(parts)
