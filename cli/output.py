"""How the CLI prints: results on stdout (parseable), progress and hints on stderr; tables,
times, money, and the longer reports (runs, models, lineage, cost, model diffs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import typer

from cli import cost as cost_module
from cli import lineage as lineage_module
from cli import prediction_lineage, registry
from cli.runs import Execution
from pipeline_code.definition import PARAM_DATASET_VERSION


def say(line: str = "") -> None:
    typer.echo(line)


def note(line: str) -> None:
    """Progress and hints go to stderr, so stdout stays parseable."""
    typer.echo(line, err=True)


def when(value: datetime | None) -> str:
    if not isinstance(value, datetime):
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M")


def table(rows: Sequence[Sequence[str]], emit: Callable[[str], None] = say) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        emit("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def usd(value: float) -> str:
    return f"${value:.4f}"


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def executions(found: list[Execution]) -> None:
    """Each execution on one line, then its steps' states and any failure."""
    for execution in found:
        version = execution.parameters.get(PARAM_DATASET_VERSION, "-")
        say(
            f"{when(execution.started)}  {execution.status:<10} {execution.execution_id}  "
            f"{version}  {execution.display_name}".rstrip()
        )
        if execution.steps:
            say("    " + "  ".join(step.label for step in execution.steps))
        for step in execution.steps:
            if step.failure:
                say(f"    {step.name} failed: {step.failure}")
        if execution.failure and not any(step.failure for step in execution.steps):
            say(f"    failed: {execution.failure}")


def packages(found: list[registry.Package], serving: str | None) -> None:
    """A table of model package versions; `*` marks the serving one, NOTE says "rolled back"
    (with when and why) for a package whose deployment rolled back."""
    rows = [["", "VERSION", "APPROVAL", "STAGE", "METRIC", "DATASET", "CREATED", "NOTE"]]
    for p in found:
        rows.append(
            [
                "*" if p.arn == serving else "",
                str(p.version),
                p.approval,
                p.stage,
                p.key_metric,
                p.metadata.get(registry.META_DATASET_VERSION, "-"),
                when(p.created),
                p.rolled_back or "",
            ]
        )
    table(rows)


def lineage(chain: lineage_module.Lineage) -> None:
    p = chain.package
    if chain.endpoint:
        e = chain.endpoint
        say(f"endpoint   {e.name} ({e.status}), deployed by stack {e.stack}")
    say(f"package    version {p.version} of {p.group}: {p.approval}, stage {p.stage}")
    say(f"           {p.arn}")
    if p.approval_description:
        say(f"           approval: {p.approval_description}")
    say(f"           model data {p.model_data_url or '-'}")
    say(f"           image {p.image or '-'}")
    for key in sorted(p.metadata_properties):
        say(f"           {key}: {p.metadata_properties[key]}")
    for key in sorted(p.metadata):
        say(f"           {key} = {p.metadata[key]}")
    if chain.execution:
        _execution("execution", chain.execution, chain.parameters)
    if chain.steps:
        say("steps")
        for step in chain.steps:
            source = f" (cache hit of {step.cache_source})" if step.cache_source else ""
            job = f" {step.job_kind} {step.job_arn}" if step.job_arn else ""
            say(f"           {step.name:<10} {step.status}{job}{source}")
            if step.job_kind == "tuning" and chain.best_training_job:
                say(f"           {'':<10} best training job {chain.best_training_job}")
            if step.failure:
                say(f"           {'':<10} {step.failure}")
    if chain.data:
        d = chain.data
        say(f"data       {d.input_uri or '-'}")
        say(f"           dataset version {d.dataset_version or '-'}")
        say(f"           data digest {d.data_digest or '-'}")
    for warning in chain.warnings:
        note(f"warning: {warning}")


def _execution(label: str, x: lineage_module.ExecutionLink, parameters: dict[str, str]) -> None:
    """A pipeline execution under `label`: ARN, status, start, name, failure, parameters."""
    say(f"{label:<10} {x.arn}")
    say(f"           {x.status}, started {when(x.started)}, {x.display_name or '-'}")
    if x.failure:
        say(f"           failed: {x.failure}")
    for name in sorted(parameters):
        say(f"           {name} = {parameters[name]}")


