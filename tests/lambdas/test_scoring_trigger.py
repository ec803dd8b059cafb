"""The scoring trigger (batch serving): the data-landing trigger's code, configured as the Training
stack configures it for `score/` (tests/test_batch_mode.py pins that configuration). A scoring
version starts exactly one scoring run, with the package the Serving stack serves; duplicates and
late files start nothing; a newly served package scores the next version; a corrected re-upload
of a version runs again, an identical one does not.

Events are AWS's documented EventBridge "Object Created" example (tests/lambdas/s3_eventbridge):
keys arrive raw, as S3 stores them. S3, DynamoDB, SQS and SageMaker run in moto; DescribeStacks
is answered through botocore's Stubber (`ServingStack`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli.runs.starting import rerun_request
from tests.lambdas.trigger_env import (
    ACCOUNT,
    BUCKET,
    REGION,
    Env,
    Kind,
    ServingStack,
    executions,
    handle,
    land,
    land_version,
    make_trigger,
    parameters_of,
)

GROUP = "mlops-dev-models"
SERVED = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/7"
NEWER = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/8"
# what the Training stack gives the scoring trigger (SCORE_PREFIX, ModelPackageArn, reupload)
SCORING = {
    "landing_prefix": "score/",
    "model_package_parameter": "ModelPackageArn",
    "serving_stack_name": ServingStack.NAME,
    "allow_reupload": True,
}
VERSION = "score/transactions/2026-12-07 08:00+batch 50%/"


@pytest.fixture()
def serving() -> ServingStack:
    stack = ServingStack()
    stack.serve(SERVED)
    return stack


def scoring_trigger(env: Env, serving: ServingStack) -> Any:
    return make_trigger(env, cloudformation=serving.client, **SCORING)


def test_a_scoring_version_starts_one_run_with_the_served_package(
    env: Env, serving: ServingStack
) -> None:
    trigger = scoring_trigger(env, serving)
    files, marker = land_version(env, prefix=VERSION, files=3)
    for event in files:
        assert handle(trigger, event).kind == Kind.PENDING  # files alone start nothing
    started = handle(trigger, marker)
    assert started.kind == Kind.STARTED
    (run,) = executions(env)
    parameters = parameters_of(env, run["PipelineExecutionArn"])
    assert parameters["ModelPackageArn"] == SERVED
    assert parameters["InputDataUri"] == f"s3://{BUCKET}/{VERSION}"  # the raw key, not decoded


def test_duplicate_and_late_events_start_nothing(env: Env, serving: ServingStack) -> None:
    trigger = scoring_trigger(env, serving)
    files, marker = land_version(env, prefix=VERSION, files=2)
    assert handle(trigger, marker).kind == Kind.STARTED
    assert handle(trigger, marker).kind == Kind.DUPLICATE  # S3 delivers at least once
    for event in files:  # a late re-delivery of a file of the started version
        assert handle(trigger, event).kind != Kind.STARTED
    assert len(executions(env)) == 1


def test_the_next_version_is_scored_by_the_newly_served_package(
    env: Env, serving: ServingStack
) -> None:
    """Deploy on approval in batch mode: the deployer sets the Serving stack's ModelPackageArn,
    and the next scoring run uses it."""
    trigger = scoring_trigger(env, serving)
    first = handle(trigger, land_version(env, prefix="score/transactions/v1/")[1])
    serving.serve(NEWER)
    env.clock.advance(10)
    second = handle(trigger, land_version(env, prefix="score/transactions/v2/")[1])
    assert parameters_of(env, first.execution_arn)["ModelPackageArn"] == SERVED
    assert parameters_of(env, second.execution_arn)["ModelPackageArn"] == NEWER


def test_while_the_serving_stack_changes_the_run_waits(env: Env, serving: ServingStack) -> None:
    serving.serve(NEWER, "UPDATE_IN_PROGRESS")
    trigger = scoring_trigger(env, serving)
    outcome = handle(trigger, land_version(env, prefix=VERSION)[1])
    assert (outcome.kind, outcome.reason) == (Kind.DEFERRED, "serving-unsettled")
    assert executions(env) == []


def test_a_corrected_reupload_runs_again_and_an_identical_one_does_not(
    env: Env, serving: ServingStack
) -> None:
    """A version whose run failed on bad data is fixed by uploading it again: the ledger sees new
    content (its data digest) and starts a second run; the same bytes again start nothing."""
    trigger = scoring_trigger(env, serving)
    land(env, VERSION + "part-0000.csv", b"id,amount\n1,oops\n")
    first = handle(trigger, land(env, VERSION + "_SUCCESS", b""))
    env.clock.advance(60)
    land(env, VERSION + "part-0000.csv", b"id,amount\n1,12.5\n")
    corrected = handle(trigger, land(env, VERSION + "_SUCCESS", b""))
    assert (first.kind, corrected.kind) == (Kind.STARTED, Kind.STARTED)
    assert corrected.execution_arn != first.execution_arn
    env.clock.advance(60)
    land(env, VERSION + "part-0000.csv", b"id,amount\n1,12.5\n")
    again = handle(trigger, land(env, VERSION + "_SUCCESS", b""))
    assert again.kind != Kind.STARTED
    assert len(executions(env)) == 2


def test_training_data_is_not_the_scoring_triggers(env: Env, serving: ServingStack) -> None:
    trigger = scoring_trigger(env, serving)
    outcome = handle(trigger, land_version(env, prefix="landing/transactions/v1/")[1])
    assert outcome.kind == Kind.REJECTED
    assert executions(env) == []


def cli_rerun(version: str) -> Any:
    """`mlops start --pipeline scoring DATASET/VERSION --rerun`'s request, built by the CLI's
    own code and sent as the CLI sends it: a direct invocation (the JSON round trip of
    lambda:Invoke's payload)."""
    return json.loads(json.dumps(rerun_request(version, None)))


def test_the_clis_rerun_scores_a_version_again_with_the_served_package(
    env: Env, serving: ServingStack
) -> None:
    """A failed scoring run is recovered with a new run (RetryPipelineExecution cannot re-run
    its deleted model): same input, the package served now, the previous run named."""
    trigger = scoring_trigger(env, serving)
    first = handle(trigger, land_version(env, prefix=VERSION)[1])
    serving.serve(NEWER)
    env.clock.advance(60)

    rerun = trigger.handle_direct(cli_rerun("transactions/2026-12-07 08:00+batch 50%"))

    assert rerun.kind == Kind.STARTED, rerun.message
    assert rerun.execution_arn != first.execution_arn
    assert rerun.details["rerun_of"] == first.execution_arn
    again = parameters_of(env, rerun.execution_arn)
    assert again["InputDataUri"] == f"s3://{BUCKET}/{VERSION}"
    assert again["ModelPackageArn"] == NEWER
    assert len(executions(env)) == 2


def test_the_clis_rerun_of_a_version_never_scored_is_refused(
    env: Env, serving: ServingStack
) -> None:
    trigger = scoring_trigger(env, serving)
    outcome = trigger.handle_direct(cli_rerun("transactions/never-landed"))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "version-never-ran")
    assert executions(env) == []
