"""One environment = the stacks below, wired by passing constructs, not strings."""

from __future__ import annotations

import aws_cdk as cdk

from constructs.function_placement import FunctionsInSubnets
from constructs.policy_checks import CdkInternalFunctionSkips
from mlops_config import EnvironmentConfig
from stacks.data_stack import DataStack
from stacks.monitoring_stack import MonitoringStack
from stacks.pipeline_definitions import generate_pipelines
from stacks.serving_stack import ServingStack
from stacks.training_stack import TrainingStack


def stack_names(config: EnvironmentConfig) -> dict[str, str]:
    """The four stacks' names by role: part of the contract (the handlers find the Serving stack
    by name; the delivery pipeline deploys an environment by them)."""
    return {
        "data": f"{config.prefix}-data",
        "training": f"{config.prefix}-training",
        "serving": config.serving_stack_name,
        "monitoring": f"{config.prefix}-monitoring",
    }


def build_environment(scope: cdk.Stage, config: EnvironmentConfig) -> dict[str, cdk.Stack]:
    """Create the Data, Training, Serving and Monitoring stacks of `config` in `scope`."""
    env = cdk.Environment(account=config.account, region=config.region)
    names = stack_names(config)
    data = DataStack(
        scope,
        names["data"],
        stack_name=names["data"],
        config=config,
        env=env,
        description=f"{config.prefix}: stateful data layer (buckets, key, registry)",
    )
    training = TrainingStack(
        scope,
        names["training"],
        stack_name=names["training"],
        config=config,
        data=data,
        pipelines=generate_pipelines(config),
        env=env,
        termination_protection=config.retain,
        description=f"{config.prefix}: training pipeline, its role and its triggers",
    )
    serving = ServingStack(
        scope,
        names["serving"],
        stack_name=names["serving"],
        config=config,
        data=data,
        env=env,
        termination_protection=config.retain,
        description=f"{config.prefix}: endpoint of the approved model and its deploy handler",
    )
    monitoring = MonitoringStack(
        scope,
        names["monitoring"],
        stack_name=names["monitoring"],
        config=config,
        data=data,
        training=training,
        serving=serving,
        env=env,
        description=f"{config.prefix}: drift checks, alarms and the dashboard",
    )
    stacks: dict[str, cdk.Stack] = {
        "data": data,
        "training": training,
        "serving": serving,
        "monitoring": monitoring,
    }
    for stack in stacks.values():
        cdk.Aspects.of(stack).add(CdkInternalFunctionSkips())
    if data.network is not None:
        # The Data stack's functions are CDK's deploy-time handlers (bucket auto-delete and
        # notifications, the default security group's restriction): they stay outside.
        for stack in (training, serving, monitoring):
            cdk.Aspects.of(stack).add(
                FunctionsInSubnets(data.network.subnet_ids, data.network.security_group_ids)
            )
    return stacks
