"""Start exactly one training-pipeline execution per dataset version landing in S3.

Producer contract
    Data lands under `s3://<DATA_BUCKET>/<LANDING_PREFIX><dataset>/<version>/` (any number of
    objects, sub-folders allowed). The version is complete when

    - marker mode (COMPLETION_MODE=marker, default): `_SUCCESS` or `manifest.json` lands at the
      version root. On either marker the handler lists the prefix (ListObjectVersions: keys,
      sizes, ETags, version ids); if a `manifest.json` is present its rules apply (every
      listed file present with the listed size/ETag/SHA-256, nothing unlisted; format in
      dataset_completion). Data objects alone never start anything.
    - quiet-period mode (COMPLETION_MODE=quiet-period): markers still complete a version at
      once; otherwise the version completes when no object under its prefix is newer than
      QUIET_PERIOD_SECONDS. The first object event of a version sends a delayed "quiet-check"
      message to QUEUE_URL (delay min(quiet period, 900 s)) and stores `check_due_at` in the
      ledger, so a burst of N object events sends about one message, not N. The check lists
      the prefix and uses the newest `LastModified` as the truth (S3 lists are strongly
      consistent; events may arrive late or out of order); if the prefix is not quiet yet, it
      re-sends itself for the remaining time. The SQS batching window (<= 300 s) cannot
      express "quiet for N seconds", hence this design.

Exactly once (ledger: dataset_ledger)
    Per version: read the ledger item; complete the version (listing/manifest/digest); then a
    conditional write claims it (status STARTING + lease + claim id) before
    StartPipelineExecution; the execution ARN is recorded (STARTED). ClientRequestToken =
    sha256(pipeline, ledger key, generation) (64 hex), so a retried start of the same claim is
    the same request to SageMaker. A crash between claim and start leaves STARTING with a
    lease; the SQS re-delivery after the lease expires takes the claim over (same generation,
    same token); an event that meets another invocation's claim (when it reads the item, or
    because its own conditional claim lost the race) is re-queued rather than acknowledged,
    so a crash can never strand a version. A claim that DynamoDB applied but whose response
    was lost is recognised by its claim id when botocore re-sends it (dataset_ledger).
    Duplicate, re-delivered and late events start nothing and are logged; a marker or
    quiet-check event of a started version, and a repeated retrain request, re-apply the
    idempotent writes that follow a start (`LATEST` pointers, newest run for the alarm
    cooldown), so one that failed after the start is repaired by the re-delivery instead of
    leaving scheduled and alarm retrains on stale data (an alarm re-applies the newest run
    of `RETRAIN#alarm` before its cooldown check). A completed version whose content digest
    changes (re-upload: write the data, then the marker again) starts a new generation only
    with ALLOW_REUPLOAD=true; the decision is logged either way.

Pipeline parameters: InputDataUri (`s3://bucket/landing/<dataset>/<version>/`),
    DatasetVersion (`<dataset>/<version>`), DataDigest (see dataset_completion), and, where
    CHAMPION_PARAMETER names it (the training pipeline), the champion: the newest Approved
    package of MODEL_PACKAGE_GROUP_NAME as the run starts, or "none". Fixed at the start and
    recorded with the claim (a takeover re-sends it), it is part of the Evaluate step's cache
    key: a cached evaluation is never one against a champion that has since been replaced.

Concurrency cap (MAX_CONCURRENT_EXECUTIONS, default 2)
    Executions with status Executing or Stopping created in the last 28 days (the pipeline
    execution time limit) are counted once per invocation. At the cap (or when SageMaker
    answers ResourceLimitExceeded) the message is re-sent to QUEUE_URL with
    DelaySeconds=DEFER_SECONDS and the original is acknowledged: the version waits as long as
    needed without using up maxReceiveCount, so the DLQ only ever holds real failures. The
    cap is soft: concurrent Lambda invocations can each see one free slot (bound it with the
    event source's maximum concurrency).

Retries
    AWS errors raise, so the SQS record is reported as a batch item failure and re-delivered
    after the visibility timeout (the clients also retry throttling in-process, standard
    mode); after maxReceiveCount the message moves to the DLQ. Bad events (foreign bucket or
    prefix, zero-byte objects, folder placeholders, malformed JSON, not an S3 event, malformed
    or unsatisfied manifests, ...) are acknowledged, logged with a reason and counted in
    `RejectedEvents{Reason}`: retrying cannot fix them.

Retraining
    - Schedule (EventBridge Scheduler input, or the same JSON as an SQS message body):
      `{"action": "retrain-latest", "reason": "schedule",
        "scheduled_time": "<aws.scheduler.scheduled-time>", "dataset": "<optional>"}`.
      `scheduled_time` (or `request_id` for manual runs) is the idempotency key: ledger item
      `RETRAIN#<reason>#<key>`. The run uses the newest started version (ledger `LATEST`).
    - Re-run of one version (operator: `mlops start DATASET/VERSION --rerun`; direct or as an
      SQS message body):
      `{"action": "retrain-version", "dataset_version": "<dataset>/<version>",
        "reason": "manual", "request_id": "<1-256 characters>"}`
      (`reason` optional, default "manual", [A-Za-z0-9_-]{1,64}). A new run of a version that
      already started (ledger `VERSION#<dataset>/<version>` is STARTED) with the InputDataUri,
      DatasetVersion and DataDigest recorded there (the newest generation's). Same path as
      retrain-latest: idempotency item `RETRAIN#<reason>#<request_id>` (a request id names one
      run, whichever action sent it; re-using it for another version is rejected), the
      concurrency cap and deferral, the error handling. Trigger `<reason>-version`
      (ExecutionsStarted{Trigger=manual-version}). A version that never started is rejected
      (`version-never-ran`): only the marker path completes and verifies a version.
    - Every retrain (schedule, alarm, retrain-latest, retrain-version) first lists the
      version's prefix again: objects changed in place since it ran (ignored with
      ALLOW_REUPLOAD=false) reject it (`version-changed`), since the run would train on bytes
      its recorded DataDigest does not name. Identical bytes uploaded again are no change.
    - Both retrain actions take an optional `"model_package_arn": "arn:...:model-package/..."`
      when MODEL_PACKAGE_PARAMETER names the pipeline parameter that receives it (the
      evaluation trigger: score that package instead of the production model); elsewhere such
      a request is rejected (`model-package-not-accepted`).
    - Alarm: an EventBridge "CloudWatch Alarm State Change" event (or a CloudWatch alarm
      Lambda action) in state ALARM starts a retrain of the newest version unless any run
      started within RETRAIN_COOLDOWN_SECONDS; OK / INSUFFICIENT_DATA transitions are ignored.
    Invoked directly (not via SQS), a deferral or an AWS error hands the request to QUEUE_URL
    so that retries and the DLQ cover it too.

Metrics (namespace POWERTOOLS_METRICS_NAMESPACE, unit Count): EventsHandled,
RejectedEvents{Reason}, ExecutionsStarted{Trigger=data|reupload|schedule|alarm|manual|
manual-version|...}, RetrainsSkipped{Reason}, DuplicateEvents, LateObjects, ReuploadsIgnored,
DeferredStarts, and FailedRecords (handler: records returned for re-delivery).

Why not the Powertools Idempotency utility: it keys on the event payload, but a version is
completed by different events (`_SUCCESS`, `manifest.json`, a quiet check, re-deliveries with
new event ids) and must be keyed on S3 state; re-uploads need generations and alarm retrains
need a cooldown window, neither of which it can express. The ledger's conditional claim
already gives in-progress locking with expiry and a stored result (the execution ARN); adding
the utility on the retrain path would add a second record format and lock to the same table
for no new guarantee.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

import dataset_completion as completion
import dataset_ledger as ledger_items
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes.cloud_watch_alarm_event import (
    CloudWatchAlarmData,
)
from aws_lambda_powertools.utilities.data_classes.s3_event import (
    S3EventBridgeNotificationEvent,
)
from botocore.exceptions import BotoCoreError, ClientError
from dataset_completion import CompletionError, S3Object, VersionContents
from dataset_ledger import Claim, Conflict, Ledger

# Set by the CDK construct; the default only matters outside Lambda (tests, benchmarks).
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MLOps/Trigger")
logger = Logger(child=True)
metrics = Metrics(namespace=METRICS_NAMESPACE)

# Pipeline parameter names: the pipeline definition generator declares the same names.
PARAM_INPUT_DATA_URI = "InputDataUri"
PARAM_DATASET_VERSION = "DatasetVersion"
PARAM_DATA_DIGEST = "DataDigest"
# The champion parameter's value when the group has no Approved package (evaluate.py's
# NO_CHAMPION), and the ledger attribute that records the champion a claim started with.
NO_CHAMPION = "none"
CHAMPION_ATTRIBUTE = "champion_model_package_arn"

COMPLETION_MODE_MARKER = "marker"
COMPLETION_MODE_QUIET = "quiet-period"
COMPLETION_MODES = (COMPLETION_MODE_MARKER, COMPLETION_MODE_QUIET)

ACTION_RETRAIN = "retrain-latest"
ACTION_RETRAIN_VERSION = "retrain-version"
DEFAULT_VERSION_RERUN_REASON = "manual"
ACTION_QUIET_CHECK = "quiet-check"
S3_SOURCE = "aws.s3"
OBJECT_CREATED = "Object Created"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
DEFERRALS_ATTRIBUTE = "start_training_deferrals"

MAX_SQS_DELAY_SECONDS = 900
PIPELINE_EXECUTION_TIME_LIMIT_SECONDS = 672 * 3600
RUNNING_STATUSES = frozenset({"Executing", "Stopping"})
MAX_PARAMETER_LENGTH = 1024
HANDOVER_DELAY_SECONDS = 60

METRIC_EVENTS = "EventsHandled"
METRIC_REJECTED = "RejectedEvents"  # dimension Reason
METRIC_STARTED = "ExecutionsStarted"  # dimension Trigger
METRIC_RETRAINS_SKIPPED = "RetrainsSkipped"  # dimension Reason
METRIC_DUPLICATES = "DuplicateEvents"
METRIC_LATE = "LateObjects"
METRIC_REUPLOADS_IGNORED = "ReuploadsIgnored"
METRIC_DEFERRED = "DeferredStarts"

_SAFE_PREFIX = re.compile(r"^(?:[A-Za-z0-9_.\-]+/)+$")
_REQUEST_REASON = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_MODEL_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:[0-9]{12}:model-package/"
    r"[A-Za-z0-9](-*[A-Za-z0-9]){0,62}/[0-9]+$"
)
_DISPLAY_NAME_LENGTH = 82


def landing_event_pattern(bucket_name: str, prefix: str = "landing/") -> dict[str, Any]:
    """EventBridge pattern for `Object Created` events of `bucket_name` under `prefix`.

    Plain data, no dependencies: the CDK construct and the routing test share it. `prefix`
    must use only URL-safe characters (letters, digits, `_.-/`) because S3 events carry
    URL-encoded keys; default "landing/".
    """
    if not _SAFE_PREFIX.match(prefix):
        raise ValueError(
            f"prefix {prefix!r} must be folders of letters, digits, '_', '.', '-' ending in '/'"
        )
    return {
        "source": [S3_SOURCE],
        "detail-type": [OBJECT_CREATED],
        "detail": {"bucket": {"name": [bucket_name]}, "object": {"key": [{"prefix": prefix}]}},
    }


def alarm_event_pattern(alarm_arns: list[str]) -> dict[str, Any]:
    """EventBridge pattern for transitions of the given alarms into ALARM."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": [ALARM_DETAIL_TYPE],
        "resources": list(alarm_arns),
        "detail": {"state": {"value": ["ALARM"]}},
    }