def prediction_set(found: prediction_lineage.PredictionSet) -> None:
    ref, marker = found.ref, found.marker
    say(f"predictions {found.uri}")
    say(f"           dataset version {ref.dataset_version}, model version {ref.model_version}")
    if marker is not None:
        say(f"           complete (_SUCCESS): {marker.get('transform_job', '-')}")
        say(f"           created {marker.get('created_at', '-')}, completed "
            f"{marker.get('completed_at', '-')}")  # fmt: skip
    if found.scoring:
        _execution("scoring", found.scoring, found.parameters)
        for step in found.steps:
            job = f" {step.job_kind} {step.job_arn}" if step.job_arn else ""
            say(f"           {step.name:<10} {step.status}{job}")
    for warning in found.warnings:
        note(f"warning: {warning}")
    if found.model is not None:
        lineage(found.model)


def cost(arn: str, report: cost_module.CostReport, prices: cost_module.PriceTable) -> None:
    say(f"execution {arn}")
    say(
        f"on-demand USD in {report.region}, prices compiled {prices.compiled} "
        f"({prices.path.name}); compute only"
    )
    rows = [["STEP", "STATUS", "JOB", "INSTANCE", "N", "RUN s", "BILLED s", "USD", "NOTE"]]
    for s in report.steps:
        u = s.usage
        remark = s.note
        if s.spot_savings:
            remark = f"spot saved {usd(s.spot_savings)}" + (f"; {remark}" if remark else "")
        if s.cache_saved is not None:
            remark = f"cache hit, saved {usd(s.cache_saved)}"
        kind = (s.kind or "-") + (" (spot)" if u and u.spot else "")
        rows.append(
            [
                s.step,
                s.status,
                kind,
                (u.instance_type or "-") if u else "-",
                str(u.instance_count) if u else "-",
                f"{u.run_seconds:.0f}" if u else "-",
                f"{u.billed_seconds:.0f}" if u else "-",
                usd(s.cost) if (u and s.rate is not None) or s.cache_source else "-",
                remark,
            ]
        )
    table(rows)
    hits = report.cache_hits
    saved = f"saved {usd(report.cache_saved)}"
    if report.cache_saved_unknown:
        saved += f" + {report.cache_saved_unknown} step(s) not estimated"
    say(
        f"total {usd(report.total)}; spot savings {usd(report.spot_savings)}; "
        f"cache hits {len(hits)}" + (f" ({saved})" if hits else "")
    )
    if report.unpriced:
        note(
            f"warning: {len(report.unpriced)} step(s) without a price are not in the total: "
            f"{', '.join(s.step for s in report.unpriced)} (add them to the price table)"
        )


def model_diff(
    first: registry.Package, second: registry.Package, metrics: list[registry.Metrics]
) -> None:
    """Metrics and lineage of two versions side by side, with the delta or whether they differ."""
    names = sorted(set(metrics[0].values) | set(metrics[1].values))
    rows = [["", f"v{first.version}", f"v{second.version}", "DELTA"]]
    for name in names:
        x, y = metrics[0].values.get(name), metrics[1].values.get(name)
        delta = f"{y - x:+.4f}" if x is not None and y is not None else "-"
        rows.append([name, number(x), number(y), delta])
    rows.append(
        ["test rows"]
        + [str(m.test_rows) if m.test_rows is not None else "-" for m in metrics]
        + ["-"]
    )
    for label, get in (
        ("approval", lambda p: p.approval),
        ("stage", lambda p: p.stage),
        ("dataset", lambda p: p.metadata.get(registry.META_DATASET_VERSION, "-")),
        ("data digest", lambda p: p.metadata.get(registry.META_DATA_DIGEST, "-")),
        ("code commit", lambda p: p.metadata.get(registry.META_CODE_COMMIT, "-")),
        ("created", lambda p: when(p.created)),
    ):
        values = [get(first), get(second)]
        rows.append([label, *values, "same" if values[0] == values[1] else "differs"])
    table(rows)
    for package, m in zip((first, second), metrics, strict=True):
        if m.problem:
            note(
                f"warning: version {package.version}: evaluation report not read ({m.problem}); "
                "showing the gate metric from its metadata"
            )
