"""A SageMaker endpoint for one model package, on instances or serverless, deployed blue/green
with rollback on alarms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from aws_cdk import CfnCondition, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct
from constructs.bucket_access import grant_object_read, grant_object_write
from constructs.ecr_images import grant_image_pulls
from constructs.nag import IMPORTED_KEY_REASON, acknowledge, acknowledge_guard, object_wildcard
from constructs.policy_checks import skip_checkov
from constructs.private_network import VpcPlacement

VARIANT = "AllTraffic"


@dataclass(frozen=True)
class InstanceCapacity:
    """A real-time endpoint on instances: `instance_type`, `initial_instance_count`, autoscaling
    between `min_capacity` and `max_capacity` tracking `target_invocations_per_instance` (per
    minute), data capture of `capture_sampling_percent` % of requests, and a blue/green canary
    of `canary_percent` % of the capacity."""

    instance_type: str
    initial_instance_count: int
    min_capacity: int
    max_capacity: int
    target_invocations_per_instance: int
    capture_sampling_percent: int
    canary_percent: int


@dataclass(frozen=True)
class ServerlessCapacity:
    """A SageMaker Serverless Inference endpoint: `memory_size_mb` per invocation (1024 to 6144),
    at most `max_concurrency` concurrent invocations, `provisioned_concurrency` of them kept
    warm (0: none). AWS excludes data capture, network isolation and VPC configuration from
    serverless endpoints, and sizes canaries in instances: none of them here."""

    memory_size_mb: int
    max_concurrency: int
    provisioned_concurrency: int = 0


class GuardedEndpoint(Construct):
    """Endpoint `endpoint_name` serving `model_package_arn` (a token: the stack parameter).

    Every resource that needs a model exists only under `condition` (a model is set).
    The model role reads only `model_bucket`/`model_prefix` and pulls only `image_uris`.
    `capacity` says how it runs. On instances (InstanceCapacity): the model is network
    isolated (in `vpc`'s subnets if given); data capture (inputs and outputs) goes to
    `capture_bucket`/`capture_prefix`, encrypted with that bucket's key; the instances' volumes
    with `encryption_key`; autoscaling tracks invocations per instance; a new model shifts
    traffic blue/green, the canary first, the rest after `bake_minutes`. Serverless
    (ServerlessCapacity): no capture, no isolation, no volume key, no autoscaling (AWS
    supports none of them there); a new model takes all traffic at once, then bakes
    `bake_minutes` before the old one goes. In both, the 5xx-rate and p99-latency alarms (at
    least `error_5xx_rate_percent` % of invocations answered 5xx, `latency_p99_ms`) roll the
    update back automatically: a rate trips on a small canary at low traffic, where a count of
    errors would not. The endpoint's log group exists before the endpoint, kept a year and
    encrypted with `log_encryption_key`. Exposes `endpoint_name`, `serverless`,
    `cfn_endpoint`, `errors_alarm`, `latency_alarm`, `role`, `log_group`.
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
        model_prefix: str,
        image_uris: list[str],
        capture_bucket: s3.IBucket,
        capture_prefix: str,
        encryption_key: kms.IKey,
        log_encryption_key: kms.IKey,
        capacity: InstanceCapacity | ServerlessCapacity,
        bake_minutes: int,
        latency_p99_ms: int,
        error_5xx_rate_percent: float,
        vpc: VpcPlacement | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.endpoint_name = endpoint_name
        self.serverless = isinstance(capacity, ServerlessCapacity)
        if self.serverless and vpc is not None:
            raise ValueError("a serverless endpoint takes no VPC configuration")
        capture_key = capture_bucket.encryption_key
        if capture_key is None:
            raise ValueError("the capture bucket must be encrypted with a KMS key")

        self.role = iam.Role(
            self,
            "ModelRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Runs the model behind {endpoint_name}"
            + ("" if self.serverless else "; writes its captured traffic"),
        )
        grant_object_read(model_bucket, self.role, model_prefix, list_prefix_only=False)
        if not self.serverless:
            grant_object_write(capture_bucket, self.role, capture_prefix)
        grant_image_pulls(self.role, image_uris)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
            encryption_key=log_encryption_key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge_guard(
            self.log_group, "cloudwatch_log_group_encrypted_check", reason=IMPORTED_KEY_REASON
        )
        log_groups = (
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:"
            f"log-group:/aws/sagemaker/Endpoints/{endpoint_name}*"
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
        capture_access = (
            [] if self.serverless else [object_wildcard(self.role, capture_bucket, capture_prefix)]
        )
        acknowledge(
            self.role,
            object_wildcard(self.role, model_bucket, model_prefix),
            *capture_access,
            f"AwsSolutions-IAM5[Resource::{log_groups}]",
            reason="Reads model artifacts under the training output prefix of this "
            "environment's artifact bucket, "
            + (
                ""
                if self.serverless
                else "writes captured traffic under capture/ (keys through S3 only), "
            )
            + "and logs to its endpoint's own log group (its streams).",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            reason="Only ecr:GetAuthorizationToken (no resource-level permissions) and "
            "cloudwatch:PutMetricData limited by a namespace condition to /aws/sagemaker/*.",
        )

        dimensions = {"EndpointName": endpoint_name, "VariantName": VARIANT}

        def per_minute(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name=name,
                dimensions_map=dimensions,
                statistic="Sum",
                period=Duration.minutes(1),
            )

        self.errors_alarm = cloudwatch.Alarm(
            self,
            "Errors5xx",
            alarm_description=f"{endpoint_name}: at least {error_5xx_rate_percent:g} % of "
            "invocations answered 5xx in two consecutive minutes; rolls back a deployment",
            # a minute without errors publishes none: that is 0 %, not missing data
            metric=cloudwatch.MathExpression(
                expression="IF(invocations > 0, 100 * FILL(errors, 0) / invocations, 0)",
                using_metrics={
                    "errors": per_minute("Invocation5XXErrors"),
                    "invocations": per_minute("Invocations"),
                },
                label="5xx share of invocations (%)",
                period=Duration.minutes(1),
            ),
            threshold=error_5xx_rate_percent,
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
            # AWS lists network isolation among Serverless Inference's exclusions
            enable_network_isolation=not self.serverless,
            # vpc mode: the endpoint's containers get their interfaces in the subnets
            vpc_config=(
                sagemaker.CfnModel.VpcConfigProperty(
                    security_group_ids=vpc.security_group_ids, subnets=vpc.subnet_ids
                )
                if vpc is not None
                else None
            ),
        )
        if vpc is not None:
            vpc.grant_sagemaker_interfaces(self.role)
        if self.serverless:
            skip_checkov(
                model,
                "CKV_AWS_370",
                "Serverless Inference does not support network isolation (AWS lists it among "
                "its feature exclusions); the model's role reads only its artifacts and pulls "
                "only its image.",
            )
        model.node.add_dependency(self.role)
        if isinstance(capacity, ServerlessCapacity):
            config = self._serverless_config(model, capacity)
            # Canary and linear sizes count instances, which serverless endpoints lack: all
            # traffic moves at once, the alarms watch it for the bake time, then the old
            # model goes (or traffic returns to it).
            routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                type="ALL_AT_ONCE", wait_interval_in_seconds=bake_minutes * 60
            )
        else:
            config = self._instance_config(
                model, capacity, capture_bucket, capture_prefix, capture_key, encryption_key
            )
            routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                type="CANARY",
                canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                    type="CAPACITY_PERCENT", value=capacity.canary_percent
                ),
                wait_interval_in_seconds=bake_minutes * 60,
            )
        self.cfn_endpoint = endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=routing,
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
        conditional: list[CfnResource] = [model, config, endpoint]
        if isinstance(capacity, InstanceCapacity):
            conditional += self._autoscaling(endpoint, capacity)
        for resource in conditional:
            resource.cfn_options.condition = condition

    def _instance_config(
        self,
        model: sagemaker.CfnModel,
        capacity: InstanceCapacity,
        capture_bucket: s3.IBucket,
        capture_prefix: str,
        capture_key: kms.IKey,
        encryption_key: kms.IKey,
    ) -> sagemaker.CfnEndpointConfig:
        return sagemaker.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=encryption_key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=model.attr_model_name,
                    initial_instance_count=capacity.initial_instance_count,
                    instance_type=capacity.instance_type,
                    initial_variant_weight=1.0,
                )
            ],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=capacity.capture_sampling_percent,
                destination_s3_uri=capture_bucket.s3_url_for_object(capture_prefix.rstrip("/")),
                kms_key_id=capture_key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=["text/csv"]
                ),
            ),
        )

    def _serverless_config(
        self, model: sagemaker.CfnModel, capacity: ServerlessCapacity
    ) -> sagemaker.CfnEndpointConfig:
        """No KmsKeyId: it encrypts the ML instances' storage volumes, which a serverless
        endpoint does not have (AWS has listed KMS keys among serverless exclusions)."""
        return sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=model.attr_model_name,
                    serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                        memory_size_in_mb=capacity.memory_size_mb,
                        max_concurrency=capacity.max_concurrency,
                        provisioned_concurrency=capacity.provisioned_concurrency or None,
                    ),
                )
            ],
        )

    def _autoscaling(
        self, endpoint: sagemaker.CfnEndpoint, capacity: InstanceCapacity
    ) -> list[CfnResource]:
        """Target tracking of invocations per instance; its target and policy."""
        stack = Stack.of(self)
        scaling = autoscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=capacity.min_capacity,
            max_capacity=capacity.max_capacity,
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
            target_value=capacity.target_invocations_per_instance,
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )
        return [
            cast(CfnResource, scaling.node.default_child),
            cast(CfnResource, policy.node.default_child),
        ]
