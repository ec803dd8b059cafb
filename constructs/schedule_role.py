"""The role EventBridge Scheduler sends a schedule's requests as, with the key use spelt out.

CDK creates one per stack otherwise, and grants it the target queue's and the dead-letter
queue's keys without `kms:ViaService`; give the schedule target this role and views of the
queues without their keys (`key_use.without_key`), and the key is granted through SQS only.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.key_use import SQS_SEND_KEY_ACTIONS, grant_key_use


def schedule_role(
    scope: Construct, construct_id: str, *, description: str, sends_to: list[sqs.Queue]
) -> iam.Role:
    """A role only EventBridge Scheduler of this account assumes, allowed to encrypt messages
    for `sends_to` through SQS (the schedule target grants the sends themselves)."""
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com",
            conditions={"StringEquals": {"aws:SourceAccount": Stack.of(scope).account}},
        ),
        description=description,
    )
    for queue in sends_to:
        grant_key_use(queue.encryption_master_key, role, SQS_SEND_KEY_ACTIONS, via=["sqs"])
    return role
