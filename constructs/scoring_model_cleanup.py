"""Deletes each scoring run's SageMaker model once its transform job has finished (batch
serving): transform job Completed, Failed or Stopped, or the scoring pipeline execution Failed or
Stopped (its transform job may never have started) -> `lambdas/delete_scoring_model`."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.dead_letters import dead_letter_queue
from constructs.event_rules import rule_invoking
from constructs.nag import acknowledge
from constructs.predictions_marker import scoring_transform_events
from constructs.python_function import PythonFunction
from constructs.sagemaker_pipeline import pipeline_executions_arn

FINISHED = ["Completed", "Failed", "Stopped"]
PIPELINE_DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Status Change"
PIPELINE_ENDED = ["Failed", "Stopped"]
# SageMaker Pipelines names the models its Model steps create pipelines-<execution id>-...
MODEL_PREFIX = "pipelines-"
PIPELINE_TAG = "pipeline"


class ScoringModelCleanup(Construct):
    """Transform jobs of `pipelines-*` models that finished (Completed, Failed or Stopped) and
    wrote under `predictions/` of `data_bucket` (this environment's scoring runs, not every
    SageMaker Pipelines transform job in the account) -> the function deletes their model.

    The function may call only sagemaker:DeleteModel, only on `pipelines-*` models tagged
    `pipeline` = `scoring_pipeline_name` (the tags the scoring pipeline's Model step gives its
    model): no other pipeline's model, no model the Serving stack or anyone else created. Its
    worst is deleting a scoring model early, which fails that run's transform job. EventBridge
    invokes it asynchronously: undeliverable events (two hours of retries) and events it failed
    on after Lambda's two retries end in one KMS-encrypted dead-letter queue whose alarm notifies
    `topic`, as does its errors alarm.

    A run whose transform job never started leaves no transform event: `execution_rule` sends
    the scoring pipeline's executions that end Failed or Stopped too; the function reads that
    execution's steps (sagemaker:ListPipelineExecutionSteps on the scoring pipeline's executions
    only) to find the model its Model step created. Exposes `function`, `rule`,
    `execution_rule`, `dead_letter_queue`, `dead_letters_alarm`, `errors_alarm`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        scoring_pipeline_name: str,
        scoring_pipeline_arn: str,
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
            of="the scoring-model cleanup rule and the cleanup's asynchronous invocations",
        )
        handler = PythonFunction(
            self,
            "Function",
            folder="delete_scoring_model",
            shared_modules=("scoring_runs",),
            description="Deletes a scoring run's model once its transform job finished",
            encryption_key=encryption_key,
            timeout=Duration.seconds(30),
            memory_size=128,
            environment={"POWERTOOLS_METRICS_NAMESPACE": metrics_namespace},
            on_failure=self.dead_letter_queue,
        )
        self.function = handler.function
        models = Stack.of(self).format_arn(
            service="sagemaker", resource="model", resource_name=f"{MODEL_PREFIX}*"
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="DeleteOnlyThisEnvironmentsScoringModels",
                actions=["sagemaker:DeleteModel"],
                resources=[models],
                conditions={
                    "StringEquals": {f"aws:ResourceTag/{PIPELINE_TAG}": scoring_pipeline_name}
                },
            )
        )
        executions = pipeline_executions_arn(Stack.of(self), scoring_pipeline_name)
        handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadOnlyTheScoringPipelinesSteps",
                actions=["sagemaker:ListPipelineExecutionSteps"],
                resources=[executions],
            )
        )
        acknowledge(
            handler,
            f"AwsSolutions-IAM5[Resource::{executions}]",
            reason="Execution ids are generated at run time; only the scoring pipeline's "
            "executions' steps may be listed (to find the model a failed run created).",
        )
        acknowledge(
            handler,
            f"AwsSolutions-IAM5[Resource::{models}]",
            reason="Model names are generated by SageMaker Pipelines at run time (pipelines-*); "
            "only models tagged with this environment's scoring pipeline may be deleted.",
        )
        self.rule, self.dead_letters_alarm, self.errors_alarm = rule_invoking(
            self,
            "OnTransformFinished",
            description="Scoring transform job finished: delete the model it ran",
            event_pattern=scoring_transform_events(
                data_bucket, FINISHED, ModelName=[{"prefix": MODEL_PREFIX}]
            ),
            function=self.function,
            dead_letter_queue=self.dead_letter_queue,
            topic=topic,
            on_dead_letters="A finished scoring run's model could not be deleted: inspect the "
            "scoring-model cleanup's dead-letter queue and its logs",
            on_errors="The scoring-model cleanup Lambda failed (Lambda retries twice, then the "
            "event goes to its dead-letter queue): read its logs",
        )
        self.execution_rule = events.Rule(
            self,
            "OnScoringRunEnded",
            description="Scoring pipeline execution Failed or Stopped: delete the model it created",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_DETAIL_TYPE],
                detail={
                    "pipelineArn": [scoring_pipeline_arn],
                    "currentPipelineExecutionStatus": PIPELINE_ENDED,
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=8,
                    max_event_age=Duration.hours(2),
                )
            ],
        )
