"""Dead-letter queues: KMS-encrypted, TLS-only, kept 14 days."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.nag import IMPORTED_KEY_REASON, acknowledge, acknowledge_guard

RETENTION = Duration.days(14)


def dead_letter_queue(
    scope: Construct, construct_id: str, *, encryption_key: kms.IKey, of: str
) -> sqs.Queue:
    """A dead-letter queue for `of` (what it catches, used in the nag reason)."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption_master_key=encryption_key,
        enforce_ssl=True,
        retention_period=RETENTION,
        redrive_allow_policy=sqs.RedriveAllowPolicy(
            redrive_permission=sqs.RedrivePermission.ALLOW_ALL
        ),
    )
    acknowledge_guard(queue, "sqs_queue_encrypted_check", reason=IMPORTED_KEY_REASON)
    acknowledge(
        queue, "AwsSolutions-SQS3", reason=f"This queue is itself the dead-letter queue of {of}."
    )
    return queue
