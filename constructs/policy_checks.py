"""checkov skips, kept where checkov reads them: in the resource's metadata, each with a reason.

`skip_checkov(resource, "CKV_AWS_18", "why")` adds one skip. `CdkInternalFunctionSkips` is an
Aspect for the Lambda functions CDK itself adds (custom-resource providers, the bucket
notifications handler, the Provider framework): we can't configure them, so their three
Lambda deployment checks are skipped with the reason below.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import CfnResource, IAspect
from aws_cdk import aws_lambda as lambda_

from constructs import IConstruct
from constructs.nag import acknowledge_guard

# Path fragments of the Lambda functions that CDK generates for its own custom resources.
CDK_INTERNAL_FUNCTIONS = (
    "S3AutoDeleteObjectsCustomResourceProvider",
    "BucketNotificationsHandler",
    "CDKBucketDeployment",
    "framework-onEvent",
    "LogRetention",
    "VpcRestrictDefaultSG",
)
CDK_INTERNAL_REASON = (
    "CDK-generated function run only by CloudFormation during deployment: no VPC resources to "
    "reach, no asynchronous callers that need a DLQ, CloudFormation serialises its calls, and "
    "its environment holds no secrets."
)
LAMBDA_IN_VPC_CHECK = "CKV_AWS_117"
LAMBDA_DEPLOYMENT_CHECKS = ("CKV_AWS_115", "CKV_AWS_116", LAMBDA_IN_VPC_CHECK, "CKV_AWS_173")


def skip_checkov(resource: IConstruct, check_id: str, comment: str) -> None:
    """Add a checkov skip for `check_id` to `resource` (an L1, or an L2 via its default child)."""
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    if not isinstance(cfn, CfnResource):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource to annotate")
    if len(comment) < 20:
        raise ValueError(f"give a real reason for skipping {check_id}, got {comment!r}")
    metadata: dict[str, Any] = cfn.get_metadata("checkov") or {"skip": []}
    if all(skip["id"] != check_id for skip in metadata["skip"]):
        metadata["skip"].append({"id": check_id, "comment": comment})
    cfn.add_metadata("checkov", metadata)


# Why none of our own functions needs a VPC, a function DLQ or reserved concurrency.
OUR_FUNCTION_SKIPS = {
    "CKV_AWS_117": "Our functions call only AWS APIs over TLS and reach nothing inside a VPC; "
    "a VPC would add NAT or endpoints without reducing exposure.",
    "CKV_AWS_116": "Never invoked asynchronously: SQS event sources and CloudFormation keep "
    "failed events in their own dead-letter queues or report them to the caller.",
    "CKV_AWS_115": "Concurrency is bounded by the caller (SQS maximum concurrency, "
    "CloudFormation); reserved concurrency would fail first deploys in new "
    "accounts whose concurrency quota is 10.",
}
# The same checks for a function invoked asynchronously (EventBridge, Scheduler).
ASYNC_FUNCTION_SKIPS = {
    "CKV_AWS_116": "Invoked asynchronously: failed events go to an on-failure destination (an "
    "encrypted SQS queue with an alarm), which records the error; a function dead-letter "
    "queue would duplicate it without the error.",
    "CKV_AWS_115": "Invoked asynchronously: Lambda queues events while throttled and retries "
    "them for up to 6 hours, then sends them to the on-failure destination; reserved "
    "concurrency would fail first deploys in new accounts whose concurrency quota is 10.",
}


@jsii.implements(IAspect)
class CdkInternalFunctionSkips:
    def visit(self, node: IConstruct) -> None:
        if (
            isinstance(node, CfnResource)
            and node.cfn_resource_type == "AWS::Lambda::Function"
            and any(fragment in node.node.path for fragment in CDK_INTERNAL_FUNCTIONS)
        ):
            # vpc mode places CDK's functions of the other stacks in the subnets first
            # (FunctionsInSubnets visits the L2 function before this, its resource)
            in_vpc = isinstance(node, lambda_.CfnFunction) and node.vpc_config is not None
            for check_id in LAMBDA_DEPLOYMENT_CHECKS:
                if not (in_vpc and check_id == LAMBDA_IN_VPC_CHECK):
                    skip_checkov(node, check_id, CDK_INTERNAL_REASON)
            if not in_vpc:
                acknowledge_guard(node, "lambda_inside_vpc_check", reason=CDK_INTERNAL_REASON)
