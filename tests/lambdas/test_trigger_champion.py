"""The production model each run starts with: the package the Serving stack serves (the
deployer's rule, one module both Lambdas carry), deferred while the stack is changing,
the served package as the eval-only pipeline's production model unless the operator named a
candidate, and retrains that would register nothing new skipped before they start.

SageMaker, S3, DynamoDB and SQS run in moto (trigger_env); DescribeStacks is answered through
botocore's Stubber from the Serving stack's current state (`ServingStack`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lambdas.trigger_env import (
    ACCOUNT,
    PIPELINE,
    REGION,
    Env,
    Kind,
    ServingStack,
    alarm_event,
    executions,
    handle,
    land_version,
    make_trigger,
    metrics_out,
    parameters_of,
    rerun_request,
    retrain_request,
    stored,
    take_queued,
    trigger_module,
)

GROUP = "mlops-dev-models"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/7"
CHAMPION = {"champion_parameter": "ChampionModelPackageArn"}
EVALUATION = {"model_package_parameter": "ModelPackageArn", "model_role_parameter": "ModelRole"}
DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [
        {"Name": "InputDataUri", "Type": "String"},
        {"Name": "DatasetVersion", "Type": "String"},
        {"Name": "DataDigest", "Type": "String"},
        {"Name": "ChampionModelPackageArn", "Type": "String"},
        {"Name": "NumRound", "Type": "Integer", "DefaultValue": 300},
    ],
    "Steps": [],
}


@pytest.fixture()
def serving() -> ServingStack:
    return ServingStack()


def trigger_for(env: Env, serving: ServingStack, **overrides: Any) -> Any:
    return make_trigger(
        env, cloudformation=serving.client, serving_stack_name=ServingStack.NAME, **overrides
    )


def register(
    env: Env,
    execution_arn: str | None,
    *,
    data_digest: str | None = None,
    generated_by: str | None = None,
) -> str:
    """A package as the pipeline's Register step leaves it: its data digest and the execution
    that created it (MetadataProperties.GeneratedBy), Approved."""
    listed = env.sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    if GROUP not in {g["ModelPackageGroupName"] for g in listed}:
        env.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    extra: dict[str, Any] = {}
    if execution_arn:
        parameters = parameters_of(env, execution_arn)
        extra["CustomerMetadataProperties"] = {
            "data_digest": data_digest or parameters["DataDigest"]
        }
        extra["MetadataProperties"] = {"GeneratedBy": generated_by or execution_arn}
    return str(
        env.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "xgboost:3.0-5", "ModelDataUrl": "s3://m/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            **extra,
        )["ModelPackageArn"]
    )


# ------------------------------------------------------------------- the training champion


def test_every_run_starts_with_the_package_that_serves(env: Env, serving: ServingStack) -> None:
    trigger = trigger_for(env, serving, **CHAMPION)
    first = handle(trigger, land_version(env, prefix="landing/sales/v1/")[1])
    assert parameters_of(env, first.execution_arn)["ChampionModelPackageArn"] == "none"
    assert stored(env, "VERSION#sales/v1")["champion_model_package_arn"] == "none"

    newest = register(env, None)
    served = register(env, None)  # the newest Approved package is not what serves:
    serving.serve(newest)  # the served one is
    env.clock.advance(10)
    second = handle(trigger, land_version(env, prefix="landing/sales/v2/")[1])
    assert parameters_of(env, second.execution_arn)["ChampionModelPackageArn"] == newest
    serving.serve(served, "UPDATE_ROLLBACK_COMPLETE")  # the reverted parameter is what serves
    retrain = trigger.handle(retrain_request())
    assert parameters_of(env, retrain.execution_arn)["ChampionModelPackageArn"] == served


@pytest.mark.parametrize(
    "status", ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_FAILED"]
)
def test_while_the_serving_stack_is_unsettled_the_start_waits(
    env: Env, serving: ServingStack, status: str
) -> None:
    trigger = trigger_for(env, serving, defer_seconds=120, **CHAMPION)
    serving.serve(PACKAGE, status)
    _, marker = land_version(env)
    outcome = handle(trigger, marker)
    assert (outcome.kind, outcome.reason) == (Kind.DEFERRED, "serving-unsettled")
    assert status in outcome.message
    [queued] = take_queued(env)
    assert json.loads(queued.body) == marker and queued.delay == pytest.approx(120, abs=2)
    assert executions(env) == []

    serving.serve(PACKAGE, "UPDATE_COMPLETE")
    trigger.begin_invocation()
    started = trigger.handle_sqs_body(queued.body, deferrals=1)
    assert started.kind is Kind.STARTED
    assert parameters_of(env, started.execution_arn)["ChampionModelPackageArn"] == PACKAGE


@pytest.mark.parametrize("state", ["not deployed", "no endpoint", "creation rolled back"])
def test_nothing_served_means_no_champion(env: Env, serving: ServingStack, state: str) -> None:
    if state == "not deployed":
        serving.deployed = False
    elif state == "creation rolled back":
        serving.serve(PACKAGE, "ROLLBACK_COMPLETE")
    trigger = trigger_for(env, serving, **CHAMPION)
    outcome = handle(trigger, land_version(env)[1])
    assert parameters_of(env, outcome.execution_arn)["ChampionModelPackageArn"] == "none"


def test_a_takeover_starts_with_the_champion_its_claim_recorded(
    env: Env, serving: ServingStack
) -> None:
    trigger = trigger_for(env, serving, lease_seconds=180, **CHAMPION)
    _, marker = land_version(env)
    claim = trigger.ledger.claim(
        "VERSION#sales/2024-06-01",
        None,
        generation=1,
        attributes={"trigger": "data", "champion_model_package_arn": PACKAGE},
    )
    assert claim is not None  # ... and the worker dies here, before StartPipelineExecution
    serving.serve(PACKAGE.replace("/7", "/8"))  # another package deployed before the takeover
    env.clock.advance(181)
    calls = serving.calls
    outcome = handle(trigger, marker)
    assert outcome.kind is Kind.STARTED
    # the same ClientRequestToken must carry the same parameters as the first attempt
    assert parameters_of(env, outcome.execution_arn)["ChampionModelPackageArn"] == PACKAGE
    assert serving.calls == calls  # the recorded champion is not looked up again


# ----------------------------------------------------------- the eval-only production model


def test_labels_score_the_served_package_as_production(env: Env, serving: ServingStack) -> None:
    trigger = trigger_for(env, serving, **EVALUATION)
    serving.serve(PACKAGE)
    outcome = handle(trigger, land_version(env, prefix="landing/sales/v1/")[1])
    parameters = parameters_of(env, outcome.execution_arn)
    assert (parameters["ModelPackageArn"], parameters["ModelRole"]) == (PACKAGE, "production")
    assert stored(env, "VERSION#sales/v1")["champion_model_package_arn"] == PACKAGE


def test_a_named_package_is_scored_as_a_candidate(env: Env, serving: ServingStack) -> None:
    trigger = trigger_for(env, serving, **EVALUATION)
    serving.serve(PACKAGE)
    first = handle(trigger, land_version(env, prefix="landing/sales/v1/")[1])
    candidate = PACKAGE.replace("/7", "/9")
    rerun = handle(trigger, rerun_request(model_package_arn=candidate))
    assert rerun.kind is Kind.STARTED
    assert parameters_of(env, rerun.execution_arn) == {
        **parameters_of(env, first.execution_arn),
        "ModelPackageArn": candidate,
        "ModelRole": "candidate",
    }
    stored_rerun = stored(env, "RETRAIN#manual#ticket-42")
    assert stored_rerun["model_package_arn"] == candidate
    assert "champion_model_package_arn" not in stored_rerun
    latest = handle(trigger, retrain_request(model_package_arn=candidate))
    assert parameters_of(env, latest.execution_arn)["ModelRole"] == "candidate"


def test_labels_with_nothing_served_have_no_production_model_to_score(
    env: Env, serving: ServingStack
) -> None:
    trigger = trigger_for(env, serving, **EVALUATION)
    outcome = handle(trigger, land_version(env)[1])
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "no-production-model")
    assert "replay the version's marker" in outcome.message
    assert executions(env) == []


@pytest.mark.parametrize(
    ("overrides", "package", "reason", "says"),
    [
        (CHAMPION, PACKAGE, "model-package-not-accepted",
         "model_package_arn goes to the evaluation"),
        (EVALUATION, f"{GROUP}/7", "malformed-retrain-request",
         "model_package_arn must be a versioned model package ARN"),
        (EVALUATION, PACKAGE.rsplit("/", 1)[0], "malformed-retrain-request",
         "got 'arn:aws:sagemaker:"),
    ],
)  # fmt: skip
def test_a_model_package_the_pipeline_cannot_take_is_rejected(
    env: Env,
    serving: ServingStack,
    overrides: dict[str, Any],
    package: str,
    reason: str,
    says: str,
) -> None:
    serving.serve(PACKAGE)
    trigger = trigger_for(env, serving, **overrides)
    handle(trigger, land_version(env, prefix="landing/sales/v1/")[1])
    for request in (
        rerun_request(model_package_arn=package),
        retrain_request(model_package_arn=package),
    ):
        outcome = trigger.handle_direct(request)
        assert (outcome.kind, outcome.reason) == (Kind.REJECTED, reason)
        assert says in outcome.message
    assert len(executions(env)) == 1
    assert take_queued(env) == []


BASE_ENV = {"PIPELINE_NAME": "p", "LEDGER_TABLE": "t", "DATA_BUCKET": "b", "QUEUE_URL": "q",
            "MANIFEST_BUCKET": "m"}  # fmt: skip


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"CHAMPION_PARAMETER": "Champion"}, "SERVING_STACK_NAME is required"),
        ({"MODEL_PACKAGE_PARAMETER": "ModelPackageArn"}, "SERVING_STACK_NAME is required"),
        ({"MODEL_ROLE_PARAMETER": "ModelRole"},
         "MODEL_ROLE_PARAMETER needs MODEL_PACKAGE_PARAMETER"),
    ],
)  # fmt: skip
def test_the_production_model_settings_are_checked(variables: dict[str, str], says: str) -> None:
    with pytest.raises(trigger_module.ConfigError, match=says):
        trigger_module.TriggerConfig.from_env({**BASE_ENV, **variables})
    config = trigger_module.TriggerConfig.from_env(
        {**BASE_ENV, **EVALUATION_ENV, "SERVING_STACK_NAME": "s"}
    )
    assert (config.model_package_parameter, config.model_role_parameter) == (
        "ModelPackageArn",
        "ModelRole",
    )
    assert trigger_module.TriggerConfig.from_env(BASE_ENV).serving_stack_name == ""


EVALUATION_ENV = {"MODEL_PACKAGE_PARAMETER": "ModelPackageArn", "MODEL_ROLE_PARAMETER": "ModelRole"}


# ------------------------------------------------------------------------------ no new data


@pytest.fixture()
def champion_run(env: Env, serving: ServingStack) -> tuple[Any, str]:
    """A training trigger whose first run's model was registered and now serves."""
    env.sagemaker.update_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(DEFINITION))
    trigger = trigger_for(env, serving, retrain_cooldown_seconds=600, **CHAMPION)
    first = handle(trigger, land_version(env, prefix="landing/sales/v1/")[1])
    serving.serve(register(env, first.execution_arn))
    env.clock.advance(3600)
    return trigger, first.execution_arn


