"""The deploy handler: events → SQS → the deployer Lambda, its least-privilege role, and the
alarms that make every deploy failure loud.

Approvals (default bus), rollback requests (the operator bus) and the Serving stack's
UPDATE_ROLLBACK_COMPLETE (default bus) reach one queue; retries outlast a blue/green deploy
baking for minutes. A rule target that cannot deliver lands in the rules' dead-letter queue; a
message that keeps failing lands in the deploy dead-letter queue; both alarm. So do the
function's Errors and its DeployFailures metric (every failure kind but a busy stack).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.alarms import any_occurrence_alarm
from constructs.dead_letters import dead_letter_queue, dead_letters_alarm, source_queue
from constructs.key_use import consume_queue, grant_key_use
from constructs.nag import (
    acknowledge,
    object_wildcard,
    rendered_token_arn,
)
from constructs.operator_access import ROLLBACK_DETAIL_TYPE, ROLLBACK_SOURCE
from constructs.python_function import PythonFunction
from constructs.rule_targets import deliver_to_queue

FOLDER = "deploy_model"
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
STACK_STATUS_CHANGE = "CloudFormation Stack Status Change"
# The handler's DeployFailures Error dimension (model_deployer.FailureKind); StackBusy (a
# deployment baking) is expected and retried, every other kind alarms.
ALARMED_FAILURES = ("StackNeedsOperator", "AwsError", "ArtifactIntegrity")
# Hashing a model artifact streams it from S3: sized for artifacts of a few GB.
TIMEOUT = Duration.minutes(2)
MEMORY_MB = 1024
MAX_RECEIVES = 20


class DeployHandler(Construct):
    """The deployer of the stack it is in (`stack_name` = that stack, updated only through
    `service_role`), for `group`, deploying on `deploy_on`; verifies model artifacts under
    `artifact_bucket`/`model_prefix`; rollback requests come from `operator_bus`; failures
    notify `topic`. Exposes `function`, `role`, `queue`, `dead_letters`,
    `rule_dead_letters`, `alarms` (name → alarm) and `rolled_back_rule`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        group: str,
        deploy_on: str,
        metrics_namespace: str,
        service_role: iam.IRole,
        artifact_bucket: s3.IBucket,
        model_prefix: str,
        operator_bus: events.IEventBus,
        encryption_key: kms.IKey,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        handler = PythonFunction(
            self,
            "Function",
            folder=FOLDER,
            shared_modules=("served_package", "sqs_records"),
            description="Deploys approved model packages by updating the Serving stack",
            encryption_key=encryption_key,
            environment={
                "SERVING_STACK_NAME": stack.stack_name,
                "MODEL_PACKAGE_GROUP_NAME": group,
                "DEPLOY_ON": deploy_on,
                "CFN_SERVICE_ROLE_ARN": service_role.role_arn,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
                "MODEL_ARTIFACT_PREFIX": model_prefix,
                "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
            },
            timeout=TIMEOUT,
            memory_size=MEMORY_MB,
        )
        self.function, self.role = handler.function, handler.role
        self._grant(stack, group, service_role, artifact_bucket, model_prefix)

        self.queue, self.dead_letters = source_queue(
            self,
            "Requests",
            "DeadLetters",
            purpose=f"{construct_id}-requests",
            encryption_key=encryption_key,
            of="the deploy queue",
            # Lambda's guidance for SQS sources: six times the function timeout.
            visibility_timeout=Duration.minutes(12),
            # a busy stack (a blue/green deploy bakes for minutes) is retried for ~4 hours
            max_receive_count=MAX_RECEIVES,
        )
        consume_queue(self.function, self.role, self.queue, encryption_key, max_concurrency=2)
        self.rule_dead_letters = dead_letter_queue(
            self, "RuleDeadLetters", encryption_key=encryption_key, of="the deploy rules"
        )
        approved = events.Rule(
            self,
            "OnModelPackageApproved",
            description=f"Approvals in {group} deploy the package",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[MODEL_PACKAGE_STATE_CHANGE],
                detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
            ),
        )
        rollback_requested = events.Rule(
            self,
            "OnRollbackRequested",
            description=f"Rollback requests redeploy an earlier package of {group}",
            event_bus=operator_bus,
            event_pattern=events.EventPattern(
                source=[ROLLBACK_SOURCE],
                detail_type=[ROLLBACK_DETAIL_TYPE],
                detail={"model_package_group_name": [group]},
            ),
        )
        self.rolled_back_rule = self._stack_status_rule(
            "OnDeploymentRolledBack",
            "UPDATE_ROLLBACK_COMPLETE",
            "the deployment failed and was rolled back: the previous model keeps serving and "
            "the deploy handler marks the failed package Rejected (see `mlops models`)",
            topic,
        )
        for rule in (approved, rollback_requested, self.rolled_back_rule):
            deliver_to_queue(rule, self.queue, dead_letter_queue=self.rule_dead_letters)
        self._stack_status_rule(
            "OnRollbackFailed",
            "UPDATE_ROLLBACK_FAILED",
            "the rollback of a deployment FAILED: the endpoint may be half updated and no "
            "deploy runs until an operator continues the rollback (README runbook: aws "
            f"cloudformation continue-update-rollback --stack-name {stack.stack_name} "
            f"--role-arn {service_role.role_arn})",
            topic,
        )
        self.alarms = self._alarms(metrics_namespace, topic)

    def _grant(
        self,
        stack: Stack,
        group: str,
        service_role: iam.IRole,
        artifact_bucket: s3.IBucket,
        model_prefix: str,
    ) -> None:
        add = self.role.add_to_policy
        add(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents"],
                resources=[stack.stack_id],
            )
        )
        add(  # its one write: UpdateStack of its own stack, only through the deploy role
            iam.PolicyStatement(
                actions=["cloudformation:UpdateStack"],
                resources=[stack.stack_id],
                conditions={"ArnEquals": {"cloudformation:RoleArn": service_role.role_arn}},
            )
        )
        add(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[service_role.role_arn],
                conditions={
                    "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
                },
            )
        )
        packages = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{group.lower()}/*"
        )
        add(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[packages]))
        add(  # List* actions support no resource-level permissions
            iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"])
        )
        add(  # it may only reject (a rolled-back package): never approve, never promote
            iam.PolicyStatement(
                actions=["sagemaker:UpdateModelPackage"],
                resources=[packages],
                conditions={
                    "StringEquals": {"sagemaker:ModelApprovalStatus": "Rejected"},
                    "Null": {
                        "sagemaker:ModelLifeCycle:Stage": "true",
                        "sagemaker:ModelLifeCycle:StageStatus": "true",
                        "sagemaker:CustomerMetadataProperties/model_artifact_sha256": "true",
                        "sagemaker:CustomerMetadataPropertiesToRemove": "true",
                    },
                },
            )
        )
        models = artifact_bucket.arn_for_objects(f"{model_prefix}*")
        add(iam.PolicyStatement(actions=["s3:GetObject"], resources=[models]))
        grant_key_use(artifact_bucket.encryption_key, self.role, ["kms:Decrypt"], via=["s3"])
        # UpdateStack re-resolves the template's SSM parameter (CDK's bootstrap version).
        bootstrap = stack.format_arn(
            service="ssm", resource="parameter", resource_name="cdk-bootstrap/*"
        )
        add(iam.PolicyStatement(actions=["ssm:GetParameters"], resources=[bootstrap]))
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{rendered_token_arn(stack, packages)}]",
            reason="Reads (and may only reject) the packages of this environment's model "
            "package group, whose versions are created by the pipeline after deploy.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            reason="Only sagemaker:ListModelPackages, which has no resource-level permissions.",
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{rendered_token_arn(stack, bootstrap)}]",
            reason="CDK's bootstrap version parameter, read by CloudFormation during UpdateStack.",
        )
        acknowledge(
            self.role,
            object_wildcard(self.role, artifact_bucket, model_prefix),
            reason="Reads the model artifacts it verifies before a deploy: objects under the "
            "training output prefix of this environment's pipeline only.",
        )

    def _stack_status_rule(
        self,
        construct_id: str,
        status: str,
        what: str,
        topic: sns.ITopic,
    ) -> events.Rule:
        stack = Stack.of(self)
        notify = targets.SnsTopic(
            topic,
            message=events.RuleTargetInput.from_text(
                f"Model deployment of {stack.stack_name}: {status}: {what}. Reason: "
                f"{events.EventField.from_path('$.detail.status-details.status-reason')}"
            ),
            dead_letter_queue=self.rule_dead_letters,
        )
        return events.Rule(
            self,
            construct_id,
            description=f"The Serving stack reached {status}",
            event_pattern=events.EventPattern(
                source=["aws.cloudformation"],
                detail_type=[STACK_STATUS_CHANGE],
                resources=[stack.stack_id],
                detail={"status-details": {"status": [status]}},
            ),
            targets=[notify],
        )

    def _alarms(self, namespace: str, topic: sns.ITopic) -> dict[str, cloudwatch.Alarm]:
        failures = {
            f"f{index}": cloudwatch.Metric(
                namespace=namespace,
                metric_name="DeployFailures",
                dimensions_map={"Error": kind, "service": FOLDER},
                statistic="Sum",
                period=Duration.minutes(5),
            )
            for index, kind in enumerate(ALARMED_FAILURES)
        }
        return {
            "dead_letters": dead_letters_alarm(
                self,
                "DeadLettersAlarm",
                queue=self.dead_letters,
                description="A deploy request failed every retry and sits in the deploy "
                "dead-letter queue: read the deployer's logs, fix, and redrive it",
                topic=topic,
            ),
            "rule_dead_letters": dead_letters_alarm(
                self,
                "RuleDeadLettersAlarm",
                queue=self.rule_dead_letters,
                description="EventBridge could not deliver an approval, rollback request or "
                "stack status event to the deploy queue or the topic",
                topic=topic,
            ),
            "errors": any_occurrence_alarm(
                self,
                "ErrorsAlarm",
                metric=self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                description="The deployer Lambda failed (crash, timeout or unhandled error)",
                topic=topic,
            ),
            "deploy_failures": any_occurrence_alarm(
                self,
                "DeployFailuresAlarm",
                metric=cloudwatch.MathExpression(
                    # a kind without data in a period must not blank the sum: FILL each with 0
                    expression=" + ".join(f"FILL({name}, 0)" for name in failures),
                    using_metrics=failures,
                    period=Duration.minutes(5),
                    label="DeployFailures (all kinds but StackBusy)",
                ),
                description="A model deployment failed or was refused (AWS error, model "
                "artifact not verified, stack waiting for an operator): see the deployer's logs",
                topic=topic,
            ),
        }
