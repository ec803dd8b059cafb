"""The private network of an environment in `vpc` mode: the VPC (imported by id, or created with
isolated subnets only), its endpoints and the security groups jobs, models and functions use.

Nothing is looked up at synth: an imported VPC is described by the ids in configuration, and a
created VPC's availability zones are the region's first two (`Fn::GetAZs`, the stack's
`availability_zones`: see `deploy_time_availability_zones`), so synth makes no AWS call and
needs no cached context.

Security groups: the workload group (jobs, endpoint containers, functions) sends HTTPS only, and
any traffic to and from its own members (distributed training, inter-container encryption).
Its subnets have no route to the internet (isolated subnets: no NAT, no internet gateway), so
port 443 reaches only the VPC endpoints and the S3/DynamoDB gateway prefixes. The created
interface endpoints admit HTTPS from the workload group alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Fn, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.nag import acknowledge
from constructs.policy_checks import skip_checkov
from mlops_config import EnvironmentConfig
from mlops_config.network import (
    CREATED_VPC_AZS,
    GATEWAY_ENDPOINTS,
    INTERFACE_ENDPOINTS,
    TRACKING_ENDPOINT,
)

# The created VPC: two AZs, one isolated /20 per AZ (4,091 addresses each, enough for the
# network interfaces of jobs, endpoint instances and functions).
VPC_CIDR = "10.42.0.0/16"
AZ_COUNT = CREATED_VPC_AZS
SUBNET_MASK = 20
HTTPS = 443
_GATEWAYS = {
    "s3": ec2.GatewayVpcEndpointAwsService.S3,
    "dynamodb": ec2.GatewayVpcEndpointAwsService.DYNAMODB,
}


# What a SageMaker execution role needs for jobs and models in a VPC (SageMaker creates their
# network interfaces with the role: AWS docs, "Give SageMaker AI access to resources in your VPC").
SAGEMAKER_VPC_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)
# IAM condition keys of Create*Job / CreateModel / CreateMonitoringSchedule (Service
# Authorization Reference for SageMaker).
VPC_SUBNETS_KEY = "sagemaker:VpcSubnets"
VPC_SECURITY_GROUPS_KEY = "sagemaker:VpcSecurityGroupIds"


def network_interface_policy(
    scope: Construct, role: iam.IRole, *, sid: str, actions: tuple[str, ...], reason: str
) -> iam.Policy:
    """A policy of `role` holding only EC2 network-interface `actions` on `*` (what AWS
    documents for Lambda and SageMaker in a VPC), kept apart from the role's scoped policy so
    its acknowledgement (cdk-nag) and checkov skips (write and permissions-management actions
    without resource constraints) cover it alone."""
    policy = iam.Policy(
        scope,
        "PrivateSubnetsPolicy",
        statements=[iam.PolicyStatement(sid=sid, actions=list(actions), resources=["*"])],
        roles=[role],
    )
    acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", reason=reason)
    for check_id in ("CKV_AWS_111", "CKV_AWS_109"):
        skip_checkov(policy, check_id, reason)
    return policy


@dataclass(frozen=True)
class VpcPlacement:
    """The subnets and security groups a job, model or function is placed in (ids or tokens)."""

    subnet_ids: list[str]
    security_group_ids: list[str]

    def grant_sagemaker_interfaces(self, role: iam.Role) -> None:
        """Let SageMaker create the network interfaces of `role`'s jobs or models (a policy of
        its own, below the role: whatever depends on the role depends on it)."""
        network_interface_policy(
            role,
            role,
            sid="JobsAndModelsInPrivateSubnets",
            actions=SAGEMAKER_VPC_ACTIONS,
            reason="EC2 network-interface actions SageMaker takes with the execution role to "
            "place jobs and endpoint containers in the environment's subnets, on * as AWS "
            "documents them (the Describe actions have no resource-level permissions, and "
            "SageMaker creates the interfaces and their permissions itself).",
        )

    def deny_outside(self, role: iam.IRole, actions: list[str]) -> None:
        """Explicit denies: `actions` (Create*Job, CreateModel, ...) only with this VpcConfig.
        A request without subnets, or naming any other subnet or security group, is refused."""
        for key, values, sid in (
            (VPC_SUBNETS_KEY, self.subnet_ids, "OnlyInTheEnvironmentsSubnets"),
            (VPC_SECURITY_GROUPS_KEY, self.security_group_ids, "OnlyWithTheEnvironmentsGroups"),
        ):
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=sid,
                    effect=iam.Effect.DENY,
                    actions=actions,
                    resources=["*"],
                    conditions={"ForAnyValue:StringNotEquals": {key: values}},
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=sid + "Required",
                    effect=iam.Effect.DENY,
                    actions=actions,
                    resources=["*"],
                    conditions={"Null": {key: "true"}},
                )
            )


class PrivateNetwork(Construct):
    """The subnets and security groups of `config`'s network (`vpc` mode).

    Created VPC (`create_vpc`): isolated subnets in two AZs, flow logs to a log group encrypted
    with `log_key` (kept `log_retention`, default one year), the S3 and DynamoDB gateway
    endpoints, an interface endpoint (private DNS) for every other service the loop calls (with
    tracking.mlflow on, SageMaker MLflow's `aws.sagemaker.<region>.experiments` too: the run
    tracker's only way to its server), and the workload and endpoint security groups. Imported
    VPC: the subnets of `subnet_ids`, and `security_group_ids` or else a workload security
    group created in `vpc_id` (its endpoints are the team's: mlops_config.network checks them).

    Exposes `vpc`, `subnet_ids`, `security_group_ids` (the workload's), `placement` (both, as
    a VpcPlacement), `s3_endpoint_ids` (what the bucket policies admit) and `endpoints` (service
    name -> endpoint, created VPC only).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
    ) -> None:
        super().__init__(scope, construct_id)
        network = config.network
        if not network.in_vpc:
            raise ValueError("PrivateNetwork needs network.mode vpc")
        self.endpoints: dict[str, ec2.IVpcEndpoint] = {}
        if network.create_vpc:
            self.vpc: ec2.IVpc = self._created_vpc(log_key, log_retention)
            self.subnet_ids = [subnet.subnet_id for subnet in self.vpc.isolated_subnets]
        else:
            assert network.vpc_id is not None  # the config model requires it with mode vpc
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=network.vpc_id,
                availability_zones=deploy_time_availability_zones(),
            )
            self.subnet_ids = list(network.subnet_ids)
        if network.security_group_ids:
            self.security_group_ids = list(network.security_group_ids)
        else:
            self.workload_security_group = self._workload_security_group()
            self.security_group_ids = [self.workload_security_group.security_group_id]
        self.placement = VpcPlacement(self.subnet_ids, self.security_group_ids)
        if network.create_vpc:
            self._create_endpoints(tracking=config.tracking.enabled)
            self.s3_endpoint_ids = [self.endpoints["s3"].vpc_endpoint_id]
        else:
            self.s3_endpoint_ids = list(network.s3_endpoint_ids)

    def _created_vpc(self, log_key: kms.IKey, log_retention: logs.RetentionDays) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=AZ_COUNT,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Private",
                    subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                    cidr_mask=SUBNET_MASK,
                )
            ],
            restrict_default_security_group=True,
        )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=log_key,
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        vpc.add_flow_log(
            "FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs)
        )
        return vpc

    def _workload_security_group(self) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "WorkloadSecurityGroup",
            vpc=self.vpc,
            description="Jobs, endpoint containers and functions: HTTPS to the VPC endpoints, "
            "any traffic among members",
            allow_all_outbound=False,
        )
        group.add_egress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.tcp(HTTPS),
            "HTTPS: isolated subnets reach only the VPC endpoints and gateway prefixes",
        )
        group.add_ingress_rule(group, ec2.Port.all_traffic(), "Distributed training among members")
        group.add_egress_rule(group, ec2.Port.all_traffic(), "Distributed training among members")
        return group

    def _create_endpoints(self, *, tracking: bool) -> None:
        vpc = self.vpc
        subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        for name in GATEWAY_ENDPOINTS:
            self.endpoints[name] = vpc.add_gateway_endpoint(
                _construct_id(name), service=_GATEWAYS[name], subnets=[subnets]
            )
        endpoint_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=vpc,
            description="Interface endpoints: HTTPS from the workload security group only",
            allow_all_outbound=False,
        )
        for group_id in self.security_group_ids:
            endpoint_group.add_ingress_rule(
                ec2.Peer.security_group_id(group_id),
                ec2.Port.tcp(HTTPS),
                "HTTPS from jobs, endpoint containers and functions",
            )
        self.endpoint_security_group = endpoint_group
        for name in INTERFACE_ENDPOINTS:
            self.endpoints[name] = vpc.add_interface_endpoint(
                _construct_id(name),
                service=ec2.InterfaceVpcEndpointAwsService(name),
                private_dns_enabled=True,
                security_groups=[endpoint_group],
                subnets=subnets,
                open=False,
            )
        if tracking:
            # SageMaker MLflow's PrivateLink service is named aws.sagemaker.<region>.experiments
            # (not com.amazonaws.*: CDK's SAGEMAKER_EXPERIMENTS)
            self.endpoints[TRACKING_ENDPOINT] = vpc.add_interface_endpoint(
                _construct_id(TRACKING_ENDPOINT),
                service=ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS,
                private_dns_enabled=True,
                security_groups=[endpoint_group],
                subnets=subnets,
                open=False,
            )


def deploy_time_availability_zones(count: int = AZ_COUNT) -> list[str]:
    """The region's first `count` AZs, resolved by CloudFormation (`Fn::GetAZs`): what a stack
    holding a created VPC returns as its `availability_zones`, instead of CDK's default, a
    context look-up that needs AWS credentials at synth."""
    return [Fn.select(i, Fn.get_azs()) for i in range(count)]


def _construct_id(service: str) -> str:
    """`sagemaker.api` -> `SagemakerApiEndpoint` (construct ids are part of the contract)."""
    return "".join(part.capitalize() for part in service.split(".")) + "Endpoint"