@pytest.mark.parametrize(
    "request_",
    [retrain_request(), alarm_event(), rerun_request()],
    ids=["schedule", "alarm", "rerun"],
)
def test_a_retrain_of_the_champions_own_data_code_and_parameters_is_skipped(
    env: Env,
    champion_run: tuple[Any, str],
    request_: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    trigger, first = champion_run
    outcome = trigger.handle_direct(request_)
    assert (outcome.kind, outcome.reason) == (Kind.SKIPPED, "no-new-data")
    assert f"execution {first}" in outcome.message
    assert "would register the same model again" in outcome.message
    assert [e["PipelineExecutionArn"] for e in executions(env)] == [first]
    skipped = [m for m in metrics_out(capsys) if "RetrainsSkipped" in m]
    assert skipped and skipped[-1]["Reason"] == "no-new-data"


def test_new_data_is_retrained(env: Env, champion_run: tuple[Any, str]) -> None:
    trigger, _ = champion_run
    second = handle(trigger, land_version(env, prefix="landing/sales/v2/")[1])
    assert second.kind is Kind.STARTED  # a new version is never "no new data"
    env.clock.advance(3600)
    outcome = trigger.handle_direct(retrain_request())  # the latest version is v2
    assert (outcome.kind, outcome.dataset_version) == (Kind.STARTED, "sales/v2")


def test_a_changed_definition_is_retrained(env: Env, champion_run: tuple[Any, str]) -> None:
    trigger, _ = champion_run
    changed = {**DEFINITION, "Steps": [{"Name": "Prepare", "Type": "Processing", "Arguments": {}}]}
    env.sagemaker.update_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(changed))
    assert trigger.handle_direct(retrain_request()).kind is Kind.STARTED


