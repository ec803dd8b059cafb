"""`mlops lineage`, `cost` and `diff-models`: where a model came from, what a run cost, and
how two versions compare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli import cost as cost_module
from cli import lineage as lineage_module
from cli import output, prediction_lineage, registry, runs
from cli.aws import CliError, command_ops
from cli.output import say

commands = typer.Typer()


@commands.command()
def lineage(
    ctx: typer.Context,
    package: Annotated[
        str | None, typer.Argument(help="Model package ARN or version; default: --endpoint.")
    ] = None,
    endpoint: Annotated[
        bool, typer.Option("--endpoint", help="Start from what the endpoint serves.")
    ] = False,
    predictions: Annotated[
        str | None,
        typer.Option(
            "--predictions",
            help="Batch serving: start from a prediction set, "
            "predictions/<dataset>/<version>/<model version>/<execution id>/.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Where a model came from: endpoint -> package -> execution -> steps -> data; or where a
    prediction set came from: scoring run -> model version -> training run -> data version."""
    ops = command_ops(ctx)
    if sum((bool(package), endpoint, predictions is not None)) > 1:
        raise CliError("give one of a package, --endpoint or --predictions")
    if predictions is not None:
        scored = prediction_lineage.trace_predictions(ops, predictions)
        if as_json:
            say(json.dumps(scored.as_dict(), indent=2, default=str))
            return
        output.prediction_set(scored)
        return
    link = None
    found: registry.Package | str
    if package:
        found = registry.resolve(ops, package)
    elif ops.config.serving.is_batch:
        # no endpoint: the package the next scoring runs use
        found = ops.serving_package_arn() or ""
        if not found:
            raise CliError(
                f"nothing is served: stack {ops.stack_name('serving')} has an empty "
                f"ModelPackageArn (approve a package of {ops.config.model_package_group_name})"
            )
    else:
        link, found = lineage_module.endpoint_link(ops)
    chain = lineage_module.trace(ops, found, link)
    if as_json:
        say(json.dumps(chain.as_dict(), indent=2, default=str))
        return
    output.lineage(chain)


@commands.command()
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
    ops = command_ops(ctx)
    table = cost_module.PriceTable.load(prices or cost_module.PRICES_FILE)
    arn = runs.check_execution(ops, execution)
    report = cost_module.Estimator(ops, table).estimate(arn)
    if as_json:
        say(json.dumps(report.as_dict(), indent=2))
        return
    output.cost(arn, report, table)


@commands.command("diff-models")
def diff_models(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="First package (ARN or version).")],
    b: Annotated[str, typer.Argument(help="Second package (ARN or version).")],
) -> None:
    """Metrics (from each package's evaluation report) and lineage of two versions side by side."""
    ops = command_ops(ctx)
    first, second = registry.resolve(ops, a), registry.resolve(ops, b)
    keys = registry.EvaluationKeys.load()
    metrics = [registry.read_metrics(ops, p, keys) for p in (first, second)]
    output.model_diff(first, second, metrics)
