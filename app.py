#!/usr/bin/env python3
"""Builds the stacks of one environment (`-c env=dev|staging|prod`, default dev), of all
(`-c env=all`), or the delivery pipeline that deploys them (`-c env=delivery`) from cdk.json
context."""

import sys

import aws_cdk as cdk

from mlops_config import DELIVERY, ConfigError, parse_delivery, select_environments
from stacks.app_builder import build_environment
from stacks.delivery_stack import DeliveryStack
from stacks.pipeline_definitions import generate_all_pipelines
from stacks.policy_validation import add_policy_checks

# cfn-lint checks the templates against the CloudFormation schemas (stacks/policy_validation.py)
app = cdk.App(builtin_cloud_formation_validation=False)
context = {
    key: app.node.try_get_context(key)
    for key in ("project", "schema", "defaults", "environments", "promotion", DELIVERY)
    if app.node.try_get_context(key) is not None
}
env = app.node.try_get_context("env")
try:
    if env == DELIVERY:
        delivery, stages = parse_delivery(context)
        DeliveryStack(
            app,
            f"{context['project']}-delivery",
            delivery=delivery,
            environments=stages,
            env=cdk.Environment(account=delivery.account, region=delivery.region),
            description=f"{context['project']}: the pipeline that tests and deploys the app",
        )
    else:
        configs = select_environments(context, env)
        generate_all_pipelines(configs)  # one generator process for all their definitions
        for config in configs:
            build_environment(app, config)
except ConfigError as error:
    sys.exit(f"cdk.json configuration error: {error}")
# CI (`-c guard=true`): the AWS Control Tower proactive controls too
add_policy_checks(app, control_tower=app.node.try_get_context("guard") == "true")
app.synth()
