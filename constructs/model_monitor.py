"""SageMaker Model Monitor data-quality schedule on the endpoint (engine `model-monitor`).

For accounts that still have Model Monitor (closed to new customers). The training pipeline's
Baseline step (a QualityCheckStep) registers Model-Monitor-format statistics and constraints
with every package; the deploy handler copies their S3 URIs into the Serving stack's baseline
parameters when it deploys the package. This construct turns them into a data-quality job
definition and an hourly/daily monitoring schedule, created only while a model with
baselines is served (`condition`), after the endpoint exists.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import CfnCondition, CfnResource, CfnTag, Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.ecr_images import grant_image_pulls, sagemaker_image_uri
from constructs.monitoring_job_role import (
    MONITORING_PREFIX,
    monitoring_job_role,
    notify_failed_jobs,
)
from constructs.private_network import VpcPlacement

# Where Model Monitor publishes data-quality metrics (dimensions Endpoint, MonitoringSchedule).
DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
# Header-less CSV columns are named _c0, _c1, ... by Model Monitor, in schema feature order.
FEATURE_COLUMN = "_c{}"
_ENDPOINT_INPUT_PATH = "/opt/ml/processing/input/endpoint"
_OUTPUT_PATH = "/opt/ml/processing/output"
# A monitoring job must end before the next one starts; hourly is the tightest schedule.
_MAX_RUNTIME_SECONDS = 3600


def analyzer_image_uri(region: str) -> str:
    """The Model Monitor analyzer image of `region`, from the SageMaker SDK's image table."""
    try:
        return sagemaker_image_uri("model-monitor", region)
    except ValueError:
        raise ValueError(f"SageMaker Model Monitor has no analyzer image in {region}") from None


def feature_drift_metric_name(index: int) -> str:
    """Model Monitor's baseline-drift metric of the `index`-th schema feature."""
    return f"feature_baseline_drift_{FEATURE_COLUMN.format(index)}"


