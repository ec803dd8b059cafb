"""Data landing in S3 -> exactly one pipeline execution per dataset version."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as lambda_events
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.bucket_access import grant_object_read
from constructs.dead_letters import dead_letter_queue, dead_letters_alarm, source_queue
from constructs.key_use import (
    S3_WRITE_KEY_ACTIONS,
    SQS_RECEIVE_KEY_ACTIONS,
    SQS_SEND_KEY_ACTIONS,
    grant_key_use,
    without_key,
)
from constructs.nag import acknowledge, object_wildcard
from constructs.python_function import PythonFunction
from constructs.rule_targets import deliver_to_queue
from constructs.sagemaker_pipeline import pipeline_arn
from constructs.schedule_role import schedule_role

FUNCTION_TIMEOUT = Duration.seconds(60)
# One vCPU: a completing version costs about 1.6 ms of CPU per data file (botocore's share of
# one HeadObject, measured here), so 10,000 files take ~16 s, which would not fit the timeout
# at the 256 MB default (a seventh of a vCPU). Most invocations last a fraction of a second.
FUNCTION_MEMORY_MB = 1769
# Version manifests (one per run, named by its DataDigest) go under this prefix of the
# manifest bucket; pipeline_code/steps/prepare/verify_inputs.py reads them from the same place.
MANIFEST_PREFIX = "dataset-manifests/"
# The ledger calls of lambdas/start_training (dataset_ledger.py), and what DynamoDB asks KMS
# for on the caller's behalf with a customer-managed key.
LEDGER_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
DYNAMODB_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")
# The handler's claim lease sits between the function timeout and the queue's visibility.
LEASE_SECONDS = 180
DEFAULT_COOLDOWN = Duration.hours(24)


class DatasetTrigger(Construct):
    """S3 `Object Created` events under `landing_prefix` of `bucket` -> EventBridge rule ->
    SQS queue (KMS, dead-letter queue with an alarm to `topic`) -> the `start_training`
    Lambda, which records each dataset version in `ledger`, writes the run's version manifest
    (its exact input objects) under `dataset-manifests/` of `manifest_bucket` and starts
    `pipeline_name`.

    `completion_mode` "marker" (default) or "quiet-period" (`quiet_period_seconds`);
    `max_concurrent_executions` caps running executions (versions beyond it wait);
    `allow_reupload` lets a completed version with new content run again;
    `retrain_schedule` (EventBridge Scheduler expression, optional) re-runs the latest version;
    `retrain_alarm_prefix`: alarms whose name starts with it start a retrain when they fire,
    at most once per `retrain_cooldown`. Schedules and alarms reach the Lambda through the same
    queue, so its retries and dead-letter queue cover them too. `model_package_parameter`: the
    pipeline parameter that receives the model to score: a retrain request's
    `model_package_arn`, else the package the Serving stack serves (empty: such requests are
    rejected), and `model_role_parameter` the one that says "candidate" or "production" for
    it. `champion` = (pipeline parameter, model package group): every run gets the package
    the Serving stack serves as it starts (or "none") in that parameter, and a retrain that
    would register the same model again is skipped. `serving_stack_name` (required with either):
    the Serving stack, read by name (DescribeStacks on that stack only) because it is deployed
    after this one. Exposes `function`, `queue`, `dead_letter_queue`, `dead_letters_alarm`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        landing_prefix: str,
        ledger: dynamodb.ITable,
        manifest_bucket: s3.IBucket,
        pipeline_name: str,
        encryption_key: kms.IKey,
        topic: sns.ITopic,
        metrics_namespace: str,
        completion_mode: str = "marker",
        quiet_period_seconds: int = 300,
        max_concurrent_executions: int = 2,
        allow_reupload: bool = False,
        retrain_schedule: str | None = None,
        retrain_alarm_prefix: str | None = None,
        retrain_cooldown: Duration = DEFAULT_COOLDOWN,
        model_package_parameter: str = "",
        model_role_parameter: str = "",
        champion: tuple[str, str] | None = None,
        serving_stack_name: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        if (champion or model_package_parameter) and not serving_stack_name:
            raise ValueError(
                "DatasetTrigger: champion and model_package_parameter need serving_stack_name "
                "(the production model is the package the Serving stack serves)"
            )
        self.queue, self.dead_letter_queue = source_queue(
            self,
            "Events",
            "DeadLetters",
            purpose=f"{construct_id}-events",
            encryption_key=encryption_key,
            of="the trigger queue",
            # Lambda's guidance for SQS sources: six times the function timeout.
            visibility_timeout=Duration.seconds(6 * FUNCTION_TIMEOUT.to_seconds()),
            max_receive_count=10,
        )
        landed = events.Rule(
            self,
            "ObjectCreated",
            description=f"Objects landing under {landing_prefix} of the data bucket",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [bucket.bucket_name]},
                    "object": {"key": [{"prefix": landing_prefix}]},
                },
            ),
        )
        deliver_to_queue(landed, self.queue, dead_letter_queue=self.dead_letter_queue)

        handler = PythonFunction(
            self,
            "StartTraining",
            folder="start_training",
            shared_modules=("served_package",),
            description=f"Starts {pipeline_name} once per complete dataset version",
            encryption_key=encryption_key,
            timeout=FUNCTION_TIMEOUT,
            memory_size=FUNCTION_MEMORY_MB,
            environment={
                "PIPELINE_NAME": pipeline_name,
                "LEDGER_TABLE": ledger.table_name,
                "DATA_BUCKET": bucket.bucket_name,
                "QUEUE_URL": self.queue.queue_url,
                "LANDING_PREFIX": landing_prefix,
                "COMPLETION_MODE": completion_mode,
                "QUIET_PERIOD_SECONDS": str(quiet_period_seconds),
                "MAX_CONCURRENT_EXECUTIONS": str(max_concurrent_executions),
                "ALLOW_REUPLOAD": str(allow_reupload).lower(),
                "RETRAIN_COOLDOWN_SECONDS": str(int(retrain_cooldown.to_seconds())),
                "LEASE_SECONDS": str(LEASE_SECONDS),
                "MANIFEST_BUCKET": manifest_bucket.bucket_name,
                "MANIFEST_PREFIX": MANIFEST_PREFIX,
                "MODEL_PACKAGE_PARAMETER": model_package_parameter,
                "MODEL_ROLE_PARAMETER": model_role_parameter,
                **({"CHAMPION_PARAMETER": champion[0]} if champion else {}),
                **({"SERVING_STACK_NAME": serving_stack_name} if serving_stack_name else {}),
                **({"RETRAIN_ALARM_PREFIX": retrain_alarm_prefix} if retrain_alarm_prefix else {}),
                "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
            },
        )
        self.function = handler.function
        handler.function.add_event_source(
            lambda_events.SqsEventSource(
                without_key(self.queue),
                batch_size=10,
                report_batch_item_failures=True,
                max_concurrency=2,
            )
        )
        self._grant_data_access(handler, bucket, landing_prefix, manifest_bucket, ledger)
        pipeline = pipeline_arn(stack, pipeline_name)
        handler.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:StartPipelineExecution",
                    "sagemaker:ListPipelineExecutions",
                    "sagemaker:DescribePipelineExecution",
                ],
                resources=[pipeline, f"{pipeline}/execution/*"],
            )
        )
        acknowledge(
            handler,
            object_wildcard(handler, bucket, landing_prefix),
            object_wildcard(handler, manifest_bucket, MANIFEST_PREFIX),
            f"AwsSolutions-IAM5[Resource::{pipeline}/execution/*]",
            reason=f"Reads only the {landing_prefix} prefix of this environment's data bucket "
            "(to check markers, manifests and checksums), writes and reads only the version "
            "manifests of the artifact bucket, and sees only the executions of its own "
            "pipeline.",
        )
        if serving_stack_name:
            serving_stack = stack.format_arn(
                service="cloudformation", resource="stack", resource_name=f"{serving_stack_name}/*"
            )
            handler.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["cloudformation:DescribeStacks"], resources=[serving_stack]
                )
            )
            acknowledge(
                handler,
                f"AwsSolutions-IAM5[Resource::{serving_stack}]",
                reason="Reads only the Serving stack (its ModelPackageArn is what serves); the "
                "stack id after its name changes whenever the stack is re-created.",
            )
        if champion:
            # "no new data": the served package's lineage, the pipeline's definition and the
            # definition and parameters of the execution that registered the package
            handler.role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "sagemaker:DescribePipeline",
                        "sagemaker:DescribePipelineDefinitionForExecution",
                        "sagemaker:ListPipelineParametersForExecution",
                    ],
                    resources=[pipeline, f"{pipeline}/execution/*"],
                )
            )
            packages = stack.format_arn(
                service="sagemaker", resource="model-package", resource_name=f"{champion[1]}/*"
            )
            handler.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeModelPackage"], resources=[packages]
                )
            )
            acknowledge(
                handler,
                f"AwsSolutions-IAM5[Resource::{packages}]",
                reason="Describes the served package (a version of this environment's group) "
                "to compare its data digest and execution with a retrain's.",
            )

        self.dead_letters_alarm = dead_letters_alarm(
            self,
            "DeadLettersNotEmpty",
            queue=self.dead_letter_queue,
            description="Landing events could not be processed: inspect and redrive the "
            "trigger's dead-letter queue",
            topic=topic,
        )

        if retrain_schedule:
            schedule_dead_letters = dead_letter_queue(
                self,
                "ScheduleDeadLetters",
                encryption_key=encryption_key,
                of="the retrain schedule",
            )
            self.schedule_dead_letters_alarm = dead_letters_alarm(
                self,
                "ScheduleDeadLettersNotEmpty",
                queue=schedule_dead_letters,
                description="A scheduled retrain could not be sent to the trigger queue: "
                "inspect the retrain schedule's dead-letter queue",
                topic=topic,
            )
            scheduler.Schedule(
                self,
                "RetrainSchedule",
                description="Re-runs the pipeline on the latest complete dataset version",
                schedule=scheduler.ScheduleExpression.expression(retrain_schedule),
                # through the queue, so its retries and dead-letter queue cover schedules too
                target=scheduler_targets.SqsSendMessage(
                    without_key(self.queue),
                    # the scheduled time makes a retried invocation the same request
                    input=scheduler.ScheduleTargetInput.from_object(
                        {
                            "action": "retrain-latest",
                            "reason": "schedule",
                            "scheduled_time": scheduler.ContextAttribute.scheduled_time,
                        }
                    ),
                    dead_letter_queue=without_key(schedule_dead_letters),
                    retry_attempts=5,
                    role=schedule_role(
                        self,
                        "ScheduleRole",
                        description="EventBridge Scheduler sends scheduled retrains as this role",
                        sends_to=[self.queue, schedule_dead_letters],
                    ),
                ),
            )
        if retrain_alarm_prefix:
            alarmed = events.Rule(
                self,
                "RetrainOnAlarm",
                description=f"Alarms named {retrain_alarm_prefix}* entering ALARM retrain",
                event_pattern=events.EventPattern(
                    source=["aws.cloudwatch"],
                    detail_type=["CloudWatch Alarm State Change"],
                    detail={
                        "alarmName": [{"prefix": retrain_alarm_prefix}],
                        "state": {"value": ["ALARM"]},
                    },
                ),
            )
            deliver_to_queue(alarmed, self.queue, dead_letter_queue=self.dead_letter_queue)

    def _grant_data_access(
        self,
        handler: PythonFunction,
        bucket: s3.IBucket,
        landing_prefix: str,
        manifest_bucket: s3.IBucket,
        ledger: dynamodb.ITable,
    ) -> None:
        """What the handler calls: versions and checksums of objects under `landing_prefix`,
        the version manifests (written once), the ledger (GetItem, UpdateItem) and its own
        queue (quiet-period checks and deferrals); every key only through its service."""
        grant_object_read(
            bucket,
            handler.role,
            landing_prefix,
            extra_actions=("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
            list_versions=True,
        )
        handler.role.add_to_policy(  # write-once: a manifest is never replaced or deleted
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[manifest_bucket.arn_for_objects(f"{MANIFEST_PREFIX}*")],
            )
        )
        grant_key_use(
            manifest_bucket.encryption_key, handler.role, S3_WRITE_KEY_ACTIONS, via=["s3"]
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(actions=list(LEDGER_ACTIONS), resources=[ledger.table_arn])
        )
        grant_key_use(ledger.encryption_key, handler.role, DYNAMODB_KEY_ACTIONS, via=["dynamodb"])
        handler.role.add_to_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queue.queue_arn])
        )
        grant_key_use(
            self.queue.encryption_master_key,
            handler.role,
            (*SQS_SEND_KEY_ACTIONS, *SQS_RECEIVE_KEY_ACTIONS),
            via=["sqs"],
        )
