"""The run tracker: every finished execution of this environment's pipelines becomes one MLflow
run (lambdas/track_runs), off the pipelines' path."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.alarms import any_occurrence_alarm
from constructs.bucket_access import grant_object_read, grant_object_write
from constructs.dead_letters import dead_letter_queue
from constructs.event_rules import rule_invoking
from constructs.mlflow_server import MLFLOW_ARTIFACTS_PREFIX
from constructs.nag import acknowledge, object_wildcard
from constructs.python_function import PythonFunction
from constructs.sagemaker_pipeline import pipeline_arn, pipeline_executions_arn
from mlops_config import EnvironmentConfig
from mlops_config.tracking import tracked_pipelines
from pipeline_code.definition.contract import EXECUTION_OUTPUTS, pipeline_output_prefix

PIPELINE_STATUS_EVENT = "SageMaker Model Building Pipeline Execution Status Change"
FINISHED_STATUSES = ("Succeeded", "Failed", "Stopped")
# The one tag the tracker may put on a model package (lambdas/track_runs/run_record.py).
PACKAGE_RUN_TAG = "mlflow-run-id"
PIPELINE_JOB_PREFIX = "pipelines-"
# The tag every job of the training pipeline carries (pipeline_code/definition/context.py's
# job_tags; the tuning step gives its tuning job the Train step's tags).
PIPELINE_TAG = "pipeline"
# What reading a tuning step's trials takes (lambdas/track_runs/trials.py).
TUNING_READS = (
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
)
# Lambda seconds: the run, and with tuning about one more per trial (3 requests each).
BASE_TIMEOUT_SECONDS = 120
MAX_TIMEOUT_SECONDS = 900
# What the logger calls on the tracking server (Service Authorization Reference, Amazon
# SageMaker with MLflow): no model registry, no UI, and no deletion at all: DeleteRun can only
# be scoped to the whole server (on a shared one, every team's runs), so a duplicate run is
# retired by a tag and the KILLED status (UpdateRun) instead.
MLFLOW_ACTIONS = (
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:SearchRuns",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:UpdateRun",
)
TRACKING_FAILURES = "TrackingFailures"
# What could change a package's approval (or make one that skips it): denied outright.
NEVER_ACTIONS = (
    "sagemaker:UpdateModelPackage",
    "sagemaker:CreateModelPackage",
    "sagemaker:DeleteModelPackage",
    "sagemaker:PutModelPackageGroupPolicy",
)


def tracking_server_arn(stack: Stack, config: EnvironmentConfig) -> str | None:
    """The environment's SageMaker tracking server: managed, its ARN from its configured name
    (not a reference to the Data stack: a cross-stack export cannot be removed while imported,
    so switching managed -> off or external would fail the deploy); external, the configured
    ARN; None for a self-hosted server (`server_uri`: no IAM reaches it)."""
    if config.tracking.mlflow == "managed":
        return stack.format_arn(
            service="sagemaker",
            resource="mlflow-tracking-server",
            resource_name=config.mlflow_server_name,
        )
    if config.tracking.server_uri is not None:
        return None
    if config.tracking.server_arn is None:
        raise ValueError("tracking.mlflow is off: there is no tracking server to log to")
    return config.tracking.server_arn


class MlflowRunTracker(Construct):
    """Execution status changes of the environment's training and eval-only pipelines (a
    promotion target: its eval-only pipeline alone, `tracked_pipelines`) -> the
    `track_runs` Lambda (managed: the server `mlflow_server_name`, else `tracking.server_arn`
    or the self-hosted `tracking.server_uri`, its credentials read from
    `tracking.credentials_secret_arn`),
    which reads what the execution's steps wrote (its parameters, Evaluate's evaluation.json and
    plots, Prepare's split report, each step's code hash) and logs one MLflow run on that server,
    then tags the registered package with the run id (not in a promotion target: an eval-only
    execution registers nothing, so there the role cannot tag at all).

    The pipelines never wait on it: a tracking server that is down or refuses a write fails
    the invocation (counted as `TrackingFailures`, alarmed), EventBridge and Lambda retry it,
    and what still fails lands in the KMS-encrypted dead-letter queue (alarmed too), from where
    `mlops runs backfill EXECUTION` logs it later. The role reads only the pipelines'
    execution outputs, writes only under `mlflow/` of `artifact_bucket` (the managed server's
    artifact store), and on model packages may only add the `mlflow-run-id` tag: no
    UpdateModelPackage, so it can approve nothing. Exposes `function`, `rule`,
    `dead_letter_queue`, `dead_letters_alarm`, `errors_alarm`, `failures_alarm`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        artifact_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        pipeline_names = tracked_pipelines(config)
        trains = config.promotion.trains
        artifact_store = config.tracking.mlflow == "managed"
        server_arn = tracking_server_arn(stack, config)
        secret = config.tracking.credentials_secret_arn  # server_uri only
        model_package_group_name = config.model_package_group_name
        tuning = config.pipeline.tuning if trains else None
        metrics_namespace = f"{config.prefix}/RunTracker"
        names = [name.lower() for name in pipeline_names]
        self.dead_letter_queue = dead_letter_queue(
            self,
            "DeadLetters",
            encryption_key=encryption_key,
            of="the run-tracking rule and the run tracker's asynchronous invocations",
        )
        handler = PythonFunction(
            self,
            "Function",
            folder="track_runs",
            description="Logs each finished pipeline execution as one MLflow run",
            encryption_key=encryption_key,
            timeout=Duration.seconds(
                min(
                    MAX_TIMEOUT_SECONDS,
                    BASE_TIMEOUT_SECONDS + (tuning.max_jobs if tuning is not None else 0),
                )
            ),
            memory_size=256,
            environment={
                "TRACKING_SERVER": server_arn or str(config.tracking.server_uri),
                **({"CREDENTIALS_SECRET": secret} if secret else {}),
                "PIPELINE_NAMES": ",".join(names),
                # only a managed server's artifact store (our bucket) is ours to write
                "COPY_ARTIFACTS": "true" if artifact_store else "false",
                "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
            },
            on_failure=self.dead_letter_queue,
        )
        self.function = handler.function
        role = handler.role
        executions = [pipeline_executions_arn(stack, name) for name in names]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribePipelineExecution",
                    "sagemaker:ListPipelineExecutionSteps",
                    "sagemaker:ListPipelineParametersForExecution",
                ],
                resources=executions,
            )
        )
        jobs = [
            stack.format_arn(
                service="sagemaker", resource=kind, resource_name=f"{PIPELINE_JOB_PREFIX}*"
            )
            for kind in ("processing-job", "training-job")
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeProcessingJob", "sagemaker:DescribeTrainingJob"],
                resources=jobs,
            )
        )
        tuning_jobs = []
        if tuning is not None:
            # a tuning step's trials: only the training pipeline's own tuning jobs (its tag)
            tuning_jobs = [
                stack.format_arn(
                    service="sagemaker",
                    resource="hyper-parameter-tuning-job",
                    resource_name=f"{PIPELINE_JOB_PREFIX}*",
                )
            ]
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadThisPipelinesTuningTrials",
                    actions=list(TUNING_READS),
                    resources=tuning_jobs,
                    conditions={
                        "StringEquals": {f"aws:ResourceTag/{PIPELINE_TAG}": config.pipeline_name}
                    },
                )
            )
        group_packages = stack.format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{model_package_group_name.lower()}/*",
        )
        # only the training pipeline registers a package to tag
        packages = [group_packages] if trains else []
        for package in packages:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:AddTags"],
                    resources=[package],
                    conditions={"ForAllValues:StringEquals": {"aws:TagKeys": [PACKAGE_RUN_TAG]}},
                )
            )
        if server_arn is not None:
            role.add_to_policy(
                iam.PolicyStatement(actions=list(MLFLOW_ACTIONS), resources=[server_arn])
            )
        if secret is not None:
            # that one secret (an AWS managed key needs no grant; a customer managed key's
            # policy must let this role decrypt through Secrets Manager: README)
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadTheTrackingServersCredentials",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[secret],
                )
            )
        # never an approval, whatever a broader policy attached later allows
        role.add_to_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=list(NEVER_ACTIONS),
                resources=[stack.format_arn(service="sagemaker", resource="model-package*")],
            )
        )
        outputs = [f"{pipeline_output_prefix(name, EXECUTION_OUTPUTS)}" for name in pipeline_names]
        for prefix in outputs:
            grant_object_read(artifact_bucket, role, prefix)
        if artifact_store:
            grant_object_write(artifact_bucket, role, MLFLOW_ARTIFACTS_PREFIX)
        acknowledge(
            handler,
            *(
                f"AwsSolutions-IAM5[Resource::{arn}]"
                for arn in [*executions, *jobs, *tuning_jobs, *packages]
            ),
            *(object_wildcard(self, artifact_bucket, prefix) for prefix in outputs),
            *(
                [object_wildcard(self, artifact_bucket, MLFLOW_ARTIFACTS_PREFIX)]
                if artifact_store
                else []
            ),
            reason="Execution ids, job and tuning job names, package versions and run artifact "
            "keys are created at run time: it reads only this environment's pipelines' "
            "executions, their jobs (pipelines-*, tuning jobs by the pipeline tag) and "
            "outputs, adds only the mlflow-run-id tag to this group's packages and writes run "
            "artifacts only under mlflow/.",
        )

        self.rule, self.dead_letters_alarm, self.errors_alarm = rule_invoking(
            self,
            "OnExecutionFinished",
            description="Pipeline executions that finished: log each as one MLflow run",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_STATUS_EVENT],
                detail={
                    "currentPipelineExecutionStatus": list(FINISHED_STATUSES),
                    "pipelineArn": [pipeline_arn(stack, name) for name in names],
                },
            ),
            function=self.function,
            dead_letter_queue=self.dead_letter_queue,
            topic=topic,
            on_dead_letters="Pipeline executions could not be logged to MLflow: fix the "
            "tracking server, then run `mlops runs backfill EXECUTION` for each (the DLQ "
            "holds their events)",
            on_errors="The MLflow run tracker failed (retried, then dead-lettered): read its logs",
        )
        self.failures_alarm: cloudwatch.Alarm = any_occurrence_alarm(
            self,
            "TrackingFailuresAlarm",
            metric=cloudwatch.Metric(
                namespace=metrics_namespace,
                metric_name=TRACKING_FAILURES,
                dimensions_map={"service": "track_runs"},
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            description="The MLflow tracking server was unreachable or rejected a write: the "
            "training loop goes on, the run is retried and can be back-filled",
            topic=topic,
        )
