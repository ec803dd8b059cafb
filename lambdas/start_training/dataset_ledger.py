"""The ledger: one DynamoDB item per run key records which pipeline execution it started.

Table schema (the CDK construct creates it: on-demand, KMS, point-in-time recovery)
    - partition key `pk` (String); no sort key; no GSI;
    - TTL attribute `expires_at` (Number, epoch seconds), set only on retrain request items.

Items (`pk` values)
    `VERSION#<dataset>/<version>`   one per dataset version, kept forever (traceability)
    `RETRAIN#<reason>#<request id>` one per retrain request (TTL 90 days): a scheduled or
                                    manual `retrain-latest`, or a `retrain-version` re-run of
                                    one version (reason "manual" unless given)
    `RETRAIN#alarm`                 the alarm-driven retrain run, reused after each cooldown
    `LATEST`, `LATEST#<dataset>`    pointer to the newest started dataset version (for
                                    retrain-latest) and the time of the newest run of any kind
                                    (for the alarm cooldown)

Run items move through `OPEN` (quiet-period bookkeeping only, nothing claimed) ->
`STARTING` (claimed: `claim_id`, `lease_until`) -> `STARTED` (`execution_arn`, `started_at`).
`generation` counts the runs of one item (a re-upload of a version, each alarm retrain); the
ClientRequestToken is derived from `pk` and `generation`, so a retried start of the same
generation is the same request to SageMaker.

Claims use optimistic locking: every claim-related write increments `revision`, and a claim
is a conditional write "revision is still what I read" (or "no revision yet" for a fresh
item). Two workers that read the same state cannot both claim. Quiet-period bookkeeping
(`check_due_at`) never touches `revision`, so it cannot make a claim fail. All times are
integer epoch seconds.

A claim is recognised as its own even when DynamoDB applied it but the response was lost:
botocore re-sends the same conditional write, which then fails its condition; the refusal
carries the item as stored (ReturnValuesOnConditionCheckFailure=ALL_OLD), and an item that
holds this claim's `claim_id` is this claim. Any other refusal is a `Conflict` carrying the
item, so the caller can tell a rival's claim (wait) from a rival's finished start.

The `LATEST` pointers and the newest-run fields are written after a start, stamped with the
run's `started_at` (not the time of the write), and only move forward in
(`started_at`, `dataset_version`) / (`started_at`, execution ARN) order. Re-applying them is
therefore harmless, so a re-delivered event re-applies them for a run already STARTED
(a failed write after the start must not leave the pointer stale), and an older version's
re-delivery never moves the pointer back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

PARTITION_KEY = "pk"
TTL_ATTRIBUTE = "expires_at"
STATUS_OPEN = "OPEN"
STATUS_STARTING = "STARTING"
STATUS_STARTED = "STARTED"
LATEST_KEY = "LATEST"
ALARM_RETRAIN_KEY = "RETRAIN#alarm"
RETRAIN_ITEM_TTL_SECONDS = 90 * 24 * 3600


def version_key(dataset_version: str) -> str:
    """Ledger key of a dataset version `<dataset>/<version>`."""
    return f"VERSION#{dataset_version}"


def retrain_key(reason: str, request_id: str) -> str:
    """Ledger key of one scheduled/manual retrain request."""
    return f"RETRAIN#{reason}#{request_id}"


def latest_key(dataset: str | None = None) -> str:
    """Ledger key of the newest-version pointer, overall or for one dataset."""
    return LATEST_KEY if dataset is None else f"{LATEST_KEY}#{dataset}"


@dataclass(frozen=True)
class Claim:
    """A successful claim: this worker may start generation `generation` of item `pk`."""

    pk: str
    claim_id: str
    generation: int


@dataclass(frozen=True)
class Conflict:
    """A refused claim: the item changed since it was read and holds no claim of this worker.

    `item` is the item as stored when the write was refused (None if it no longer exists).
    """

    item: dict[str, Any] | None


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


_DESERIALIZER = TypeDeserializer()


class _Expression:
    """Builds update expressions with placeholder names for every attribute."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.sets: list[str] = []
        self.removes: list[str] = []

    def name(self, attribute: str) -> str:
        """The placeholder of `attribute` (one per attribute, reused)."""
        for placeholder, known in self.names.items():
            if known == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, attribute: str, value: Any) -> None:
        self.sets.append(f"{self.name(attribute)} = {self.value(value)}")

    def set_raw(self, clause: str) -> None:
        self.sets.append(clause)

    def remove(self, attribute: str) -> None:
        self.removes.append(self.name(attribute))

    def update_expression(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        return " ".join(parts)

    def request(self, pk: str, condition: str | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "Key": {PARTITION_KEY: pk},
            "UpdateExpression": self.update_expression(),
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        if condition:
            request["ConditionExpression"] = condition
        return request


class Ledger:
    """Reads and conditionally writes ledger items.

    `table` is a boto3 DynamoDB Table resource; `clock` returns epoch seconds; a claim's lease
    lasts `lease_seconds` (default 180 s; must exceed the Lambda timeout and stay below the
    SQS visibility timeout, see dataset_trigger).
    """

    def __init__(self, table: Any, *, clock: Callable[[], float], lease_seconds: int = 180) -> None:
        self.table = table
        self.clock = clock
        self.lease_seconds = lease_seconds

    def now(self) -> int:
        return int(self.clock())

    def get(self, pk: str) -> dict[str, Any] | None:
        """The item as stored now (strongly consistent read), or None."""
        item = self.table.get_item(Key={PARTITION_KEY: pk}, ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def lease_expired(self, item: dict[str, Any]) -> bool:
        return int(item.get("lease_until", 0)) < self.now()

    def _refused_item(self, pk: str, error: ClientError) -> dict[str, Any] | None:
        """The item a conditional write was refused on (ALL_OLD), else read consistently."""
        old = error.response.get("Item")
        if old:
            return {name: _DESERIALIZER.deserialize(value) for name, value in old.items()}
        return self.get(pk)

    def claim(
        self,
        pk: str,
        seen: dict[str, Any] | None,
        *,
        generation: int,
        attributes: dict[str, Any],
        previous_run: dict[str, Any] | None = None,
        ttl_seconds: int | None = None,
    ) -> Claim | Conflict:
        """Claim generation `generation` of `pk` if the item is still as `seen`.

        Returns the Claim, or a Conflict with the item as it is now when another writer
        changed it first. `attributes` (run parameters, digests, trigger details) are stored
        with the claim; `previous_run` is appended to `previous_runs` (history of
        re-uploads/retrains); `ttl_seconds` (default None: kept forever) sets `expires_at`.
        """
        now = self.now()
        claim_id = uuid.uuid4().hex
        expr = _Expression()
        expr.set("status", STATUS_STARTING)
        expr.set("claim_id", claim_id)
        expr.set("lease_until", now + self.lease_seconds)
        expr.set("claimed_at", now)
        expr.set("generation", generation)
        for attribute, value in attributes.items():
            expr.set(attribute, value)
        rev = expr.name("revision")
        expr.set_raw(f"{rev} = if_not_exists({rev}, {expr.value(0)}) + {expr.value(1)}")
        if previous_run is not None:
            runs = expr.name("previous_runs")
            expr.set_raw(
                f"{runs} = list_append(if_not_exists({runs}, {expr.value([])}), "
                f"{expr.value([previous_run])})"
            )
        if ttl_seconds is not None:
            expr.set(TTL_ATTRIBUTE, now + ttl_seconds)
        expr.remove("execution_arn")
        expr.remove("started_at")
        if seen is None or "revision" not in seen:
            condition = f"attribute_not_exists({rev})"
        else:
            condition = f"{rev} = {expr.value(seen['revision'])}"
        request = expr.request(pk, condition)
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        claim = Claim(pk=pk, claim_id=claim_id, generation=generation)
        try:
            self.table.update_item(**request)
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            current = self._refused_item(pk, error)
            # botocore re-sent a claim whose first attempt was applied (response lost).
            if current is not None and current.get("claim_id") == claim_id:
                return claim
            return Conflict(current)
        return claim

    def mark_started(self, claim: Claim, execution_arn: str, started_at: int) -> bool:
        """Record the started execution (`started_at` in epoch seconds); False if the claim
        was taken over meanwhile."""
        expr = _Expression()
        expr.set("status", STATUS_STARTED)
        expr.set("execution_arn", execution_arn)
        expr.set("started_at", started_at)
        rev = expr.name("revision")
        expr.set_raw(f"{rev} = {rev} + {expr.value(1)}")
        expr.remove("lease_until")
        claim_name = expr.name("claim_id")
        expr.removes.append(claim_name)
        condition = f"{claim_name} = {expr.value(claim.claim_id)}"
        request = expr.request(claim.pk, condition)
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            self.table.update_item(**request)
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            current = self._refused_item(claim.pk, error)
            # A re-sent write whose first attempt was applied (response lost) is no takeover.
            return bool(
                current
                and current.get("status") == STATUS_STARTED
                and current.get("execution_arn") == execution_arn
                and current.get("generation") == claim.generation
            )
        return True

    def release(self, claim: Claim) -> None:
        """Give up a claim after a failed start, so the retry need not wait for the lease."""
        expr = _Expression()
        expr.set("lease_until", 0)
        rev = expr.name("revision")
        expr.set_raw(f"{rev} = {rev} + {expr.value(1)}")
        condition = f"{expr.name('claim_id')} = {expr.value(claim.claim_id)}"
        try:
            self.table.update_item(**expr.request(claim.pk, condition))
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise

    def schedule_check(self, pk: str, due_at: int, attributes: dict[str, Any]) -> None:
        """Note that a quiet-period check is due at `due_at` (creates an OPEN item if new)."""
        expr = _Expression()
        expr.set("check_due_at", due_at)
        for attribute, value in {"status": STATUS_OPEN, **attributes}.items():
            name = expr.name(attribute)
            expr.set_raw(f"{name} = if_not_exists({name}, {expr.value(value)})")
        self.table.update_item(**expr.request(pk, None))

    def record_latest_version(
        self, dataset: str, attributes: dict[str, Any], started_at: int
    ) -> None:
        """Point `LATEST` and `LATEST#<dataset>` at a version started at `started_at` (epoch
        seconds); `attributes` must include `dataset_version`.

        Never backwards: a pointer moves only to a later (`started_at`, `dataset_version`), so
        re-applying it (a re-delivery after a failed write) is harmless.
        """
        for pk in (latest_key(), latest_key(dataset)):
            expr = _Expression()
            for attribute, value in attributes.items():
                expr.set(attribute, value)
            stamp = expr.name("version_started_at")
            stamp_value = expr.value(started_at)
            expr.set_raw(f"{stamp} = {stamp_value}")
            version = expr.name("dataset_version")
            version_value = expr.value(attributes["dataset_version"])
            condition = (
                f"attribute_not_exists({stamp}) OR {stamp} < {stamp_value} OR "
                f"({stamp} = {stamp_value} AND {version} <= {version_value})"
            )
            self._update_unless_newer(pk, expr, condition)

    def record_run(self, execution_arn: str, trigger: str, started_at: int) -> None:
        """Remember the newest run of any kind on `LATEST` (the alarm cooldown reads it).

        `started_at` is the run's start (epoch seconds); like the version pointer, this only
        moves forward, so re-applying it is harmless.
        """
        expr = _Expression()
        expr.set("last_run_execution_arn", execution_arn)
        expr.set("last_run_trigger", trigger)
        stamp = expr.name("last_run_started_at")
        stamp_value = expr.value(started_at)
        expr.set_raw(f"{stamp} = {stamp_value}")
        arn = expr.name("last_run_execution_arn")
        condition = (
            f"attribute_not_exists({stamp}) OR {stamp} < {stamp_value} OR "
            f"({stamp} = {stamp_value} AND {arn} <= {expr.value(execution_arn)})"
        )
        self._update_unless_newer(LATEST_KEY, expr, condition)

    def _update_unless_newer(self, pk: str, expr: _Expression, condition: str) -> None:
        try:
            self.table.update_item(**expr.request(pk, condition))
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
