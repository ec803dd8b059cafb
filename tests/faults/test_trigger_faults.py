"""The data-landing trigger under AWS faults: no dataset version lost, none started twice.

The documented outcome (dataset_trigger's "Retries"): an AWS error fails the SQS record, which
Lambda's event source returns to the queue (ReportBatchItemFailures); the re-delivery after
the visibility timeout finishes the job; after maxReceiveCount failed deliveries the message
sits in the DLQ, and a redrive after the outage starts the version exactly once. Throttling,
5xx and network errors are first retried in-process by botocore (standard mode).

State lives in moto (S3, DynamoDB ledger, SQS queue + DLQ, SageMaker pipeline); faults are
injected below botocore's retry loop (tests.faults.FaultInjector). SageMaker runs a
ClientRequestToken at most once, which moto does not model, so "started once" means: every
execution moto recorded carries the one token the ledger holds for the version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends
from moto.sqs.models import sqs_backends

from tests.faults import (
    ACCESS_DENIED,
    ALL_FAULTS,
    READ_TIMEOUT,
    THROTTLED,
    Clock,
    Fault,
    FaultInjector,
)
from tests.lambda_loader import load_lambda_module
from tests.lambdas.s3_eventbridge import object_created
from tests.lambdas.trigger_env import LambdaContext, alarm_event, retrain_request

handler = load_lambda_module("start_training")

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "mlops-dev-data"
ARTIFACTS = "mlops-dev-artifacts"
PIPELINE = "mlops-dev-training"
TABLE = "mlops-dev-ledger"
QUEUE = "mlops-dev-landing"
MAX_RECEIVE_COUNT = 3
# As the Training stack wires it: Lambda timeout < claim lease < SQS visibility timeout.
LEASE_SECONDS = 180
VISIBILITY_TIMEOUT_SECONDS = 360
DATASET_VERSION = "sales/2024-06-01"
PREFIX = f"landing/{DATASET_VERSION}/"
VERSION_KEY = f"VERSION#{DATASET_VERSION}"
SESSION = boto3.session.Session(
    region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
)


class WarmBoto3:
    """Stands in for the handler's `boto3` module. Building clients dominates a moto test, so
    each service's client is built once (with the config the handler passes) and reused, like
    a warm Lambda environment; each has a FaultInjector, reset before every test."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.faults: dict[str, FaultInjector] = {}

    def client(self, service: str, config: Any = None) -> Any:
        if service not in self.objects:
            self.objects[service] = SESSION.client(service, config=config)
            self.faults[service] = FaultInjector(self.objects[service])
        return self.objects[service]

    def resource(self, service: str, config: Any = None) -> Any:
        if service not in self.objects:
            self.objects[service] = SESSION.resource(service, config=config)
            self.faults[service] = FaultInjector(self.objects[service].meta.client)
        return self.objects[service]


WARM_BOTO3 = WarmBoto3()
# The test's own view of the moto state, outside the handler.
OBSERVER = {
    "s3": SESSION.client("s3"),
    "sqs": SESSION.client("sqs"),
    "sagemaker": SESSION.client("sagemaker"),
    "dynamodb": SESSION.resource("dynamodb"),
}


@dataclass
class World:
    """moto state, the handler's trigger with a fault injector per client, and a clock."""

    s3: Any
    sqs: Any
    sagemaker: Any
    table: Any
    queue_url: str
    dlq_url: str
    clock: Clock
    faults: dict[str, FaultInjector]


