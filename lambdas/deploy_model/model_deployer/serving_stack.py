"""The Serving stack as the deployer sees it: its description, the baselines a package
brings, and the one UpdateStack that deploys another package through the stack's dedicated
CloudFormation service role (the deployer's IAM policy allows UpdateStack with no other)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from served_package import MODEL_PACKAGE_PARAMETER

from .errors import DeployError, no_answer_is_deploy_error

# Engine model-monitor: the Serving stack also takes the package's Model Monitor baselines
# (DriftCheckBaselines.ModelDataQuality); stacks without these parameters are left as they are.
BASELINE_PARAMETERS: Mapping[str, str] = {
    "DataQualityStatisticsUri": "Statistics",
    "DataQualityConstraintsUri": "Constraints",
}

# What `cdk deploy` acknowledges; the template is the one already deployed: nothing new granted.
STACK_CAPABILITIES: tuple[str, ...] = (
    "CAPABILITY_IAM",
    "CAPABILITY_NAMED_IAM",
    "CAPABILITY_AUTO_EXPAND",
)
NO_UPDATES_MESSAGE = "No updates are to be performed"
# UpdateStack's ValidationError when another operation started after DescribeStacks, e.g.
# "Stack:arn:... is in UPDATE_IN_PROGRESS state and can not be updated." Terminal states
# (ROLLBACK_COMPLETE, UPDATE_ROLLBACK_FAILED) get the same sentence but are no race: not matched.
STACK_BUSY_MESSAGE = re.compile(r"is in ([A-Z_]+_IN_PROGRESS) state and can not be updated")
# A redelivered event re-sends its token after the update it requested has finished.
TOKEN_ALREADY_EXISTS = "TokenAlreadyExistsException"


def describe_stack(cloudformation: Any, stack_name: str) -> Mapping[str, Any]:
    """The Serving stack's description (DescribeStacks)."""
    with no_answer_is_deploy_error("DescribeStacks"):
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    if not stacks:
        raise DeployError(f"DescribeStacks returned no stack named {stack_name!r}")
    return stacks[0]


def data_quality_baselines(package: Mapping[str, Any]) -> dict[str, str]:
    """The Serving stack's baseline parameters for `package`: the S3 URIs of its Model Monitor
    statistics and constraints (DriftCheckBaselines.ModelDataQuality, else
    ModelMetrics.ModelDataQuality); "" for what the package does not have."""
    sources = [
        (package.get(field) or {}).get("ModelDataQuality") or {}
        for field in ("DriftCheckBaselines", "ModelMetrics")
    ]
    values = {}
    for parameter, part in BASELINE_PARAMETERS.items():
        uris = [str((source.get(part) or {}).get("S3Uri") or "") for source in sources]
        values[parameter] = next((uri for uri in uris if uri), "")
    return values


def update_model_package_parameter(
    cloudformation: Any,
    stack: Mapping[str, Any],
    model_package_arn: str,
    *,
    role_arn: str,
    client_request_token: str,
    baselines: Mapping[str, str] | None = None,
) -> str:
    """UpdateStack with the previous template, the new ModelPackageArn (and the package's
    baselines, where the stack takes them) and every other parameter unchanged. Returns the
    stack id.

    Args:
        cloudformation: boto3 CloudFormation client.
        stack: the stack as returned by DescribeStacks.
        model_package_arn: the package to deploy.
        role_arn: the Serving stack's deploy role (CloudFormation service role).
        client_request_token: idempotency token (`rollbacks.deploy_token`).
        baselines: values of the baseline parameters (`data_quality_baselines`); set only on
            a stack that has them. Default None = leave them unchanged.
    """
    values = {MODEL_PACKAGE_PARAMETER: model_package_arn}
    existing = {parameter["ParameterKey"] for parameter in stack.get("Parameters", [])}
    values.update({k: v for k, v in (baselines or {}).items() if k in existing})
    parameters: list[dict[str, Any]] = [
        {"ParameterKey": key, "ParameterValue": value} for key, value in values.items()
    ]
    parameters += [
        {"ParameterKey": key, "UsePreviousValue": True}
        for key in sorted(existing)
        if key not in values
    ]
    request: dict[str, Any] = {
        "StackName": stack.get("StackId") or stack["StackName"],
        "UsePreviousTemplate": True,
        "Parameters": parameters,
        "Capabilities": list(STACK_CAPABILITIES),
        "RoleARN": role_arn,
        "ClientRequestToken": client_request_token,
    }
    with no_answer_is_deploy_error("UpdateStack"):
        stack_id: str = cloudformation.update_stack(**request)["StackId"]
    return stack_id