def run_token(pipeline_name: str, pk: str, generation: int) -> str:
    """ClientRequestToken for a run: 64 hex digits, stable across retries of one claim."""
    seed = f"start-training\0{pipeline_name}\0{pk}\0{generation}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


def display_name(*parts: str) -> str:
    """PipelineExecutionDisplayName from free text: [A-Za-z0-9-], at most 82 characters."""
    text = re.sub(r"[^A-Za-z0-9]+", "-", "-".join(parts)).strip("-") or "run"
    if len(text) <= _DISPLAY_NAME_LENGTH:
        return text
    suffix = hashlib.sha256(text.encode()).hexdigest()[:8]
    return text[: _DISPLAY_NAME_LENGTH - 9].rstrip("-") + "-" + suffix


class ConfigError(ValueError):
    """An environment variable is missing or invalid."""


def _env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} is invalid: expected an integer in [{low}, {high}]")
    return value


def _env_required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required (environment variable is missing or empty)")
    return value


@dataclass(frozen=True)
class TriggerConfig:
    """Settings read once from the Lambda environment (see `from_env` for names/defaults)."""

    pipeline_name: str
    ledger_table: str
    data_bucket: str
    queue_url: str
    landing_prefix: str = "landing/"
    completion_mode: str = COMPLETION_MODE_MARKER
    quiet_period_seconds: int = 300
    max_concurrent_executions: int = 2
    allow_reupload: bool = False
    retrain_cooldown_seconds: int = 86_400
    defer_seconds: int = 300
    lease_seconds: int = 180
    model_package_parameter: str = ""
    champion_parameter: str = ""
    model_package_group: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TriggerConfig:
        """Parse and validate; raise ConfigError naming the variable, value and what's allowed.

        Required: PIPELINE_NAME, LEDGER_TABLE, DATA_BUCKET, QUEUE_URL. Optional (default):
        LANDING_PREFIX ("landing/"), COMPLETION_MODE ("marker" | "quiet-period"),
        QUIET_PERIOD_SECONDS (300, 1..86400), MAX_CONCURRENT_EXECUTIONS (2, 1..1000),
        ALLOW_REUPLOAD ("false" | "true"), RETRAIN_COOLDOWN_SECONDS (86400, 0..31536000),
        DEFER_SECONDS (300, 1..900: wait before re-trying a version held by the cap),
        LEASE_SECONDS (180, 30..3600: claim lease; Lambda timeout < lease < SQS visibility),
        MODEL_PACKAGE_PARAMETER ("": the pipeline parameter that takes a retrain request's
        model_package_arn; empty = such requests are rejected), CHAMPION_PARAMETER ("": the
        pipeline parameter that takes the champion; requires MODEL_PACKAGE_GROUP_NAME).
        """
        prefix = env.get("LANDING_PREFIX", "").strip() or "landing/"
        if not _SAFE_PREFIX.match(prefix):
            raise ConfigError(
                f"LANDING_PREFIX={prefix!r} is invalid: expected folders of letters, digits, "
                "'_', '.', '-' ending in '/', e.g. 'landing/'"
            )
        mode = env.get("COMPLETION_MODE", "").strip() or COMPLETION_MODE_MARKER
        if mode not in COMPLETION_MODES:
            raise ConfigError(
                f"COMPLETION_MODE={mode!r} is invalid: expected one of "
                f"{', '.join(COMPLETION_MODES)}"
            )
        champion = env.get("CHAMPION_PARAMETER", "").strip()
        reupload = env.get("ALLOW_REUPLOAD", "").strip().lower() or "false"
        if reupload not in ("true", "false"):
            raise ConfigError(f"ALLOW_REUPLOAD={reupload!r} is invalid: expected true or false")
        return cls(
            pipeline_name=_env_required(env, "PIPELINE_NAME"),
            ledger_table=_env_required(env, "LEDGER_TABLE"),
            data_bucket=_env_required(env, "DATA_BUCKET"),
            queue_url=_env_required(env, "QUEUE_URL"),
            landing_prefix=prefix,
            completion_mode=mode,
            quiet_period_seconds=_env_int(env, "QUIET_PERIOD_SECONDS", 300, 1, 86_400),
            max_concurrent_executions=_env_int(env, "MAX_CONCURRENT_EXECUTIONS", 2, 1, 1000),
            allow_reupload=reupload == "true",
            retrain_cooldown_seconds=_env_int(
                env, "RETRAIN_COOLDOWN_SECONDS", 86_400, 0, 31_536_000
            ),
            defer_seconds=_env_int(env, "DEFER_SECONDS", 300, 1, MAX_SQS_DELAY_SECONDS),
            lease_seconds=_env_int(env, "LEASE_SECONDS", 180, 30, 3600),
            model_package_parameter=env.get("MODEL_PACKAGE_PARAMETER", "").strip(),
            champion_parameter=champion,
            model_package_group=(
                _env_required(env, "MODEL_PACKAGE_GROUP_NAME") if champion else ""
            ),
        )


