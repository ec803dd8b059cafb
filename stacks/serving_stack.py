"""Serving: the endpoint of the approved model (realtime or serverless, `serving.mode`; none in
batch mode, where the served package scores data landing under `score/`), the handler that
deploys approvals through a least-privilege CloudFormation service role, and who may request
and approve what."""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import CfnCondition, CfnOutput, CfnParameter, Fn, Stack, Tags, Token
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam

from constructs import Construct
from constructs.deploy_handler import DeployHandler
from constructs.deploy_service_role import DeployServiceRole
from constructs.ecr_images import served_image_uris
from constructs.guarded_endpoint import GuardedEndpoint, InstanceCapacity, ServerlessCapacity
from constructs.model_monitor import ModelMonitorSchedule
from constructs.operator_access import OperatorAccess, operator_tag
from constructs.runs_access import RunsAccess
from mlops_config import (
    EnvironmentConfig,
    model_monitor_interval_hours,
    model_monitor_schedule,
)
from stacks.data_stack import CAPTURE_PREFIX, DataStack

MODEL_PACKAGE_PARAMETER = "ModelPackageArn"
# Engine model-monitor: the served package's Model Monitor baselines (set by the deployer).
STATISTICS_PARAMETER = "DataQualityStatisticsUri"
CONSTRAINTS_PARAMETER = "DataQualityConstraintsUri"


def model_package_arn_pattern(config: EnvironmentConfig, partition: str) -> str:
    """ModelPackageArn's AllowedPattern: empty, or a version of this environment's group in
    its account and region (partition from the stack when it is known at synth)."""
    literal = partition if not Token.is_unresolved(partition) else "aws[a-z-]*"
    return (
        f"^$|^arn:{literal}:sagemaker:{config.region}:{config.account}:model-package/"
        f"{config.model_package_group_name.lower()}/[0-9]+$"
    )


def baseline_uri_pattern(config: EnvironmentConfig) -> str:
    """The baseline parameters' AllowedPattern: empty, or an output of this environment's
    training pipeline. The artifact bucket's name is generated at deploy time, so a pattern
    cannot name it; the Model Monitor job's role reads only that bucket, so a baseline
    anywhere else fails the job (which notifies)."""
    return f"^$|^s3://[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]/pipelines/{config.pipeline_name}/.+$"


def model_artifact_prefix(config: EnvironmentConfig) -> str:
    """Where the training pipeline writes model artifacts in the artifact bucket (its
    TrainingStep output path): the only objects the deployer may read and deploy."""
    return f"pipelines/{config.pipeline_name}/training/"


def endpoint_capacity(config: EnvironmentConfig) -> InstanceCapacity | ServerlessCapacity:
    """How `serving.mode` runs the endpoint: on instances (realtime) or serverless."""
    s = config.serving
    if s.serverless:
        return ServerlessCapacity(
            memory_size_mb=s.memory_size_mb,
            max_concurrency=s.max_concurrency,
            provisioned_concurrency=s.provisioned_concurrency,
        )
    return InstanceCapacity(
        instance_type=s.instance_type,
        initial_instance_count=s.initial_instance_count,
        min_capacity=s.min_capacity,
        max_capacity=s.max_capacity,
        target_invocations_per_instance=s.target_invocations_per_instance,
        capture_sampling_percent=s.capture_sampling_percent,
        canary_percent=s.canary_traffic_percent,
    )


