"""`mlops`: operate the loop of one environment from a terminal.

    mlops [--env dev|staging|prod] COMMAND ...

The environment (account, region, names) comes from cdk.json, exactly as `cdk deploy -c env=...`
reads it; `--env` defaults to dev (or $MLOPS_ENV). Every command checks first that the AWS
credentials belong to the environment's account. Failures print one line (`Error: ...`) and
exit with status 1; `start --wait` exits 1 when the run fails.

This module wires the app: the root option, one-line errors, and the commands of
`run_commands`, `registry_commands` and `report_commands` (in that order in `--help`), and
the `runs` group of `tracking_commands`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cli import registry_commands, report_commands, run_commands, tracking_commands
from cli.aws import Clients, CliError, Ops, translate_errors
from mlops_config import (
    ALL_ENVIRONMENTS,
    DEFAULT_ENVIRONMENT,
    account_owners,
    environment_names,
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
for area in (run_commands, registry_commands, report_commands):
    app.add_typer(area.commands)
app.add_typer(tracking_commands.commands, name="runs")


def main() -> None:
    """Console-script entry point (`mlops`)."""
    app(prog_name="mlops")


def build_ops(env: str, clients: Clients | None = None) -> Ops:
    """The environment `env` of cdk.json with clients in its region (or the given ones)."""
    context = read_cdk_json_context()
    names = environment_names(context)
    known = ", ".join(names)
    if env == ALL_ENVIRONMENTS:
        raise CliError(
            f"--env {ALL_ENVIRONMENTS} is for `cdk synth`; the CLI works on one environment: "
            f"{known}"
        )
    if env not in names:
        raise CliError(f"--env {env!r} is not an environment of cdk.json: one of {known}")
    config = load_config(env)
    return Ops(config, clients or Clients(config.region), account_owners(context))


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
