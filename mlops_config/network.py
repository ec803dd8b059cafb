"""Where the environment's jobs, models and functions run: AWS's network (`public`) or the
team's private subnets (`vpc`), in a VPC the app imports by id or creates.

An imported VPC is described entirely by configuration (ids, never a look-up at synth): its
subnets, optionally its security groups, the S3 gateway endpoint(s) the bucket policies admit,
and the VPC endpoints it already has, which are checked against the services the loop calls.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import model_validator

from mlops_config.rules import Allowed, Boolean, OneOf, Section, Text, field_error, rule_error

# Interface endpoints (com.amazonaws.<region>.<name>) and the two gateway endpoints every
# component of the loop calls: jobs, models, functions and the deployer.
Endpoint = Literal[
    "s3",
    "dynamodb",
    "sagemaker.api",
    "sagemaker.runtime",
    "sts",
    "kms",
    "logs",
    "monitoring",
    "ecr.api",
    "ecr.dkr",
    "sqs",
    "sns",
    "events",
    "cloudformation",
    "sagemaker.experiments",
]
# SageMaker managed MLflow (PrivateLink service aws.sagemaker.<region>.experiments): only the run
# tracker calls it, so only an environment with tracking.mlflow on needs it (mlops_config.tracking).
TRACKING_ENDPOINT = "sagemaker.experiments"
REQUIRED_ENDPOINTS: tuple[str, ...] = tuple(n for n in get_args(Endpoint) if n != TRACKING_ENDPOINT)
GATEWAY_ENDPOINTS: tuple[str, ...] = ("s3", "dynamodb")
INTERFACE_ENDPOINTS: tuple[str, ...] = tuple(
    name for name in REQUIRED_ENDPOINTS if name not in GATEWAY_ENDPOINTS
)
# The keys that describe an imported VPC (mode vpc without create_vpc).
_IMPORTED_VPC_KEYS: tuple[str, ...] = (
    "vpc_id",
    "subnet_ids",
    "security_group_ids",
    "s3_endpoint_ids",
    "endpoints",
    "acknowledge_missing_endpoints",
)
# A created VPC has one isolated subnet in each of the region's first two AZs.
CREATED_VPC_AZS = 2
# SageMaker's VpcConfig: 1 to 16 subnets, 1 to 5 security groups.
MAX_SUBNETS = 16
MAX_SECURITY_GROUPS = 5

VpcId = Annotated[
    str, Text(r"^vpc-[0-9a-f]{8,17}$", "a VPC id such as vpc-0123456789abcdef0", True)
]
SubnetId = Annotated[str, Text(r"^subnet-[0-9a-f]{8,17}$", "a subnet id such as subnet-0a1b2c3d")]
SecurityGroupId = Annotated[
    str, Text(r"^sg-[0-9a-f]{8,17}$", "a security group id such as sg-0a1b2c3d")
]
EndpointId = Annotated[
    str, Text(r"^vpce-[0-9a-f]{8,17}$", "a VPC endpoint id such as vpce-0a1b2c3d")
]
Endpoints = Annotated[
    tuple[Annotated[Endpoint, OneOf()], ...],
    Allowed(f"a list of endpoint services: {', '.join(get_args(Endpoint))}"),
]


class NetworkConfig(Section):
    mode: Annotated[Literal["public", "vpc"], OneOf()] = "public"
    """`public`: jobs, models and functions use AWS's network (no VPC). `vpc`: every job of
    both pipelines and of the drift engines, the model and every function run in private
    subnets with no internet path (import a VPC with `vpc_id`, or set `create_vpc`)."""
    create_vpc: Annotated[bool, Boolean()] = False
    """vpc mode: create a VPC with isolated private subnets only (no NAT, no internet gateway)
    in two availability zones, its gateway and interface endpoints and security groups."""
    vpc_id: VpcId | None = None
    """vpc mode: the existing VPC to import (not looked up: give `subnet_ids` too)."""
    subnet_ids: Annotated[tuple[SubnetId, ...], Allowed("a list of subnet ids")] = ()
    """vpc mode with `vpc_id`: private subnets of that VPC (1 to 16, two AZs or more
    recommended) where jobs, endpoint containers and functions get their network interfaces."""
    security_group_ids: Annotated[
        tuple[SecurityGroupId, ...], Allowed("a list of security group ids")
    ] = ()
    """vpc mode with `vpc_id`: security groups (1 to 5) of the jobs, endpoint containers and
    functions. Empty: the app creates one (HTTPS to the VPC's endpoints, traffic between its
    own members for distributed training)."""
    s3_endpoint_ids: Annotated[tuple[EndpointId, ...], Allowed("a list of VPC endpoint ids")] = ()
    """vpc mode with `vpc_id`: the VPC's S3 endpoint(s) (`vpce-...`); the data and artifact
    buckets deny requests that come through no other path (`aws:SourceVpce`)."""
    endpoints: Endpoints = ()
    """vpc mode with `vpc_id`: the VPC endpoint services the imported VPC has (`s3`,
    `dynamodb`, `sagemaker.api`, ...); every service the loop calls must be listed or
    acknowledged (with tracking.mlflow on, `sagemaker.experiments` too)."""
    acknowledge_missing_endpoints: Endpoints = ()
    """vpc mode with `vpc_id`: services the VPC has no endpoint for, knowingly (reached another
    way, e.g. a proxy or a transit gateway); synth fails on any other missing one."""

    @property
    def in_vpc(self) -> bool:
        return self.mode == "vpc"

    def _refuse_set(self, keys: tuple[str, ...], reason: str) -> None:
        """The first of `keys` that is set is an error: `<key> = <value> <reason>`."""
        for key in keys:
            if getattr(self, key):
                raise field_error(key, _shown(getattr(self, key)), reason)

    @model_validator(mode="after")
    def _consistent(self) -> NetworkConfig:
        if not self.in_vpc:
            self._refuse_set(("create_vpc", *_IMPORTED_VPC_KEYS), "is not allowed: mode is public")
            return self
        if self.create_vpc:
            self._refuse_set(
                _IMPORTED_VPC_KEYS,
                "is not allowed with create_vpc: the app creates the VPC, its subnets, "
                "endpoints and security groups",
            )
            return self
        if self.vpc_id is None:
            raise rule_error(
                "is missing: mode vpc needs it (with subnet_ids), or create_vpc: true",
                field="vpc_id",
            )
        bounds = (
            ("subnet_ids", self.subnet_ids, 1, MAX_SUBNETS),
            ("security_group_ids", self.security_group_ids, 0, MAX_SECURITY_GROUPS),
            ("s3_endpoint_ids", self.s3_endpoint_ids, 1, 5),
        )
        for key, values, low, high in bounds:
            if not low <= len(values) <= high:
                raise field_error(
                    key, list(values), f"is not allowed: {low} to {high} ids with vpc_id"
                )
            if len(set(values)) != len(values):
                raise field_error(key, list(values), "is not allowed: an id is listed twice")
        missing = self.missing_endpoints
        if missing:
            raise field_error(
                "endpoints",
                list(self.endpoints),
                f"is missing {', '.join(missing)}: the loop calls these services from the "
                "subnets; add the VPC endpoints (and list them here) or name them in "
                "acknowledge_missing_endpoints",
            )
        return self

    @property
    def subnet_count(self) -> int:
        """Subnets jobs, models and functions are placed in (vpc mode)."""
        return len(self.subnet_ids) if self.vpc_id else CREATED_VPC_AZS

    @property
    def security_group_count(self) -> int:
        """Their security groups: the configured ones, or the one the app creates."""
        return len(self.security_group_ids) or 1

    @property
    def missing_endpoints(self) -> tuple[str, ...]:
        """Services the imported VPC has no listed or acknowledged endpoint for."""
        covered = set(self.endpoints) | set(self.acknowledge_missing_endpoints)
        return tuple(name for name in REQUIRED_ENDPOINTS if name not in covered)


def _shown(value: object) -> object:
    """A value as cdk.json writes it (a list, not a tuple)."""
    return list(value) if isinstance(value, tuple) else value
