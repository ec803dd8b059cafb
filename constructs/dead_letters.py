"""Dead-letter queues: KMS-encrypted, TLS-only, kept 14 days, alarmed on the first message."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.alarms import any_occurrence_alarm
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


def dead_letters_alarm(
    scope: Construct, construct_id: str, *, queue: sqs.IQueue, description: str, topic: sns.ITopic
) -> cloudwatch.Alarm:
    """Notifies `topic` as soon as `queue` holds a message (checked every 5 minutes)."""
    return any_occurrence_alarm(
        scope,
        construct_id,
        description=description,
        metric=queue.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic="Maximum"
        ),
        topic=topic,
    )
