"""EventBridge rules into this app's encrypted queues, each admitted by its own rule's ARN.

CDK's `targets.SqsQueue` admits EventBridge to an encrypted queue by `aws:SourceAccount` only
(feature flag `@aws-cdk/aws-events:eventsTargetQueueSameAccount`; without it, by nothing):
naming the rule would make the key's policy depend on the rule. Here the key admits
EventBridge through its own policy (the Data stack), and the queue's policy admits each rule
by `aws:SourceArn`, so no other rule in the account can send to the queue.
"""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs

from constructs.key_use import without_key


def deliver_to_queue(rule: events.Rule, queue: sqs.Queue, *, dead_letter_queue: sqs.IQueue) -> None:
    """Add `queue` as a target of `rule` (undeliverable events go to `dead_letter_queue`)."""
    rule.add_target(targets.SqsQueue(without_key(queue), dead_letter_queue=dead_letter_queue))
    queue.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["sqs:SendMessage"],
            resources=[queue.queue_arn],
            conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
        )
    )
