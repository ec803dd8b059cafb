"""Start exactly one training-pipeline execution per dataset version landing in S3.

Producer contract
    Data lands under `s3://<DATA_BUCKET>/<LANDING_PREFIX><dataset>/<version>/` (any number of
    objects, sub-folders allowed). Keys are taken as EventBridge sends them, never URL-decoded;
    names a run cannot carry are refused before anything starts (dataset_names). The version
    is complete when

    - marker mode (COMPLETION_MODE=marker, default): `_SUCCESS` or `manifest.json` lands at the
      version root. On either marker the handler lists the prefix (ListObjectVersions: keys,
      sizes, ETags, version ids); if a `manifest.json` is present its rules apply (every
      listed file present with the listed size/ETag/SHA-256, nothing unlisted; format in
      dataset_completion). Data objects alone never start anything. Each data object's
      bytes are then identified by a checksum (content_identity: one HeadObject per object,
      only when a version completes).
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
    Per version: read the ledger item; complete the version (listing/manifest/identities/
    digest); write the version manifest (version_manifest, write-once); then a
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
    with ALLOW_REUPLOAD=true; the decision is logged either way. Content digests cover
    checksums, not ETags (SSE-KMS gives identical bytes new ETags), so identical bytes
    uploaded again are no change.

Pipeline parameters: InputDataUri (`s3://bucket/landing/<dataset>/<version>/`, raw),
    DatasetVersion (the label of `<dataset>/<version>`, safe for tags and model package
    metadata: dataset_names), DataDigest (version_manifest; the run's exact objects are in
    `s3://<MANIFEST_BUCKET>/<MANIFEST_PREFIX><DataDigest>.json`, which Prepare verifies its
    input against), and the production model (production_model): where CHAMPION_PARAMETER
    names it (the training pipeline), the package the Serving stack (SERVING_STACK_NAME)
    serves as the run starts, or "none"; where MODEL_PACKAGE_PARAMETER names it (the
    evaluation pipeline), that package with MODEL_ROLE_PARAMETER "production", unless the
    request named one ("candidate"). Fixed at the start and recorded with the claim (a
    takeover re-sends it), the champion is part of the Evaluate step's cache key: a cached
    evaluation is never one against a champion that has since been replaced. While the
    Serving stack is changing the start is deferred (`serving-unsettled`), as at the cap.

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
      its recorded DataDigest does not name. Identical bytes uploaded again are no change. A
      version that ran before version manifests existed gets one of its objects as they are
      now, and the retrain runs with its DataDigest (Prepare refuses a run without one).
    - A training retrain whose served package was trained on the same data, definition and
      parameters is skipped (`no-new-data`, RetrainsSkipped): it would register the same
      model again (production_model).
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

Modules (this one routes each message to its path)
    trigger_config     settings from the environment       trigger_events    message shapes
    dataset_versions   version references, key layout      trigger_outcomes  decisions, metrics
    trigger_runs       claim -> start -> record            trigger_versions  completing versions
    trigger_retrains   schedule, re-run, alarm retrains    dataset_names     names and labels
    dataset_completion what a version contains             content_identity  checksums of bytes
    version_manifest   digests and their record            dataset_ledger    the ledger
    production_model   the served package, no-new-data     served_package    the deployer's rule
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dataset_versions import VersionRef, locate_version
from trigger_config import (
    COMPLETION_MODE_MARKER,
    COMPLETION_MODE_QUIET,
    COMPLETION_MODES,
    ConfigError,
    TriggerConfig,
)
from trigger_events import (
    ACTION_QUIET_CHECK,
    ACTION_RETRAIN,
    ACTION_RETRAIN_VERSION,
    ALARM_DETAIL_TYPE,
    DEFERRALS_ATTRIBUTE,
    OBJECT_CREATED,
    REQUEST_REASON,
    S3_SOURCE,
    ObjectEvent,
    alarm_event_pattern,
    landing_event_pattern,
    parse_object_event,
    retrain_request_key,
)
from trigger_outcomes import METRICS_NAMESPACE, Deferral, Kind, Outcome, Rejection, report
from trigger_retrains import Retrains
from trigger_runs import NO_CHAMPION, RunSpec, display_name, run_token
from trigger_versions import VersionStarts

HANDOVER_DELAY_SECONDS = 60
# The names the handler, the CLI and the tests use, wherever they now live.
_REQUEST_REASON = REQUEST_REASON
_retrain_request_key = retrain_request_key
__all__ = [
    "ACTION_QUIET_CHECK",
    "ACTION_RETRAIN",
    "ACTION_RETRAIN_VERSION",
    "COMPLETION_MODES",
    "COMPLETION_MODE_MARKER",
    "COMPLETION_MODE_QUIET",
    "DEFERRALS_ATTRIBUTE",
    "METRICS_NAMESPACE",
    "NO_CHAMPION",
    "OBJECT_CREATED",
    "S3_SOURCE",
    "ClientError",
    "ConfigError",
    "DatasetTrigger",
    "Kind",
    "ObjectEvent",
    "Outcome",
    "RunSpec",
    "TriggerConfig",
    "VersionRef",
    "alarm_event_pattern",
    "display_name",
    "landing_event_pattern",
    "locate_version",
    "parse_object_event",
    "run_token",
]


class DatasetTrigger(VersionStarts, Retrains):
    """Decides, per event, whether to start the pipeline; all AWS clients are injected.

    `s3`, `sagemaker`, `sqs` are boto3 clients, `table` a boto3 DynamoDB Table resource,
    `clock` returns epoch seconds (default time.time).
    """

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

    @staticmethod
    def _report(outcome: Outcome) -> Outcome:
        return report(outcome)