@dataclass(frozen=True)
class VersionRef:
    """One dataset version: `s3://<bucket>/<landing_prefix><dataset>/<version>/`."""

    bucket: str
    landing_prefix: str
    dataset: str
    version: str

    @property
    def dataset_version(self) -> str:
        return f"{self.dataset}/{self.version}"

    @property
    def prefix(self) -> str:
        return f"{self.landing_prefix}{self.dataset}/{self.version}/"

    @property
    def input_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def pk(self) -> str:
        return ledger_items.version_key(self.dataset_version)


@dataclass(frozen=True)
class ObjectEvent:
    """The fields of an S3 `Object Created` event this handler uses (key URL-decoded)."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    sequencer: str | None
    reason: str | None
    time: int | None  # epoch seconds of the event

    @property
    def identity(self) -> str:
        """Identifies one object write; a re-delivered event has the same identity."""
        return f"{self.key}#{self.version_id or self.etag}#{self.sequencer or ''}"


class Kind(StrEnum):
    """What happened to one event."""

    STARTED = "started"
    DUPLICATE = "duplicate"
    PENDING = "pending"
    LATE = "late"
    REUPLOAD_IGNORED = "reupload-ignored"
    DEFERRED = "deferred"
    SKIPPED = "skipped"
    REJECTED = "rejected"


@dataclass
class Outcome:
    """The decision taken for one event; `reason` is a short slug, `message` says why."""

    kind: Kind
    reason: str
    message: str
    dataset_version: str | None = None
    key: str | None = None
    execution_arn: str | None = None
    trigger: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        fields = {
            "outcome": str(self.kind),
            "reason": self.reason,
            "message": self.message,
            "dataset_version": self.dataset_version,
            "key": self.key,
            "execution_arn": self.execution_arn,
            "trigger": self.trigger,
        }
        return {k: v for k, v in fields.items() if v is not None} | self.details


class Rejection(Exception):
    """An event that can never succeed: acknowledged, logged and counted, not retried."""

    def __init__(self, reason: str, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.key = key


class Deferral(Exception):
    """No execution slot now: the message goes back to the queue with a delay."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _event_time(value: Any) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return None
    return None


def _retrain_request_key(
    message: Mapping[str, Any], action: str, default_reason: str
) -> tuple[str, str]:
    """`reason` and the idempotency key (`scheduled_time` or `request_id`) of a retrain request."""
    reason = message.get("reason", default_reason)
    request_id = message.get("scheduled_time") or message.get("request_id")
    if not isinstance(reason, str) or not _REQUEST_REASON.match(reason):
        raise Rejection("malformed-retrain-request", "reason must match [A-Za-z0-9_-]{1,64}")
    if not isinstance(request_id, str) or not 0 < len(request_id) <= 256:
        raise Rejection(
            "malformed-retrain-request",
            f"{action} needs 'scheduled_time' (<aws.scheduler.scheduled-time>) or "
            "'request_id' (1-256 characters) so that a repeated request runs once",
        )
    return reason, request_id


def parse_object_event(message: Mapping[str, Any], config: TriggerConfig) -> ObjectEvent:
    """Validate an EventBridge S3 event for this bucket; raise Rejection otherwise."""
    event = S3EventBridgeNotificationEvent(dict(message))
    if event.detail_type != OBJECT_CREATED:
        raise Rejection(
            "unsupported-detail-type",
            f"S3 event of type {event.detail_type!r}; only {OBJECT_CREATED!r} starts training",
        )
    detail = message.get("detail")
    if not isinstance(detail, dict) or not isinstance(detail.get("object"), dict):
        raise Rejection("malformed-s3-event", "S3 event has no detail.object")
    raw = detail["object"]
    bucket = (
        detail.get("bucket", {}).get("name") if isinstance(detail.get("bucket"), dict) else None
    )
    raw_key = raw.get("key")
    size = raw.get("size")
    if not isinstance(bucket, str) or not isinstance(raw_key, str) or not raw_key:
        raise Rejection("malformed-s3-event", "S3 event lacks detail.bucket.name or object.key")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise Rejection(
            "malformed-s3-event", f"object.size must be a non-negative integer, got {size!r}"
        )
    if bucket != config.data_bucket:
        raise Rejection(
            "foreign-bucket",
            f"event for bucket {bucket!r}; this trigger watches {config.data_bucket!r}",
            key=raw_key,
        )
    try:
        key = unquote_plus(raw_key, errors="strict")
    except UnicodeDecodeError as error:
        raise Rejection(
            "undecodable-key", f"object key {raw_key!r} is not URL-encoded UTF-8", key=raw_key
        ) from error
    obj = event.detail.object
    return ObjectEvent(
        bucket=bucket,
        key=key,
        size=size,
        # moto's EventBridge events spell it eTag; AWS sends etag
        etag=(obj.etag or str(raw.get("eTag") or "")).strip('"'),
        version_id=raw.get("version-id"),
        sequencer=raw.get("sequencer"),
        reason=event.detail.reason,
        time=_event_time(message.get("time")),
    )


def locate_version(event: ObjectEvent, config: TriggerConfig) -> tuple[VersionRef, str]:
    """Split a key into its dataset version and the key relative to the version prefix."""
    if not event.key.startswith(config.landing_prefix):
        raise Rejection(
            "outside-landing-prefix",
            f"key is outside {config.landing_prefix!r}; only data landing there is watched",
            key=event.key,
        )
    if event.key.endswith("/"):
        raise Rejection(
            "folder-placeholder",
            "folder placeholder object (key ends with '/'); it carries no data",
            key=event.key,
        )
    parts = event.key[len(config.landing_prefix) :].split("/", 2)
    if len(parts) < 3 or any(p in ("", ".", "..") for p in parts[:2]) or not parts[2]:
        raise Rejection(
            "outside-version-layout",
            f"key does not follow {config.landing_prefix}<dataset>/<version>/<file>",
            key=event.key,
        )
    ref = VersionRef(config.data_bucket, config.landing_prefix, parts[0], parts[1])
    relative = parts[2]
    if event.size == 0 and completion.is_data_key(relative):
        raise Rejection(
            "zero-byte-object",
            "zero-byte data object; it is listed with its version but is probably a failed upload",
            key=event.key,
        )
    return ref, relative


