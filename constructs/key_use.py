"""Key use through AWS services only: the grants every role of the app gets on a KMS key.

Each grant names the service the key is used through (`kms:ViaService`), so a role that may
read objects of a bucket can decrypt with its key only inside S3, never call KMS directly on
data it copied elsewhere. CDK's own grants (`bucket.grant_read`, `queue.grant_send_messages`,
event sources, rule and schedule targets) add key statements without that condition; this app
grants S3, SQS and DynamoDB access explicitly, and hands CDK a view of a queue without its key
(`without_key`) wherever CDK would grant on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as lambda_events
from aws_cdk import aws_sqs as sqs

from constructs import IConstruct

# What S3 asks KMS for on a grantee's behalf: GenerateDataKey to write (multipart uploads
# also Decrypt), Decrypt to read.
S3_READ_KEY_ACTIONS = ("kms:Decrypt",)
S3_WRITE_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
# SQS with SSE-KMS: senders need GenerateDataKey and Decrypt, receivers Decrypt.
SQS_SEND_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
SQS_RECEIVE_KEY_ACTIONS = ("kms:Decrypt",)


def service_endpoint(scope: IConstruct, service: str) -> str:
    """`<service>.<region>.amazonaws.com`: the value `kms:ViaService` takes for `service`."""
    return f"{service}.{Stack.of(scope).region}.amazonaws.com"


def via_services(scope: IConstruct, services: Sequence[str]) -> dict[str, dict[str, object]]:
    """The IAM condition: the request reaches KMS through one of `services` (`s3`, `sqs`...)."""
    endpoints = [service_endpoint(scope, s) for s in services]
    return {"StringEquals": {"kms:ViaService": endpoints[0] if len(endpoints) == 1 else endpoints}}


def grant_key_use(
    key: kms.IKey | None,
    grantee: iam.IGrantable,
    actions: Sequence[str],
    *,
    via: Sequence[str],
) -> None:
    """Allow `actions` on `key` to `grantee`, only through `via` (no-op without a key)."""
    if key is None:
        return
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(actions),
            resources=[key.key_arn],
            conditions=via_services(key, via),
        )
    )


def grant_volume_encryption(key: kms.IKey, role: iam.IGrantable) -> None:
    """SageMaker attaches volumes encrypted with `key` to a job or endpoint through a grant it
    creates as `role`, and reads the key's metadata first: both through SageMaker only."""
    via = via_services(key, ["sagemaker"])
    role.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:CreateGrant"],
            resources=[key.key_arn],
            conditions={**via, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
    )
    role.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=["kms:DescribeKey"], resources=[key.key_arn], conditions=via)
    )


def without_key(queue: sqs.Queue) -> sqs.IQueue:
    """`queue` as CDK's grants, event sources and targets should see it: without its key, so
    they add no key statement (grant the key with `grant_key_use`, through SQS). One view per
    queue, a child of it."""
    existing = queue.node.try_find_child("WithoutKey")
    if existing is not None:
        return cast(sqs.IQueue, existing)
    return sqs.Queue.from_queue_attributes(
        queue, "WithoutKey", queue_arn=queue.queue_arn, queue_url=queue.queue_url
    )


def consume_queue(
    function: lambda_.IFunction,
    role: iam.IRole,
    queue: sqs.Queue,
    encryption_key: kms.IKey,
    *,
    max_concurrency: int,
) -> None:
    """`function` (running as `role`) receives `queue`'s messages one at a time, reporting
    failures per message, at most `max_concurrency` at once (SQS's minimum is 2); `role` may
    decrypt with the queue's `encryption_key` only through SQS."""
    function.add_event_source(
        lambda_events.SqsEventSource(
            without_key(queue),
            batch_size=1,
            report_batch_item_failures=True,
            max_concurrency=max_concurrency,
        )
    )
    grant_key_use(encryption_key, role, SQS_RECEIVE_KEY_ACTIONS, via=["sqs"])