def test_changed_parameters_are_retrained(env: Env, serving: ServingStack) -> None:
    env.sagemaker.update_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(DEFINITION))
    trigger = trigger_for(env, serving, **CHAMPION)
    first = handle(trigger, land_version(env, prefix="landing/sales/v1/")[1])
    # The champion came from a run someone started by hand with more rounds.
    by_hand = env.sagemaker.start_pipeline_execution(
        PipelineName=PIPELINE,
        PipelineParameters=[
            *({"Name": k, "Value": v} for k, v in parameters_of(env, first.execution_arn).items()),
            {"Name": "NumRound", "Value": "500"},
        ],
    )["PipelineExecutionArn"]
    serving.serve(register(env, by_hand))
    env.clock.advance(3600)
    assert trigger.handle_direct(retrain_request()).kind is Kind.STARTED


@pytest.mark.parametrize("lineage", ["no execution", "another pipeline", "another digest"])
def test_what_cannot_be_proven_the_same_is_retrained(
    env: Env, serving: ServingStack, lineage: str
) -> None:
    env.sagemaker.update_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(DEFINITION))
    trigger = trigger_for(env, serving, **CHAMPION)
    first = handle(trigger, land_version(env, prefix="landing/sales/v1/")[1])
    if lineage == "no execution":
        champion = register(env, None)
    elif lineage == "another pipeline":
        other = first.execution_arn.replace(f"pipeline/{PIPELINE}", "pipeline/someone-else")
        assert other != first.execution_arn
        champion = register(env, first.execution_arn, generated_by=other)
    else:
        champion = register(env, first.execution_arn, data_digest="0" * 64)
    serving.serve(champion)
    env.clock.advance(3600)
    assert trigger.handle_direct(retrain_request()).kind is Kind.STARTED


def test_the_evaluation_trigger_never_skips_for_no_new_data(
    env: Env, serving: ServingStack
) -> None:
    trigger = trigger_for(env, serving, **EVALUATION)
    serving.serve(PACKAGE)
    handle(trigger, land_version(env, prefix="landing/sales/v1/")[1])
    env.clock.advance(3600)
    assert trigger.handle_direct(retrain_request()).kind is Kind.STARTED
