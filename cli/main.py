"""`mlops`: operate the loop of one environment from a terminal.

    mlops [--env dev|staging|prod] COMMAND ...

The environment (account, region, names) comes from cdk.json, exactly as `cdk deploy -c env=...`
reads it; `--env` defaults to dev (or $MLOPS_ENV). Every command checks first that the AWS
credentials belong to the environment's account. Failures print one line (`Error: ...`) and
exit with status 1; `start --wait` exits 1 when the run fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cli import cost as cost_module
from cli import lineage as lineage_module
from cli import registry, runs
from cli.aws import Clients, CliError, Ops, model_deployer, translate_errors
from pipeline_code.definition import PARAM_DATASET_VERSION
from stacks.config import (
    ALL_ENVIRONMENTS,
    DEFAULT_ENVIRONMENT,
    EnvironmentConfig,
    load_config,
    read_cdk_json_context,
)


class _Group(TyperGroup):
    """Turns AWS and configuration failures anywhere in a command into one-line errors."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return translate_errors(lambda: super(_Group, self).invoke(ctx))
        except CliError as error:
            typer.echo(f"Error: {error.message}", err=True)
            raise typer.Exit(error.exit_code) from None


app = typer.Typer(
    cls=_Group,
    name="mlops",
    help="Operate the SageMaker MLOps loop of one environment (names and region from cdk.json).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Console-script entry point (`mlops`)."""
    app(prog_name="mlops")


# ---- plumbing ----------------------------------------------------------------------------


def _ops(ctx: typer.Context) -> Ops:
    ops = ctx.obj
    assert isinstance(ops, Ops), "the root callback builds the Ops"
    return ops


def build_ops(env: str, clients: Clients | None = None) -> Ops:
    """The environment `env` of cdk.json with clients in its region (or the given ones)."""
    context = read_cdk_json_context()
    environments = context.get("environments", {})
    known = ", ".join(sorted(environments))
    if env == ALL_ENVIRONMENTS:
        raise CliError(
            f"--env {ALL_ENVIRONMENTS} is for `cdk synth`; the CLI works on one environment: "
            f"{known}"
        )
    if env not in environments:
        raise CliError(f"--env {env!r} is not an environment of cdk.json: one of {known}")
    config: EnvironmentConfig = load_config(env)
    accounts = {
        str(block.get("account")): name
        for name, block in environments.items()
        if isinstance(block, dict) and block.get("account")
    }
    return Ops(config, clients or Clients(config.region), accounts)


def _say(line: str = "") -> None:
    typer.echo(line)


def _note(line: str) -> None:
    """Progress and hints go to stderr, so stdout stays parseable."""
    typer.echo(line, err=True)


def _when(value: datetime | None) -> str:
    if not isinstance(value, datetime):
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M")


def _table(rows: Sequence[Sequence[str]], emit: Callable[[str], None] = _say) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        emit("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _usd(value: float) -> str:
    return f"${value:.4f}"


@app.callback()
def root(
    ctx: typer.Context,
    env: Annotated[
        str,
        typer.Option(
            "--env",
            "-e",
            envvar="MLOPS_ENV",
            help="Environment of cdk.json (dev, staging, prod).",
            show_default=True,
        ),
    ] = DEFAULT_ENVIRONMENT,
) -> None:
    """Operate the SageMaker MLOps loop of one environment."""
    ctx.obj = build_ops(env, ctx.obj if isinstance(ctx.obj, Clients) else None)


# ---- status / start ----------------------------------------------------------------------


PipelineOption = Annotated[
    runs.Pipeline,
    typer.Option(
        "--pipeline",
        "-p",
        help="training (landing/ -> register) or evaluation (ground-truth/ -> score the "
        "production model, register nothing).",
    ),
]


@app.command()
def status(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many executions.")] = 5,
    pipeline: PipelineOption = runs.Pipeline.TRAINING,
) -> None:
    """Recent executions of a pipeline (default: training) with the state of each step."""
    ops = _ops(ctx)
    executions = runs.recent(ops, limit, pipeline=pipeline)
    name = pipeline.name_in(ops)
    if not executions:
        _say(
            f"pipeline {name} has no executions yet "
            f"(`mlops start --pipeline {pipeline} --latest` starts one)"
        )
        return
    _say(f"pipeline {name} ({ops.config.region}), newest first:")
    for execution in executions:
        version = execution.parameters.get(PARAM_DATASET_VERSION, "-")
        _say(
            f"{_when(execution.started)}  {execution.status:<10} {execution.execution_id}  "
            f"{version}  {execution.display_name}".rstrip()
        )
        if execution.steps:
            _say("    " + "  ".join(step.label for step in execution.steps))
        for step in execution.steps:
            if step.failure:
                _say(f"    {step.name} failed: {step.failure}")
        if execution.failure and not any(step.failure for step in execution.steps):
            _say(f"    failed: {execution.failure}")


@app.command()
def start(
    ctx: typer.Context,
    version: Annotated[
        str | None, typer.Argument(help="Dataset version DATASET/VERSION (as under landing/).")
    ] = None,
    latest: Annotated[
        bool, typer.Option("--latest", help="Retrain on the newest started dataset version.")
    ] = False,
    rerun: Annotated[
        bool,
        typer.Option(
            "--rerun",
            help="With DATASET/VERSION: run a version that already ran again, on its recorded "
            "data and digest.",
        ),
    ] = False,
    dataset: Annotated[
        str | None, typer.Option(help="With --latest: the newest version of this dataset.")
    ] = None,
    request_id: Annotated[
        str | None,
        typer.Option(
            help="With --latest or --rerun: idempotency key (1-256 characters); repeat it to "
            "retry without a 2nd run. Default: a new one per command."
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it ends.")] = False,
    poll_seconds: Annotated[
        float, typer.Option(min=0, help="With --wait: seconds between polls.")
    ] = 30.0,
    timeout_minutes: Annotated[
        float, typer.Option(min=1, help="With --wait: give up after this many minutes.")
    ] = 360.0,
    pipeline: PipelineOption = runs.Pipeline.TRAINING,
    model_package: Annotated[
        str | None,
        typer.Option(
            help="With --pipeline evaluation and --latest or --rerun: score this model package "
            "(ARN, or a version number of this environment's group) instead of the production "
            "model."
        ),
    ] = None,
) -> None:
    """Start a run through the pipeline's trigger Lambda (its ledger records it).

    Training (default) trains on a dataset version under landing/; `--pipeline evaluation`
    scores the production model (or --model-package) on a labelled version under ground-truth/.
    """
    ops = _ops(ctx)
    if bool(version) == latest:
        raise CliError("give either a dataset version (DATASET/VERSION) or --latest")
    if rerun and not version:
        raise CliError("--rerun re-runs one dataset version: give DATASET/VERSION, not --latest")
    if version and dataset:
        raise CliError("--dataset goes with --latest only")
    if version and request_id is not None and not rerun:
        raise CliError("--request-id goes with --latest or --rerun")
    if model_package and pipeline is not runs.Pipeline.EVALUATION:
        raise CliError("--model-package goes with --pipeline evaluation (training scores none)")
    if model_package and version and not rerun:
        raise CliError(
            "--model-package goes with --latest or --rerun: a version's marker scores the "
            "production model"
        )
    # Checked before any AWS call: a typo costs nothing.
    target = "/".join(runs.parse_dataset_version(version)) if version else ""
    package_arn = registry.resolve(ops, model_package).arn if model_package else None
    payload: dict[str, Any] | None = None
    if rerun:
        payload = runs.rerun_request(target, request_id, package_arn)
        what = (
            f"re-run dataset version {target} (request id {payload['request_id']}; repeat it "
            "with --request-id to retry without a 2nd run)"
        )
    elif latest:
        payload = runs.retrain_request(request_id, dataset, package_arn)
        what = (
            "retrain on the newest dataset version"
            if pipeline is runs.Pipeline.TRAINING
            else "evaluate on the newest labelled dataset version"
        )
    if package_arn:
        what += f", scoring {package_arn}"
    function = ops.stack_output("training", pipeline.function_output)
    if payload is None:
        payload = runs.version_request(ops, function, target)
        what = f"start dataset version {target}"
    _note(f"asking {function} to {what} ...")
    result = runs.invoke_start(ops, function, payload)
    if not result.ok:
        raise CliError(f"nothing started ({result.outcome}: {result.reason}): {result.message}")
    if target and not rerun and result.outcome == runs.DUPLICATE and result.execution_arn:
        execution_id = result.execution_arn.rsplit("/", 1)[-1]
        _say(f"{target} already ran as {execution_id}; use --rerun to run it again")
    else:
        headline = {
            runs.STARTED: "started",
            runs.DUPLICATE: "already started, nothing new",
            runs.DEFERRED: "queued",
            runs.PENDING: "pending",
        }[result.outcome]
        _say(f"{headline}: {result.message}")
    if result.execution_arn:
        _say(f"execution: {result.execution_arn}")
    if result.rerun_of and result.outcome == runs.STARTED:
        _note(f"re-run of {result.rerun_of}")
    if not wait:
        return
    if not result.execution_arn:
        _note("nothing to wait for yet: follow it with `mlops status`")
        return
    final = runs.wait(
        ops,
        result.execution_arn,
        report=_note,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_minutes * 60,
    )
    _say(f"execution {final}")
    if final != "Succeeded":
        raise typer.Exit(1)


# ---- registry ----------------------------------------------------------------------------


class ApprovalStatus(StrEnum):
    APPROVED = registry.APPROVED
    REJECTED = registry.REJECTED
    PENDING = registry.PENDING


@app.command()
def models(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many versions.")] = 20,
    status: Annotated[
        ApprovalStatus | None,
        typer.Option("--status", help="Only versions with this approval status."),
    ] = None,
) -> None:
    """Model package versions with approval status, lifecycle stage and key metric."""
    ops = _ops(ctx)
    approval = status.value if status else None
    packages = registry.list_packages(ops, limit, approval)
    group = ops.config.model_package_group_name
    if not packages:
        _say(f"no model packages in {group}" + (f" with status {approval}" if approval else ""))
        return
    serving = ops.serving_package_arn(required=False)
    rows = [["", "VERSION", "APPROVAL", "STAGE", "METRIC", "DATASET", "CREATED"]]
    for p in packages:
        rows.append(
            [
                "*" if p.arn == serving else "",
                str(p.version),
                p.approval,
                p.stage,
                p.key_metric,
                p.metadata.get(registry.META_DATASET_VERSION, "-"),
                _when(p.created),
            ]
        )
    _say(f"{group} ({ops.config.region}), newest first; * = serving:")
    _table(rows)


def _next_step_after_approval(ops: Ops, package: registry.Package) -> None:
    serving = ops.stack_name("serving")
    if ops.config.serving.deploy_on == "approval":
        _note(
            f"the deploy handler now updates {serving} to version {package.version} "
            f"(blue/green); follow it with `mlops --env {ops.config.name} lineage --endpoint`"
        )
    else:
        _note(
            f"env {ops.config.name} deploys on promotion: `mlops --env {ops.config.name} "
            f"promote {package.version}` puts it in production"
        )


@app.command()
def approve(
    ctx: typer.Context,
    package: Annotated[str, typer.Argument(help="Model package ARN or version number.")],
    reason: Annotated[str, typer.Option(help="Why (stored as the ApprovalDescription).")],
) -> None:
    """Approve a model package version (in dev/staging this deploys it)."""
    ops = _ops(ctx)
    found = registry.resolve(ops, package)
    if not registry.set_approval(ops, found, registry.APPROVED, reason):
        _say(f"version {found.version} is already {registry.APPROVED} (nothing changed)")
        return
    _say(f"version {found.version}: {found.approval} -> {registry.APPROVED}")
    _next_step_after_approval(ops, found)


@app.command()
def reject(
    ctx: typer.Context,
    package: Annotated[str, typer.Argument(help="Model package ARN or version number.")],
    reason: Annotated[str, typer.Option(help="Why (stored as the ApprovalDescription).")],
) -> None:
    """Reject a model package version."""
    ops = _ops(ctx)
    found = registry.resolve(ops, package)
    if not registry.set_approval(ops, found, registry.REJECTED, reason):
        _say(f"version {found.version} is already {registry.REJECTED} (nothing changed)")
        return
    _say(f"version {found.version}: {found.approval} -> {registry.REJECTED}")
    if ops.serving_package_arn(required=False) == found.arn:
        _note(
            f"warning: version {found.version} is still serving on {ops.config.prefix}-endpoint; "
            f"rejecting does not undeploy it: `mlops --env {ops.config.name} rollback --reason ...`"
        )


@app.command()
def promote(
    ctx: typer.Context,
    package: Annotated[str, typer.Argument(help="Model package ARN or version number.")],
    reason: Annotated[
        str | None, typer.Option(help="Why (stored as the lifecycle StageDescription).")
    ] = None,
) -> None:
    """Promote an Approved version to Production (in prod this deploys it)."""
    ops = _ops(ctx)
    found = registry.resolve(ops, package)
    if ops.config.serving.deploy_on != "promotion":
        _note(
            f"warning: env {ops.config.name} deploys on approval, not promotion: this only "
            "records the lifecycle stage and deploys nothing"
        )
    if not registry.promote(ops, found, reason):
        _say(f"version {found.version} is already promoted (Production/Approved)")
        return
    before = found.stage if found.life_cycle else "none"
    _say(f"version {found.version}: lifecycle {before} -> Production/Approved")
    if ops.config.serving.deploy_on == "promotion":
        _note(
            f"the deploy handler now updates {ops.stack_name('serving')} to version "
            f"{found.version} (blue/green); follow it with `mlops --env {ops.config.name} "
            "lineage --endpoint`"
        )


@app.command()
def rollback(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why (goes to the deploy handler's logs).")],
    to: Annotated[
        str | None,
        typer.Option(help="Package ARN or version to deploy; default: the previous approved one."),
    ] = None,
) -> None:
    """Ask the deploy handler to deploy an earlier approved version."""
    ops = _ops(ctx)
    deployer = model_deployer()
    reason = registry.check_reason(reason)
    group = ops.config.model_package_group_name
    promotion = ops.config.serving.deploy_on == "promotion"
    current_arn = ops.serving_package_arn()
    if not current_arn:
        raise CliError(f"nothing is deployed on {ops.config.prefix}-endpoint: nothing to roll back")
    current = registry.describe(ops, current_arn)
    if to:
        target = registry.resolve(ops, to)
        if target.approval != registry.APPROVED or (promotion and not target.promoted):
            need = "Approved and promoted" if promotion else "Approved"
            raise CliError(
                f"version {target.version} is {target.approval} ({target.stage}); the deploy "
                f"handler only rolls back to {need} versions"
            )
    else:
        try:
            target_arn = deployer.find_previous_approved(
                ops.client("sagemaker"), group, current_arn, require_promotion=promotion
            )
        except ValueError as error:
            raise CliError(str(error)) from error
        if target_arn is None:
            need = "approved and promoted" if promotion else "approved"
            raise CliError(
                f"no {need} version older than the serving version {current.version}: nothing "
                "to roll back to"
            )
        target = registry.describe(ops, target_arn)
    if target.arn == current_arn:
        raise CliError(f"version {target.version} is already serving")
    try:
        event_id = deployer.request_rollback(
            ops.client("events"),
            reason,
            model_package_arn=target.arn,
            model_package_group_name=group,
        )
    except (ValueError, deployer.DeployError) as error:
        raise CliError(str(error)) from error
    _say(f"rollback requested (event {event_id}): version {current.version} -> {target.version}")
    _note(
        f"the deploy handler now updates {ops.stack_name('serving')} (blue/green); follow it "
        f"with `mlops --env {ops.config.name} lineage --endpoint`"
    )


# ---- lineage / cost / diff ---------------------------------------------------------------


@app.command()
def lineage(
    ctx: typer.Context,
    package: Annotated[
        str | None, typer.Argument(help="Model package ARN or version; default: --endpoint.")
    ] = None,
    endpoint: Annotated[
        bool, typer.Option("--endpoint", help="Start from what the endpoint serves.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Where a model came from: endpoint -> package -> execution -> steps -> data."""
    ops = _ops(ctx)
    if package and endpoint:
        raise CliError("give a package or --endpoint, not both")
    link = None
    found: registry.Package | str
    if package:
        found = registry.resolve(ops, package)
    else:
        link, found = lineage_module.endpoint_link(ops)
    chain = lineage_module.trace(ops, found, link)
    if as_json:
        _say(json.dumps(chain.as_dict(), indent=2, default=str))
        return
    _print_lineage(chain)


def _print_lineage(chain: lineage_module.Lineage) -> None:
    p = chain.package
    if chain.endpoint:
        e = chain.endpoint
        _say(f"endpoint   {e.name} ({e.status}), deployed by stack {e.stack}")
    _say(f"package    version {p.version} of {p.group}: {p.approval}, stage {p.stage}")
    _say(f"           {p.arn}")
    if p.approval_description:
        _say(f"           approval: {p.approval_description}")
    _say(f"           model data {p.model_data_url or '-'}")
    _say(f"           image {p.image or '-'}")
    for key in sorted(p.metadata_properties):
        _say(f"           {key}: {p.metadata_properties[key]}")
    for key in sorted(p.metadata):
        _say(f"           {key} = {p.metadata[key]}")
    x = chain.execution
    if x:
        _say(f"execution  {x.arn}")
        _say(f"           {x.status}, started {_when(x.started)}, {x.display_name or '-'}")
        if x.failure:
            _say(f"           failed: {x.failure}")
        for name in sorted(chain.parameters):
            _say(f"           {name} = {chain.parameters[name]}")
    if chain.steps:
        _say("steps")
        for step in chain.steps:
            source = f" (cache hit of {step.cache_source})" if step.cache_source else ""
            job = f" {step.job_kind} {step.job_arn}" if step.job_arn else ""
            _say(f"           {step.name:<10} {step.status}{job}{source}")
            if step.failure:
                _say(f"           {'':<10} {step.failure}")
    if chain.data:
        d = chain.data
        _say(f"data       {d.input_uri or '-'}")
        _say(f"           dataset version {d.dataset_version or '-'}")
        _say(f"           data digest {d.data_digest or '-'}")
    for warning in chain.warnings:
        _note(f"warning: {warning}")


@app.command()
def cost(
    ctx: typer.Context,
    execution: Annotated[str, typer.Argument(help="Pipeline execution ARN or execution id.")],
    prices: Annotated[
        Path | None,
        typer.Option(help="Price table JSON (default: the pinned cli/prices.json)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Estimate a run's compute cost, spot savings and cache savings (on-demand USD)."""
    ops = _ops(ctx)
    table = cost_module.PriceTable.load(prices or cost_module.PRICES_FILE)
    arn = runs.check_execution(ops, execution)
    report = cost_module.Estimator(ops, table).estimate(arn)
    if as_json:
        _say(json.dumps(report.as_dict(), indent=2))
        return
    _say(f"execution {arn}")
    _say(
        f"on-demand USD in {report.region}, prices compiled {table.compiled} "
        f"({table.path.name}); compute only"
    )
    rows = [["STEP", "STATUS", "JOB", "INSTANCE", "N", "RUN s", "BILLED s", "USD", "NOTE"]]
    for s in report.steps:
        u = s.usage
        note = s.note
        if s.spot_savings:
            note = f"spot saved {_usd(s.spot_savings)}" + (f"; {note}" if note else "")
        if s.cache_saved is not None:
            note = f"cache hit, saved {_usd(s.cache_saved)}"
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
                _usd(s.cost) if (u and s.rate is not None) or s.cache_source else "-",
                note,
            ]
        )
    _table(rows)
    hits = report.cache_hits
    saved = f"saved {_usd(report.cache_saved)}"
    if report.cache_saved_unknown:
        saved += f" + {report.cache_saved_unknown} step(s) not estimated"
    _say(
        f"total {_usd(report.total)}; spot savings {_usd(report.spot_savings)}; "
        f"cache hits {len(hits)}" + (f" ({saved})" if hits else "")
    )
    if report.unpriced:
        _note(
            f"warning: {len(report.unpriced)} step(s) without a price are not in the total: "
            f"{', '.join(s.step for s in report.unpriced)} (add them to the price table)"
        )


@app.command("diff-models")
def diff_models(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="First package (ARN or version).")],
    b: Annotated[str, typer.Argument(help="Second package (ARN or version).")],
) -> None:
    """Metrics (from each package's evaluation report) and lineage of two versions side by side."""
    ops = _ops(ctx)
    first, second = registry.resolve(ops, a), registry.resolve(ops, b)
    keys = registry.EvaluationKeys.load()
    metrics = [registry.read_metrics(ops, p, keys) for p in (first, second)]
    names = sorted(set(metrics[0].values) | set(metrics[1].values))
    rows = [["", f"v{first.version}", f"v{second.version}", "DELTA"]]
    for name in names:
        x, y = metrics[0].values.get(name), metrics[1].values.get(name)
        delta = f"{y - x:+.4f}" if x is not None and y is not None else "-"
        rows.append([name, _fmt(x), _fmt(y), delta])
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
        ("created", lambda p: _when(p.created)),
    ):
        values = [get(first), get(second)]
        rows.append([label, *values, "same" if values[0] == values[1] else "differs"])
    _table(rows)
    for package, m in zip((first, second), metrics, strict=True):
        if m.problem:
            _note(
                f"warning: version {package.version}: evaluation report not read ({m.problem}); "
                "showing the gate metric from its metadata"
            )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
