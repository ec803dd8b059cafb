"""Serving: the endpoint of the approved model, and the handler that deploys approvals."""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import CfnCondition, CfnOutput, CfnParameter, Duration, Fn, Stack, Tags
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as lambda_events
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.dead_letters import dead_letter_queue
from constructs.guarded_endpoint import GuardedEndpoint
from constructs.model_monitor import ModelMonitorSchedule
from constructs.nag import IMPORTED_KEY_REASON, acknowledge, acknowledge_guard
from constructs.python_function import PythonFunction
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
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
ROLLBACK_SOURCE = "mlops.serving"
ROLLBACK_DETAIL_TYPE = "Rollback Requested"


class ServingStack(Stack):
    """The endpoint exists once `ModelPackageArn` (a stack parameter, the rare deploy-time
    choice) is set: by the deploy handler when a package is approved (or promoted, in prod).
    With `monitoring.engine` model-monitor, the deploy handler also sets the package's Model
    Monitor baselines (`DataQualityStatisticsUri`, `DataQualityConstraintsUri`) and a
    data-quality schedule watches the endpoint while both are set.
    Exposes `endpoint` (GuardedEndpoint), `endpoint_name` and `model_monitor`
    (ModelMonitorSchedule, or None with the evidently engine)."""

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
            allowed_pattern=r"^$|^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/.+$",
            description="Model package served by the endpoint; set by the deploy handler on "
            "approval. Empty: no endpoint yet.",
        )
        has_model = CfnCondition(
            self,
            "HasModel",
            expression=Fn.condition_not(Fn.condition_equals(model_package.value_as_string, "")),
        )
        s = config.serving
        self.endpoint = GuardedEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            model_package_arn=model_package.value_as_string,
            condition=has_model,
            model_bucket=data.artifact_bucket,
            capture_bucket=data.data_bucket,
            capture_prefix=CAPTURE_PREFIX,
            encryption_key=data.key,
            instance_type=s.instance_type,
            initial_instance_count=s.initial_instance_count,
            min_capacity=s.min_capacity,
            max_capacity=s.max_capacity,
            target_invocations_per_instance=s.target_invocations_per_instance,
            capture_sampling_percent=s.capture_sampling_percent,
            canary_percent=s.canary_traffic_percent,
            bake_minutes=s.bake_minutes,
            latency_p99_ms=config.monitoring.latency_p99_ms,
            error_5xx_threshold=config.monitoring.error_5xx_threshold,
        )
        for alarm in (self.endpoint.errors_alarm, self.endpoint.latency_alarm):
            alarm.add_alarm_action(cw_actions.SnsAction(data.topic))
        self.model_monitor = (
            self._model_monitor(config, data, has_model)
            if config.monitoring.engine == "model-monitor"
            else None
        )

        self._deploy_handler(config, data)
        self._notify_failed_deployments(data)

        CfnOutput(self, "EndpointName", value=self.endpoint_name)
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

    def _model_monitor(
        self, config: EnvironmentConfig, data: DataStack, has_model: CfnCondition
    ) -> ModelMonitorSchedule:
        """Baseline parameters and the data-quality schedule of the served model."""

        def baseline(name: str, what: str) -> str:
            return CfnParameter(
                self,
                name,
                type="String",
                default="",
                allowed_pattern=r"^$|^s3://[a-z0-9.-]{3,63}/.+$",
                description=f"Model Monitor {what} of the served package; set by the deploy "
                "handler from its DriftCheckBaselines. Empty: the package has none.",
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
            endpoint=self.endpoint.cfn_endpoint,
            condition=monitored,
            statistics_uri=statistics,
            constraints_uri=constraints,
            schedule_expression=schedule,
            interval_hours=model_monitor_interval_hours(schedule),
            data_bucket=data.data_bucket,
            capture_prefix=f"{CAPTURE_PREFIX}{self.endpoint_name}/",
            artifact_bucket=data.artifact_bucket,
            encryption_key=data.key,
            instance_type=config.monitoring.instance_type,
            tags=config.tags,
            topic=data.topic,
        )

    def _deploy_handler(self, config: EnvironmentConfig, data: DataStack) -> None:
        """Registry events -> SQS (retries outlast a long blue/green deploy) -> deployer."""
        group = config.model_package_group_name
        handler = PythonFunction(
            self,
            "Deployer",
            folder="deploy_model",
            description="Deploys approved model packages by updating the Serving stack",
            encryption_key=data.key,
            environment={
                "SERVING_STACK_NAME": self.stack_name,
                "MODEL_PACKAGE_GROUP_NAME": group,
                "DEPLOY_ON": config.serving.deploy_on,
                "POWERTOOLS_METRICS_NAMESPACE": f"{config.prefix}/Serving",
            },
            timeout=Duration.seconds(30),
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks", "cloudformation:UpdateStack"],
                resources=[self.stack_id],
            )
        )
        packages = self.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{group}/*"
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[packages])
        )
        handler.role.add_to_policy(  # List* actions support no resource-level permissions
            iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"])
        )
        # UpdateStack re-resolves the template's SSM parameter (CDK's bootstrap version).
        handler.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameters"],
                resources=[
                    self.format_arn(
                        service="ssm", resource="parameter", resource_name="cdk-bootstrap/*"
                    )
                ],
            )
        )
        acknowledge(
            handler,
            f"AwsSolutions-IAM5[Resource::{packages}]",
            reason="Reads only the packages of this environment's model package group, "
            "whose versions are created by the pipeline after deploy.",
        )
        acknowledge(
            handler,
            "AwsSolutions-IAM5[Resource::*]",
            reason="Only sagemaker:ListModelPackages, which has no resource-level permissions.",
        )
        acknowledge(
            handler,
            "AwsSolutions-IAM5[Resource::arn:"
            f"{self.partition}:ssm:{self.region}:{self.account}:parameter/cdk-bootstrap/*]",
            reason="CDK's bootstrap version parameter, read by CloudFormation during UpdateStack.",
        )

        self.deploy_dead_letters = dead_letter_queue(
            self, "DeployDeadLetters", encryption_key=data.key, of="the deploy queue"
        )
        queue = sqs.Queue(
            self,
            "DeployRequests",
            encryption_master_key=data.key,
            enforce_ssl=True,
            visibility_timeout=Duration.minutes(5),
            retention_period=Duration.days(4),
            # a busy stack (a blue/green deploy bakes for minutes) is retried for ~100 minutes
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=20, queue=self.deploy_dead_letters
            ),
        )
        acknowledge_guard(queue, "sqs_queue_encrypted_check", reason=IMPORTED_KEY_REASON)
        handler.function.add_event_source(
            lambda_events.SqsEventSource(
                queue, batch_size=1, report_batch_item_failures=True, max_concurrency=2
            )
        )
        events.Rule(
            self,
            "OnModelPackageApproved",
            description=f"Approvals in {group} deploy the package",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[MODEL_PACKAGE_STATE_CHANGE],
                detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
            ),
            targets=[targets.SqsQueue(queue)],
        )
        events.Rule(
            self,
            "OnRollbackRequested",
            description=f"Rollback requests redeploy the previous package of {group}",
            event_pattern=events.EventPattern(
                source=[ROLLBACK_SOURCE],
                detail_type=[ROLLBACK_DETAIL_TYPE],
                detail={"model_package_group_name": [group]},
            ),
            targets=[targets.SqsQueue(queue)],
        )

    def _notify_failed_deployments(self, data: DataStack) -> None:
        events.Rule(
            self,
            "OnDeploymentRolledBack",
            description="A failed model deployment rolled back: the previous model still serves",
            event_pattern=events.EventPattern(
                source=["aws.cloudformation"],
                detail_type=["CloudFormation Stack Status Change"],
                resources=[self.stack_id],
                detail={
                    "status-details": {
                        "status": ["UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED"]
                    }
                },
            ),
            targets=[
                targets.SnsTopic(
                    data.topic,
                    message=events.RuleTargetInput.from_text(
                        f"Model deployment of {self.stack_name} failed and was rolled back "
                        f"({events.EventField.from_path('$.detail.status-details.status')}): "
                        f"the previous model keeps serving. See the stack events."
                    ),
                )
            ],
        )
