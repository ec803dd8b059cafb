"""One environment = the stacks below, wired by passing constructs, not strings."""

from __future__ import annotations

import aws_cdk as cdk

from constructs.policy_checks import CdkInternalFunctionSkips
from stacks.config import EnvironmentConfig
from stacks.data_stack import DataStack


def build_environment(app: cdk.App, config: EnvironmentConfig) -> dict[str, cdk.Stack]:
    """Create the Data stack (and, as they land, Training, Serving, Monitoring) of `config`."""
    env = cdk.Environment(account=config.account, region=config.region)
    data = DataStack(
        app,
        f"{config.prefix}-data",
        config=config,
        env=env,
        description=f"{config.prefix}: stateful data layer (buckets, key, registry)",
    )
    stacks: dict[str, cdk.Stack] = {"data": data}
    for stack in stacks.values():
        cdk.Aspects.of(stack).add(CdkInternalFunctionSkips())
    return stacks
