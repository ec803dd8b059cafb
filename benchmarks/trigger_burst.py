"""Burst benchmark of the data-landing trigger against in-process moto.

Feeds S3 `Object Created` events through the start-training Lambda handler in SQS batches
of 10 (as the event source mapping would) and checks the outcome users rely on: exactly one
pipeline execution per dataset version, none lost, whatever the burst looks like.

Scenarios
    burst        one version: N data objects (default 10,000) + `_SUCCESS`, events shuffled
    interleaved  V versions (default 100) of 5-50 objects, half closed by `_SUCCESS`, half by
                 `manifest.json`; all events shuffled together, ~10 % delivered twice
    quiet        COMPLETION_MODE=quiet-period: N data objects, no marker; then the delayed
                 quiet-period check messages are delivered after the quiet period

Handler time is the wall time spent inside `lambda_handler`; it includes moto's simulation of
every AWS call (moto lists a prefix by scanning the whole bucket and parses DynamoDB
expressions slowly, so this dominates), which is reported separately, together with the
number of AWS API calls per event (what the handler costs against real AWS): one HeadObject
per data object, once, when its version completes (the content identities), none per object
event. Setup (writing objects into moto) is not timed.

Usage: python benchmarks/trigger_burst.py [--objects 10000] [--versions 100] [--seed 7]
Exit status 1 if any scenario breaks the one-execution-per-version rule.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import os
import platform
import random
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "bench-data"
ARTIFACTS = "bench-artifacts"
PIPELINE = "bench-training"
TABLE = "bench-ledger"
QUEUE = "bench-landing"
BATCH_SIZE = 10

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION=REGION,
    POWERTOOLS_SERVICE_NAME="start-training-bench",
    POWERTOOLS_METRICS_NAMESPACE="Bench",
    POWERTOOLS_LOG_LEVEL="ERROR",
)
os.environ.pop("AWS_PROFILE", None)
sys.path.insert(0, str(REPO))

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.core.botocore_stubber import BotocoreStubber  # noqa: E402
from moto.s3.models import s3_backends  # noqa: E402
from moto.sqs.models import sqs_backends  # noqa: E402

from tests.lambda_loader import load_lambda_module  # noqa: E402
from tests.lambdas.s3_eventbridge import object_created  # noqa: E402

handler = load_lambda_module("start_training")
# Checksum lookups one at a time: in-process moto gains nothing from threads, and the
# "moto" share of the handler time is only meaningful for calls that do not overlap.
handler.LOOKUP_WORKERS = 1


@dataclass
class Context:
    function_name: str = "start-training"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:start-training"
    aws_request_id: str = "bench"


@dataclass
class Result:
    name: str
    events: int = 0
    batches: int = 0
    handler_seconds: float = 0.0
    failed_records: int = 0
    versions_expected: set[str] = field(default_factory=set)
    executions_by_version: Counter[str] = field(default_factory=Counter)
    extra: dict[str, Any] = field(default_factory=dict)
    api_calls: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return set(self.executions_by_version) == self.versions_expected and all(
            n == 1 for n in self.executions_by_version.values()
        )


MOTO_SECONDS = [0.0]
_process_request = BotocoreStubber.process_request


def _timed_process_request(self: BotocoreStubber, request: Any) -> Any:
    start = time.perf_counter()
    try:
        return _process_request(self, request)
    finally:
        MOTO_SECONDS[0] += time.perf_counter() - start


BotocoreStubber.process_request = _timed_process_request  # type: ignore[method-assign]
CURRENT: list[Result] = []


def count_call(model: Any, **_: Any) -> None:
    """botocore before-call hook: count the handler's AWS calls by operation."""
    if CURRENT:
        CURRENT[0].api_calls[f"{model.service_model.service_name}:{model.name}"] += 1