@pytest.fixture()
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with mock_aws():
        s3, sqs, sagemaker = OBSERVER["s3"], OBSERVER["sqs"], OBSERVER["sagemaker"]
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket=ARTIFACTS, CreateBucketConfiguration={"LocationConstraint": REGION})
        table = OBSERVER["dynamodb"].create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dlq_url = sqs.create_queue(QueueName=f"{QUEUE}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName=QUEUE,
            Attributes={
                "VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
                ),
            },
        )["QueueUrl"]
        sagemaker.create_pipeline(
            PipelineName=PIPELINE,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
        )
        for name, value in {
            "PIPELINE_NAME": PIPELINE,
            "LEDGER_TABLE": TABLE,
            "DATA_BUCKET": BUCKET,
            "QUEUE_URL": queue_url,
            "MAX_CONCURRENT_EXECUTIONS": "5",
            "LEASE_SECONDS": str(LEASE_SECONDS),
            "MANIFEST_BUCKET": ARTIFACTS,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(handler, "boto3", WARM_BOTO3)
        world = World(s3, sqs, sagemaker, table, queue_url, dlq_url, Clock(), WARM_BOTO3.faults)
        monkeypatch.setattr(handler, "clock", world.clock)
        # Checksum lookups in order, so that "the n-th HeadObject" is one call.
        monkeypatch.setattr(handler, "LOOKUP_WORKERS", 1)
        rebuild_trigger(world)
        yield world
        handler.get_trigger.cache_clear()


def rebuild_trigger(world: World) -> None:
    """A cold start: the handler builds its trigger afresh from the environment (on the
    world's clock, handler.clock); the fault injectors start with nothing planned."""
    handler.get_trigger.cache_clear()
    handler.get_trigger()
    for injector in WARM_BOTO3.faults.values():
        injector.reset()


# ---- helpers -----------------------------------------------------------------------------------


def object_event(key: str, size: int, etag: str, version_id: str | None, when: float) -> dict:
    """The EventBridge `Object Created` event S3 sends for one object (the key as it is)."""
    return object_created(
        key,
        bucket=BUCKET,
        size=size,
        etag=etag,
        version_id=version_id,
        sequencer=f"{int(when * 1e6):020X}",
        time="2024-06-01T10:00:00Z",
        account=ACCOUNT,
        region=REGION,
    )


def land(world: World, key: str, body: bytes) -> dict[str, Any]:
    response = world.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return object_event(
        key, len(body), response["ETag"].strip('"'), response.get("VersionId"), world.clock()
    )


def land_version(world: World, prefix: str = PREFIX) -> dict[str, Any]:
    """Three data files and `_SUCCESS`; the marker's event goes to the queue as EventBridge
    would send it. Returns the marker event."""
    for i in range(3):
        land(world, f"{prefix}part-{i:04d}.csv", f"x,y\n{i},{i}\n".encode())
    marker = land(world, f"{prefix}_SUCCESS", b"")
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody=json.dumps(marker))
    return marker


