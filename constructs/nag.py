"""cdk-nag 3 acknowledgements: one finding at a time, each with a reason.

cdk-nag 3 runs as a policy-validation plugin; a finding is acknowledged on the construct
(and everything below it) with `Validations.of(scope).acknowledge(...)`. `finding` is the
rule id (`AwsSolutions-IAM5`) optionally followed by the finding's detail
(`AwsSolutions-IAM5[Action::s3:GetObject*]`), which keeps wildcard acknowledgements narrow.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

from constructs import IConstruct


def acknowledge(scope: IConstruct, *findings: str, reason: str) -> None:
    """Acknowledge each of `findings` under `scope` with the same `reason` (required)."""
    if len(reason) < 20:
        raise ValueError(f"give a real reason for acknowledging {findings}, got {reason!r}")
    for finding in findings:
        cdk.Validations.of(scope).acknowledge(
            cdk.Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason)
        )


GUARD = "cdk-validator-cfnguard"


def acknowledge_guard(scope: IConstruct, *rules: str, reason: str) -> None:
    """Acknowledge AWS Control Tower proactive-control findings (cfn-guard plugin) by rule
    name, e.g. `lambda_inside_vpc_check`, under `scope`, with a reason (required)."""
    if len(reason) < 20:
        raise ValueError(f"give a real reason for acknowledging {rules}, got {reason!r}")
    for rule in rules:
        cdk.Validations.of(scope).acknowledge(
            cdk.Acknowledgment(id=f"{GUARD}::{rule}", reason=reason)
        )


# Control Tower rules that cannot see a KMS key passed in from the Data stack (Fn::ImportValue).
IMPORTED_KEY_REASON = (
    "Encrypted with the environment's customer-managed key from the Data stack; the rule "
    "cannot resolve the Fn::ImportValue that carries it (tests assert the KmsKeyId)."
)
NO_VPC_REASON = (
    "By design no function runs in a VPC: they call only AWS APIs over TLS, and a VPC would "
    "add NAT or endpoints without reducing exposure (README, design decisions)."
)


def rendered_arn(scope: IConstruct, bucket: s3.IBucket) -> str:
    """`bucket`'s ARN as cdk-nag prints it in a finding seen from `scope`'s stack:
    `<LogicalId.Arn>` in the same stack, the export name when it comes from another stack."""
    consumer, producer = cdk.Stack.of(scope), cdk.Stack.of(bucket)
    resource = bucket.node.default_child
    assert isinstance(resource, cdk.CfnResource)
    if producer is consumer:
        return f"<{producer.get_logical_id(resource)}.Arn>"
    return str(producer.resolve(producer.export_value(bucket.bucket_arn))["Fn::ImportValue"])


def rendered_token_arn(stack: cdk.Stack, arn: str) -> str:
    """An ARN built by `stack.format_arn` as cdk-nag prints it in a finding: pseudo parameters
    as `<AWS::Region>`, `<AWS::AccountId>`, ..."""
    resolved = stack.resolve(arn)
    if isinstance(resolved, str):
        return resolved
    parts = resolved["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)


def object_wildcard(scope: IConstruct, bucket: s3.IBucket, prefix: str = "") -> str:
    """The IAM5 finding of a grant on the objects of `bucket` (under `prefix`)."""
    return f"AwsSolutions-IAM5[Resource::{rendered_arn(scope, bucket)}/{prefix}*]"


def actions(*wildcard_actions: str) -> list[str]:
    """IAM5 findings of wildcard actions that CDK grants expand to (`s3:GetObject*`, ...)."""
    return [f"AwsSolutions-IAM5[Action::{action}]" for action in wildcard_actions]


# What CDK's bucket.grant_read / grant_read_write expand to (CDK's own handlers and assets;
# this app's roles get explicit statements: constructs/bucket_access.py).
S3_READ_ACTIONS = ("s3:GetObject*", "s3:GetBucket*", "s3:List*")
S3_WRITE_ACTIONS = ("s3:DeleteObject*", "s3:Abort*")


def invoke_any_version(function: IConstruct) -> str:
    """The IAM5 finding of a grant to invoke `function` and all its versions (`<Arn>:*`)."""
    stack = cdk.Stack.of(function)
    resource = function.node.default_child
    assert isinstance(resource, cdk.CfnResource)
    return f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(resource)}.Arn>:*]"
