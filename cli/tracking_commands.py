"""`mlops runs compare A B` and `mlops runs backfill EXECUTION`: training runs side by side, and
logging a past execution to MLflow (see cli/runs/tracking.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.aws import CliError, command_ops, lambda_module
from cli.runs import tracking

commands = typer.Typer(
    name="runs",
    help="Training runs in MLflow: compare two, log a past one.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="Tracking server ARN or URL (default: the environment's tracking.mlflow server).",
    ),
]


@commands.command()
def compare(
    ctx: typer.Context,
    first: Annotated[str, typer.Argument(help="Execution id or ARN, or a package version (A).")],
    second: Annotated[str, typer.Argument(help="Execution id or ARN, or a package version (B).")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Print two runs side by side: parameters, metrics with B - A, gate, data and code."""
    ops = command_ops(ctx)
    enabled = tracking_uri is not None or ops.config.tracking.enabled
    client = (
        tracking.mlflow_client(ops, tracking.tracking_uri(ops, tracking_uri)) if enabled else None
    )
    rest = lambda_module("track_runs", "mlflow_rest")
    try:
        left = tracking.run_view(ops, first, client)
        right = tracking.run_view(ops, second, client)
    except rest.TrackingError as error:
        raise CliError(f"the tracking server: {error}") from error
    for line in tracking.side_by_side(left, right):
        typer.echo(line)


@commands.command()
def backfill(
    ctx: typer.Context,
    execution: Annotated[str, typer.Argument(help="Execution id or ARN, or a package version.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Log a finished execution as its one MLflow run (nothing twice) and tag its package."""
    ops = command_ops(ctx)
    client = tracking.mlflow_client(ops, tracking.tracking_uri(ops, tracking_uri))
    arn = tracking.resolve_execution(ops, execution)
    tracker = lambda_module("track_runs", "run_tracker")
    rest = lambda_module("track_runs", "mlflow_rest")
    try:
        logged, package = tracker.track_execution(
            ops.client("sagemaker"),
            ops.client("s3"),
            client,
            arn,
            # an external server's artifact store is not ours (a --tracking-uri one is the
            # operator's own, e.g. a local server)
            copy_artifacts=bool(tracking_uri) or ops.config.tracking.mlflow == "managed",
        )
    except tracker.NotFinishedError as error:
        raise CliError(f"{error}: backfill it once it has finished") from error
    except rest.TrackingError as error:
        raise CliError(f"the tracking server: {error}") from error
    what = "logged as run" if logged.logged_now else "already logged as run"
    typer.echo(f"{arn}: {what} {logged.run_id} (experiment {logged.experiment_id})")
    if package:
        typer.echo(f"{package}: tagged mlflow-run-id={logged.run_id}")