class ModelMonitorSchedule(Construct):
    """A data-quality job definition + monitoring schedule on `endpoint_name`.

    `statistics_uri`/`constraints_uri` are the served package's Model Monitor baselines;
    `schedule_expression` is in Model Monitor's cron form, running every `interval_hours`;
    `endpoint` is the endpoint resource both must follow. Reports go to
    `artifact_bucket`/monitoring/model-monitor/, metrics to
    `aws/sagemaker/Endpoints/data-metrics`; a failed job, and two intervals without results,
    notify `topic`. With `vpc` (default None) the jobs run in its subnets and security groups.
    Exposes `schedule_name`, `job_definition`, `schedule`, `failed_jobs_rule`,
    `no_results_alarm` and `feature_drift(index)` (metric).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        endpoint: CfnResource,
        condition: CfnCondition,
        statistics_uri: str,
        constraints_uri: str,
        schedule_expression: str,
        interval_hours: int,
        data_bucket: s3.IBucket,
        capture_prefix: str,
        artifact_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        instance_type: str,
        tags: dict[str, str],
        topic: sns.ITopic,
        vpc: VpcPlacement | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.endpoint_name = endpoint_name
        self.schedule_name = f"{endpoint_name}-data-quality"
        role = monitoring_job_role(
            self,
            "JobRole",
            description=f"Model Monitor data-quality jobs of {endpoint_name}",
            data_bucket=data_bucket,
            capture_prefix=capture_prefix,
            artifact_bucket=artifact_bucket,
            encryption_key=encryption_key,
            metrics_namespace=DATA_METRICS_NAMESPACE,
        )
        analyzer = analyzer_image_uri(stack.region)
        grant_image_pulls(role, [analyzer])  # the AWS account that publishes it here only
        if vpc is not None:
            vpc.grant_sagemaker_interfaces(role)
        cfn_tags = [CfnTag(key=k, value=v) for k, v in sorted(tags.items())]
        # No fixed name: a new baseline replaces the definition, and the schedule follows.
        self.job_definition = sagemaker.CfnDataQualityJobDefinition(
            self,
            "JobDefinition",
            data_quality_app_specification=sagemaker.CfnDataQualityJobDefinition.DataQualityAppSpecificationProperty(
                image_uri=analyzer,
                environment={"publish_cloudwatch_metrics": "Enabled"},
            ),
            data_quality_baseline_config=sagemaker.CfnDataQualityJobDefinition.DataQualityBaselineConfigProperty(
                constraints_resource=sagemaker.CfnDataQualityJobDefinition.ConstraintsResourceProperty(
                    s3_uri=constraints_uri
                ),
                statistics_resource=sagemaker.CfnDataQualityJobDefinition.StatisticsResourceProperty(
                    s3_uri=statistics_uri
                ),
            ),
            data_quality_job_input=sagemaker.CfnDataQualityJobDefinition.DataQualityJobInputProperty(
                endpoint_input=sagemaker.CfnDataQualityJobDefinition.EndpointInputProperty(
                    endpoint_name=endpoint_name,
                    local_path=_ENDPOINT_INPUT_PATH,
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                )
            ),
            data_quality_job_output_config=sagemaker.CfnDataQualityJobDefinition.MonitoringOutputConfigProperty(
                kms_key_id=encryption_key.key_arn,
                monitoring_outputs=[
                    sagemaker.CfnDataQualityJobDefinition.MonitoringOutputProperty(
                        s3_output=sagemaker.CfnDataQualityJobDefinition.S3OutputProperty(
                            local_path=_OUTPUT_PATH,
                            s3_uri=artifact_bucket.s3_url_for_object(
                                f"{MONITORING_PREFIX}model-monitor/{endpoint_name}"
                            ),
                            s3_upload_mode="EndOfJob",
                        )
                    )
                ],
            ),
            job_resources=sagemaker.CfnDataQualityJobDefinition.MonitoringResourcesProperty(
                cluster_config=sagemaker.CfnDataQualityJobDefinition.ClusterConfigProperty(
                    instance_count=1,
                    instance_type=instance_type,
                    volume_size_in_gb=20,
                    volume_kms_key_id=encryption_key.key_arn,
                )
            ),
            network_config=sagemaker.CfnDataQualityJobDefinition.NetworkConfigProperty(
                enable_inter_container_traffic_encryption=True,
                vpc_config=(
                    sagemaker.CfnDataQualityJobDefinition.VpcConfigProperty(
                        security_group_ids=vpc.security_group_ids, subnets=vpc.subnet_ids
                    )
                    if vpc is not None
                    else None
                ),
            ),
            role_arn=role.role_arn,
            stopping_condition=sagemaker.CfnDataQualityJobDefinition.StoppingConditionProperty(
                max_runtime_in_seconds=_MAX_RUNTIME_SECONDS
            ),
            tags=cfn_tags,
        )
        self.schedule = sagemaker.CfnMonitoringSchedule(
            self,
            "Schedule",
            monitoring_schedule_name=self.schedule_name,
            endpoint_name=endpoint_name,
            monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                # Ref is the ARN: ...:data-quality-job-definition/<generated name>
                monitoring_job_definition_name=Fn.select(1, Fn.split("/", self.job_definition.ref)),
                monitoring_type="DataQuality",
                schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                    schedule_expression=schedule_expression
                ),
            ),
            tags=cfn_tags,
        )
        for resource in (self.job_definition, self.schedule):
            resource.cfn_options.condition = condition
        # The role's policy must exist before the job definition is checked against it, and
        # both need the endpoint they watch (its name alone is no dependency): the first
        # approval creates the endpoint and the monitoring in one stack update.
        self.job_definition.node.add_dependency(role)
        self.job_definition.add_dependency(endpoint)
        self.schedule.add_dependency(endpoint)

        # A monitoring execution is a processing job that runs as this schedule's own role;
        # its state-change event names the schedule too (DescribeProcessingJob's fields).
        schedule_arn = stack.format_arn(
            service="sagemaker", resource="monitoring-schedule", resource_name=self.schedule_name
        )
        # A schedule that runs but publishes nothing (no executions, no captured data, every
        # execution failing) is as blind as no schedule: alarm after two silent intervals.
        # The alarm exists only while the schedule does (same condition).
        self.no_results_alarm = cloudwatch.Alarm(
            self,
            "NoResults",
            alarm_description=f"Model Monitor published no drift metrics for {endpoint_name} "
            f"in {2 * interval_hours} h: check the schedule's executions and the captured "
            "traffic",
            metric=self.feature_drift(0).with_(period=Duration.hours(interval_hours)),
            threshold=0,  # a distance is never below 0: only missing data breaches
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=2,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        self.no_results_alarm.add_alarm_action(cw_actions.SnsAction(topic))
        cast(
            CfnResource, self.no_results_alarm.node.default_child
        ).cfn_options.condition = condition
        self.failed_jobs_rule = notify_failed_jobs(
            self,
            "JobFailed",
            what="Model Monitor data-quality job",
            endpoint_name=endpoint_name,
            match={
                "$or": [
                    {"MonitoringScheduleArn": [schedule_arn]},
                    {"RoleArn": [role.role_arn]},
                ]
            },
            topic=topic,
        )

    def feature_drift(self, index: int) -> cloudwatch.Metric:
        """Baseline drift distance of the `index`-th schema feature, as Model Monitor reports
        it (latest value per hour)."""
        return cloudwatch.Metric(
            namespace=DATA_METRICS_NAMESPACE,
            metric_name=feature_drift_metric_name(index),
            dimensions_map={
                "Endpoint": self.endpoint_name,
                "MonitoringSchedule": self.schedule_name,
            },
            statistic="Maximum",
            period=Duration.hours(1),
        )
