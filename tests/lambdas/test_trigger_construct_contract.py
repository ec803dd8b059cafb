"""What the DatasetTrigger construct synthesizes is what its Lambda understands.

- The retrain schedule of every environment in cdk.json: the Scheduler input the construct
  synthesizes, with the scheduled time filled in the way EventBridge Scheduler does, goes
  through the trigger's handler as the SQS message it becomes.
- The version manifests: the Lambda writes them where the construct grants (and only
  there), under the prefix the pipeline's input check reads.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from constructs.dataset_trigger import MANIFEST_PREFIX, DatasetTrigger
from pipeline_code.steps import load
from stacks.config import parse_environment, read_cdk_json_context
from tests.conftest import new_app
from tests.lambdas.trigger_env import (
    Env,
    Kind,
    LambdaContext,
    handler,
    land_version,
    sqs_event,
    trigger_module,
)

pytestmark = pytest.mark.xdist_group("cdk")

ACCOUNT, REGION = "123456789012", "eu-west-1"
# EventBridge Scheduler fills this in with the invocation's scheduled time.
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"

verify_inputs = load("prepare", "verify_inputs")


@cache
def trigger_template(retrain_schedule: str | None) -> dict[str, Any]:
    """The construct on its own in a stack, with its neighbours."""
    app = new_app()  # cdk.json's context and feature flags, as the app synthesizes
    stack = cdk.Stack(app, "Trigger", env=cdk.Environment(account=ACCOUNT, region=REGION))
    key = kms.Key(stack, "Key")
    DatasetTrigger(
        stack,
        "Trigger",
        bucket=s3.Bucket(stack, "Data", bucket_name="mlops-dev-data"),
        landing_prefix="landing/",
        ledger=dynamodb.Table(
            stack,
            "Ledger",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        ),
        manifest_bucket=s3.Bucket(stack, "Artifacts", bucket_name="mlops-dev-artifacts"),
        pipeline_name="mlops-dev-training",
        encryption_key=key,
        topic=sns.Topic(stack, "Topic"),
        metrics_namespace="mlops-dev/Trigger",
        retrain_schedule=retrain_schedule,
    )
    return Template.from_stack(stack).to_json()


def schedules_by_environment() -> dict[str, str]:
    context = read_cdk_json_context()
    configs = {name: parse_environment(context, name) for name in context["environments"]}
    return {
        name: config.trigger.retrain_schedule
        for name, config in configs.items()
        if config.trigger.retrain_schedule
    }


def test_some_environment_has_a_retrain_schedule_to_check() -> None:
    assert "staging" in schedules_by_environment()  # cdk.json: weekly in staging


@pytest.mark.parametrize(("environment", "expression"), sorted(schedules_by_environment().items()))
def test_the_synthesized_schedule_input_round_trips_through_the_handler(
    lambda_env: Env, environment: str, expression: str
) -> None:
    resources = trigger_template(expression)["Resources"]
    [schedule] = [r for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert schedule["Properties"]["ScheduleExpression"] == expression
    template_input = schedule["Properties"]["Target"]["Input"]
    assert SCHEDULED_TIME in template_input
    body = template_input.replace(SCHEDULED_TIME, "2026-11-23T03:00:00Z")

    assert handler.lambda_handler(sqs_event(body), LambdaContext()) == {"batchItemFailures": []}
    trigger = handler.get_trigger()
    assert trigger.handle_sqs_body(body).reason == "no-complete-version"  # parsed, nothing ran
    handler.lambda_handler(sqs_event(json.dumps(land_version(lambda_env)[1])), LambdaContext())
    started = trigger.handle_sqs_body(body)
    assert (started.kind, started.trigger) == (Kind.STARTED, "schedule")
    assert trigger.handle_sqs_body(body).kind is Kind.DUPLICATE  # one run per scheduled time


def statements() -> list[dict[str, Any]]:
    resources = trigger_template(None)["Resources"]
    return [
        statement
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions_of(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_the_trigger_writes_version_manifests_only_under_their_prefix() -> None:
    writes = [s for s in statements() if "s3:PutObject" in actions_of(s)]
    assert len(writes) == 1
    [write] = writes
    assert sorted(actions_of(write)) == ["s3:GetObject", "s3:PutObject"]
    [artifacts] = [
        logical_id
        for logical_id, resource in trigger_template(None)["Resources"].items()
        if resource.get("Properties", {}).get("BucketName") == "mlops-dev-artifacts"
    ]
    assert write["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [artifacts, "Arn"]}, "/dataset-manifests/*"]]
    }


def test_the_lambda_the_construct_and_the_pipeline_agree_on_where_manifests_go() -> None:
    resources = trigger_template(None)["Resources"]
    [function] = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and "MANIFEST_PREFIX" in r["Properties"]["Environment"]["Variables"]
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["MANIFEST_PREFIX"] == MANIFEST_PREFIX == verify_inputs.MANIFEST_PREFIX
    assert trigger_module.TriggerConfig.from_env(
        {"PIPELINE_NAME": "p", "LEDGER_TABLE": "t", "DATA_BUCKET": "b", "QUEUE_URL": "q",
         "MANIFEST_BUCKET": "m"}
    ).manifest_prefix == MANIFEST_PREFIX  # fmt: skip