class ServingStack(Stack):
    """The endpoint exists once `ModelPackageArn` (a stack parameter, the rare deploy-time
    choice) is set: by the deploy handler when a package is approved (or promoted, in prod).
    With `monitoring.engine` model-monitor, the deploy handler also sets the package's Model
    Monitor baselines (`DataQualityStatisticsUri`, `DataQualityConstraintsUri`) and a
    data-quality schedule watches the endpoint while both are set.
    Deploys run as `deploy_role` (a CloudFormation service role that can change only what a
    new ModelPackageArn changes); rollback requests arrive on the operator event bus
    (`operator_access`, with the optional operator and approver managed policies).
    In batch mode there is no endpoint: a deploy sets only `ModelPackageArn`, the package the
    next scoring run uses (served_package reads it as it does for an endpoint).
    Exposes `endpoint` (GuardedEndpoint; None in batch mode), `endpoint_name`, `model_monitor`
    (ModelMonitorSchedule, or None with the evidently engine), `deploy_role`,
    `operator_access` and `deployer` (DeployHandler)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.endpoint_name = f"{config.prefix}-endpoint"
        model_package = CfnParameter(
            self,
            MODEL_PACKAGE_PARAMETER,
            type="String",
            default="",
            allowed_pattern=model_package_arn_pattern(config, self.partition),
            description=(
                "Model package that scores the next versions landing under score/"
                if config.serving.is_batch
                else "Model package served by the endpoint"
            )
            + "; set by the deploy handler on "
            f"approval: a version of {config.model_package_group_name} in this account and "
            "region. Empty: "
            + ("nothing scores yet." if config.serving.is_batch else "no endpoint yet."),
        )
        has_model = CfnCondition(
            self,
            "HasModel",
            expression=Fn.condition_not(Fn.condition_equals(model_package.value_as_string, "")),
        )
        s = config.serving
        self.endpoint = (
            None if s.is_batch else self._endpoint(config, data, model_package, has_model)
        )
        self.model_monitor = (
            self._model_monitor(config, data, self.endpoint, has_model)
            if config.monitoring.engine == "model-monitor" and self.endpoint is not None
            else None
        )

        self.deploy_role = DeployServiceRole(
            self,
            "DeployRole",
            endpoint_name=self.endpoint_name if self.endpoint is not None else None,
            schedule_name=self.model_monitor.schedule_name if self.model_monitor else None,
            passable_roles=[self.endpoint.role, *self._monitoring_job_roles()]
            if self.endpoint is not None
            else [],
            # a serverless endpoint config names no key: no volume, no capture
            encryption_keys=[]
            if s.serverless or s.is_batch
            else [data.artifact_key, data.data_key],
            vpc=data.network.placement if data.network else None,
            serverless=s.serverless,
        ).role

        self.operator_access = OperatorAccess(
            self,
            "OperatorAccess",
            bus_name=f"{config.prefix}-operator-requests",
            tag_key=operator_tag(config.project),
            group=config.model_package_group_name,
            serving_stack_arn=self.stack_id,
        )
        # `mlops runs compare/backfill` against the tracking server (tracking on only)
        self.runs_access = (
            RunsAccess(self, "RunsAccess", config=config, artifact_bucket=data.artifact_bucket)
            if config.tracking.enabled
            else None
        )
        self.deployer = DeployHandler(
            self,
            "Deployer",
            group=config.model_package_group_name,
            deploy_on=config.serving.deploy_on,
            metrics_namespace=f"{config.prefix}/Serving",
            service_role=self.deploy_role,
            artifact_bucket=data.artifact_bucket,
            model_prefix=model_artifact_prefix(config),
            operator_bus=self.operator_access.bus,
            encryption_key=data.operations_key,
            topic=data.topic,
        )

        if self.endpoint is not None:
            CfnOutput(self, "EndpointName", value=self.endpoint_name)
        CfnOutput(
            self,
            "OperatorEventBusName",
            value=self.operator_access.bus.event_bus_name,
            description="Where `mlops rollback` puts requests (principals tagged "
            f"{self.operator_access.tag_key}=true only)",
        )
        CfnOutput(self, "DeployRoleArn", value=self.deploy_role.role_arn)
        CfnOutput(
            self,
            "OperatorPolicyArn",
            value=self.operator_access.operator_policy.managed_policy_arn,
        )
        CfnOutput(
            self,
            "ApproverPolicyArn",
            value=self.operator_access.approver_policy.managed_policy_arn,
        )
        CfnOutput(
            self,
            "ServedModelPackage",
            value=Fn.condition_if(
                has_model.logical_id,
                model_package.value_as_string,
                f"none yet: approve a package of {config.model_package_group_name} to deploy",
            ).to_string(),
        )
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)

    def _endpoint(
        self,
        config: EnvironmentConfig,
        data: DataStack,
        model_package: CfnParameter,
        has_model: CfnCondition,
    ) -> GuardedEndpoint:
        """The endpoint of the served package (realtime or serverless) and its alarms' actions."""
        s = config.serving
        endpoint = GuardedEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            model_package_arn=model_package.value_as_string,
            condition=has_model,
            model_bucket=data.artifact_bucket,
            model_prefix=model_artifact_prefix(config),
            image_uris=served_image_uris(config),
            capture_bucket=data.data_bucket,
            capture_prefix=CAPTURE_PREFIX,
            encryption_key=data.artifact_key,
            log_encryption_key=data.operations_key,
            capacity=endpoint_capacity(config),
            bake_minutes=s.bake_minutes,
            latency_p99_ms=config.monitoring.latency_p99_ms,
            error_5xx_rate_percent=config.monitoring.error_5xx_rate_percent,
            vpc=data.network.placement if data.network else None,
        )
        for alarm in (endpoint.errors_alarm, endpoint.latency_alarm):
            alarm.add_alarm_action(cw_actions.SnsAction(data.topic))
        return endpoint

    def _monitoring_job_roles(self) -> list[iam.IRole]:
        """The Model Monitor job's role (its job definition passes it), if there is one."""
        if self.model_monitor is None:
            return []
        return [cast(iam.IRole, self.model_monitor.node.find_child("JobRole"))]

    def _model_monitor(
        self,
        config: EnvironmentConfig,
        data: DataStack,
        endpoint: GuardedEndpoint,
        has_model: CfnCondition,
    ) -> ModelMonitorSchedule:
        """Baseline parameters and the data-quality schedule of the served model."""

        def baseline(name: str, what: str) -> str:
            return CfnParameter(
                self,
                name,
                type="String",
                default="",
                allowed_pattern=baseline_uri_pattern(config),
                description=f"Model Monitor {what} of the served package; set by the deploy "
                "handler from its DriftCheckBaselines: an output of the training pipeline in "
                "the artifact bucket. Empty: the package has none.",
            ).value_as_string

        statistics = baseline(STATISTICS_PARAMETER, "statistics.json")
        constraints = baseline(CONSTRAINTS_PARAMETER, "constraints.json")
        monitored = CfnCondition(
            self,
            "HasMonitoredModel",
            expression=Fn.condition_and(
                cast(Any, has_model),  # a CfnCondition is a condition expression (jsii typing)
                Fn.condition_not(Fn.condition_equals(statistics, "")),
                Fn.condition_not(Fn.condition_equals(constraints, "")),
            ),
        )
        schedule = cast(str, model_monitor_schedule(config.monitoring.schedule))
        return ModelMonitorSchedule(
            self,
            "ModelMonitor",
            endpoint_name=self.endpoint_name,
            endpoint=endpoint.cfn_endpoint,
            condition=monitored,
            statistics_uri=statistics,
            constraints_uri=constraints,
            schedule_expression=schedule,
            interval_hours=model_monitor_interval_hours(schedule),
            data_bucket=data.data_bucket,
            capture_prefix=f"{CAPTURE_PREFIX}{self.endpoint_name}/",
            artifact_bucket=data.artifact_bucket,
            encryption_key=data.artifact_key,
            instance_type=config.monitoring.instance_type,
            tags=config.tags,
            topic=data.topic,
            vpc=data.network.placement if data.network else None,
        )