def create_resources(session: boto3.session.Session) -> None:
    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=ARTIFACTS, CreateBucketConfiguration={"LocationConstraint": REGION})
    session.resource("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queue_url = session.client("sqs").create_queue(QueueName=QUEUE)["QueueUrl"]
    session.client("sagemaker").create_pipeline(
        PipelineName=PIPELINE,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
    )
    os.environ.update(
        PIPELINE_NAME=PIPELINE,
        LEDGER_TABLE=TABLE,
        DATA_BUCKET=BUCKET,
        QUEUE_URL=queue_url,
        MAX_CONCURRENT_EXECUTIONS="1000",
        MANIFEST_BUCKET=ARTIFACTS,
    )


def put(key: str, body: bytes) -> dict[str, Any]:
    """Write an object straight into moto's backend (with the CRC-32 the SDKs send) and
    return its S3 EventBridge event (AWS's documented example, the key as it is)."""
    crc32 = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    obj = s3_backends[ACCOUNT]["aws"].put_object(
        BUCKET, key, body, disable_notification=True, checksum_value=crc32
    )
    obj.checksum_algorithm = "CRC32"
    event = object_created(
        key,
        bucket=BUCKET,
        size=obj.size,
        etag=obj.etag.strip('"'),
        version_id=obj.version_id,
        sequencer=f"{time.time_ns():020X}",
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        account=ACCOUNT,
        region=REGION,
    )
    event["id"] = hashlib.md5(f"{key}{obj.version_id}".encode()).hexdigest()
    return event


def sqs_event(bodies: list[str], offset: int) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{offset + i}",
                "receiptHandle": f"r{offset + i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}",
                "awsRegion": REGION,
            }
            for i, body in enumerate(bodies)
        ]
    }


def feed(result: Result, bodies: Iterable[str]) -> None:
    """Run bodies through the handler in batches; failed records are fed again later."""
    pending = list(bodies)
    context = Context()
    while pending:
        batch, pending = pending[:BATCH_SIZE], pending[BATCH_SIZE:]
        event = sqs_event(batch, result.events)
        with contextlib.redirect_stdout(io.StringIO()):  # EMF metric documents
            start = time.perf_counter()
            response = handler.lambda_handler(event, context)
            result.handler_seconds += time.perf_counter() - start
        result.events += len(batch)
        result.batches += 1
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        result.failed_records += len(failed)
        pending += [r["body"] for r in event["Records"] if r["messageId"] in failed]


def drain_queue() -> list[str]:
    """Take every message the handler queued (checks, deferrals), delays skipped."""
    queue = sqs_backends[ACCOUNT][REGION].queues[QUEUE]
    bodies = [message.body for message in queue._messages]
    queue._messages.clear()
    return bodies


def count_executions(session: boto3.session.Session, result: Result) -> None:
    sagemaker = session.client("sagemaker")
    pages = sagemaker.get_paginator("list_pipeline_executions").paginate(PipelineName=PIPELINE)
    for page in pages:
        for summary in page["PipelineExecutionSummaries"]:
            listed = sagemaker.list_pipeline_parameters_for_execution(
                PipelineExecutionArn=summary["PipelineExecutionArn"]
            )["PipelineParameters"]
            params = {p["Name"]: p["Value"] for p in listed}
            result.executions_by_version[params["DatasetVersion"]] += 1


def burst(session: boto3.session.Session, objects: int, rng: random.Random) -> Result:
    result = Result(f"burst: 1 version, {objects:,} objects + _SUCCESS")
    prefix = "landing/clicks/2024-06-01/"
    events = [put(f"{prefix}part-{i:05d}.csv", f"{i},{i % 7}\n".encode()) for i in range(objects)]
    events.append(put(prefix + "_SUCCESS", b""))
    rng.shuffle(events)
    result.versions_expected = {"clicks/2024-06-01"}
    feed(result, (json.dumps(e) for e in events))
    feed(result, drain_queue())
    return result


