#!/usr/bin/env python3
"""Builds the stacks of one environment (`-c env=dev|staging|prod`, default dev) or of all
(`-c env=all`) from cdk.json context."""

import sys

import aws_cdk as cdk

from mlops_config import ConfigError, select_environments
from stacks.app_builder import build_environment
from stacks.pipeline_definitions import generate_all_pipelines
from stacks.policy_validation import add_policy_checks

# cfn-lint checks the templates against the CloudFormation schemas (stacks/policy_validation.py)
app = cdk.App(builtin_cloud_formation_validation=False)
context = {
    key: app.node.try_get_context(key) for key in ("project", "schema", "defaults", "environments")
}
try:
    configs = select_environments(context, app.node.try_get_context("env"))
except ConfigError as error:
    sys.exit(f"cdk.json configuration error: {error}")
generate_all_pipelines(configs)  # one generator process for every environment's definitions
for config in configs:
    build_environment(app, config)
# CI (`-c guard=true`): the AWS Control Tower proactive controls too
add_policy_checks(app, control_tower=app.node.try_get_context("guard") == "true")
app.synth()
