"""Run-time cost-allocation tags on every job of this environment's pipelines."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.dead_letters import dead_letter_queue
from constructs.event_rules import rule_invoking
from constructs.nag import acknowledge
from constructs.python_function import PythonFunction
from constructs.sagemaker_pipeline import pipeline_executions_arn

DATASET_VERSION_TAG = "dataset-version"
EXECUTION_ID_TAG = "execution-id"
# SageMaker Pipelines names every job it starts pipelines-<execution id>-<step>-<suffix>.
PIPELINE_JOB_PREFIX = "pipelines-"
JOB_STATE_CHANGES = (
    "SageMaker Training Job State Change",
    "SageMaker Processing Job State Change",
)
TRANSFORM_JOB_STATE_CHANGE = "SageMaker Transform Job State Change"


class JobTagger(Construct):
    """SageMaker job state changes -> the `tag_jobs` Lambda, which tags each job of
    `pipeline_names` with the run's dataset version and execution id.

    A pipeline definition can give its jobs only static tags (project, environment,
    pipeline); the run's dataset version exists only once the run starts. SageMaker tags each
    pipeline job with `sagemaker:pipeline-execution-arn`, so the Lambda reads the execution's
    DatasetVersion parameter and adds `dataset-version` and `execution-id` within seconds of
    the job starting (activate them as cost-allocation tags in Billing to group costs by
    them). EventBridge invokes the Lambda asynchronously: deliveries it cannot make are retried
    for two hours, and events the Lambda fails on after its two retries go to its on-failure
    destination; both end in one KMS-encrypted dead-letter queue whose alarm notifies `topic`,
    and the function's errors alarm too. Only jobs SageMaker Pipelines names (`pipelines-*`)
    are read and tagged. With `transform_jobs` (default False; batch serving's scoring runs)
    transform jobs too. Exposes `function`, `rule`, `dead_letter_queue`,
    `dead_letters_alarm`, `errors_alarm`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_names: Sequence[str],
        encryption_key: kms.IKey,
        topic: sns.ITopic,
        metrics_namespace: str,
        transform_jobs: bool = False,
        follow_tuning_jobs: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        kinds = ["training-job", "processing-job"] + (["transform-job"] if transform_jobs else [])
        names = ["TrainingJobName", "ProcessingJobName"] + (
            ["TransformJobName"] if transform_jobs else []
        )
        stack = Stack.of(self)
        self.dead_letter_queue = dead_letter_queue(
            self,
            "DeadLetters",
            encryption_key=encryption_key,
            of="the job-tagging rule and the job tagger's asynchronous invocations",
        )
        handler = PythonFunction(
            self,
            "Function",
            folder="tag_jobs",
            description="Tags pipeline jobs with their dataset version and execution id",
            encryption_key=encryption_key,
            timeout=Duration.seconds(30),
            memory_size=128,
            environment={
                "PIPELINE_NAMES": ",".join(pipeline_names),
                "DATASET_VERSION_TAG": DATASET_VERSION_TAG,
                "EXECUTION_ID_TAG": EXECUTION_ID_TAG,
                "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
                **({"FOLLOW_TUNING_JOBS": "true"} if follow_tuning_jobs else {}),
            },
            on_failure=self.dead_letter_queue,
        )
        self.function = handler.function
        jobs = [
            stack.format_arn(
                service="sagemaker", resource=kind, resource_name=f"{PIPELINE_JOB_PREFIX}*"
            )
            for kind in kinds
        ]
        handler.role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:ListTags"], resources=jobs)
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:AddTags"],
                resources=jobs,
                conditions={
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": [DATASET_VERSION_TAG, EXECUTION_ID_TAG]
                    }
                },
            )
        )
        executions = [pipeline_executions_arn(stack, name) for name in pipeline_names]
        handler.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListPipelineParametersForExecution"], resources=executions
            )
        )
        acknowledge(
            handler,
            *(f"AwsSolutions-IAM5[Resource::{arn}]" for arn in jobs),
            reason="Job names are generated by SageMaker Pipelines at run time (pipelines-*). "
            "ListTags finds which jobs belong to our pipelines; AddTags may only add the two "
            "run-time cost-allocation tag keys (aws:TagKeys condition).",
        )
        if follow_tuning_jobs:
            self._follow_tuning_jobs(handler, stack)
        acknowledge(
            handler,
            *(f"AwsSolutions-IAM5[Resource::{arn}]" for arn in executions),
            reason="Reads the parameters of executions of this environment's own pipelines, "
            "whose ids are created at run time.",
        )

        self.rule, self.dead_letters_alarm, self.errors_alarm = rule_invoking(
            self,
            "OnJobStateChange",
            description="SageMaker job state changes: tag pipeline jobs for cost allocation",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[
                    *JOB_STATE_CHANGES,
                    *([TRANSFORM_JOB_STATE_CHANGE] if transform_jobs else []),
                ],
                # the tagger may read only pipeline jobs: other jobs would fail it
                detail={"$or": [{name: [{"prefix": PIPELINE_JOB_PREFIX}]} for name in names]},
            ),
            function=self.function,
            dead_letter_queue=self.dead_letter_queue,
            topic=topic,
            on_dead_letters="SageMaker jobs could not be tagged with their dataset version and "
            "execution id: inspect the job-tagger's dead-letter queue and its logs",
            on_errors="The job tagger Lambda failed (Lambda retries twice, then the event "
            "goes to its dead-letter queue): read its logs",
        )

    @staticmethod
    def _follow_tuning_jobs(handler: PythonFunction, stack: Stack) -> None:
        """A tuning trial without the execution tag: DescribeTrainingJob (its TuningJobArn) and
        ListTags on the tuning job, pipeline-named jobs only."""
        trials = stack.format_arn(
            service="sagemaker", resource="training-job", resource_name=f"{PIPELINE_JOB_PREFIX}*"
        )
        tuning_jobs = stack.format_arn(
            service="sagemaker",
            resource="hyper-parameter-tuning-job",
            resource_name=f"{PIPELINE_JOB_PREFIX}*",
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeTrainingJob"], resources=[trials])
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:ListTags"], resources=[tuning_jobs])
        )
        acknowledge(
            handler,
            f"AwsSolutions-IAM5[Resource::{tuning_jobs}]",
            reason="Tuning job names are generated by SageMaker Pipelines at run time "
            "(pipelines-*): the tagger reads a tuning trial's execution tag from its tuning job.",
        )