def deliver(world: World) -> tuple[list[str], list[str]]:
    """One poll of Lambda's SQS event source with ReportBatchItemFailures: receive a batch,
    invoke the handler, delete what it did not report as failed. Failed records come back
    after the visibility timeout, which the clock skips. Returns (received, failed) ids."""
    received = world.sqs.receive_message(
        QueueUrl=world.queue_url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    if not received:
        return [], []
    event = {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "dataType": value["DataType"],
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}",
                "awsRegion": REGION,
            }
            for message in received
        ]
    }
    response = handler.lambda_handler(event, LambdaContext())
    failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    for message in received:
        if message["MessageId"] not in failed:
            world.sqs.delete_message(
                QueueUrl=world.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    if failed:
        world.clock.advance(VISIBILITY_TIMEOUT_SECONDS + 1)
    return [message["MessageId"] for message in received], failed


def ledger_item(world: World, pk: str = VERSION_KEY) -> dict[str, Any] | None:
    return world.table.get_item(Key={"pk": pk}, ConsistentRead=True).get("Item")


def runs_by_token(world: World) -> dict[str, list[str]]:
    """Execution ARNs moto recorded, grouped by ClientRequestToken (one run per token)."""
    pipeline = sagemaker_backends[ACCOUNT][REGION].pipelines[PIPELINE]
    runs: dict[str, list[str]] = {}
    for arn, execution in pipeline.pipeline_executions.items():
        runs.setdefault(execution.client_request_token, []).append(arn)
    return runs


def queue_depth(world: World, url: str) -> int:
    attributes = world.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def assert_started_exactly_once(world: World) -> dict[str, Any]:
    """The version is STARTED in generation 1, with exactly one run, and no message is left."""
    item = ledger_item(world)
    assert item is not None and item["status"] == "STARTED", item
    assert item["generation"] == 1
    runs = runs_by_token(world)
    assert list(runs) == [item["client_request_token"]], runs
    assert item["execution_arn"] in runs[item["client_request_token"]]
    assert queue_depth(world, world.queue_url) == 0
    assert queue_depth(world, world.dlq_url) == 0
    return item


# ---- one AWS call fails once: the record is retried and the version starts once ----------------


@dataclass(frozen=True)
class Step:
    """The `call`-th call of `operation` on `service` while a marker completes a version."""

    name: str
    service: str
    operation: str
    call: int = 1


READ_LEDGER = Step("read-ledger", "dynamodb", "GetItem")
LIST_VERSION = Step("list-version", "s3", "ListObjectVersions")
IDENTIFY = Step("identify-content", "s3", "HeadObject", 2)
WRITE_MANIFEST = Step("write-version-manifest", "s3", "PutObject")
COUNT_RUNNING = Step("count-running", "sagemaker", "ListPipelineExecutions")
CLAIM = Step("claim-version", "dynamodb", "UpdateItem", 1)
START = Step("start-execution", "sagemaker", "StartPipelineExecution")
MARK_STARTED = Step("record-execution", "dynamodb", "UpdateItem", 2)
POINT_LATEST = Step("point-latest", "dynamodb", "UpdateItem", 3)
STEPS = (
    READ_LEDGER,
    LIST_VERSION,
    IDENTIFY,
    COUNT_RUNNING,
    WRITE_MANIFEST,
    CLAIM,
    START,
    MARK_STARTED,
)

ONE_FAILED_CALL = [
    pytest.param(step, fault, id=f"{step.name}-{fault.kind}")
    for step in STEPS
    for fault in ALL_FAULTS
]


@pytest.mark.parametrize(("step", "fault"), ONE_FAILED_CALL)
def test_failed_call_fails_the_record_and_the_redelivery_starts_the_version_once(
    world: World, step: Step, fault: Fault
) -> None:
    injector = world.faults[step.service]
    injector.fail(step.operation, fault, call=step.call)
    land_version(world)

    [message], failed = deliver(world)
    assert failed == [message]  # reported for re-delivery, not acknowledged
    # Throttling, 5xx and network errors were retried in-process first; the rest were not.
    assert injector.faulted[step.operation] == injector.expected_attempts(fault)
    item = ledger_item(world)
    assert item is None or item["status"] != "STARTED"
    # A faulted request never reached SageMaker; only a failure after the start leaves a run.
    assert len(runs_by_token(world)) == (1 if step is MARK_STARTED else 0)

    redelivered, failed = deliver(world)
    assert (redelivered, failed) == ([message], [])
    assert_started_exactly_once(world)


# ---- a transient fault that botocore's own retry gets past -------------------------------------

TRANSIENT = [pytest.param(step, THROTTLED, id=f"{step.name}-throttled-once") for step in STEPS] + [
    pytest.param(step, READ_TIMEOUT.after_processing(), id=f"{step.name}-response-lost-once")
    for step in STEPS
]


@pytest.mark.parametrize(("step", "fault"), TRANSIENT)
def test_transient_fault_is_retried_in_process_and_the_version_starts_once(
    world: World, step: Step, fault: Fault
) -> None:
    injector = world.faults[step.service]
    injector.fail(step.operation, fault, call=step.call, attempts=1)
    land_version(world)

    [message], failed = deliver(world)

    assert failed == []
    assert injector.faulted[step.operation] == 1
    assert_started_exactly_once(world)


def test_claim_applied_but_its_response_lost_is_recognised_as_this_workers_claim(
    world: World,
) -> None:
    """DynamoDB applied the claim, the response was lost, botocore re-sent the conditional
    write and it failed its condition: the refusal shows this worker's own claim_id, so the
    worker starts the version instead of taking it for a rival's claim (which would leave it
    STARTING with no message left to start it)."""
    dynamodb = world.faults["dynamodb"]
    dynamodb.fail(CLAIM.operation, READ_TIMEOUT.after_processing(), call=CLAIM.call, attempts=1)
    land_version(world)

    [message], failed = deliver(world)

    assert failed == []
    item = assert_started_exactly_once(world)
    # claim applied + its re-sent attempt, then mark_started, 2 LATEST pointers, newest run
    assert dynamodb.attempts[CLAIM.operation] == 6
    assert item["revision"] == 2  # claimed once, started once: the re-sent claim changed nothing
    latest = ledger_item(world, "LATEST")
    assert latest is not None and latest["execution_arn"] == item["execution_arn"]


# ---- the fault persists: the DLQ holds the event, a redrive starts the version once ------------

PERSISTENT = [
    pytest.param(step, fault, id=f"{step.name}-{fault.kind}")
    for step in (LIST_VERSION, IDENTIFY, WRITE_MANIFEST, CLAIM, START, MARK_STARTED)
    for fault in (ACCESS_DENIED, THROTTLED, READ_TIMEOUT)
]


@pytest.mark.parametrize(("step", "fault"), PERSISTENT)
def test_persistent_fault_moves_the_event_to_the_dlq_and_a_redrive_starts_it_once(
    world: World, step: Step, fault: Fault
) -> None:
    injector = world.faults[step.service]
    injector.fail(step.operation, fault, call=step.call, persistent=True)
    marker = land_version(world)

    for _ in range(MAX_RECEIVE_COUNT):
        received, failed = deliver(world)
        assert len(received) == 1 and failed == received
    assert deliver(world) == ([], [])  # the next receive moved it to the DLQ
    dead = world.sqs.receive_message(QueueUrl=world.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in dead] == [marker]
    item = ledger_item(world)
    assert item is None or item["status"] != "STARTED"
    # Nothing ran yet, or (record-execution) the one run under the version's token.
    assert len(runs_by_token(world)) == (1 if step is MARK_STARTED else 0)

    injector.heal()  # the outage is over: the operator redrives the DLQ
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody=dead[0]["Body"])
    world.sqs.delete_message(QueueUrl=world.dlq_url, ReceiptHandle=dead[0]["ReceiptHandle"])
    assert deliver(world)[1] == []
    assert_started_exactly_once(world)


