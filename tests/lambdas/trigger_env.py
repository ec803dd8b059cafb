"""The data-landing trigger's test world: S3, DynamoDB, SQS and SageMaker in moto, a fake
clock, the events AWS sends, and helpers to read what the trigger did. Shared by the
trigger's test modules (tests/lambdas/conftest.py registers the `env` and `lambda_env`
fixtures).

Time is a fake clock aligned with the wall clock, because moto stamps S3 objects with real
time.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.sqs.models import sqs_backends

from tests.faults import Clock
from tests.lambda_loader import load_lambda_module
from tests.lambdas.s3_eventbridge import object_created

trigger_module = load_lambda_module("start_training", "dataset_trigger")
completion = load_lambda_module("start_training", "dataset_completion")
ledger_module = load_lambda_module("start_training", "dataset_ledger")
handler = load_lambda_module("start_training")

Kind = trigger_module.Kind
REGION = "eu-west-1"
PARTITION = "aws"
ACCOUNT = "123456789012"
BUCKET = "mlops-dev-data"
ARTIFACTS = "mlops-dev-artifacts"
OTHER_BUCKET = "someone-elses-bucket"
PIPELINE = "mlops-dev-training"
TABLE = "mlops-dev-ledger"
QUEUE = "mlops-dev-landing"
DLQ = "mlops-dev-landing-dlq"
MAX_RECEIVE_COUNT = 3
VERSION_PREFIX = "landing/sales/2024-06-01/"
# One session for all tests: it caches the parsed service models (moto resets the default one).
SESSION = boto3.session.Session(region_name=REGION)


@dataclass
class Env:
    s3: Any
    sqs: Any
    sagemaker: Any
    table: Any
    queue_url: str
    dlq_url: str
    clock: Clock = field(default_factory=Clock)


@pytest.fixture()
def env(aws_credentials: None) -> Iterator[Env]:
    # Powertools keeps metrics in a store shared by every Metrics object: a test that handled
    # events without the handler's flush would leave its counts to the next test's flush.
    handler.metrics.clear_metrics()
    with mock_aws():
        s3 = SESSION.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket=ARTIFACTS, CreateBucketConfiguration={"LocationConstraint": REGION})
        dynamodb = SESSION.resource("dynamodb")
        table = dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = SESSION.client("sqs")
        dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName=QUEUE,
            Attributes={
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
                )
            },
        )["QueueUrl"]
        sagemaker = SESSION.client("sagemaker")
        sagemaker.create_pipeline(
            PipelineName=PIPELINE,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
        )
        yield Env(s3, sqs, sagemaker, table, queue_url, dlq_url)


class ServingStack:
    """The Serving stack as DescribeStacks answers for it (botocore validates every request and
    answer): `serve(arn)` as after a deploy, `status` any StackStatus, `deployed` False for a
    stack that does not exist. `client` is the CloudFormation client to give the trigger."""

    NAME = "mlops-dev-serving"

    def __init__(self) -> None:
        self.client = SESSION.client("cloudformation")
        self.stubber = Stubber(self.client)
        self.parameter = ""
        self.status = "CREATE_COMPLETE"
        self.deployed = True
        self.calls = 0
        # Queue the answer for the state as it is when the call is made (before the Stubber
        # checks its queue, on the next event of the call).
        self.client.meta.events.register(
            "provide-client-params.cloudformation.DescribeStacks", self._answer
        )
        self.stubber.activate()

    def serve(self, arn: str, status: str = "UPDATE_COMPLETE") -> None:
        self.parameter, self.status = arn, status

    def _answer(self, **_: Any) -> None:
        self.calls += 1
        expected = {"StackName": self.NAME}
        if not self.deployed:
            self.stubber.add_client_error(
                "describe_stacks",
                service_error_code="ValidationError",
                service_message=f"Stack with id {self.NAME} does not exist",
                http_status_code=400,
                expected_params=expected,
            )
            return
        stack = {
            "StackName": self.NAME,
            "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self.NAME}/0f1e2d3c",
            "CreationTime": datetime(2024, 6, 1, tzinfo=UTC),
            "StackStatus": self.status,
            "Parameters": [{"ParameterKey": "ModelPackageArn", "ParameterValue": self.parameter}],
        }
        self.stubber.add_response("describe_stacks", {"Stacks": [stack]}, expected)


def make_trigger(
    env: Env,
    *,
    sagemaker: Any = None,
    s3: Any = None,
    cloudformation: Any = None,
    lookup_workers: int = 4,
    **overrides: Any,
) -> Any:
    overrides.setdefault("max_concurrent_executions", 10)
    config = trigger_module.TriggerConfig(
        pipeline_name=PIPELINE,
        ledger_table=TABLE,
        data_bucket=BUCKET,
        queue_url=env.queue_url,
        manifest_bucket=ARTIFACTS,
        **overrides,
    )
    trigger = trigger_module.DatasetTrigger(
        config,
        s3=s3 or env.s3,
        sagemaker=sagemaker or env.sagemaker,
        sqs=env.sqs,
        table=env.table,
        cloudformation=cloudformation,
        clock=env.clock,
        lookup_workers=lookup_workers,
    )
    trigger.begin_invocation()
    return trigger


def object_event(
    key: str,
    *,
    size: int,
    etag: str = "d41d8cd98f00b204e9800998ecf8427e",
    version_id: str | None = "v1",
    when: float | None = None,
    bucket: str = BUCKET,
    sequencer: str = "0065A1B2C3D4E5F601",
) -> dict[str, Any]:
    """The `Object Created` event EventBridge delivers for one object (the key as it is)."""
    stamp = time.gmtime(when if when is not None else time.time())
    return object_created(
        key,
        bucket=bucket,
        size=size,
        etag=etag,
        version_id=version_id,
        sequencer=sequencer,
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", stamp),
        account=ACCOUNT,
        region=REGION,
    )


def land(
    env: Env, key: str, body: bytes = b"a,b\n1,2\n", *, client: Any = None, **put: Any
) -> dict[str, Any]:
    """Put an object (with `client`, default env.s3) and return the event S3 would send."""
    response = (client or env.s3).put_object(Bucket=BUCKET, Key=key, Body=body, **put)
    return uploaded_event(env, key, len(body), response)


def uploaded_event(env: Env, key: str, size: int, response: dict[str, Any]) -> dict[str, Any]:
    """The event S3 sends for an object whose upload answered `response` (Put/Complete)."""
    return object_event(
        key,
        size=size,
        etag=response["ETag"].strip('"'),
        version_id=response.get("VersionId"),
        when=env.clock(),
        sequencer=f"{int(env.clock() * 1e6):020X}",
    )


def land_version(
    env: Env,
    prefix: str = VERSION_PREFIX,
    files: int = 3,
    marker: str | None = "_SUCCESS",
    *,
    client: Any = None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    data = [
        land(env, f"{prefix}part-{i:04d}.csv", f"x,y\n{i},{i}\n".encode(), client=client)
        for i in range(files)
    ]
    return data, (land(env, prefix + marker, b"") if marker else None)


def executions(env: Env) -> list[dict[str, Any]]:
    return env.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)[
        "PipelineExecutionSummaries"
    ]


def parameters_of(env: Env, arn: str) -> dict[str, str]:
    listed = env.sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    return {p["Name"]: p["Value"] for p in listed["PipelineParameters"]}


def set_execution_status(arn: str, status: str) -> None:
    """moto reports every execution Succeeded at once; tests need running ones."""
    pipeline = sagemaker_backends[ACCOUNT][REGION].pipelines[PIPELINE]
    pipeline.pipeline_executions[arn].pipeline_execution_status = status


def take_queued(env: Env) -> list[SimpleNamespace]:
    """Remove and return every message in the main queue, delayed ones included."""
    queue = sqs_backends[ACCOUNT][REGION].queues[QUEUE]
    taken = []
    for message in list(queue._messages):
        delay = max(0.0, (message.delayed_until - time.time() * 1000) / 1000)
        attributes = {
            name: value.get("StringValue", value.get("string_value"))
            for name, value in message.message_attributes.items()
        }
        taken.append(SimpleNamespace(body=message.body, delay=round(delay), attributes=attributes))
    queue._messages.clear()
    return taken


def stamp(key: str, when: float) -> None:
    """Set an object's LastModified (moto stamps real time; the tests run on a fake clock)."""
    bucket = s3_backends[ACCOUNT][PARTITION].buckets[BUCKET]
    bucket.keys.getlist(key)[-1].last_modified = datetime.fromtimestamp(when, UTC).replace(
        tzinfo=None
    )


