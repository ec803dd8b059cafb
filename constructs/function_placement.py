"""An Aspect that places every Lambda function of a stack in the environment's private subnets.

An Aspect, not a constructor argument: it also reaches the functions CDK creates for its own
constructs (the Provider framework, BucketDeployment), so no function of a stack it is added to
is left with a path to the internet. Each function's role gets the EC2 network-interface
permissions Lambda needs to attach the function (Lambda checks them when the function is
created; the role's policy is part of the role, which the function already depends on).
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import CfnResource, IAspect
from aws_cdk import aws_lambda as lambda_

from constructs import IConstruct
from constructs.nag import acknowledge_guard
from constructs.private_network import network_interface_policy

# What AWSLambdaVPCAccessExecutionRole grants, inline (no AWS managed policy on our roles).
NETWORK_INTERFACE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
IN_SUBNETS_REASON = (
    "The function runs in the environment's private subnets (VpcConfig set by "
    "FunctionsInSubnets, asserted by tests/test_vpc_mode.py); the rule cannot resolve the subnet "
    "and security group ids the Data stack exports (Fn::ImportValue)."
)
# checkov's "function is not in a VPC" check: its skip no longer applies once placed.
CHECKOV_LAMBDA_IN_VPC = "CKV_AWS_117"


@jsii.implements(IAspect)
class FunctionsInSubnets:
    """Every `lambda_.Function` under the node it is added to runs in `subnet_ids` with
    `security_group_ids` (tokens allowed)."""

    def __init__(self, subnet_ids: list[str], security_group_ids: list[str]) -> None:
        self.subnet_ids = subnet_ids
        self.security_group_ids = security_group_ids

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, lambda_.Function):
            return
        function = node.node.default_child
        assert isinstance(function, lambda_.CfnFunction)
        function.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
            subnet_ids=self.subnet_ids, security_group_ids=self.security_group_ids
        )
        assert node.role is not None  # every function here has its own role
        policy = network_interface_policy(
            node,
            node.role,
            sid="AttachToPrivateSubnets",
            actions=NETWORK_INTERFACE_ACTIONS,
            reason="EC2 network-interface actions Lambda needs to attach the function to the "
            "environment's private subnets (what AWSLambdaVPCAccessExecutionRole grants, on *); "
            "DescribeNetworkInterfaces and DescribeSubnets have no resource-level permissions.",
        )
        # Lambda checks the role's permissions when it creates the function
        function.node.add_dependency(policy)
        _drop_checkov_skip(function, CHECKOV_LAMBDA_IN_VPC)
        # replaces the public mode's reason (same rule, same place: the later one is kept)
        acknowledge_guard(node, "lambda_inside_vpc_check", reason=IN_SUBNETS_REASON)


def _drop_checkov_skip(resource: CfnResource, check_id: str) -> None:
    metadata: dict[str, Any] | None = resource.get_metadata("checkov")
    if metadata:
        skips = [skip for skip in metadata["skip"] if skip["id"] != check_id]
        resource.add_metadata("checkov", {**metadata, "skip": skips})