def interleaved(session: boto3.session.Session, versions: int, rng: random.Random) -> Result:
    result = Result(f"interleaved: {versions} versions, shuffled, ~10% duplicated")
    events = []
    for v in range(versions):
        dataset = ("orders", "stock", "ventes été")[v % 3]
        prefix = f"landing/{dataset}/v{v:03d}/"
        files = [
            (f"part-{i:03d}.csv", f"{v},{i}\n".encode() * rng.randint(1, 20))
            for i in range(rng.randint(5, 50))
        ]
        events += [put(prefix + name, body) for name, body in files]
        if v % 2:
            manifest = {"files": [{"key": name, "size": len(body)} for name, body in files]}
            events.append(put(prefix + "manifest.json", json.dumps(manifest).encode()))
        else:
            events.append(put(prefix + "_SUCCESS", b""))
        result.versions_expected.add(f"{dataset}/v{v:03d}")
    events += rng.sample(events, len(events) // 10)
    rng.shuffle(events)
    feed(result, (json.dumps(e) for e in events))
    feed(result, drain_queue())
    return result


def quiet(session: boto3.session.Session, objects: int, rng: random.Random) -> Result:
    result = Result(f"quiet-period: 1 version, {objects:,} objects, no marker")
    os.environ.update(COMPLETION_MODE="quiet-period", QUIET_PERIOD_SECONDS="300")
    handler.get_trigger.cache_clear()
    prefix = "landing/sensors/2024-06-01/"
    events = [put(f"{prefix}part-{i:05d}.csv", f"{i}\n".encode()) for i in range(objects)]
    rng.shuffle(events)
    result.versions_expected = {"sensors/2024-06-01"}
    feed(result, (json.dumps(e) for e in events))
    checks = drain_queue()
    result.extra["quiet-check messages sent"] = len(checks)
    later = time.time() + 301
    handler.clock = lambda: later  # the quiet period has passed
    feed(result, checks)
    handler.clock = time.time
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=10_000, help="objects in the burst")
    parser.add_argument("--versions", type=int, default=100, help="interleaved versions")
    parser.add_argument("--seed", type=int, default=7, help="shuffle seed")
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, moto in-process")
    all_ok = True
    for scenario, size in ((burst, args.objects), (interleaved, args.versions),
                           (quiet, args.objects)):  # fmt: skip
        with mock_aws():
            session = boto3.session.Session(region_name=REGION)
            create_resources(session)
            handler.boto3 = session  # the handler's clients: counted, and models parsed once
            handler.get_trigger.cache_clear()
            MOTO_SECONDS[0] = 0.0
            result = Result("")
            CURRENT[:] = [result]
            session.events.register("before-call", count_call)
            named = scenario(session, size, random.Random(args.seed))
            session.events.unregister("before-call", count_call)
            CURRENT.clear()
            named.api_calls, moto_seconds = result.api_calls, MOTO_SECONDS[0]
            result = named
            count_executions(session, result)
            handler.get_trigger.cache_clear()
            for name in ("COMPLETION_MODE", "QUIET_PERIOD_SECONDS"):
                os.environ.pop(name, None)
        all_ok &= result.ok
        per_event = result.handler_seconds / max(result.events, 1)
        executions = sum(result.executions_by_version.values())
        print(
            f"\n{result.name}\n"
            f"  events handled   {result.events:,} in {result.batches:,} batches "
            f"({result.failed_records} failed records re-fed)\n"
            f"  handler time     {result.handler_seconds:.2f} s total, "
            f"{per_event * 1e3:.3f} ms/event, {result.handler_seconds / result.batches * 1e3:.1f} "
            f"ms/batch\n"
            f"  executions       {executions} for {len(result.versions_expected)} versions "
            f"-> {'OK: exactly one each' if result.ok else 'FAIL'}"
        )
        calls = sum(result.api_calls.values())
        own = result.handler_seconds - moto_seconds
        print(
            f"  of which moto    {moto_seconds:.2f} s simulating AWS; handler code itself "
            f"{own / max(result.events, 1) * 1e3:.3f} ms/event\n"
            f"  AWS API calls    {calls:,} ({calls / max(result.events, 1):.3f}/event): "
            + ", ".join(f"{op} {n:,}" for op, n in result.api_calls.most_common())
        )
        for key, value in result.extra.items():
            print(f"  {key:<16} {value}")
        if not result.ok:
            extra = {v: n for v, n in result.executions_by_version.items() if n != 1}
            missing = result.versions_expected - set(result.executions_by_version)
            print(f"  wrong counts: {extra}; missing: {sorted(missing)[:10]}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