def ledger_item(env: Env, pk: str) -> dict[str, Any] | None:
    return env.table.get_item(Key={"pk": pk}, ConsistentRead=True).get("Item")


def stored(env: Env, pk: str) -> dict[str, Any]:
    """A ledger item that must exist."""
    item = ledger_item(env, pk)
    assert item is not None, f"no ledger item {pk}"
    return item


def metrics_out(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The CloudWatch EMF documents printed so far."""
    lines = capsys.readouterr().out.splitlines()
    return [doc for doc in map(json.loads, filter(None, lines)) if "_aws" in doc]


def version_manifest_of(env: Env, digest: str) -> dict[str, Any]:
    body = env.s3.get_object(Bucket=ARTIFACTS, Key=f"dataset-manifests/{digest}.json")["Body"]
    document: dict[str, Any] = json.loads(body.read())
    return document


def handle(trigger: Any, message: Any) -> Any:
    return trigger.handle_sqs_body(json.dumps(message))


def reupload(env: Env) -> dict[str, Any]:
    env.clock.advance(60)
    land(env, VERSION_PREFIX + "part-0000.csv", b"x,y\n100,100\n")
    return land(env, VERSION_PREFIX + "_SUCCESS", b"")


def race_before_claim(trigger: Any, monkeypatch: pytest.MonkeyPatch, rival: Any) -> None:
    """Run `rival()` (another invocation) after `trigger` read the ledger item and before its
    conditional claim: the window in which two workers can both decide to start a run."""
    claim = trigger.ledger.claim

    def claim_after_rival(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(trigger.ledger, "claim", claim)
        rival()
        return claim(*args, **kwargs)

    monkeypatch.setattr(trigger.ledger, "claim", claim_after_rival)


def retrain_request(when: str = "2024-06-02T03:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"action": "retrain-latest", "reason": "schedule", "scheduled_time": when, **extra}


def alarm_event(state: str = "ALARM", name: str = "mlops-dev-feature-drift") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2024-06-02T03:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {"value": state, "reason": "Threshold Crossed", "timestamp": "2024-06-02"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2024-06-01"},
            "configuration": {"metrics": []},
        },
    }


def rerun_request(
    dataset_version: str = "sales/v1", request_id: str = "ticket-42", **extra: Any
) -> dict[str, Any]:
    return {
        "action": "retrain-version",
        "dataset_version": dataset_version,
        "reason": "manual",
        "request_id": request_id,
        **extra,
    }


@dataclass
class LambdaContext:
    function_name: str = "start-training"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:start-training"
    aws_request_id: str = "0f4c0c54-1e33-4c35-a2a4-8e9d7c0e8d62"


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}",
                "awsRegion": REGION,
            }
            for i, body in enumerate(bodies)
        ]
    }


@pytest.fixture()
def lambda_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """`env` with the Lambda's environment set, for tests that go through `handler`."""
    for name, value in {
        "PIPELINE_NAME": PIPELINE,
        "LEDGER_TABLE": TABLE,
        "DATA_BUCKET": BUCKET,
        "QUEUE_URL": env.queue_url,
        "MAX_CONCURRENT_EXECUTIONS": "5",
        "MANIFEST_BUCKET": ARTIFACTS,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(handler, "boto3", SESSION)  # reuse parsed service models: faster
    monkeypatch.setattr(handler, "clock", env.clock)  # the handler's trigger runs on env's clock
    handler.get_trigger.cache_clear()
    yield env
    handler.get_trigger.cache_clear()


def run_event_source_mapping(env: Env, rounds: int) -> list[dict[str, Any]]:
    """Receive/handle/delete like Lambda's SQS event source with ReportBatchItemFailures."""
    responses = []
    for _ in range(rounds):
        received = env.sqs.receive_message(
            QueueUrl=env.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
            AttributeNames=["All"],
        ).get("Messages", [])  # fmt: skip
        if not received:
            continue
        event = sqs_event(*(m["Body"] for m in received))
        for record, message in zip(event["Records"], received, strict=True):
            record["messageId"] = message["MessageId"]
        response = handler.lambda_handler(event, LambdaContext())
        responses.append(response)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in received:
            if message["MessageId"] not in failed:
                env.sqs.delete_message(
                    QueueUrl=env.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
    return responses
