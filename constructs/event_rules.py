"""An EventBridge rule that invokes one Lambda function, with the two alarms every such rule
needs: its dead-letter queue not empty, and any error of the function."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.alarms import any_occurrence_alarm
from constructs.dead_letters import dead_letters_alarm


def rule_invoking(
    scope: Construct,
    rule_id: str,
    *,
    description: str,
    event_pattern: events.EventPattern,
    function: lambda_.IFunction,
    dead_letter_queue: sqs.IQueue,
    topic: sns.ITopic,
    on_dead_letters: str,
    on_errors: str,
) -> tuple[events.Rule, cloudwatch.Alarm, cloudwatch.Alarm]:
    """(rule, dead-letters alarm, errors alarm) in `scope`: EventBridge retries delivery for two
    hours (8 attempts), then the event goes to `dead_letter_queue`; both alarms notify `topic`
    with their description."""
    rule = events.Rule(
        scope,
        rule_id,
        description=description,
        event_pattern=event_pattern,
        targets=[
            targets.LambdaFunction(
                function,
                dead_letter_queue=dead_letter_queue,
                retry_attempts=8,
                max_event_age=Duration.hours(2),
            )
        ],
    )
    dead_letters = dead_letters_alarm(
        scope,
        "DeadLettersNotEmpty",
        queue=dead_letter_queue,
        description=on_dead_letters,
        topic=topic,
    )
    errors = any_occurrence_alarm(
        scope,
        "ErrorsAlarm",
        metric=function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
        description=on_errors,
        topic=topic,
    )
    return rule, dead_letters, errors
