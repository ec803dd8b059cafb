"""The Serving stack's CloudFormation service role for model deploys (least privilege).

A model deploy is one UpdateStack with the previous template and a new ModelPackageArn. What
that update can create, update or delete is every resource that depends on the parameter or
its conditions: the endpoint, its endpoint config and model, the autoscaling target and
policy (with their target-tracking alarms), and with Model Monitor the data-quality job
definition, schedule and no-results alarm. The CloudFormation handlers of those resource types
need the actions below (their provider schemas' handler permissions, read by the tests); this
role has exactly those, on this environment's names where the service allows it, so the
deployer, which may call UpdateStack only with this role (`cloudformation:RoleArn`), can never
act as the CDK bootstrap's administrator role. No IAM write but passing the endpoint's (and
the Model Monitor job's) role to SageMaker and creating SageMaker autoscaling's service-linked
role; KMS only through SageMaker. A serverless endpoint (`serverless=True`) has no
autoscaling, no key and cannot be network isolated: its role has none of those actions and
creates models without the isolation condition. Batch serving (`endpoint_name=None`) has no
endpoint: a deploy changes only the `ModelPackageArn` parameter (the package the next scoring
run uses) and an output, so its role may do nothing but read the bootstrap version.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from constructs import Construct
from constructs.nag import acknowledge
from constructs.private_network import VpcPlacement

AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
AUTOSCALING_ROLE = (
    f"aws-service-role/{AUTOSCALING_SERVICE}/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
_COLON = ArnFormat.COLON_RESOURCE_NAME


class DeployServiceRole(Construct):
    """A role `cloudformation.amazonaws.com` assumes for model deploys of the stack it is in.

    `endpoint_name` and `schedule_name` (Model Monitor; None without it) are the fixed names
    the stack gives; generated names (model, endpoint config, job definition) are scoped to
    their resource type in this account and region, alarms to the stack's name prefix.
    `passable_roles` are the only roles it may pass (to SageMaker); `encryption_keys` (the
    endpoint volumes' and the captured traffic's) it uses through SageMaker only. With `vpc`
    (default None), it creates models only in its subnets and security groups. With
    `serverless` (default False), no autoscaling and no isolation condition; give no
    `encryption_keys` then if the endpoint config names none. With `endpoint_name` None (batch
    serving: nothing depends on the parameter), no SageMaker, KMS, alarm or autoscaling action
    at all. Exposes `role`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str | None,
        schedule_name: str | None,
        passable_roles: list[iam.IRole],
        encryption_keys: list[kms.IKey],
        vpc: VpcPlacement | None = None,
        serverless: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("cloudformation.amazonaws.com"),
            description=f"CloudFormation service role for model deploys of {stack.stack_name}",
        )

        if endpoint_name is not None:
            self._endpoint(stack, endpoint_name, schedule_name, passable_roles, vpc, serverless)
            if encryption_keys:
                self._keys(stack, encryption_keys)
        bootstrap = stack.format_arn(
            service="ssm", resource="parameter", resource_name="cdk-bootstrap/*"
        )
        self.role.add_to_policy(  # the template's BootstrapVersion parameter is re-resolved
            iam.PolicyStatement(actions=["ssm:GetParameters"], resources=[bootstrap])
        )
        acknowledge(
            self.role,
            *(f"AwsSolutions-IAM5[Resource::{arn}]" for arn in self._wildcard_resources(stack)),
            reason=(
                "Generated names (model, endpoint config, job definition, alarm, scalable "
                "target) can only be scoped to their type in this account and region; the role "
                "is assumable only by CloudFormation and used only for this stack's model deploys."
                if endpoint_name is not None
                else "The CDK bootstrap's version parameter, whose qualifier the template does "
                "not know; read-only, and the role is assumable only by CloudFormation."
            ),
        )

    def _endpoint(
        self,
        stack: Stack,
        endpoint_name: str,
        schedule_name: str | None,
        passable_roles: list[iam.IRole],
        vpc: VpcPlacement | None,
        serverless: bool,
    ) -> None:
        def sagemaker(resource: str) -> str:
            # SageMaker writes resource names in lower case into its ARNs.
            return stack.format_arn(service="sagemaker", resource=resource.lower())

        models = sagemaker("model/*")
        configs = sagemaker("endpoint-config/*")
        endpoint = sagemaker(f"endpoint/{endpoint_name}")
        owned = [models, configs, endpoint]
        add = self.role.add_to_policy
        add(  # a deploy may create only network-isolated models (serverless: no isolation)
            iam.PolicyStatement(
                actions=["sagemaker:CreateModel"],
                resources=[models],
                conditions=(
                    None if serverless else {"Bool": {"sagemaker:NetworkIsolation": "true"}}
                ),
            )
        )
        if vpc is not None:
            vpc.deny_outside(self.role, ["sagemaker:CreateModel"])
        add(
            iam.PolicyStatement(
                actions=["sagemaker:DeleteModel", "sagemaker:DescribeModel"], resources=[models]
            )
        )
        add(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                ],
                resources=[configs],
            )
        )
        add(  # CreateEndpoint/UpdateEndpoint authorize on the endpoint and on its config
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateEndpoint",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:DescribeEndpoint",
                    # Application Auto Scaling checks it on the caller at RegisterScalableTarget
                    *([] if serverless else ["sagemaker:UpdateEndpointWeightsAndCapacities"]),
                ],
                resources=[endpoint, configs],
            )
        )
        if schedule_name is not None:
            definitions = sagemaker("data-quality-job-definition/*")
            schedule = sagemaker(f"monitoring-schedule/{schedule_name}")
            owned += [definitions, schedule]
            add(
                iam.PolicyStatement(
                    actions=[
                        "sagemaker:CreateDataQualityJobDefinition",
                        "sagemaker:DeleteDataQualityJobDefinition",
                        "sagemaker:DescribeDataQualityJobDefinition",
                    ],
                    resources=[definitions],
                )
            )
            add(
                iam.PolicyStatement(
                    actions=[
                        "sagemaker:CreateMonitoringSchedule",
                        "sagemaker:UpdateMonitoringSchedule",
                        "sagemaker:DeleteMonitoringSchedule",
                        "sagemaker:DescribeMonitoringSchedule",
                    ],
                    resources=[schedule],
                )
            )
        add(
            iam.PolicyStatement(
                actions=["sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags"],
                resources=owned,
            )
        )
        add(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[role.role_arn for role in passable_roles],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        if not serverless:
            self._autoscaling(stack, endpoint_name)
        self._alarms(stack, endpoint_name, scalable=not serverless)

    def _keys(self, stack: Stack, encryption_keys: list[kms.IKey]) -> None:
        add = self.role.add_to_policy
        # Unconfirmed: AWS says only "the key policy must grant permission to the role that
        # calls CreateEndpoint"; CreateGrant + DescribeKey through SageMaker is what SageMaker
        # needs for encrypted endpoint volumes (the EndpointConfig handler lists DescribeKey).
        key_via_sagemaker = {"kms:ViaService": f"sagemaker.{stack.region}.amazonaws.com"}
        add(  # SageMaker grants itself the key for the endpoint's volumes, as the caller
            iam.PolicyStatement(
                actions=["kms:CreateGrant"],
                resources=[key.key_arn for key in encryption_keys],
                conditions={
                    "StringEquals": key_via_sagemaker,
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            )
        )
        add(
            iam.PolicyStatement(
                actions=["kms:DescribeKey"],
                resources=[key.key_arn for key in encryption_keys],
                conditions={"StringEquals": key_via_sagemaker},
            )
        )

    def _autoscaling(self, stack: Stack, endpoint_name: str) -> None:
        targets = stack.format_arn(service="application-autoscaling", resource="scalable-target/*")
        sagemaker_variants = {
            "StringEquals": {
                "application-autoscaling:service-namespace": "sagemaker",
                "application-autoscaling:scalable-dimension": SCALABLE_DIMENSION,
            }
        }
        add = self.role.add_to_policy
        add(
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:DeregisterScalableTarget",
                    "application-autoscaling:PutScalingPolicy",
                    "application-autoscaling:DeleteScalingPolicy",
                ],
                resources=[targets],
                conditions=sagemaker_variants,
            )
        )
        add(
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:TagResource",
                    "application-autoscaling:UntagResource",
                    "application-autoscaling:ListTagsForResource",
                ],
                resources=[targets],
            )
        )
        add(  # no resource-level permissions for these reads
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:DescribeScalingPolicies",
                    "application-autoscaling:DescribeScheduledActions",
                    "cloudwatch:GetMetricData",
                ],
                resources=["*"],
            )
        )
        # The first RegisterScalableTarget in an account creates this role. Unconfirmed: that
        # naming the service-linked role as the target's RoleARN needs no iam:PassRole (not
        # granted: the tests list it as deliberately absent).
        add(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    stack.format_arn(
                        service="iam", region="", resource="role", resource_name=AUTOSCALING_ROLE
                    )
                ],
                conditions={"StringEquals": {"iam:AWSServiceName": AUTOSCALING_SERVICE}},
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            reason="Only Application Auto Scaling's Describe* reads and cloudwatch:GetMetricData, "
            "which have no resource-level permissions (the scaling policy's handler reads them).",
        )

    def _alarms(self, stack: Stack, endpoint_name: str, *, scalable: bool) -> None:
        alarms = [
            # alarms CloudFormation names <stack name>-<logical id>-<suffix>
            stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=f"{stack.stack_name}-*",
                arn_format=_COLON,
            )
        ]
        if scalable:  # the target-tracking alarms of the endpoint's scaling policy
            alarms.append(
                stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=f"TargetTracking-endpoint/{endpoint_name}/*",
                    arn_format=_COLON,
                )
            )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "cloudwatch:PutMetricAlarm",
                    "cloudwatch:DeleteAlarms",
                    "cloudwatch:DescribeAlarms",
                    "cloudwatch:TagResource",
                    "cloudwatch:UntagResource",
                    "cloudwatch:ListTagsForResource",
                ],
                resources=alarms,
            )
        )

    def _wildcard_resources(self, stack: Stack) -> list[str]:
        """Every wildcard resource of the role's policy, as cdk-nag prints it."""
        policy = self.role.node.find_child("DefaultPolicy")
        assert isinstance(policy, iam.Policy)
        found: list[str] = []
        for statement in stack.resolve(policy.document.to_json())["Statement"]:
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                rendered = _rendered(resource)
                if "*" in rendered and rendered != "*" and rendered not in found:
                    found.append(rendered)
        return found


def _rendered(resource: object) -> str:
    if isinstance(resource, str):
        return resource
    assert isinstance(resource, dict)
    if "Fn::Join" in resource:
        return "".join(_rendered(part) for part in resource["Fn::Join"][1])
    if "Ref" in resource:
        return f"<{resource['Ref']}>"
    if "Fn::GetAtt" in resource:
        return f"<{'.'.join(resource['Fn::GetAtt'])}>"
    return str(resource)
