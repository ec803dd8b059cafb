"""What the DatasetTrigger construct synthesizes is what its Lambda understands.

- The retrain schedule of every environment in cdk.json: the Scheduler input the construct
  synthesizes, with the scheduled time filled in the way EventBridge Scheduler does, goes
  through the trigger's handler as the SQS message it becomes.
- Every schedule of every environment's synthesized app (staging's weekly retrain, each
  drift check): its input goes through the parser of the target it is sent to.
- The version manifests: the Lambda writes them where the construct grants (and only
  there), under the prefix the pipeline's input check reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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
from tests.conftest import new_app, synthesized
from tests.lambda_loader import load_lambda_module
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
drift_starter = load_lambda_module("start_drift_job", "drift_job_starter")


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
    the_trigger_runs_the_schedule_input(lambda_env, schedule["Properties"]["Target"]["Input"])


def the_trigger_runs_the_schedule_input(lambda_env: Env, template_input: str) -> None:
    """The input, as the SQS message it becomes, is parsed; it starts one run per scheduled
    time once a version is complete."""
    assert SCHEDULED_TIME in template_input
    body = template_input.replace(SCHEDULED_TIME, "2026-11-23T03:00:00Z")

    assert handler.lambda_handler(sqs_event(body), LambdaContext()) == {"batchItemFailures": []}
    trigger = handler.get_trigger()
    assert trigger.handle_sqs_body(body).reason == "no-complete-version"  # parsed, nothing ran
    handler.lambda_handler(sqs_event(json.dumps(land_version(lambda_env)[1])), LambdaContext())
    started = trigger.handle_sqs_body(body)
    assert (started.kind, started.trigger) == (Kind.STARTED, "schedule")
    assert trigger.handle_sqs_body(body).kind is Kind.DUPLICATE  # one run per scheduled time


def synthesized_schedules(environment: str) -> list[tuple[str, dict[str, Any]]]:
    """(what the schedule targets, its properties) for every schedule of the environment's app:
    `trigger queue` (the data-landing trigger's queue) or `drift starter` (its function)."""
    found = []
    for role, template in synthesized(environment).items():
        resources = template.to_json()["Resources"]
        for schedule in resources.values():
            if schedule["Type"] != "AWS::Scheduler::Schedule":
                continue
            target_id = schedule["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0]
            target = resources[target_id]
            variables = target.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if target["Type"] == "AWS::SQS::Queue" and target_id.startswith("TriggerEvents"):
                found.append(("trigger queue", schedule["Properties"]))
            elif target["Type"] == "AWS::Lambda::Function" and "DRIFT_IMAGE_URI" in variables:
                found.append(("drift starter", schedule["Properties"]))
            else:
                found.append((f"unknown target {role}/{target_id}", schedule["Properties"]))
    return found


ENVIRONMENTS = sorted(read_cdk_json_context()["environments"])


def test_the_environments_include_staging() -> None:
    assert {"dev", "staging", "prod"} <= set(ENVIRONMENTS)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_schedule_of_every_environment_sends_what_its_target_parses(
    lambda_env: Env, environment: str
) -> None:
    config = parse_environment(read_cdk_json_context(), environment)
    expected = {}
    if config.trigger.retrain_schedule:
        expected["trigger queue"] = config.trigger.retrain_schedule
    if config.monitoring.engine == "evidently":
        expected["drift starter"] = config.monitoring.schedule
    schedules = synthesized_schedules(environment)
    assert {kind: p["ScheduleExpression"] for kind, p in schedules} == expected
    assert len(schedules) == len(expected)

    for kind, properties in schedules:
        if kind == "trigger queue":
            the_trigger_runs_the_schedule_input(lambda_env, properties["Target"]["Input"])
            continue
        body = properties["Target"]["Input"].replace(SCHEDULED_TIME, "2026-11-23T03:00:00Z")
        window = drift_starter.parse_event(json.loads(body), datetime(2030, 1, 1, tzinfo=UTC))
        end = datetime(2026, 11, 23, 3, tzinfo=UTC)  # the scheduled time, not the clock's
        assert (window.start, window.end) == (end - timedelta(hours=24), end)


def test_staging_retrains_weekly_through_the_trigger() -> None:
    kinds = {kind: p for kind, p in synthesized_schedules("staging")}
    assert kinds["trigger queue"]["ScheduleExpression"] == "cron(0 3 ? * MON *)"


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
