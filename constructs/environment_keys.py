"""The environment's KMS keys, one per data class, each usable only through the services that
hold that class, and administered by named principals.

* data: the data bucket (landed and labelled data, captured traffic) and the dataset
  ledgers, used through S3, DynamoDB and SageMaker (data capture);
* artifacts: the artifact bucket (models, step code, job outputs, reports) and the volumes of
  jobs and endpoints, used through S3 and SageMaker;
* operations: queues, the notifications topic, log groups and Lambda environments, used
  through SQS, SNS and Lambda, and by CloudWatch Logs, EventBridge and CloudWatch alarms as
  service principals scoped to this account.

The account delegates key *use* to IAM only with `kms:ViaService` set to those services, so
no principal, whatever its IAM policy, can call Decrypt or GenerateDataKey directly. Key
*administration* (policy, rotation, deletion, grants revocation) belongs to the named
administrators plus the CDK bootstrap's CloudFormation execution role (deploys update the key
policy), or, with no administrators named, to any principal of the account whose IAM policy
allows it, as CDK's default policy does. No one may create a grant except for an AWS resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import DefaultStackSynthesizer, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from constructs.key_use import service_endpoint

# Data class -> the services its key may be used through.
KEY_SERVICES: dict[str, tuple[str, ...]] = {
    "data": ("s3", "dynamodb", "sagemaker"),
    "artifacts": ("s3", "sagemaker"),
    "operations": ("sqs", "sns", "lambda"),
}
USE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
    "kms:CreateGrant",
)
# Everything but cryptographic use (CDK's key administrator actions, spelt out).
ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)


@dataclass(frozen=True)
class EnvironmentKeys:
    data: kms.Key
    artifacts: kms.Key
    operations: kms.Key


def create_environment_keys(
    stack: Stack, *, prefix: str, administrators: Sequence[str], retain: bool
) -> EnvironmentKeys:
    """The `data`, `artifacts` and `operations` keys of `prefix` in `stack` (aliases
    `alias/<prefix>`, `alias/<prefix>-artifacts`, `alias/<prefix>-operations`), rotating
    yearly, administered by `administrators` (IAM ARNs; empty: the account). `retain` keeps
    them on stack deletion with a 30-day deletion window (else 7 days). They are children of
    the stack itself: the data key (and its alias) keep the ids of the app's first, only key."""
    admins = key_administrators(stack, administrators)
    removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY

    def key(construct_id: str, data_class: str, alias: str, description: str) -> kms.Key:
        return kms.Key(
            stack,
            construct_id,
            alias=alias,
            description=f"{prefix}: {description}",
            enable_key_rotation=True,
            removal_policy=removal,
            pending_window=Duration.days(30 if retain else 7),
            policy=key_policy(stack, data_class, admins),
        )

    return EnvironmentKeys(
        data=key("DataKey", "data", f"alias/{prefix}", "landed data, labels, traffic, ledgers"),
        artifacts=key(
            "ArtifactKey",
            "artifacts",
            f"alias/{prefix}-artifacts",
            "models, step code, job outputs and volumes, endpoint volumes",
        ),
        operations=key(
            "OperationsKey",
            "operations",
            f"alias/{prefix}-operations",
            "queues, notifications, logs, Lambda environments",
        ),
    )


def key_administrators(stack: Stack, named: Sequence[str]) -> list[iam.IPrincipal]:
    """The principals of the administration statement: `named` and the role CloudFormation
    deploys as, or the account when none is named."""
    if not named:
        return [iam.AccountRootPrincipal()]
    principals: list[iam.IPrincipal] = [iam.ArnPrincipal(arn) for arn in named]
    # KMS refuses a key policy its caller could not change again: the role CloudFormation
    # deploys as must stay an administrator.
    deployer = deployer_role_arn(stack)
    if deployer is not None and deployer not in named:
        principals.append(iam.ArnPrincipal(deployer))
    return principals


def deployer_role_arn(stack: Stack) -> str | None:
    """The role CloudFormation deploys `stack` as (the CDK bootstrap's execution role), or None
    with a synthesizer that names none."""
    synthesizer = stack.synthesizer
    if not isinstance(synthesizer, DefaultStackSynthesizer):
        return None
    deployer = synthesizer.cloud_formation_execution_role_arn
    for placeholder, value in (
        ("${AWS::Partition}", stack.partition),
        ("${AWS::AccountId}", stack.account),
        ("${AWS::Region}", stack.region),
    ):
        deployer = deployer.replace(placeholder, value)
    return deployer


def key_policy(
    stack: Stack, data_class: str, administrators: list[iam.IPrincipal]
) -> iam.PolicyDocument:
    """Administration by `administrators`; use by the account only through the data class's
    services; grants only for AWS resources; the operations key also admits its publishers."""
    services = [service_endpoint(stack, s) for s in KEY_SERVICES[data_class]]
    statements = [
        iam.PolicyStatement(
            sid="KeyAdministration",
            principals=administrators,
            actions=list(ADMIN_ACTIONS),
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="UseOnlyThroughServices",
            principals=[iam.AccountRootPrincipal()],
            actions=list(USE_ACTIONS),
            resources=["*"],
            conditions={"StringEquals": {"kms:ViaService": services}},
        ),
        grants_only_for_aws_resources(),
    ]
    if data_class == "operations":
        statements += _service_principals(stack)
    return iam.PolicyDocument(statements=statements)


def _service_principals(stack: Stack) -> list[iam.PolicyStatement]:
    """Services that write into encrypted queues, the topic and log groups as themselves."""
    return [
        iam.PolicyStatement(
            sid="AllowServicePublishers",  # rules and alarms -> queues and the topic
            principals=[
                iam.ServicePrincipal("events.amazonaws.com"),
                iam.ServicePrincipal("cloudwatch.amazonaws.com"),
            ],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        ),
        cloudwatch_logs_use(stack),
    ]


def grants_only_for_aws_resources() -> iam.PolicyStatement:
    """Key policy: grants only for AWS resources (a service acting for a principal)."""
    return iam.PolicyStatement(
        sid="DenyGrantsExceptForAwsResources",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["kms:CreateGrant"],
        resources=["*"],
        conditions={
            "BoolIfExists": {
                "kms:GrantIsForAWSResource": "false",
                "aws:PrincipalIsAWSService": "false",
            }
        },
    )


def cloudwatch_logs_use(stack: Stack) -> iam.PolicyStatement:
    """Key policy: CloudWatch Logs encrypts the log groups of this account and region."""
    log_groups = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
    return iam.PolicyStatement(
        sid="AllowCloudWatchLogs",
        principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
        actions=[
            "kms:Encrypt*",
            "kms:Decrypt*",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:Describe*",
        ],
        resources=["*"],
        conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
    )
