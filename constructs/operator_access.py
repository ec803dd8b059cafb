"""Who may ask the loop for what: the operator event bus and two optional managed policies.

* The operator event bus carries operator requests (`mlops rollback`). Its resource policy
  denies `events:PutEvents` to every principal that does not carry the principal tag
  `<project>-operator` = `true` (ABAC: tag the operator roles or pass it as an SSO session
  tag), so, unlike a custom source on the default bus, nobody else in the account can put a
  request however broad their IAM policies.
* The operator policy (attach it to operator roles) allows exactly what `mlops rollback`,
  `mlops models` and `mlops lineage` call on this environment's serving side.
* The approver policy allows approve, reject and promote as separate statements, each pinned by
  the `sagemaker:ModelApprovalStatus` / `sagemaker:ModelLifeCycle:*` condition keys, and none
  may change or remove the recorded model artifact hash. Neither policy is attached to any of
  the loop's own roles: assign them to people (or their roles).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam

from constructs import Construct
from constructs.nag import acknowledge, rendered_token_arn

ROLLBACK_SOURCE = "mlops.serving"
ROLLBACK_DETAIL_TYPE = "Rollback Requested"
# The recorded model artifact hash (lambdas/deploy_model/model_deployer/integrity.py).
ARTIFACT_HASH_KEY = "model_artifact_sha256"
# No approval statement may alter the artifact hash the deployer verifies against.
KEEP_ARTIFACT_HASH = {
    f"sagemaker:CustomerMetadataProperties/{ARTIFACT_HASH_KEY}": "true",
    "sagemaker:CustomerMetadataPropertiesToRemove": "true",
}


def operator_tag(project: str) -> str:
    """The principal tag key that admits a principal to the operator bus."""
    return f"{project}-operator"


class OperatorAccess(Construct):
    """The operator bus `bus_name` and the operator/approver managed policies of one
    environment. `group` is its Model Package Group, `serving_stack_arn` the Serving stack.
    Exposes `bus`, `operator_policy`, `approver_policy`, `tag_key`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus_name: str,
        tag_key: str,
        group: str,
        serving_stack_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.tag_key = tag_key
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_name)
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTaggedOperatorsPutEvents",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                # A missing tag makes StringNotEquals true: untagged principals are denied too.
                conditions={"StringNotEquals": {f"aws:PrincipalTag/{tag_key}": "true"}},
            )
        )
        packages = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{group.lower()}/*"
        )
        read_registry = [
            iam.PolicyStatement(
                sid="ReadModelPackages",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[packages],
            ),
            iam.PolicyStatement(
                sid="ListModelPackages",  # no resource-level permissions
                actions=["sagemaker:ListModelPackages"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="ReadServingStack",
                actions=["cloudformation:DescribeStacks"],
                resources=[serving_stack_arn],
            ),
        ]
        self.operator_policy = iam.ManagedPolicy(
            self,
            "OperatorPolicy",
            description=f"Operators of {bus_name}: request rollbacks, read the serving side "
            f"(the principal also needs the tag {tag_key}=true)",
            statements=[
                iam.PolicyStatement(
                    sid="RequestRollbacks",
                    actions=["events:PutEvents"],
                    resources=[self.bus.event_bus_arn],
                    conditions={
                        "StringEquals": {
                            "events:source": ROLLBACK_SOURCE,
                            "events:detail-type": ROLLBACK_DETAIL_TYPE,
                        }
                    },
                ),
                *read_registry,
            ],
        )
        self.approver_policy = iam.ManagedPolicy(
            self,
            "ApproverPolicy",
            description=f"Approvers of {group}: approve, reject and promote model packages",
            statements=[
                _update_packages("ApproveModelPackages", packages, approval="Approved"),
                _update_packages("RejectModelPackages", packages, approval="Rejected"),
                _update_packages("PromoteModelPackages", packages, approval=None),
                *read_registry,
            ],
        )
        for policy in (self.operator_policy, self.approver_policy):
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{rendered_token_arn(stack, packages)}]",
                "AwsSolutions-IAM5[Resource::*]",
                reason="The packages of this environment's group (versions are created after "
                "deploy) and sagemaker:ListModelPackages, which has no resource-level "
                "permissions.",
            )


def _update_packages(sid: str, packages: str, *, approval: str | None) -> iam.PolicyStatement:
    """UpdateModelPackage for one decision: set `approval` (lifecycle untouched), or with
    `approval` None promote (Stage Production / StageStatus Approved, approval untouched)."""
    if approval is not None:
        conditions = {
            "StringEquals": {"sagemaker:ModelApprovalStatus": approval},
            "Null": {"sagemaker:ModelLifeCycle:Stage": "true", **KEEP_ARTIFACT_HASH},
        }
    else:
        conditions = {
            "StringEquals": {
                "sagemaker:ModelLifeCycle:Stage": "Production",
                "sagemaker:ModelLifeCycle:StageStatus": "Approved",
            },
            "Null": {"sagemaker:ModelApprovalStatus": "true", **KEEP_ARTIFACT_HASH},
        }
    return iam.PolicyStatement(
        sid=sid,
        actions=["sagemaker:UpdateModelPackage"],
        resources=[packages],
        conditions=conditions,
    )
