"""Leases and contention on ledger items that already exist.

Each race runs the rival invocation inside the window between this invocation's read of the
ledger item and its conditional write (`race_before_claim`), on the handler's injectable
clock. moto does not model SageMaker's "a ClientRequestToken runs once", so a second start
of the same claim shows up as a second execution: each test fails if the condition of the
write it exercises is dropped (checked by breaking it, see the report in the commit).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.sagemaker.models import sagemaker_backends

from tests.lambdas.trigger_env import (
    ACCOUNT,
    PIPELINE,
    REGION,
    SESSION,
    Env,
    Kind,
    LambdaContext,
    alarm_event,
    executions,
    handle,
    handler,
    land_version,
    ledger_module,
    make_trigger,
    race_before_claim,
    reupload,
    sqs_event,
    stored,
    take_queued,
)

VERSION_KEY = "VERSION#sales/2024-06-01"
LEASE = 180


def crashed_claim(trigger: Any, pk: str = VERSION_KEY, **attributes: Any) -> Any:
    """A claim taken by an invocation that died before StartPipelineExecution."""
    item = trigger.ledger.get(pk)
    claim = trigger.ledger.claim(
        pk, item, generation=1, attributes={"trigger": "data", **attributes}
    )
    assert isinstance(claim, ledger_module.Claim)
    return claim


def deliver(marker: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = handler.lambda_handler(
        sqs_event(json.dumps(marker)), LambdaContext()
    )
    return response


def test_a_claim_whose_start_never_happened_is_taken_over_only_after_its_lease(
    lambda_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEASE_SECONDS", str(LEASE))
    _, marker = land_version(lambda_env)
    claim = crashed_claim(handler.get_trigger())
    lease_until = stored(lambda_env, VERSION_KEY)["lease_until"]
    assert lease_until == int(lambda_env.clock()) + LEASE

    # Up to and including lease_until the claim is alive: the event waits in the queue.
    lambda_env.clock.now = float(lease_until)
    assert deliver(marker) == {"batchItemFailures": []}
    [waiting] = take_queued(lambda_env)
    assert json.loads(waiting.body) == marker
    assert executions(lambda_env) == []
    assert stored(lambda_env, VERSION_KEY)["claim_id"] == claim.claim_id

    # One second later it has expired: the event takes it over and starts the run once.
    lambda_env.clock.advance(1)
    assert deliver(marker) == {"batchItemFailures": []}
    [run] = executions(lambda_env)
    item = stored(lambda_env, VERSION_KEY)
    assert (item["status"], item["generation"], item["execution_arn"]) == (
        "STARTED",
        1,
        run["PipelineExecutionArn"],
    )
    assert take_queued(lambda_env) == []


def test_two_takeovers_of_an_expired_claim_start_one_run(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_trigger(env, lease_seconds=LEASE), make_trigger(env, lease_seconds=LEASE)
    _, marker = land_version(env)
    crashed_claim(first)
    env.clock.advance(LEASE + 1)
    rival: list[Any] = []
    race_before_claim(first, monkeypatch, lambda: rival.append(handle(second, marker)))

    outcome = handle(first, marker)

    assert rival[0].kind is Kind.STARTED
    assert (outcome.kind, outcome.reason) == (Kind.DUPLICATE, "started-concurrently")
    assert outcome.execution_arn == rival[0].execution_arn
    assert len(executions(env)) == 1
    assert stored(env, VERSION_KEY)["generation"] == 1


def test_two_workers_completing_a_second_generation_start_it_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (make_trigger(env, allow_reupload=True) for _ in range(2))
    handle(first, land_version(env)[1])
    marker = reupload(env)
    rival: list[Any] = []
    race_before_claim(first, monkeypatch, lambda: rival.append(handle(second, marker)))

    outcome = handle(first, marker)

    assert (rival[0].kind, rival[0].details["generation"]) == (Kind.STARTED, 2)
    assert (outcome.kind, outcome.reason) == (Kind.DUPLICATE, "started-concurrently")
    assert len(executions(env)) == 2  # generation 1 and one generation 2
    item = stored(env, VERSION_KEY)
    assert (item["generation"], len(item["previous_runs"])) == (2, 1)


def test_drift_and_quality_alarms_together_start_one_retrain_on_the_shared_item(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (make_trigger(env, retrain_cooldown_seconds=3600) for _ in range(2))
    handle(first, land_version(env)[1])
    env.clock.advance(3601)
    assert first.handle(alarm_event()).kind is Kind.STARTED  # RETRAIN#alarm exists now
    env.clock.advance(3601)
    rival: list[Any] = []
    race_before_claim(
        first,
        monkeypatch,
        lambda: rival.append(second.handle(alarm_event(name="mlops-dev-model-quality"))),
    )

    outcome = first.handle(alarm_event(name="mlops-dev-feature-drift"))

    assert rival[0].kind is Kind.STARTED
    assert (outcome.kind, outcome.reason) == (Kind.DUPLICATE, "started-concurrently")
    assert len(executions(env)) == 3  # the data run and two alarm generations, one each
    assert stored(env, "RETRAIN#alarm")["generation"] == 2


def drop_item_from_refusals(trigger: Any) -> None:
    """DynamoDB answers a refused UpdateItem without the stored item (as it does when the
    item is gone, or the request did not ask for it)."""

    def strip(parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            parsed.pop("Item", None)

    trigger.ledger.table.meta.client.meta.events.register("after-call.dynamodb.UpdateItem", strip)


def test_a_refusal_without_the_item_is_decided_on_a_fresh_read(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_trigger(env), make_trigger(env)
    _, marker = land_version(env)
    drop_item_from_refusals(first)
    rival: list[Any] = []
    race_before_claim(first, monkeypatch, lambda: rival.append(handle(second, marker)))

    outcome = handle(first, marker)

    assert (outcome.kind, outcome.reason) == (Kind.DUPLICATE, "started-concurrently")
    assert outcome.execution_arn == rival[0].execution_arn
    assert len(executions(env)) == 1


def test_a_refusal_without_the_item_and_no_item_left_is_decided_again_later(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    trigger = make_trigger(env, allow_reupload=True)
    handle(trigger, land_version(env)[1])
    marker = reupload(env)
    drop_item_from_refusals(trigger)
    # An operator removes the version's ledger item while the re-upload is being decided.
    race_before_claim(trigger, monkeypatch, lambda: env.table.delete_item(Key={"pk": VERSION_KEY}))

    outcome = handle(trigger, marker)

    assert (outcome.kind, outcome.reason) == (Kind.DEFERRED, "ledger-item-changed")
    [queued] = take_queued(env)
    assert json.loads(queued.body) == marker
    assert len(executions(env)) == 1


def test_a_worker_slower_than_its_lease_does_not_overwrite_the_takeover_record(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_sagemaker = SESSION.client("sagemaker")
    slow = make_trigger(env, sagemaker=slow_sagemaker, lease_seconds=LEASE)
    fast = make_trigger(env, lease_seconds=LEASE)
    _, marker = land_version(env)
    taken_over: list[Any] = []
    start = slow_sagemaker.start_pipeline_execution

    def start_then_stall(**request: Any) -> Any:
        response = start(**request)
        env.clock.advance(LEASE + 1)  # the slow worker stalls past its lease ...
        taken_over.append(handle(fast, marker))  # ... and the re-delivery takes over
        return response

    monkeypatch.setattr(slow_sagemaker, "start_pipeline_execution", start_then_stall)
    handle(slow, marker)

    assert taken_over[0].kind is Kind.STARTED
    item = stored(env, VERSION_KEY)
    assert item["execution_arn"] == taken_over[0].execution_arn  # the takeover's record stands
    # Both starts carried the claim's one ClientRequestToken: SageMaker runs it once.
    pipeline = sagemaker_backends[ACCOUNT][REGION].pipelines[PIPELINE]
    tokens = {e.client_request_token for e in pipeline.pipeline_executions.values()}
    assert tokens == {item["client_request_token"]}
