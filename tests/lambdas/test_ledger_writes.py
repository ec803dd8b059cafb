"""The ledger's writes as DynamoDB receives them, and what it does with each answer.

moto cannot tell a strongly consistent read from an eventually consistent one, nor fail a
write for any reason but its condition, so these go through botocore's Stubber (requests and
answers validated against DynamoDB's service model): a conditional refusal arrives as the
service sends it (`ConditionalCheckFailedException`, HTTP 400, the stored item when the request
asked for ALL_OLD), throttling as `ProvisionedThroughputExceededException`. The retrain items'
lifetime goes through the trigger on moto.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.lambdas.trigger_env import (
    REGION,
    TABLE,
    Env,
    Kind,
    handle,
    land_version,
    ledger_module,
    make_trigger,
    retrain_request,
)

NOW = 1_780_000_000
PK = "VERSION#sales/2024-06-01"


@pytest.fixture()
def stubbed(aws_credentials: None) -> Any:
    table = boto3.session.Session(region_name=REGION).resource("dynamodb").Table(TABLE)
    with Stubber(table.meta.client) as stubber:
        yield ledger_module.Ledger(table, clock=lambda: float(NOW)), stubber
        stubber.assert_no_pending_responses()


def refuse(stubber: Stubber, item: dict[str, Any] | None = None) -> None:
    """UpdateItem refused on its condition, as DynamoDB answers it."""
    stubber.add_client_error(
        "update_item",
        service_error_code="ConditionalCheckFailedException",
        service_message="The conditional request failed",
        http_status_code=400,
        modeled_fields={"Item": item} if item else None,
    )


def throttle(stubber: Stubber) -> None:
    stubber.add_client_error(
        "update_item",
        service_error_code="ProvisionedThroughputExceededException",
        service_message="The level of configured provisioned throughput for the table was "
        "exceeded.",
        http_status_code=400,
    )


CLAIM = ledger_module.Claim(pk=PK, claim_id="c" * 32, generation=2)


def test_reads_are_strongly_consistent(stubbed: Any) -> None:
    ledger, stubber = stubbed
    stubber.add_response(
        "get_item",
        {"Item": {"pk": {"S": PK}, "status": {"S": "STARTED"}}},
        {"TableName": TABLE, "Key": {"pk": PK}, "ConsistentRead": True},
    )
    stubber.add_response(
        "get_item", {}, {"TableName": TABLE, "Key": {"pk": PK}, "ConsistentRead": True}
    )
    assert ledger.get(PK) == {"pk": PK, "status": "STARTED"}
    assert ledger.get(PK) is None


def test_a_refused_claim_carries_the_stored_item_and_a_lost_response_is_this_claim(
    stubbed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, stubber = stubbed
    rival = {"pk": {"S": PK}, "claim_id": {"S": "r" * 32}, "revision": {"N": "4"}}
    refuse(stubber, rival)
    conflict = ledger.claim(PK, {"revision": 3}, generation=2, attributes={})
    assert conflict == ledger_module.Conflict({"pk": PK, "claim_id": "r" * 32, "revision": 4})

    monkeypatch.setattr(ledger_module.uuid, "uuid4", lambda: type("U", (), {"hex": "m" * 32}))
    refuse(stubber, {"pk": {"S": PK}, "claim_id": {"S": "m" * 32}, "revision": {"N": "4"}})
    mine = ledger.claim(PK, {"revision": 3}, generation=2, attributes={})
    assert mine == ledger_module.Claim(pk=PK, claim_id="m" * 32, generation=2)


def test_a_claim_leases_from_now_and_a_release_ends_the_lease(env: Env) -> None:
    ledger = ledger_module.Ledger(env.table, clock=env.clock, lease_seconds=180)
    now = int(env.clock())
    claim = ledger.claim(PK, None, generation=1, attributes={}, ttl_seconds=60)
    item = ledger.get(PK)
    assert item is not None and isinstance(claim, ledger_module.Claim)
    assert (item["lease_until"], item["claimed_at"], item["expires_at"]) == (
        now + 180,
        now,
        now + 60,
    )
    assert not ledger.lease_expired(item)
    ledger.release(claim)
    released = ledger.get(PK)
    assert released is not None and ledger.lease_expired(released)
    assert released["revision"] > item["revision"]  # a release is a claim-related write


def test_mark_started_answers_whether_the_claim_still_held(stubbed: Any) -> None:
    ledger, stubber = stubbed
    stubber.add_response("update_item", {})
    assert ledger.mark_started(CLAIM, "arn:exec/1", NOW) is True
    # Taken over meanwhile: the record is the takeover's.
    refuse(stubber, {"pk": {"S": PK}, "status": {"S": "STARTING"}, "claim_id": {"S": "t" * 32}})
    assert ledger.mark_started(CLAIM, "arn:exec/1", NOW) is False
    # The first attempt was applied and its response lost: botocore's retry is refused.
    done = {"pk": {"S": PK}, "status": {"S": "STARTED"}, "execution_arn": {"S": "arn:exec/1"},
            "generation": {"N": "2"}}  # fmt: skip
    refuse(stubber, done)
    assert ledger.mark_started(CLAIM, "arn:exec/1", NOW) is True
    for changed in ({"status": {"S": "STARTING"}}, {"execution_arn": {"S": "arn:exec/2"}},
                    {"generation": {"N": "3"}}):  # fmt: skip
        refuse(stubber, {**done, **changed})
        assert ledger.mark_started(CLAIM, "arn:exec/1", NOW) is False, changed
    refuse(stubber)  # refused, and the item is gone
    stubber.add_response("get_item", {})
    assert ledger.mark_started(CLAIM, "arn:exec/1", NOW) is False


@pytest.mark.parametrize(
    "write",
    [
        lambda ledger: ledger.mark_started(CLAIM, "arn:exec/1", NOW),
        lambda ledger: ledger.release(CLAIM),
        lambda ledger: ledger.record_run("arn:exec/1", "data", NOW),
    ],
    ids=["mark_started", "release", "record_run"],
)
def test_a_throttled_write_is_raised_for_the_queue_to_retry(stubbed: Any, write: Any) -> None:
    ledger, stubber = stubbed
    throttle(stubber)
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        write(ledger)


@pytest.mark.parametrize(
    "write",
    [
        lambda ledger: ledger.release(CLAIM),
        lambda ledger: ledger.record_run("arn:exec/1", "data", NOW),
    ],
    ids=["release", "record_run"],
)
def test_a_refused_release_or_pointer_write_is_not_an_error(stubbed: Any, write: Any) -> None:
    """A release refused because the claim was taken over, a pointer already newer: nothing
    to do."""
    ledger, stubber = stubbed
    refuse(stubber)
    assert write(ledger) is None


def test_retrain_request_items_expire_ninety_days_after_their_claim(env: Env) -> None:
    trigger = make_trigger(env)
    handle(trigger, land_version(env)[1])
    outcome = handle(trigger, retrain_request())
    assert outcome.kind is Kind.STARTED
    [item] = [i for i in env.table.scan()["Items"] if i["pk"].startswith("RETRAIN#schedule#")]
    assert item["expires_at"] == int(env.clock()) + 90 * 24 * 3600
    assert ledger_module.RETRAIN_ITEM_TTL_SECONDS == 90 * 24 * 3600
    assert "expires_at" not in env.table.get_item(Key={"pk": PK})["Item"]  # versions: forever
