"""A SageMaker real-time endpoint for one model package, deployed blue/green with rollback."""

from __future__ import annotations

from aws_cdk import CfnCondition, Duration, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct
from constructs.nag import (
    KMS_ACTIONS,
    S3_READ_ACTIONS,
    acknowledge,
    actions,
    object_wildcard,
)

VARIANT = "AllTraffic"


class GuardedEndpoint(Construct):
    """Endpoint `endpoint_name` serving `model_package_arn` (a token: the stack parameter).

    Every resource that needs a model exists only under `condition` (a model is set).
    Data capture (inputs and outputs, `capture_sampling_percent`) goes to
    `capture_bucket`/`capture_prefix`, encrypted with `encryption_key` like the volumes.
    A new model shifts traffic blue/green: `canary_percent` first, the rest after
    `bake_minutes`; the 5xx and p99-latency alarms (`error_5xx_threshold` errors per minute,
    `latency_p99_ms`) roll the update back automatically. Autoscaling tracks
    `target_invocations_per_instance` between `min_capacity` and `max_capacity`.
    Exposes `endpoint_name`, `cfn_endpoint`, `errors_alarm`, `latency_alarm`, `role`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        model_package_arn: str,
        condition: CfnCondition,
        model_bucket: s3.IBucket,
        capture_bucket: s3.IBucket,
        capture_prefix: str,
        encryption_key: kms.IKey,
        instance_type: str,
        initial_instance_count: int,
        min_capacity: int,
        max_capacity: int,
        target_invocations_per_instance: int,
        capture_sampling_percent: int,
        canary_percent: int,
        bake_minutes: int,
        latency_p99_ms: int,
        error_5xx_threshold: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.endpoint_name = endpoint_name

        self.role = iam.Role(
            self,
            "ModelRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Runs the model behind {endpoint_name}; writes its captured traffic",
        )
        model_bucket.grant_read(self.role)
        capture_bucket.grant_put(self.role, f"{capture_prefix}*")
        encryption_key.grant_encrypt_decrypt(self.role)
        images = f"arn:{stack.partition}:ecr:{stack.region}:*:repository/sagemaker-*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[images],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        log_groups = (
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:"
            "log-group:/aws/sagemaker/Endpoints/*"
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_groups],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}},
            )
        )
        acknowledge(
            self.role,
            *actions(*S3_READ_ACTIONS, *KMS_ACTIONS, "s3:Abort*"),
            object_wildcard(self.role, model_bucket),
            object_wildcard(self.role, capture_bucket, capture_prefix),
            f"AwsSolutions-IAM5[Resource::{images}]",
            f"AwsSolutions-IAM5[Resource::{log_groups}]",
            reason="CDK grants on this environment's artifact bucket (model artifacts), the "
            "capture/ prefix and the key; SageMaker's own framework images and endpoint logs.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            reason="Only ecr:GetAuthorizationToken (no resource-level permissions) and "
            "cloudwatch:PutMetricData limited by a namespace condition to /aws/sagemaker/*.",
        )

        dimensions = {"EndpointName": endpoint_name, "VariantName": VARIANT}
        self.errors_alarm = cloudwatch.Alarm(
            self,
            "Errors5xx",
            alarm_description=f"{endpoint_name}: model 5xx errors; rolls back a deployment",
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="Invocation5XXErrors",
                dimensions_map=dimensions,
                statistic="Sum",
                period=Duration.minutes(1),
            ),
            threshold=error_5xx_threshold,
            evaluation_periods=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.latency_alarm = cloudwatch.Alarm(
            self,
            "LatencyP99",
            alarm_description=f"{endpoint_name}: p99 model latency above {latency_p99_ms} ms",
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="ModelLatency",  # microseconds
                dimensions_map=dimensions,
                statistic="p99",
                period=Duration.minutes(1),
            ),
            threshold=latency_p99_ms * 1000,
            evaluation_periods=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=model_package_arn
            ),
            enable_network_isolation=True,
        )
        model.node.add_dependency(self.role)
        config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=encryption_key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=model.attr_model_name,
                    initial_instance_count=initial_instance_count,
                    instance_type=instance_type,
                    initial_variant_weight=1.0,
                )
            ],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=capture_sampling_percent,
                destination_s3_uri=capture_bucket.s3_url_for_object(capture_prefix.rstrip("/")),
                kms_key_id=encryption_key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=["text/csv"]
                ),
            ),
        )
        self.cfn_endpoint = endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                        type="CANARY",
                        canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                            type="CAPACITY_PERCENT", value=canary_percent
                        ),
                        wait_interval_in_seconds=bake_minutes * 60,
                    ),
                    termination_wait_in_seconds=300,
                    maximum_execution_timeout_in_seconds=3600 + bake_minutes * 60,
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[
                        sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name)
                        for alarm in (self.errors_alarm, self.latency_alarm)
                    ]
                ),
            ),
        )

        scaling = autoscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            role=iam.Role.from_role_arn(
                self,
                "ScalingServiceLinkedRole",
                f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/"
                "sagemaker.application-autoscaling.amazonaws.com/"
                "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
            ),
        )
        scaling.node.add_dependency(endpoint)
        policy = scaling.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=target_invocations_per_instance,
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )
        for resource in (
            model,
            config,
            endpoint,
            scaling.node.default_child,
            policy.node.default_child,
        ):
            resource.cfn_options.condition = condition  # type: ignore[union-attr]
