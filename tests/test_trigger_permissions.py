"""The data-landing triggers' reach into what serves, read from the synthesized Training
templates: DescribeStacks on the Serving stack only (by its name: it is deployed after the
Training stack), the served package's lineage read-only, and never a registry write.

Requests are evaluated with test_registration_permissions' IAM model (explicit deny, allow,
implicit deny) against each trigger role's own statements.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from constructs.dataset_trigger import DatasetTrigger
from tests.conftest import new_app, synthesized
from tests.security_checks import attached_statements
from tests.test_registration_permissions import decide, package_arn, where

pytestmark = pytest.mark.xdist_group("cdk")

ENVIRONMENTS = ("dev", "prod")


def trigger_statements(env: str) -> dict[str, list[dict[str, Any]]]:
    """Each trigger role's statements, by the landing prefix its function watches."""
    template = synthesized(env)["training"].to_json()
    resources = template["Resources"]
    found = {}
    for function in resources.values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        if function["Type"] != "AWS::Lambda::Function" or "LANDING_PREFIX" not in variables:
            continue
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        found[variables["LANDING_PREFIX"]] = attached_statements(template, role)
    assert sorted(found) == ["ground-truth/", "landing/"]
    return found


def _values_of(node: Any, key: str) -> list[Any]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == key] + [
            found for v in node.values() for found in _values_of(v, key)
        ]
    if isinstance(node, list):
        return [found for v in node for found in _values_of(v, key)]
    return []


def stack_arn(env: str, name: str) -> str:
    region, account = where(env)
    return f"arn:aws:cloudformation:{region}:{account}:stack/{name}/0f1e2d3c-aaaa-bbbb"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_both_triggers_read_what_the_serving_stack_serves_and_nothing_else(env: str) -> None:
    serving = synthesized(env)["serving"]
    assert serving.to_json()  # the Serving stack of this environment exists ...
    name = f"mlops-loop-{env}-serving"
    for prefix, statements in trigger_statements(env).items():
        assert decide(
            statements, "cloudformation:DescribeStacks", stack_arn(env, name), {}, env
        ) == ("allow"), prefix
        for other in (f"mlops-loop-{env}-training", f"mlops-loop-{env}-data", "someone-else"):
            decision = decide(statements, "cloudformation:DescribeStacks", stack_arn(env, other),
                              {}, env)  # fmt: skip
            assert decision == "implicit-deny", (prefix, other)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_serving_stack_is_named_not_referenced(env: str) -> None:
    """A reference to the Serving stack would make the Training stack depend on it, but the
    Serving stack is deployed after it."""
    templates = synthesized(env)
    imported = [
        json.dumps(v) for v in _values_of(templates["training"].to_json(), "Fn::ImportValue")
    ]
    assert imported and not [i for i in imported if "serving" in i.lower()]
    for function in templates["training"].find_resources("AWS::Lambda::Function").values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        if "LANDING_PREFIX" in variables:
            assert variables["SERVING_STACK_NAME"] == f"mlops-loop-{env}-serving"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_training_trigger_reads_the_served_packages_lineage_only(env: str) -> None:
    statements = trigger_statements(env)["landing/"]
    served = package_arn(env)
    assert decide(statements, "sagemaker:DescribeModelPackage", served, {}, env) == "allow"
    foreign = package_arn(env, group="someone-elses-models")
    assert decide(statements, "sagemaker:DescribeModelPackage", foreign, {}, env) == (
        "implicit-deny"
    )
    region, account = where(env)
    pipeline = f"arn:aws:sagemaker:{region}:{account}:pipeline/mlops-loop-{env}-training"
    for action, resource in (
        ("sagemaker:DescribePipeline", pipeline),
        ("sagemaker:DescribePipelineDefinitionForExecution", f"{pipeline}/execution/abc123"),
        ("sagemaker:ListPipelineParametersForExecution", f"{pipeline}/execution/abc123"),
    ):
        assert decide(statements, action, resource, {}, env) == "allow", action
        other = resource.replace(f"mlops-loop-{env}-training", "someone-else")
        assert decide(statements, action, other, {}, env) == "implicit-deny", action
    for prefix, role_statements in trigger_statements(env).items():
        for action in ("sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage"):
            assert decide(role_statements, action, served, {}, env) == "implicit-deny", prefix


def test_a_trigger_that_needs_the_served_package_needs_the_serving_stacks_name() -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sns as sns

    stack = cdk.Stack(new_app(), "S")
    key = kms.Key(stack, "K")
    bucket = s3.Bucket(stack, "B")
    common = {
        "bucket": bucket,
        "landing_prefix": "landing/",
        "ledger": dynamodb.Table(
            stack,
            "L",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        ),
        "manifest_bucket": bucket,
        "pipeline_name": "p",
        "encryption_key": key,
        "topic": sns.Topic(stack, "T"),
        "metrics_namespace": "n",
    }
    for extra in ({"champion": ("Champion", "g")}, {"model_package_parameter": "ModelPackageArn"}):
        with pytest.raises(ValueError, match="need serving_stack_name"):
            DatasetTrigger(stack, f"T{len(extra)}{next(iter(extra))}", **common, **extra)
