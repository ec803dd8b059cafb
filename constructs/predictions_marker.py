"""The `_SUCCESS` marker of each scored version (batch serving): transform job completed ->
`lambdas/mark_predictions` writes `_SUCCESS` into that job's own run prefix,
`predictions/<dataset>/<version>/<model version>/<execution id>/`."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.dead_letters import dead_letter_queue
from constructs.event_rules import rule_invoking
from constructs.key_use import S3_WRITE_KEY_ACTIONS, grant_key_use
from constructs.nag import acknowledge, rendered_arn
from constructs.python_function import PythonFunction

PREDICTIONS_PREFIX = "predictions/"
MARKER = "_SUCCESS"
DETAIL_TYPE = "SageMaker Transform Job State Change"


def scoring_transform_events(
    data_bucket: s3.IBucket, statuses: list[str], **detail: object
) -> events.EventPattern:
    """Transform job state changes to `statuses` of scoring runs (jobs writing under
    `predictions/` of `data_bucket`) whose detail also matches `detail`."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[DETAIL_TYPE],
        detail={
            "TransformJobStatus": statuses,
            **detail,
            "TransformOutput": {
                "S3OutputPath": [{"prefix": f"s3://{data_bucket.bucket_name}/{PREDICTIONS_PREFIX}"}]
            },
        },
    )


class PredictionsMarker(Construct):
    """Completed transform jobs writing under `predictions/` of `data_bucket` -> the marker.

    The function may only put objects named `_SUCCESS` under `predictions/` (no read, no delete,
    no other name: its worst is a premature marker, and it acts only on Completed events from
    aws.sagemaker, which no one else can send). EventBridge invokes it asynchronously:
    undeliverable events (two hours of retries) and events it failed on after Lambda's two
    retries end in one KMS-encrypted dead-letter queue whose alarm notifies `topic`, as does
    its errors alarm. Exposes `function`, `rule`, `dead_letter_queue`, `dead_letters_alarm`,
    `errors_alarm`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        topic: sns.ITopic,
        metrics_namespace: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = dead_letter_queue(
            self,
            "DeadLetters",
            encryption_key=encryption_key,
            of="the predictions-marker rule and the marker's asynchronous invocations",
        )
        handler = PythonFunction(
            self,
            "Function",
            folder="mark_predictions",
            shared_modules=("scoring_runs",),
            description="Writes _SUCCESS under predictions/ when a scoring transform job completed",
            encryption_key=encryption_key,
            timeout=Duration.seconds(30),
            memory_size=128,
            environment={
                "DATA_BUCKET": data_bucket.bucket_name,
                "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
            },
            on_failure=self.dead_letter_queue,
        )
        self.function = handler.function
        markers = data_bucket.arn_for_objects(f"{PREDICTIONS_PREFIX}*/{MARKER}")
        handler.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[markers])
        )
        grant_key_use(data_bucket.encryption_key, handler.role, S3_WRITE_KEY_ACTIONS, via=["s3"])
        acknowledge(
            handler,
            f"AwsSolutions-IAM5[Resource::{rendered_arn(handler, data_bucket)}/"
            f"{PREDICTIONS_PREFIX}*/{MARKER}]",
            reason="Only objects named _SUCCESS under predictions/, whose dataset, version and "
            "model version are known only at run time; the data key through S3 only.",
        )
        self.rule, self.dead_letters_alarm, self.errors_alarm = rule_invoking(
            self,
            "OnTransformCompleted",
            description="Scoring transform job completed: mark its predictions complete",
            event_pattern=scoring_transform_events(data_bucket, ["Completed"]),
            function=self.function,
            dead_letter_queue=self.dead_letter_queue,
            topic=topic,
            on_dead_letters="A scored version's _SUCCESS marker could not be written: inspect the "
            "predictions-marker dead-letter queue and its logs",
            on_errors="The predictions marker Lambda failed (Lambda retries twice, then the "
            "event goes to its dead-letter queue): read its logs",
        )
