"""`mlops models`, `approve`, `reject`, `promote` and `rollback`: the model registry, and
asking the deploy handler for an earlier version."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from cli import output, registry
from cli.aws import CliError, Ops, command_ops, model_deployer
from cli.output import note, say

commands = typer.Typer()


class ApprovalStatus(StrEnum):
    APPROVED = registry.APPROVED
    REJECTED = registry.REJECTED
    PENDING = registry.PENDING


@commands.command()
def models(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many versions.")] = 20,
    status: Annotated[
        ApprovalStatus | None,
        typer.Option("--status", help="Only versions with this approval status."),
    ] = None,
) -> None:
    """Model package versions with approval status, lifecycle stage and key metric."""
    ops = command_ops(ctx)
    approval = status.value if status else None
    packages = registry.list_packages(ops, limit, approval)
    group = ops.config.model_package_group_name
    if not packages:
        say(f"no model packages in {group}" + (f" with status {approval}" if approval else ""))
        return
    served = ops.served_package()
    serving = "scores the next versions under score/" if ops.config.serving.is_batch else "serving"
    say(f"{group} ({ops.config.region}), newest first; * = {serving}:")
    output.packages(packages, served.model_package_arn)
    if not served.settled:
        note(
            f"note: stack {ops.stack_name('serving')} is {served.stack_status}: the serving "
            "version is known once it settles"
        )


def _next_step_after_approval(ops: Ops, package: registry.Package) -> None:
    serving = ops.stack_name("serving")
    if ops.config.serving.deploy_on == "approval" and ops.config.serving.is_batch:
        note(
            f"the deploy handler now sets {serving}'s ModelPackageArn to version "
            f"{package.version}: the next scoring runs (versions landing under score/) use it; "
            f"follow it with `mlops --env {ops.config.name} lineage`"
        )
    elif ops.config.serving.deploy_on == "approval":
        note(
            f"the deploy handler now updates {serving} to version {package.version} "
            f"(blue/green); follow it with `mlops --env {ops.config.name} lineage --endpoint`"
        )
    else:
        note(
            f"env {ops.config.name} deploys on promotion: `mlops --env {ops.config.name} "
            f"promote {package.version}` puts it in production"
        )


PackageArgument = Annotated[str, typer.Argument(help="Model package ARN or version number.")]
ApprovalReason = Annotated[str, typer.Option(help="Why (stored as the ApprovalDescription).")]


def _set_approval(
    ctx: typer.Context, package: str, status: str, reason: str
) -> tuple[Ops, registry.Package] | None:
    """Set the approval status of `package`; None when it already had it."""
    ops = command_ops(ctx)
    found = registry.resolve(ops, package)
    if not registry.set_approval(ops, found, status, reason):
        say(f"version {found.version} is already {status} (nothing changed)")
        return None
    say(f"version {found.version}: {found.approval} -> {status}")
    return ops, found


@commands.command()
def approve(ctx: typer.Context, package: PackageArgument, reason: ApprovalReason) -> None:
    """Approve a model package version (in dev/staging this deploys it)."""
    changed = _set_approval(ctx, package, registry.APPROVED, reason)
    if changed:
        _next_step_after_approval(*changed)


@commands.command()
def reject(ctx: typer.Context, package: PackageArgument, reason: ApprovalReason) -> None:
    """Reject a model package version."""
    changed = _set_approval(ctx, package, registry.REJECTED, reason)
    if not changed:
        return
    ops, found = changed
    if ops.serving_package_arn(required=False) == found.arn:
        note(
            f"warning: version {found.version} is still serving on {ops.config.prefix}-endpoint; "
            f"rejecting does not undeploy it: `mlops --env {ops.config.name} rollback --reason ...`"
        )


@commands.command()
def promote(
    ctx: typer.Context,
    package: PackageArgument,
    reason: Annotated[
        str | None, typer.Option(help="Why (stored as the lifecycle StageDescription).")
    ] = None,
) -> None:
    """Promote an Approved version to Production (in prod this deploys it)."""
    ops = command_ops(ctx)
    found = registry.resolve(ops, package)
    if ops.config.serving.deploy_on != "promotion":
        note(
            f"warning: env {ops.config.name} deploys on approval, not promotion: this only "
            "records the lifecycle stage and deploys nothing"
        )
    if not registry.promote(ops, found, reason):
        say(f"version {found.version} is already promoted (Production/Approved)")
        return
    before = found.stage if found.life_cycle else "none"
    say(f"version {found.version}: lifecycle {before} -> Production/Approved")
    if ops.config.serving.deploy_on == "promotion":
        note(
            f"the deploy handler now updates {ops.stack_name('serving')} to version "
            f"{found.version} (blue/green); follow it with `mlops --env {ops.config.name} "
            "lineage --endpoint`"
        )


@commands.command()
def rollback(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why (goes to the deploy handler's logs).")],
    to: Annotated[
        str | None,
        typer.Option(
            help="Package ARN or version to deploy; default: the previous deployable one."
        ),
    ] = None,
) -> None:
    """Ask the deploy handler to deploy an earlier deployable version (never a rolled-back
    one; in production only an approved and promoted one)."""
    ops = command_ops(ctx)
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
        refusal = deployer.deployable_refusal(
            target.description, group, require_promotion=promotion
        )
        if refusal is not None:
            need = "Approved and promoted" if promotion else "Approved"
            raise CliError(
                f"version {target.version} is {target.approval} ({target.stage}"
                f"{', rolled back' if target.rolled_back else ''}); the deploy handler only "
                f"rolls back to {need} versions that never rolled back"
            )
    else:
        try:
            target_arn = deployer.find_previous_deployable(
                ops.client("sagemaker"), group, current_arn, require_promotion=promotion
            )
        except ValueError as error:
            raise CliError(str(error)) from error
        if target_arn is None:
            need = "approved and promoted" if promotion else "approved"
            raise CliError(
                f"no {need} version older than the serving version {current.version} that "
                "never rolled back: nothing to roll back to"
            )
        target = registry.describe(ops, target_arn)
    if target.arn == current_arn:
        raise CliError(f"version {target.version} is already serving")
    bus = ops.stack_output("serving", "OperatorEventBusName")
    try:
        event_id = deployer.request_rollback(
            ops.client("events"),
            reason,
            model_package_arn=target.arn,
            event_bus=bus,
            model_package_group_name=group,
        )
    except (ValueError, deployer.DeployError) as error:
        raise CliError(str(error)) from error
    say(f"rollback requested (event {event_id}): version {current.version} -> {target.version}")
    note(
        f"the deploy handler now updates {ops.stack_name('serving')} (blue/green); follow it "
        f"with `mlops --env {ops.config.name} lineage --endpoint`"
    )
