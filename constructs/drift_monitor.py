"""Drift checks against the served model's baseline: of an endpoint's captured traffic on a
schedule, or (batch serving) of each scoring run's rows once it completed."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.dead_letters import dead_letter_queue, dead_letters_alarm
from constructs.key_use import without_key
from constructs.monitoring_job_role import monitoring_job_role, notify_failed_jobs
from constructs.nag import acknowledge, invoke_any_version
from constructs.private_network import VpcPlacement
from constructs.python_function import PythonFunction
from constructs.schedule_role import schedule_role

DRIFT_JOB_DIR = Path(__file__).resolve().parent.parent / "pipeline_code" / "monitoring"


class DriftMonitor(Construct):
    """On `schedule`, the `start_drift_job` Lambda starts a SageMaker Processing job that runs
    `pipeline_code/monitoring/drift_check.py` (Evidently) on the last window of traffic that
    `endpoint_name` captured under `capture_prefix`, against the baseline registered with the
    model being served. Reports go to `artifact_bucket`/monitoring/, metrics to
    `metrics_namespace`. A feature drifted when its value test says so or its missing share
    rose by more than `missing_share_threshold`. The job reads the model's features from that
    baseline, so nothing here grows with the schema. The job image is built from the Dockerfile
    at deploy time (synth needs no Docker). Job volumes and reports are encrypted with
    `encryption_key`; the starter, its logs and its dead-letter queue with `operations_key`.
    A failed job notifies `topic`; a schedule that cannot invoke the starter, and a starter
    that fails after Lambda's retries, leave the event in a dead-letter queue whose alarm
    notifies `topic` too. With `vpc` (default None: AWS's network) the job runs in its subnets
    and security groups, and the starter can start no job outside them. Exposes
    `metrics_namespace`, `drift_share` (metric), `starter` (function), `dead_letters_alarm`,
    `rule` (batch serving's; else None).

    Batch serving (`scoring_output_prefix` instead of `schedule` and `capture_prefix`): no
    endpoint, no schedule. Each completed scoring transform job whose output is under
    `scoring_output_prefix` of `data_bucket` invokes the starter through an EventBridge rule (the
    same retries, dead-letter queue and alarm as the schedule's), which checks that run's rows
    (the scoring pipeline's outputs in `artifact_bucket`) against the baseline of the package
    version of `model_package_group_name` that scored them. `endpoint_name` is then only the name
    the metrics carry (their EndpointName dimension), and the starter may read packages only:
    no endpoint, config or model. Why a rule, not a step of the scoring pipeline: the drift job
    belongs to this construct's stack (image, role, starter), which the pipeline's stack must
    not depend on; and a drift check that fails must not fail a scoring run whose predictions are
    good (it notifies on its own, as the scheduled check does).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        operations_key: kms.IKey,
        topic: sns.ITopic,
        model_package_group_name: str,
        instance_type: str,
        drift_share_threshold: float,
        missing_share_threshold: float,
        metrics_namespace: str,
        project: str,
        environment: str,
        schedule: str | None = None,
        capture_prefix: str | None = None,
        scoring_output_prefix: str | None = None,
        vpc: VpcPlacement | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        scheduled = schedule is not None and capture_prefix is not None
        if scheduled == (scoring_output_prefix is not None):
            raise ValueError(
                "DriftMonitor watches an endpoint (schedule and capture_prefix) or scoring runs "
                "(scoring_output_prefix): give one of the two"
            )
        stack = Stack.of(self)
        self.rule: events.Rule | None = None
        self.metrics_namespace = metrics_namespace
        image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(DRIFT_JOB_DIR),
            platform=ecr_assets.Platform.LINUX_AMD64,
            exclude=["**/__pycache__", "**/*.pyc", "__init__.py"],
        )

        job_role = monitoring_job_role(
            self,
            "JobRole",
            description=f"Drift checks of {endpoint_name}",
            data_bucket=data_bucket,
            capture_prefix=capture_prefix,
            artifact_bucket=artifact_bucket,
            encryption_key=encryption_key,
            metrics_namespace=metrics_namespace,
        )
        image.repository.grant_pull(job_role)
        in_vpc = {}
        if vpc is not None:
            vpc.grant_sagemaker_interfaces(job_role)
            in_vpc = {
                "VPC_SUBNETS": ",".join(vpc.subnet_ids),
                "VPC_SECURITY_GROUP_IDS": ",".join(vpc.security_group_ids),
            }

        source = "drift schedule" if scheduled else "scoring-run rule"
        dead_letters = dead_letter_queue(
            self,
            "ScheduleDeadLetters",
            encryption_key=operations_key,
            of=f"the {source} and the drift starter's asynchronous invocations",
        )
        self.dead_letters_alarm = dead_letters_alarm(
            self,
            "DeadLettersNotEmpty",
            queue=dead_letters,
            description=f"A drift check of {endpoint_name} could not be started: inspect the "
            f"{source}'s dead-letter queue and the starter's logs",
            topic=topic,
        )
        starter = PythonFunction(
            self,
            "Starter",
            folder="start_drift_job",
            shared_modules=("scoring_runs",),
            description=f"Starts the drift check of {endpoint_name}",
            encryption_key=operations_key,
            on_failure=dead_letters,
            environment={
                "ENDPOINT_NAME": endpoint_name,
                "DRIFT_IMAGE_URI": image.image_uri,
                "JOB_ROLE_ARN": job_role.role_arn,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
                "DATA_BUCKET": data_bucket.bucket_name,
                "KMS_KEY_ARN": encryption_key.key_arn,
                "PROJECT_NAME": project,
                "ENVIRONMENT_NAME": environment,
                "INSTANCE_TYPE": instance_type,
                "DRIFT_SHARE_THRESHOLD": str(drift_share_threshold),
                "MISSING_SHARE_THRESHOLD": str(missing_share_threshold),
                "METRICS_NAMESPACE": metrics_namespace,
                "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
                **({} if scheduled else {"MODEL_PACKAGE_GROUP": model_package_group_name}),
                **in_vpc,
            },
        )
        self.starter = starter.function

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        packages = arn("model-package", f"{model_package_group_name}/*")
        if scheduled:
            starter.role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "sagemaker:DescribeEndpoint",
                        "sagemaker:DescribeEndpointConfig",
                        "sagemaker:DescribeModel",
                        "sagemaker:DescribeModelPackage",
                    ],
                    resources=[
                        arn("endpoint", endpoint_name.lower()),
                        arn("endpoint-config", "*"),
                        arn("model", "*"),
                        packages,
                    ],
                )
            )
        else:  # a scoring run names its package version: the package is all it reads
            starter.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeModelPackage"], resources=[packages]
                )
            )
        jobs = arn("processing-job", "drift-*")
        starter.role.add_to_policy(
            iam.PolicyStatement(
                sid="StartOnlyEncryptedDriftJobsOfTheConfiguredType",
                actions=["sagemaker:CreateProcessingJob"],
                resources=[jobs],
                conditions={
                    # the starter's request sets both (ProcessingOutputConfig.KmsKeyId and
                    # ClusterConfig.VolumeKmsKeyId = KMS_KEY_ARN); ARN operators fail on an
                    # absent key, so an unencrypted request is refused
                    "ArnEquals": {
                        "sagemaker:OutputKmsKey": encryption_key.key_arn,
                        "sagemaker:VolumeKmsKey": encryption_key.key_arn,
                    },
                    "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": [instance_type]},
                    # ForAllValues holds for an absent key: require it
                    "Null": {"sagemaker:InstanceTypes": "false"},
                },
            )
        )
        starter.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeProcessingJob", "sagemaker:AddTags"],
                resources=[jobs],
            )
        )
        if vpc is not None:
            vpc.deny_outside(starter.role, ["sagemaker:CreateProcessingJob"])
        starter.role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[job_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        if scheduled:
            acknowledge(
                starter,
                *[
                    f"AwsSolutions-IAM5[Resource::{arn(kind, '*')}]"
                    for kind in ("endpoint-config", "model")
                ],
                f"AwsSolutions-IAM5[Resource::{packages}]",
                f"AwsSolutions-IAM5[Resource::{jobs}]",
                reason="Follows the served endpoint to its config, model and package (names "
                "created per deployment, read-only) and starts drift-* jobs, named per run.",
            )
            assert schedule is not None
            self._on_schedule(schedule, endpoint_name, starter.function, dead_letters)
        else:
            acknowledge(
                starter,
                f"AwsSolutions-IAM5[Resource::{packages}]",
                f"AwsSolutions-IAM5[Resource::{jobs}]",
                reason="Reads the package versions of this environment's group (the version "
                "that scored a run is known only then) and starts drift-* jobs, named per run.",
            )
            self.rule = events.Rule(
                self,
                "OnScoringRunCompleted",
                description="Scoring transform job completed: check its rows for drift",
                event_pattern=events.EventPattern(
                    source=["aws.sagemaker"],
                    detail_type=["SageMaker Transform Job State Change"],
                    detail={
                        "TransformJobStatus": ["Completed"],
                        "TransformOutput": {
                            "S3OutputPath": [
                                {
                                    "prefix": f"s3://{data_bucket.bucket_name}/"
                                    f"{scoring_output_prefix}"
                                }
                            ]
                        },
                    },
                ),
                targets=[
                    targets.LambdaFunction(
                        starter.function,
                        dead_letter_queue=dead_letters,
                        retry_attempts=8,
                        max_event_age=Duration.hours(2),
                    )
                ],
            )

        notify_failed_jobs(
            self,
            "JobFailed",
            what="Drift check",
            endpoint_name=endpoint_name,
            match={"ProcessingJobName": [{"prefix": "drift-"}]},
            topic=topic,
        )
        self.drift_share = cloudwatch.Metric(
            namespace=metrics_namespace,
            metric_name="DriftedFeatureShare",
            dimensions_map={"EndpointName": endpoint_name},
            statistic="Maximum",
            period=Duration.hours(1),
        )

    def _on_schedule(
        self,
        schedule: str,
        endpoint_name: str,
        starter: lambda_.IFunction,
        dead_letters: sqs.Queue,
    ) -> None:
        invoker = schedule_role(
            self,
            "ScheduleRole",
            description=f"EventBridge Scheduler starts the drift check of {endpoint_name} as "
            "this role",
            sends_to=[dead_letters],
        )
        scheduler.Schedule(
            self,
            "Schedule",
            description=f"Drift check of {endpoint_name}",
            schedule=scheduler.ScheduleExpression.expression(schedule),
            target=scheduler_targets.LambdaInvoke(
                starter,
                input=scheduler.ScheduleTargetInput.from_object(
                    {
                        "window_hours": 24,
                        "scheduled_time": scheduler.ContextAttribute.scheduled_time,
                    }
                ),
                dead_letter_queue=without_key(dead_letters),
                retry_attempts=3,
                role=invoker,
            ),
        )
        acknowledge(
            invoker,
            invoke_any_version(starter),
            reason="EventBridge Scheduler may invoke only the drift starter (any version); "
            "the grant is CDK's LambdaInvoke target.",
        )
