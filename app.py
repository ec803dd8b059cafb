#!/usr/bin/env python3
"""Builds the stacks of one environment (`-c env=dev|staging|prod`, default dev) or of all
(`-c env=all`) from cdk.json context."""

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from mlops_config import ConfigError, select_environments
from stacks.app_builder import build_environment

app = cdk.App()
context = {
    key: app.node.try_get_context(key) for key in ("project", "schema", "defaults", "environments")
}
try:
    configs = select_environments(context, app.node.try_get_context("env"))
except ConfigError as error:
    sys.exit(f"cdk.json configuration error: {error}")
for config in configs:
    build_environment(app, config)
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
if app.node.try_get_context("guard") == "true":  # CI: AWS Control Tower proactive controls
    from cdklabs.cdk_validator_cfnguard import CfnGuardValidator

    guard = CfnGuardValidator(control_tower_rules_enabled=True)
    cdk.Validations.of(app).add_plugins(guard)  # type: ignore[arg-type]  # jsii interface
app.synth()
