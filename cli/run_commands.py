"""`mlops status` and `mlops start`: a pipeline's recent runs, and starting one through its
trigger Lambda (optionally following it to the end)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import registry, runs
from cli.aws import CliError, command_ops
from cli.output import executions, note, say

commands = typer.Typer()

PipelineOption = Annotated[
    runs.Pipeline,
    typer.Option(
        "--pipeline",
        "-p",
        help="training (landing/ -> register), evaluation (ground-truth/ -> score the "
        "production model, register nothing) or, in batch serving, scoring (score/ -> "
        "predictions/).",
    ),
]


@commands.command()
def status(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many executions.")] = 5,
    pipeline: PipelineOption = runs.Pipeline.TRAINING,
) -> None:
    """Recent executions of a pipeline (default: training) with the state of each step."""
    ops = command_ops(ctx)
    found = runs.recent(ops, limit, pipeline=pipeline)
    name = pipeline.name_in(ops)
    if not found:
        say(
            f"pipeline {name} has no executions yet "
            f"(`mlops start --pipeline {pipeline} --latest` starts one)"
        )
        return
    say(f"pipeline {name} ({ops.config.region}), newest first:")
    executions(found)


@commands.command()
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
    ops = command_ops(ctx)
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
    source = ops.config.promotion.receives_from
    if pipeline is runs.Pipeline.TRAINING and source is not None:
        raise CliError(
            f"{ops.config.name} trains nothing (promotion.mode promote): its models are copies "
            f"of those {source.name} approves; train in {source.name} (`mlops --env "
            f"{source.name} start ...`) or evaluate here with --pipeline evaluation"
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
        what = {
            runs.Pipeline.TRAINING: "retrain on the newest dataset version",
            runs.Pipeline.EVALUATION: "evaluate on the newest labelled dataset version",
            runs.Pipeline.SCORING: "score the newest scoring dataset version",
        }[pipeline]
    if package_arn:
        what += f", scoring {package_arn}"
    function = ops.stack_output("training", pipeline.function_output)
    if payload is None:
        payload = runs.version_request(ops, function, target)
        what = f"start dataset version {target}"
    note(f"asking {function} to {what} ...")
    result = runs.invoke_start(ops, function, payload)
    if not result.ok:
        raise CliError(f"nothing started ({result.outcome}: {result.reason}): {result.message}")
    if target and not rerun and result.outcome == runs.DUPLICATE and result.execution_arn:
        execution_id = result.execution_arn.rsplit("/", 1)[-1]
        say(f"{target} already ran as {execution_id}; use --rerun to run it again")
    else:
        headline = {
            runs.STARTED: "started",
            runs.DUPLICATE: "already started, nothing new",
            runs.DEFERRED: "queued",
            runs.PENDING: "pending",
        }[result.outcome]
        say(f"{headline}: {result.message}")
    if result.execution_arn:
        say(f"execution: {result.execution_arn}")
    if result.rerun_of and result.outcome == runs.STARTED:
        note(f"re-run of {result.rerun_of}")
    if not wait:
        return
    if not result.execution_arn:
        note("nothing to wait for yet: follow it with `mlops status`")
        return
    final = runs.wait(
        ops,
        result.execution_arn,
        report=note,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_minutes * 60,
    )
    say(f"execution {final}")
    if final != "Succeeded":
        raise typer.Exit(1)