# ---- bookkeeping after the start ------------------------------------------------------------


@pytest.mark.parametrize("fault", [ACCESS_DENIED, READ_TIMEOUT], ids=lambda f: f.kind)
def test_failed_latest_pointer_update_is_repaired_by_the_redelivery(
    world: World, fault: Fault
) -> None:
    world.faults["dynamodb"].fail(POINT_LATEST.operation, fault, call=POINT_LATEST.call)
    land_version(world)

    assert deliver(world)[1] != []
    assert deliver(world)[1] == []

    item = assert_started_exactly_once(world)
    for pk in ("LATEST", "LATEST#sales"):
        latest = ledger_item(world, pk)
        assert latest is not None and latest["dataset_version"] == DATASET_VERSION
        assert latest["execution_arn"] == item["execution_arn"]
        assert latest["version_started_at"] == item["started_at"]
    latest = ledger_item(world, "LATEST")
    assert latest is not None
    assert latest.get("last_run_execution_arn") == item["execution_arn"]
    assert latest["last_run_started_at"] == item["started_at"]


# ---- deferral at the concurrency cap ---------------------------------------------------------


@pytest.mark.parametrize("fault", [ACCESS_DENIED, THROTTLED, READ_TIMEOUT], ids=lambda f: f.kind)
def test_failed_requeue_at_the_concurrency_cap_keeps_the_event_in_the_queue(
    world: World, monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    running = world.sagemaker.start_pipeline_execution(
        PipelineName=PIPELINE, ClientRequestToken="x" * 32
    )["PipelineExecutionArn"]
    pipeline = sagemaker_backends[ACCOUNT][REGION].pipelines[PIPELINE]
    pipeline.pipeline_executions[running].pipeline_execution_status = "Executing"
    monkeypatch.setenv("MAX_CONCURRENT_EXECUTIONS", "1")
    rebuild_trigger(world)
    world.faults["sqs"].fail("SendMessage", fault)
    land_version(world)

    [message], failed = deliver(world)
    assert failed == [message]  # the deferral could not be queued: the original stays
    pipeline.pipeline_executions[running].pipeline_execution_status = "Succeeded"
    assert deliver(world)[1] == []

    item = ledger_item(world)
    assert item is not None and item["status"] == "STARTED"
    assert set(runs_by_token(world)) == {"x" * 32, item["client_request_token"]}
    assert queue_depth(world, world.queue_url) == queue_depth(world, world.dlq_url) == 0


# ---- direct invocations (Scheduler, alarms) ---------------------------------------------------


RETRAIN_KEY = "RETRAIN#schedule#2024-06-02T03:00:00Z"


@pytest.mark.parametrize("fault", [ACCESS_DENIED, READ_TIMEOUT], ids=lambda f: f.kind)
def test_direct_request_whose_handover_to_the_queue_fails_raises_for_the_invoker_to_retry(
    world: World, fault: Fault
) -> None:
    land_version(world)
    assert deliver(world)[1] == []  # the version starts; LATEST points at it
    world.faults["sagemaker"].fail("StartPipelineExecution", ACCESS_DENIED)
    world.faults["sqs"].fail("SendMessage", fault)

    with pytest.raises((ClientError, BotoCoreError)):
        handler.lambda_handler(retrain_request(), LambdaContext())

    # EventBridge Scheduler retries the failed invocation (its retry policy + DLQ).
    result = handler.lambda_handler(retrain_request(), LambdaContext())
    assert (result["outcome"], result["trigger"]) == ("started", "schedule")
    assert len(runs_by_token(world)) == 2  # the data run and one retrain


def test_retrain_claim_applied_but_its_response_lost_starts_the_retrain_once(
    world: World,
) -> None:
    land_version(world)
    assert deliver(world)[1] == []
    world.faults["dynamodb"].fail("UpdateItem", READ_TIMEOUT.after_processing(), attempts=1)

    result = handler.lambda_handler(retrain_request(), LambdaContext())

    assert (result["outcome"], result["trigger"]) == ("started", "schedule")
    item = ledger_item(world, RETRAIN_KEY)
    assert item is not None and item["status"] == "STARTED"
    assert item["execution_arn"] == result["execution_arn"]
    assert len(runs_by_token(world)) == 2  # the data run and the retrain
    assert queue_depth(world, world.queue_url) == queue_depth(world, world.dlq_url) == 0


def release_delayed(world: World) -> None:
    """Make the queue's delayed messages receivable (moto delays on the wall clock)."""
    for message in sqs_backends[ACCOUNT][REGION].queues[QUEUE]._messages:
        message.delayed_until = 0


RECORD_RETRAIN_RUN = Step("record-run", "dynamodb", "UpdateItem", 3)  # claim, started, run


@pytest.mark.parametrize("fault", [ACCESS_DENIED, READ_TIMEOUT], ids=lambda f: f.kind)
@pytest.mark.parametrize("request_kind", ["retrain-latest", "alarm"])
def test_failed_newest_run_record_of_a_retrain_is_repaired_by_the_redelivery(
    world: World, monkeypatch: pytest.MonkeyPatch, fault: Fault, request_kind: str
) -> None:
    monkeypatch.setenv("RETRAIN_COOLDOWN_SECONDS", "3600")
    rebuild_trigger(world)
    land_version(world)
    assert deliver(world)[1] == []
    world.clock.advance(7200)  # the data run is out of the cooldown
    request = retrain_request() if request_kind == "retrain-latest" else alarm_event()
    world.faults["dynamodb"].fail(RECORD_RETRAIN_RUN.operation, fault, call=RECORD_RETRAIN_RUN.call)

    handed = handler.lambda_handler(request, LambdaContext())
    assert (handed["outcome"], handed["reason"]) == ("deferred", "handed-to-queue")
    release_delayed(world)
    assert deliver(world)[1] == []

    pk = RETRAIN_KEY if request_kind == "retrain-latest" else "RETRAIN#alarm"
    retrain = ledger_item(world, pk)
    assert retrain is not None and retrain["status"] == "STARTED"
    latest = ledger_item(world, "LATEST")
    assert latest is not None
    assert latest["last_run_execution_arn"] == retrain["execution_arn"]
    assert latest["last_run_started_at"] == retrain["started_at"]
    assert len(runs_by_token(world)) == 2  # the data run and one retrain
    # The alarm cooldown now sees the retrain: a new alarm starts nothing.
    world.clock.advance(60)
    again = handler.lambda_handler(alarm_event(name="mlops-dev-model-quality"), LambdaContext())
    assert (again["outcome"], again["reason"]) == ("skipped", "cooldown")
    assert len(runs_by_token(world)) == 2