@dataclass(frozen=True)
class RunSpec:
    """What one StartPipelineExecution call needs."""

    parameters: dict[str, str]
    display_name: str
    description: str
    trigger: str


class DatasetTrigger:
    """Decides, per event, whether to start the pipeline; all AWS clients are injected.

    `s3`, `sagemaker`, `sqs` are boto3 clients, `table` a boto3 DynamoDB Table resource,
    `clock` returns epoch seconds (default time.time).
    """

    def __init__(
        self,
        config: TriggerConfig,
        *,
        s3: Any,
        sagemaker: Any,
        sqs: Any,
        table: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.s3 = s3
        self.sagemaker = sagemaker
        self.sqs = sqs
        self.clock = clock
        self.ledger = Ledger(table, clock=clock, lease_seconds=config.lease_seconds)
        self._running: int | None = None
        self._items: dict[str, dict[str, Any] | None] = {}
        # Quiet-period checks known to be pending (pk -> due time); valid across invocations.
        self._check_due: dict[str, int] = {}

    def now(self) -> int:
        return int(self.clock())

    def begin_invocation(self) -> None:
        """Forget per-invocation caches (running-execution count, ledger reads)."""
        self._running = None
        self._items.clear()

    # ---- entry points -------------------------------------------------------------------

    def handle_sqs_body(self, body: str, *, deferrals: int = 0) -> Outcome:
        """Handle one SQS message body; raises only for errors worth a retry."""
        try:
            message = json.loads(body)
        except json.JSONDecodeError as error:
            return self._report(
                Outcome(Kind.REJECTED, "malformed-json", f"message body is not JSON: {error}")
            )
        return self.handle(message, deferrals=deferrals)

    def handle_direct(self, event: Any) -> Outcome:
        """Handle a direct invocation (Scheduler, EventBridge rule, alarm action).

        AWS errors hand the event to the queue, where retries and the DLQ cover it.
        """
        try:
            return self.handle(event)
        except (ClientError, BotoCoreError) as error:
            self._enqueue(event, delay=HANDOVER_DELAY_SECONDS, deferrals=0)
            return self._report(
                Outcome(
                    Kind.DEFERRED,
                    "handed-to-queue",
                    f"{error}; request handed to the queue for retry",
                )
            )

    def handle(self, message: Any, *, deferrals: int = 0) -> Outcome:
        """Handle one decoded message; raises only for errors worth a retry."""
        try:
            outcome = self._dispatch(message)
        except Rejection as rejection:
            outcome = Outcome(Kind.REJECTED, rejection.reason, rejection.message, key=rejection.key)
        except Deferral as deferral:
            delay = self.config.defer_seconds
            self._enqueue(message, delay=delay, deferrals=deferrals + 1)
            outcome = Outcome(
                Kind.DEFERRED,
                deferral.reason,
                f"{deferral.message}; re-queued to retry in {delay} s",
                details={"deferrals": deferrals + 1},
            )
        return self._report(outcome)

    def _dispatch(self, message: Any) -> Outcome:
        if not isinstance(message, dict):
            raise Rejection(
                "not-an-object", f"message must be a JSON object, got {type(message).__name__}"
            )
        if message.get("source") == S3_SOURCE:
            return self._on_object_event(message)
        if message.get("detail-type") == ALARM_DETAIL_TYPE or "alarmData" in message:
            return self._on_alarm(message)
        action = message.get("action")
        if action == ACTION_RETRAIN:
            return self._on_retrain_request(message)
        if action == ACTION_RETRAIN_VERSION:
            return self._on_retrain_version(message)
        if action == ACTION_QUIET_CHECK:
            return self._on_quiet_check(message)
        if "Records" in message:
            raise Rejection(
                "not-an-eventbridge-event",
                "S3 notification (Records[]) or other non-EventBridge event; route the bucket "
                "through EventBridge 'Object Created' events",
            )
        raise Rejection(
            "unrecognised-message",
            "expected an S3 'Object Created' EventBridge event, a 'CloudWatch Alarm State "
            f"Change' event or an action {ACTION_RETRAIN!r} or {ACTION_RETRAIN_VERSION!r}; got "
            f"keys {sorted(message)[:10]}",
        )

    # ---- object events ------------------------------------------------------------------

    def _on_object_event(self, message: dict[str, Any]) -> Outcome:
        event = parse_object_event(message, self.config)
        ref, relative = locate_version(event, self.config)
        if relative in completion.COMPLETION_MARKERS:
            return self._on_marker(event, ref, relative)
        if self.config.completion_mode == COMPLETION_MODE_QUIET:
            return self._on_quiet_object(event, ref)
        item = self._cached_item(ref.pk)
        if item and item.get("status") == ledger_items.STATUS_STARTED:
            if self._is_late(event, item):
                return self._late(event, ref, item)
            return Outcome(
                Kind.PENDING,
                "object-in-started-version",
                "object is part of the already started version",
                dataset_version=ref.dataset_version,
                key=event.key,
            )
        return Outcome(
            Kind.PENDING,
            "awaiting-marker",
            f"data object; the version starts when {completion.MARKER_SUCCESS} or "
            f"{completion.MANIFEST_NAME} lands",
            dataset_version=ref.dataset_version,
            key=event.key,
        )

    def _cached_item(self, pk: str) -> dict[str, Any] | None:
        if pk not in self._items:
            self._items[pk] = self.ledger.get(pk)
        return self._items[pk]

    @staticmethod
    def _is_late(event: ObjectEvent, item: dict[str, Any]) -> bool:
        listed_at = item.get("listed_at")
        return event.time is not None and listed_at is not None and event.time > int(listed_at)

    def _late(self, event: ObjectEvent, ref: VersionRef, item: dict[str, Any]) -> Outcome:
        return Outcome(
            Kind.LATE,
            "late-object",
            "object landed after the version was started, so it is not part of that run; land "
            "it in a new version (or re-upload the version with ALLOW_REUPLOAD=true)",
            dataset_version=ref.dataset_version,
            key=event.key,
            execution_arn=item.get("execution_arn"),
        )

    def _on_marker(self, event: ObjectEvent, ref: VersionRef, marker: str) -> Outcome:
        self._items.pop(ref.pk, None)
        item = self.ledger.get(ref.pk)
        status = item.get("status") if item else None
        if (
            status == ledger_items.STATUS_STARTED
            and item
            and (item.get("completed_by_event") == event.identity)
        ):
            self._record_version_run(item)
            return Outcome(
                Kind.DUPLICATE,
                "redelivered-marker",
                "marker event already processed; started nothing",
                dataset_version=ref.dataset_version,
                key=event.key,
                execution_arn=item.get("execution_arn"),
            )
        self._wait_for_live_claim(item, ref.dataset_version)
        listing = completion.list_version(self.s3, ref.bucket, ref.prefix)
        if not any(obj.relative_key == marker for obj in listing):
            raise Rejection(
                "marker-not-found",
                f"{marker} event received but the object is no longer under {ref.prefix}",
                key=event.key,
            )
        return self._complete_and_start(
            ref, item, listing, completed_by=marker, completed_by_event=event.identity
        )

    def _wait_for_live_claim(self, item: dict[str, Any] | None, what: str) -> None:
        """Re-queue the event while another invocation holds a live claim on the item.

        Acknowledging it instead would lose the run if that invocation crashed and its own
        message came back before the lease expired; re-queued, the event finds the run
        started (a duplicate) or the lease expired (a takeover).
        """
        if (
            item
            and item.get("status") == ledger_items.STATUS_STARTING
            and not self.ledger.lease_expired(item)
        ):
            raise Deferral(
                "claimed-by-another-worker",
                f"another invocation is starting {what} (lease until {item.get('lease_until')})",
            )

    # ---- quiet-period mode ----------------------------------------------------------------

    def _on_quiet_object(self, event: ObjectEvent, ref: VersionRef) -> Outcome:
        now = self.now()
        pending = Outcome(
            Kind.PENDING,
            "quiet-check-pending",
            "object noted; the quiet-period check decides when the version is complete",
            dataset_version=ref.dataset_version,
            key=event.key,
        )
        if self._check_due.get(ref.pk, 0) > now:
            return pending
        item = self.ledger.get(ref.pk)
        status = item.get("status") if item else None
        if item and status == ledger_items.STATUS_STARTED:
            if not self._is_late(event, item):
                pending.reason = "object-in-started-version"
                return pending
            if not self.config.allow_reupload:
                return self._late(event, ref, item)
        due = int(item.get("check_due_at", 0)) if item else 0
        if due > now:
            self._check_due[ref.pk] = due
            return pending
        self._schedule_check(ref, min(self.config.quiet_period_seconds, MAX_SQS_DELAY_SECONDS))
        pending.reason = "quiet-check-scheduled"
        return pending

    def _schedule_check(self, ref: VersionRef, delay: int) -> None:
        body = {
            "action": ACTION_QUIET_CHECK,
            "bucket": ref.bucket,
            "dataset": ref.dataset,
            "version": ref.version,
        }
        self.sqs.send_message(
            QueueUrl=self.config.queue_url, MessageBody=json.dumps(body), DelaySeconds=delay
        )
        now = self.now()
        due = now + delay
        if len(self._check_due) > 1024:
            self._check_due = {pk: at for pk, at in self._check_due.items() if at > now}
        self.ledger.schedule_check(
            ref.pk, due, {"dataset_version": ref.dataset_version, "input_uri": ref.input_uri}
        )
        self._check_due[ref.pk] = due

    def _on_quiet_check(self, message: dict[str, Any]) -> Outcome:
        dataset, version = message.get("dataset"), message.get("version")
        if (
            message.get("bucket") != self.config.data_bucket
            or not isinstance(dataset, str)
            or not isinstance(version, str)
            or any(p in ("", ".", "..") or "/" in p for p in (dataset, version))
        ):
            raise Rejection(
                "malformed-quiet-check", "quiet-check needs this bucket, a dataset and a version"
            )
        ref = VersionRef(self.config.data_bucket, self.config.landing_prefix, dataset, version)
        self._check_due.pop(ref.pk, None)
        item = self.ledger.get(ref.pk)
        if (
            item
            and item.get("status") == ledger_items.STATUS_STARTED
            and not self.config.allow_reupload
        ):
            self._record_version_run(item)
            return Outcome(
                Kind.DUPLICATE,
                "version-already-started",
                "quiet-period check for a version that already started; nothing to do",
                dataset_version=ref.dataset_version,
                execution_arn=item.get("execution_arn"),
            )
        self._wait_for_live_claim(item, ref.dataset_version)
        listing = completion.list_version(self.s3, ref.bucket, ref.prefix)
        newest = completion.newest_object_time(listing)
        if newest is None:
            raise Rejection("empty-version", f"no objects under {ref.prefix} any more")
        now = self.now()
        quiet_until = int(newest) + self.config.quiet_period_seconds
        if quiet_until > now:
            delay = max(1, min(quiet_until - now, MAX_SQS_DELAY_SECONDS))
            self._schedule_check(ref, delay)
            return Outcome(
                Kind.PENDING,
                "quiet-period-running",
                f"newest object is {now - int(newest)} s old; checking again in {delay} s",
                dataset_version=ref.dataset_version,
            )
        return self._complete_and_start(ref, item, listing, completed_by="quiet-period")

    # ---- completing and starting a version ------------------------------------------------

    def _contents(self, ref: VersionRef, listing: list[S3Object], completed_by: str) -> Any:
        manifest = next((o for o in listing if o.relative_key == completion.MANIFEST_NAME), None)
        if manifest is None:
            return completion.contents_from_listing(listing, completed_by=completed_by)
        entries = completion.read_manifest(self.s3, ref.bucket, manifest)
        return completion.verify_manifest(self.s3, ref.bucket, entries, listing)

    def _complete_and_start(
        self,
        ref: VersionRef,
        item: dict[str, Any] | None,
        listing: list[S3Object],
        *,
        completed_by: str,
        completed_by_event: str | None = None,
    ) -> Outcome:
        listed_at = self.now()
        try:
            contents: VersionContents = self._contents(ref, listing, completed_by)
        except CompletionError as error:
            return Outcome(
                Kind.REJECTED, error.reason, error.message, dataset_version=ref.dataset_version
            )
        status = item.get("status") if item else None
        generation, previous, trigger = 1, None, "data"
        if item and status == ledger_items.STATUS_STARTED:
            if item.get("content_digest") == contents.content_digest:
                self._record_version_run(item)
                return Outcome(
                    Kind.DUPLICATE,
                    "same-content",
                    "version already started with identical content; started nothing",
                    dataset_version=ref.dataset_version,
                    execution_arn=item.get("execution_arn"),
                )
            digests = {
                "previous_data_digest": item.get("data_digest"),
                "new_data_digest": contents.data_digest,
            }
            if not self.config.allow_reupload:
                return Outcome(
                    Kind.REUPLOAD_IGNORED,
                    "reupload-not-allowed",
                    "version re-uploaded with different content; ALLOW_REUPLOAD=false, so no new "
                    "run (land the data as a new version instead)",
                    dataset_version=ref.dataset_version,
                    execution_arn=item.get("execution_arn"),
                    details=digests,
                )
            generation = int(item.get("generation", 1)) + 1
            trigger = "reupload"
            previous = {
                "generation": int(item.get("generation", 1)),
                "execution_arn": item.get("execution_arn"),
                "data_digest": item.get("data_digest"),
                "started_at": item.get("started_at"),
            }
            logger.info(
                "re-upload with different content accepted (ALLOW_REUPLOAD=true)",
                extra={"dataset_version": ref.dataset_version, **digests},
            )
        elif item and status == ledger_items.STATUS_STARTING:
            generation = int(item.get("generation", 1))
        if contents.unverified_checksums:
            logger.warning(
                "manifest sha256 values not verified: S3 stores no full-object SHA-256 for "
                "these objects (upload with --checksum-algorithm SHA256 to enable the check)",
                extra={
                    "dataset_version": ref.dataset_version,
                    "files": contents.unverified_checksums,
                },
            )
        parameters = {
            PARAM_INPUT_DATA_URI: ref.input_uri,
            PARAM_DATASET_VERSION: ref.dataset_version,
            PARAM_DATA_DIGEST: contents.data_digest,
        }
        too_long = [name for name, value in parameters.items() if len(value) > MAX_PARAMETER_LENGTH]
        if too_long:
            return Outcome(
                Kind.REJECTED,
                "parameter-too-long",
                f"pipeline parameter(s) {too_long} exceed {MAX_PARAMETER_LENGTH} characters; "
                "use shorter dataset/version names",
                dataset_version=ref.dataset_version,
            )
        self._reserve_slot()
        champion = self._champion(item if status == ledger_items.STATUS_STARTING else None)
        parameters.update(champion)
        token = run_token(self.config.pipeline_name, ref.pk, generation)
        attributes: dict[str, Any] = {
            "dataset_version": ref.dataset_version,
            "dataset": ref.dataset,
            "version": ref.version,
            "input_uri": ref.input_uri,
            "data_digest": contents.data_digest,
            "content_digest": contents.content_digest,
            "file_count": len(contents.files),
            "total_bytes": contents.total_bytes,
            "completed_by": contents.completed_by,
            "listed_at": listed_at,
            "client_request_token": token,
            "trigger": trigger,
            **self._champion_attribute(champion),
        }
        if completed_by_event:
            attributes["completed_by_event"] = completed_by_event
        claim = self._claim(
            ref.pk,
            item,
            ref.dataset_version,
            generation=generation,
            attributes=attributes,
            previous_run=previous,
        )
        if not isinstance(claim, Claim):
            if claim.get("content_digest") != contents.content_digest:
                raise Deferral(
                    "listing-changed-concurrently",
                    f"another invocation started {ref.dataset_version} from a different "
                    "listing; deciding again on the content as it is now",
                )
            return Outcome(
                Kind.DUPLICATE,
                "started-concurrently",
                "another invocation started this version with the same content; started nothing",
                dataset_version=ref.dataset_version,
                execution_arn=claim.get("execution_arn"),
            )
        spec = RunSpec(
            parameters=parameters,
            display_name=display_name(trigger, ref.dataset, ref.version, f"g{generation}"),
            description=(
                f"start-training: dataset version {ref.dataset_version} generation {generation}, "
                f"completed by {contents.completed_by}, {len(contents.files)} files, "
                f"{contents.total_bytes} bytes, data digest {contents.data_digest}"
            ),
            trigger=trigger,
        )
        arn, started_at = self._start(claim, spec)
        self._record_version_run({**attributes, "execution_arn": arn, "started_at": started_at})
        return Outcome(
            Kind.STARTED,
            trigger,
            f"started pipeline execution for {ref.dataset_version} (generation {generation})",
            dataset_version=ref.dataset_version,
            execution_arn=arn,
            trigger=trigger,
            details={"generation": generation, "files": len(contents.files)},
        )

    def _reserve_slot(self) -> None:
        cap = self.config.max_concurrent_executions
        if self._running is None:
            self._running = self._count_running(cap)
        if self._running >= cap:
            raise Deferral(
                "concurrency-cap",
                f"{self._running} pipeline executions running; MAX_CONCURRENT_EXECUTIONS={cap}",
            )

    def _count_running(self, cap: int) -> int:
        """Executing/Stopping executions, counted up to `cap` (enough to decide)."""
        running = 0
        paginator = self.sagemaker.get_paginator("list_pipeline_executions")
        pages = paginator.paginate(
            PipelineName=self.config.pipeline_name,
            CreatedAfter=datetime.fromtimestamp(
                self.now() - PIPELINE_EXECUTION_TIME_LIMIT_SECONDS, UTC
            ),
            SortBy="CreationTime",
            SortOrder="Descending",
            PaginationConfig={"PageSize": 100},
        )
        for page in pages:
            for summary in page.get("PipelineExecutionSummaries", []):
                if summary.get("PipelineExecutionStatus") in RUNNING_STATUSES:
                    running += 1
                    if running >= cap:
                        return running
        return running

    def _check_unchanged(self, dataset_version: str) -> None:
        """Refuse to re-run a version whose objects changed in place since it ran.

        A re-run passes the InputDataUri and DataDigest its ledger item recorded, but the
        pipeline reads the prefix as it is now: with ALLOW_REUPLOAD=false an in-place change
        starts no new generation, so the run would train on bytes the digest does not name.
        The content digest (no version ids) is compared, so re-uploading identical bytes is
        no change. Items without a content digest are not checked.
        """
        ref = self._version_ref(dataset_version)
        item = self.ledger.get(ref.pk)
        recorded = item.get("content_digest") if item else None
        if not recorded:
            return
        listing = completion.list_version(self.s3, ref.bucket, ref.prefix)
        try:
            contents: VersionContents = self._contents(ref, listing, "retrain")
        except CompletionError as error:
            raise Rejection(
                "version-changed",
                f"dataset version {dataset_version} is no longer complete under "
                f"{ref.input_uri} ({error}); land the data as a new version",
            ) from error
        if contents.content_digest != recorded:
            raise Rejection(
                "version-changed",
                f"the objects under {ref.input_uri} changed since dataset version "
                f"{dataset_version} ran (content digest {recorded[:12]}... is now "
                f"{contents.content_digest[:12]}...); a re-run would train on data its "
                "DataDigest does not name: land the data as a new version",
            )

    def _champion(self, claimed: Mapping[str, Any] | None) -> dict[str, str]:
        """`{CHAMPION_PARAMETER: <package ARN or "none">}` for a pipeline that takes a champion:
        the one `claimed` (a STARTING item being taken over) started with, else the newest
        Approved package of the group now."""
        parameter = self.config.champion_parameter
        if not parameter:
            return {}
        if claimed and claimed.get(CHAMPION_ATTRIBUTE):
            return {parameter: str(claimed[CHAMPION_ATTRIBUTE])}
        listing = self.sagemaker.list_model_packages(
            ModelPackageGroupName=self.config.model_package_group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )
        summaries = listing.get("ModelPackageSummaryList", [])
        return {parameter: str(summaries[0]["ModelPackageArn"]) if summaries else NO_CHAMPION}

    def _champion_attribute(self, champion: Mapping[str, str]) -> dict[str, str]:
        """The ledger attribute recording `champion` (nothing for pipelines without one)."""
        parameter = self.config.champion_parameter
        return {CHAMPION_ATTRIBUTE: champion[parameter]} if parameter in champion else {}

    def _start(self, claim: Claim, spec: RunSpec) -> tuple[str, int]:
        """Start the claimed run and record it STARTED; (execution ARN, started_at)."""
        token = run_token(self.config.pipeline_name, claim.pk, claim.generation)
        try:
            response = self.sagemaker.start_pipeline_execution(
                PipelineName=self.config.pipeline_name,
                PipelineExecutionDisplayName=spec.display_name,
                PipelineExecutionDescription=spec.description[:3072],
                PipelineParameters=[{"Name": k, "Value": v} for k, v in spec.parameters.items()],
                ClientRequestToken=token,
            )
        except ClientError as error:
            self._release(claim)
            if error.response.get("Error", {}).get("Code") == "ResourceLimitExceeded":
                raise Deferral(
                    "resource-limit-exceeded", f"SageMaker refused a new execution: {error}"
                ) from error
            raise
        except BotoCoreError:
            self._release(claim)
            raise
        arn: str = response["PipelineExecutionArn"]
        started_at = self.now()
        if self._running is not None:
            self._running += 1
        if not self.ledger.mark_started(claim, arn, started_at):
            logger.warning(
                "claim was taken over before the start was recorded; the shared "
                "ClientRequestToken makes both starts the same execution",
                extra={"pk": claim.pk, "execution_arn": arn},
            )
        return arn, started_at

    def _claim(
        self, pk: str, item: dict[str, Any] | None, what: str, **claim_args: Any
    ) -> Claim | dict[str, Any]:
        """Claim `pk` as read in `item` (Ledger.claim's arguments); if another invocation
        changed it first, the item it started instead.

        A claim held by another invocation re-queues the event, never acknowledges it: if
        that invocation dies, this event is what takes the claim over after the lease.
        """
        result = self.ledger.claim(pk, item, **claim_args)
        if not isinstance(result, Conflict):
            return result
        current = result.item
        if current and current.get("status") == ledger_items.STATUS_STARTED:
            return current
        if current and current.get("status") == ledger_items.STATUS_STARTING:
            raise Deferral(
                "claimed-by-another-worker",
                f"another invocation claimed {what} first "
                f"(lease until {current.get('lease_until')})",
            )
        raise Deferral(
            "ledger-item-changed",
            f"ledger item {pk} changed while {what} was being claimed; deciding again later",
        )

    def _record_version_run(self, item: dict[str, Any]) -> None:
        """Point LATEST at a started version and record its run (newest run, for the alarm
        cooldown). Called after every start and again for a re-delivered event of a started
        version: both writes are idempotent, so a write that failed after the start (which
        fails the record) is repaired by the re-delivery instead of leaving the pointer stale.
        """
        arn, started_at = item.get("execution_arn"), item.get("started_at")
        if not arn or started_at is None:
            return
        dataset_version = str(item["dataset_version"])
        self.ledger.record_latest_version(
            str(item.get("dataset") or dataset_version.partition("/")[0]),
            {
                "dataset_version": dataset_version,
                "input_uri": item["input_uri"],
                "data_digest": item["data_digest"],
                "execution_arn": arn,
            },
            int(started_at),
        )
        self.ledger.record_run(str(arn), str(item.get("trigger") or "data"), int(started_at))

    def _record_retrain_run(self, item: dict[str, Any]) -> None:
        """Re-apply record_run for a started retrain (idempotent, see _record_version_run)."""
        arn, started_at = item.get("execution_arn"), item.get("started_at")
        if arn and started_at is not None:
            self.ledger.record_run(str(arn), str(item.get("trigger", "")), int(started_at))

    def _release(self, claim: Claim) -> None:
        try:
            self.ledger.release(claim)
        except (ClientError, BotoCoreError):
            logger.exception(
                "could not release the claim; the retry takes it over after the lease",
                extra={"pk": claim.pk},
            )

    # ---- retraining -------------------------------------------------------------------------

    def _on_retrain_request(self, message: dict[str, Any]) -> Outcome:
        """`retrain-latest`: a new run of the newest started version (of `dataset`, if given)."""
        reason, request_id = _retrain_request_key(message, ACTION_RETRAIN, "schedule")
        dataset = message.get("dataset")
        if dataset is not None and (not isinstance(dataset, str) or not dataset):
            raise Rejection("malformed-retrain-request", "dataset must be a non-empty string")
        pointer = self.ledger.get(ledger_items.latest_key(dataset))
        if not pointer or "dataset_version" not in pointer:
            return Outcome(
                Kind.SKIPPED,
                "no-complete-version",
                "retrain requested but no dataset version has been started yet",
                trigger=reason,
            )
        return self._retrain_on_request(
            reason,
            request_id,
            pointer,
            trigger=reason,
            details={"request_id": request_id, **self._model_package(message)},
        )

    def _on_retrain_version(self, message: dict[str, Any]) -> Outcome:
        """`retrain-version`: a new run of one version that already started, on its recorded
        parameters."""
        reason, request_id = _retrain_request_key(
            message, ACTION_RETRAIN_VERSION, DEFAULT_VERSION_RERUN_REASON
        )
        ref = self._version_ref(message.get("dataset_version"))
        item = self.ledger.get(ref.pk)
        status = item.get("status") if item else None
        if not item or status != ledger_items.STATUS_STARTED:
            self._wait_for_live_claim(item, ref.dataset_version)
            if status == ledger_items.STATUS_STARTING:
                raise Rejection(
                    "version-start-interrupted",
                    f"dataset version {ref.dataset_version} has a start that did not finish "
                    "(STARTING, lease expired): its event is retried from the queue, or replay "
                    f"its marker (`mlops start {ref.dataset_version}`); re-run it once it started",
                )
            raise Rejection(
                "version-never-ran",
                f"dataset version {ref.dataset_version} has never run; land it with a marker first",
            )
        if not item.get("input_uri") or not item.get("data_digest"):
            raise Rejection(
                "version-record-incomplete",
                f"ledger item {ref.pk} lacks input_uri or data_digest; cannot re-run it",
            )
        details = {"request_id": request_id, **self._model_package(message)}
        if item.get("execution_arn"):
            details["rerun_of"] = str(item["execution_arn"])
        return self._retrain_on_request(
            reason,
            request_id,
            {
                "dataset_version": ref.dataset_version,
                "input_uri": item["input_uri"],
                "data_digest": item["data_digest"],
            },
            trigger=f"{reason}-version",
            details=details,
            pinned=True,
        )

    def _model_package(self, message: Mapping[str, Any]) -> dict[str, str]:
        """`{"model_package_arn": ...}` of a retrain request that names a package, else {}."""
        arn = message.get("model_package_arn")
        if arn is None:
            return {}
        if not self.config.model_package_parameter:
            raise Rejection(
                "model-package-not-accepted",
                f"pipeline {self.config.pipeline_name} takes no model package: "
                "model_package_arn goes to the evaluation trigger",
            )
        if not isinstance(arn, str) or not _MODEL_PACKAGE_ARN.match(arn):
            raise Rejection(
                "malformed-retrain-request",
                "model_package_arn must be a versioned model package ARN "
                f"(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<n>), got "
                f"{str(arn)[:100]!r}",
            )
        return {"model_package_arn": arn}

    def _version_ref(self, dataset_version: Any) -> VersionRef:
        parts = dataset_version.split("/") if isinstance(dataset_version, str) else []
        if (
            len(parts) != 2
            or any(p in ("", ".", "..") for p in parts)
            or len(dataset_version) > MAX_PARAMETER_LENGTH
        ):
            raise Rejection(
                "malformed-retrain-request",
                f"{ACTION_RETRAIN_VERSION} needs 'dataset_version' as '<dataset>/<version>' "
                f"(as under {self.config.landing_prefix}), got {str(dataset_version)[:100]!r}",
            )
        return VersionRef(self.config.data_bucket, self.config.landing_prefix, *parts)

    def _retrain_on_request(
        self,
        reason: str,
        request_id: str,
        target: dict[str, Any],
        *,
        trigger: str,
        details: dict[str, Any],
        pinned: bool = False,
    ) -> Outcome:
        """Start the one run of request `RETRAIN#<reason>#<request_id>` on `target` (a record
        with dataset_version, input_uri, data_digest); a repeated request is a duplicate.

        `pinned`: the request names its version, so an id already used for another version is
        rejected rather than answered with that version's run.
        """
        pk = ledger_items.retrain_key(reason, request_id)
        item = self.ledger.get(pk)
        status = item.get("status") if item else None
        used_for = item.get("dataset_version") if item else None
        if pinned and used_for and used_for != target["dataset_version"]:
            raise Rejection(
                "request-id-reused",
                f"request id {request_id!r} was already used for dataset version {used_for} "
                f"(execution {item.get('execution_arn') if item else None}); use a new one",
            )
        if status == ledger_items.STATUS_STARTED and item:
            self._record_retrain_run(item)
            return Outcome(
                Kind.DUPLICATE,
                "retrain-already-started",
                f"retrain request {request_id!r} already started an execution",
                dataset_version=item.get("dataset_version"),
                execution_arn=item.get("execution_arn"),
                trigger=trigger,
            )
        generation = int(item.get("generation", 1)) if item else 1
        return self._start_retrain(
            pk,
            item,
            generation,
            target,
            trigger=trigger,
            ttl_seconds=ledger_items.RETRAIN_ITEM_TTL_SECONDS,
            details=details,
        )

    def _on_alarm(self, message: dict[str, Any]) -> Outcome:
        data = message.get("detail") if "detail" in message else message.get("alarmData")
        try:
            alarm = CloudWatchAlarmData(data if isinstance(data, dict) else {})
            name, state = alarm.alarm_name, alarm.state.value
        except (KeyError, TypeError) as error:
            raise Rejection(
                "malformed-alarm-event", f"alarm event lacks alarmName or state.value ({error})"
            ) from error
        if state != "ALARM":
            return Outcome(
                Kind.SKIPPED,
                f"alarm-state-{str(state).lower()}",
                f"alarm {name!r} moved to {state}; only ALARM retrains",
                trigger="alarm",
            )
        pointer = self.ledger.get(ledger_items.latest_key())
        if not pointer or "dataset_version" not in pointer:
            return Outcome(
                Kind.SKIPPED,
                "no-complete-version",
                f"alarm {name!r} fired but no dataset version has been started yet",
                trigger="alarm",
            )
        now, cooldown = self.now(), self.config.retrain_cooldown_seconds
        item = self.ledger.get(ledger_items.ALARM_RETRAIN_KEY)
        if (
            item
            and item.get("status") == ledger_items.STATUS_STARTED
            and int(item.get("started_at", 0)) > int(pointer.get("last_run_started_at", 0))
        ):
            self._record_retrain_run(item)  # the alarm run's own record_run had failed
        last = max(
            int(pointer.get("last_run_started_at", 0)),
            int(item.get("started_at", 0)) if item else 0,
        )
        if last and now - last < cooldown:
            return Outcome(
                Kind.SKIPPED,
                "cooldown",
                f"alarm {name!r} fired {now - last} s after the last run started; "
                f"RETRAIN_COOLDOWN_SECONDS={cooldown}",
                trigger="alarm",
                details={"alarm_name": name},
            )
        generation, previous = 1, None
        if item and item.get("status") == ledger_items.STATUS_STARTED:
            generation = int(item.get("generation", 1)) + 1
            previous = {
                "generation": int(item.get("generation", 1)),
                "execution_arn": item.get("execution_arn"),
                "started_at": item.get("started_at"),
            }
        elif item:
            generation = int(item.get("generation", 1))
        return self._start_retrain(
            ledger_items.ALARM_RETRAIN_KEY,
            item,
            generation,
            pointer,
            trigger="alarm",
            previous=previous,
            details={"alarm_name": name},
        )

    def _start_retrain(
        self,
        pk: str,
        item: dict[str, Any] | None,
        generation: int,
        pointer: dict[str, Any],
        *,
        trigger: str,
        ttl_seconds: int | None = None,
        previous: dict[str, Any] | None = None,
        details: dict[str, Any],
    ) -> Outcome:
        taking_over = bool(item and item.get("status") == ledger_items.STATUS_STARTING)
        self._wait_for_live_claim(item, f"the {trigger} retrain")
        # A takeover re-sends exactly what the first attempt claimed (same token, same data).
        source = item if taking_over and item else pointer
        dataset_version = str(source["dataset_version"])
        if not taking_over:
            self._check_unchanged(dataset_version)
        parameters = {
            PARAM_INPUT_DATA_URI: str(source["input_uri"]),
            PARAM_DATASET_VERSION: dataset_version,
            PARAM_DATA_DIGEST: str(source["data_digest"]),
        }
        if details.get("model_package_arn"):
            parameters[self.config.model_package_parameter] = str(details["model_package_arn"])
        self._reserve_slot()
        champion = self._champion(item if taking_over else None)
        parameters.update(champion)
        attributes = {
            "dataset_version": dataset_version,
            "input_uri": parameters[PARAM_INPUT_DATA_URI],
            "data_digest": parameters[PARAM_DATA_DIGEST],
            "client_request_token": run_token(self.config.pipeline_name, pk, generation),
            "trigger": trigger,
            **{k: str(v) for k, v in details.items()},
            **self._champion_attribute(champion),
        }
        claim = self._claim(
            pk,
            item,
            f"the {trigger} retrain",
            generation=generation,
            attributes=attributes,
            previous_run=previous,
            ttl_seconds=ttl_seconds,
        )
        if not isinstance(claim, Claim):
            return Outcome(
                Kind.DUPLICATE,
                "started-concurrently",
                "another invocation started this retrain; started nothing",
                dataset_version=claim.get("dataset_version"),
                execution_arn=claim.get("execution_arn"),
                trigger=trigger,
            )
        dataset, _, version = dataset_version.partition("/")
        spec = RunSpec(
            parameters=parameters,
            display_name=display_name("retrain", trigger, dataset, version),
            description=(
                f"start-training: {trigger} retrain of dataset version {dataset_version} "
                f"({', '.join(f'{k}={v}' for k, v in details.items())}), "
                f"data digest {parameters[PARAM_DATA_DIGEST]}"
            ),
            trigger=trigger,
        )
        arn, started_at = self._start(claim, spec)
        self.ledger.record_run(arn, trigger, started_at)
        return Outcome(
            Kind.STARTED,
            trigger,
            f"started {trigger} retrain of {dataset_version}",
            dataset_version=dataset_version,
            execution_arn=arn,
            trigger=trigger,
            details=details,
        )

    # ---- plumbing -------------------------------------------------------------------------

    def _enqueue(self, message: Any, *, delay: int, deferrals: int) -> None:
        self.sqs.send_message(
            QueueUrl=self.config.queue_url,
            MessageBody=json.dumps(message),
            DelaySeconds=delay,
            MessageAttributes={
                DEFERRALS_ATTRIBUTE: {"DataType": "Number", "StringValue": str(deferrals)}
            },
        )

    def _report(self, outcome: Outcome) -> Outcome:
        """Log the decision and count it; every event ends here, none silently."""
        metrics.add_metric(name=METRIC_EVENTS, unit=MetricUnit.Count, value=1)
        fields = outcome.as_dict()
        del fields["message"]  # the log line's own message; LogRecord reserves the name
        if outcome.kind is Kind.REJECTED:
            logger.warning(f"rejected event: {outcome.message}", extra=fields)
            self._dimensioned_metric(METRIC_REJECTED, "Reason", outcome.reason)
        elif outcome.kind is Kind.PENDING:
            logger.debug(outcome.message, extra=fields)
        else:
            logger.info(outcome.message, extra=fields)
        if outcome.kind is Kind.STARTED:
            self._dimensioned_metric(METRIC_STARTED, "Trigger", outcome.trigger or "data")
        elif outcome.kind is Kind.SKIPPED:
            self._dimensioned_metric(METRIC_RETRAINS_SKIPPED, "Reason", outcome.reason)
        elif outcome.kind is Kind.DUPLICATE:
            metrics.add_metric(name=METRIC_DUPLICATES, unit=MetricUnit.Count, value=1)
        elif outcome.kind is Kind.LATE:
            metrics.add_metric(name=METRIC_LATE, unit=MetricUnit.Count, value=1)
        elif outcome.kind is Kind.REUPLOAD_IGNORED:
            metrics.add_metric(name=METRIC_REUPLOADS_IGNORED, unit=MetricUnit.Count, value=1)
        elif outcome.kind is Kind.DEFERRED:
            metrics.add_metric(name=METRIC_DEFERRED, unit=MetricUnit.Count, value=1)
        return outcome

    @staticmethod
    def _dimensioned_metric(name: str, dimension: str, value: str) -> None:
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=1,
            namespace=METRICS_NAMESPACE,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            metric.add_dimension(name=dimension, value=value)
