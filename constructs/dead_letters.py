"""Dead-letter queues: KMS-encrypted, TLS-only, kept 14 days, alarmed on the first message, and
usable as a dead-letter queue by their one source queue only."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.alarms import any_occurrence_alarm
from constructs.nag import IMPORTED_KEY_REASON, acknowledge, acknowledge_guard

RETENTION = Duration.days(14)


def source_queue_name(scope: Construct, purpose: str) -> str:
    """The fixed name of a queue whose dead-letter queue admits it alone (`<stack>-<purpose>`):
    the dead-letter queue names its source by ARN, and a reference to a generated name would
    be circular (the source names the dead-letter queue too)."""
    return f"{Stack.of(scope).stack_name}-{purpose}"


def dead_letter_queue(
    scope: Construct,
    construct_id: str,
    *,
    encryption_key: kms.IKey,
    of: str,
    source_queue_name: str | None = None,
) -> sqs.Queue:
    """A dead-letter queue for `of` (what it catches, used in the nag reason).

    `source_queue_name`: the queue (in the same stack) that redrives into it, the only one
    allowed to. None: it catches failed deliveries of rules, schedules or asynchronous
    invocations, and no queue may use it as its dead-letter queue."""
    stack = Stack.of(scope)
    allowed = (
        sqs.RedriveAllowPolicy(
            redrive_permission=sqs.RedrivePermission.BY_QUEUE,
            source_queues=[
                sqs.Queue.from_queue_arn(
                    scope,
                    f"{construct_id}Source",
                    stack.format_arn(service="sqs", resource=source_queue_name),
                )
            ],
        )
        if source_queue_name
        else sqs.RedriveAllowPolicy(redrive_permission=sqs.RedrivePermission.DENY_ALL)
    )
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption_master_key=encryption_key,
        enforce_ssl=True,
        retention_period=RETENTION,
        redrive_allow_policy=allowed,
    )
    acknowledge_guard(queue, "sqs_queue_encrypted_check", reason=IMPORTED_KEY_REASON)
    if source_queue_name is None:  # the checks see a queue's dead-letter queue, not a rule's
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            reason=f"This queue is itself the dead-letter queue of {of}.",
        )
        acknowledge_guard(
            queue,
            "sqs_dlq_check",
            reason=f"This queue is itself the dead-letter queue of {of} (not an SQS redrive), "
            "so its redrive allow policy admits no queue at all.",
        )
    return queue


def source_queue(
    scope: Construct,
    construct_id: str,
    dead_letters_id: str,
    *,
    purpose: str,
    encryption_key: kms.IKey,
    of: str,
    visibility_timeout: Duration,
    max_receive_count: int,
) -> tuple[sqs.Queue, sqs.Queue]:
    """A KMS-encrypted, TLS-only queue named `<stack>-<purpose>` (kept 4 days) that moves a
    message received `max_receive_count` times to its own dead-letter queue, which admits
    it alone. Returns (queue, dead-letter queue)."""
    queue_name = source_queue_name(scope, purpose)
    dead_letters = dead_letter_queue(
        scope,
        dead_letters_id,
        encryption_key=encryption_key,
        of=of,
        source_queue_name=queue_name,
    )
    queue = sqs.Queue(
        scope,
        construct_id,
        queue_name=queue_name,
        encryption_master_key=encryption_key,
        enforce_ssl=True,
        visibility_timeout=visibility_timeout,
        retention_period=Duration.days(4),
        dead_letter_queue=sqs.DeadLetterQueue(
            max_receive_count=max_receive_count, queue=dead_letters
        ),
    )
    acknowledge_guard(queue, "sqs_queue_encrypted_check", reason=IMPORTED_KEY_REASON)
    return queue, dead_letters


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
