"""Nobody the loop runs as can skip approval: the role SageMaker Pipelines runs as, read from the
synthesized Training templates of every environment, may register packages only as
PendingManualApproval, with no life-cycle stage, and can never update one; the job roles (code
runs as them) may neither register nor update a package.

Requests are evaluated against the role's own statements the way IAM does (an explicit deny
wins over any allow, and without an allow the request is denied), for the request keys the
Service Authorization Reference lists for the action (`tests/reference/iam_actions.json`).
Each refusal must come from an explicit deny: the test adds a statement allowing everything
and the refusal must stand, so a broader policy attached to the role later cannot reopen the
path. Removing a deny from the template makes these tests fail (`test_the_tests_can_fail`).
"""

from __future__ import annotations

import copy
import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from stacks.config import parse_environment, read_cdk_json_context
from tests.conftest import synthesized
from tests.security_checks import attached_statements

pytestmark = pytest.mark.xdist_group("cdk")

ENVIRONMENTS = ("dev", "staging", "prod")
IAM_REFERENCE = json.loads((Path(__file__).parent / "reference" / "iam_actions.json").read_text())[
    "actions"
]
ALLOW_EVERYTHING = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def where(env: str) -> tuple[str, str]:
    """(region, account) of an environment, from cdk.json."""
    config = parse_environment(read_cdk_json_context(), env)
    return config.region, config.account


def _text(node: Any, env: str) -> str:
    """A resource ARN as a string: pseudo parameters filled in, other references opaque."""
    if isinstance(node, str):
        return node
    if "Fn::Join" in node:
        separator, parts = node["Fn::Join"]
        return separator.join(_text(part, env) for part in parts)
    if "Ref" in node:
        region, account = where(env)
        pseudo = {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": account}
        return pseudo.get(node["Ref"], f"<{node['Ref']}>")
    return f"<{json.dumps(node, sort_keys=True)}>"


def sagemaker_role_statements(
    template: dict[str, Any], kind: str = "PipelinesRole"
) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the role SageMaker assumes whose construct id
    is `kind`: the role SageMaker Pipelines runs as (default), or a job role."""
    (role,) = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        and logical_id.startswith(kind)
        and "sagemaker.amazonaws.com"
        in json.dumps(resource["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert not template["Resources"][role]["Properties"].get("ManagedPolicyArns")
    return attached_statements(template, role)


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    values = [str(v) for v in _list(expected)]
    present = key in context
    if operator == "Null":
        return (not present) == (values == ["true"])
    if operator.endswith("IfExists") and not present:
        return True
    base = operator.removesuffix("IfExists")
    actual = context.get(key)
    if base == "StringEquals":
        return actual in values
    if base == "StringNotEquals":
        return actual is not None and actual not in values
    if base == "StringLike":
        return actual is not None and any(fnmatchcase(actual, v) for v in values)
    if base == "Bool":
        return actual in values
    raise AssertionError(f"operator {operator} is not modelled here: extend the test")


def _matches(
    statement: dict[str, Any], action: str, arn: str, context: dict[str, str], env: str
) -> bool:
    if not any(fnmatchcase(action, a) for a in _list(statement["Action"])):
        return False
    if not any(fnmatchcase(arn, _text(r, env)) for r in _list(statement["Resource"])):
        return False
    return all(
        _condition_holds(operator, key, expected, context)
        for operator, block in statement.get("Condition", {}).items()
        for key, expected in block.items()
    )


def decide(
    statements: list[dict[str, Any]], action: str, arn: str, context: dict[str, str], env: str
) -> str:
    """IAM's decision for one principal: "explicit-deny", "allow" or "implicit-deny"."""
    unknown = set(context) - set(IAM_REFERENCE[action]["condition_keys"])
    assert not unknown, f"{action} has no request keys {unknown}"
    matching = [s for s in statements if _matches(s, action, arn, context, env)]
    if any(s.get("Effect") == "Deny" for s in matching):
        return "explicit-deny"
    return (
        "allow" if any(s.get("Effect", "Allow") == "Allow" for s in matching) else "implicit-deny"
    )


def package_arn(env: str, group: str | None = None) -> str:
    region, account = where(env)
    group = group or f"mlops-loop-{env}-models"
    return f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/7"


REGISTER = "sagemaker:CreateModelPackage"
PENDING = {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
REFUSED = [
    # ...IfExists holds when the key is absent: the request must state its status.
    pytest.param(REGISTER, {}, id="register-status-omitted"),
    pytest.param(REGISTER, {"sagemaker:ModelApprovalStatus": "Approved"}, id="register-approved"),
    pytest.param(REGISTER, {"sagemaker:ModelApprovalStatus": "Rejected"}, id="register-rejected"),
    pytest.param(
        REGISTER,
        {**PENDING, "sagemaker:ModelLifeCycle:Stage": "Production"},
        id="register-promoted",
    ),
    pytest.param(
        REGISTER,
        {**PENDING, "sagemaker:ModelLifeCycle:StageStatus": "Approved"},
        id="register-stage-status",
    ),
    pytest.param("sagemaker:UpdateModelPackage", {}, id="update"),
    pytest.param(
        "sagemaker:UpdateModelPackage",
        {"sagemaker:ModelApprovalStatus": "Approved"},
        id="approve",
    ),
    pytest.param(
        "sagemaker:UpdateModelPackage",
        {"sagemaker:ModelLifeCycle:Stage": "Production"},
        id="promote",
    ),
]


def statements(env: str) -> list[dict[str, Any]]:
    return sagemaker_role_statements(synthesized(env)["training"].to_json())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_pipeline_may_register_pending_packages_of_its_group(env: str) -> None:
    assert decide(statements(env), REGISTER, package_arn(env), PENDING, env) == "allow"
    elsewhere = package_arn(env, group="someone-elses-models")
    assert decide(statements(env), REGISTER, elsewhere, PENDING, env) == "implicit-deny"


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(("action", "context"), REFUSED)
def test_approval_cannot_be_skipped_even_with_a_broader_policy(
    env: str, action: str, context: dict[str, str]
) -> None:
    widened = [*statements(env), ALLOW_EVERYTHING]
    assert decide(widened, action, package_arn(env), context, env) == "explicit-deny"


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("kind", ["ProcessingJobRole", "TrainingJobRole"])
@pytest.mark.parametrize("action", [REGISTER, "sagemaker:UpdateModelPackage"])
def test_no_job_role_may_register_or_update_a_package(env: str, kind: str, action: str) -> None:
    statements = sagemaker_role_statements(synthesized(env)["training"].to_json(), kind)
    context = PENDING if action == REGISTER else {}
    assert decide(statements, action, package_arn(env), context, env) == "implicit-deny"


def test_the_tests_can_fail() -> None:
    """Without the denies, an approved registration would be allowed."""
    template = copy.deepcopy(synthesized("dev")["training"].to_json())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            document = resource["Properties"]["PolicyDocument"]
            document["Statement"] = [s for s in document["Statement"] if s.get("Effect") != "Deny"]
    stripped = sagemaker_role_statements(template)
    approved = {"sagemaker:ModelApprovalStatus": "Approved"}
    assert decide(stripped, REGISTER, package_arn("dev"), approved, "dev") == "allow"
    assert decide([*stripped, ALLOW_EVERYTHING], "sagemaker:UpdateModelPackage",
                  package_arn("dev"), {}, "dev") == "allow"  # fmt: skip
