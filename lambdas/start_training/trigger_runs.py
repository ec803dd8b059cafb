"""Starting a claimed run: pipeline parameters, the concurrency cap, the production model
(production_model), the claim -> StartPipelineExecution -> STARTED sequence, and the records
written after a start.

`RunStarter` holds the clients and the per-invocation state; the version and retrain paths
(trigger_versions, trigger_retrains) build on it.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dataset_completion as completion
import dataset_ledger as ledger_items
import dataset_names as names
import production_model
import version_manifest
from botocore.exceptions import BotoCoreError, ClientError
from dataset_completion import S3Object, VersionContents
from dataset_ledger import Claim, Conflict, Ledger
from dataset_versions import VersionRef
from trigger_config import TriggerConfig
from trigger_events import DEFERRALS_ATTRIBUTE
from trigger_outcomes import Deferral, Rejection, logger
from version_manifest import DIGEST_FORMAT

# Pipeline parameter names: the pipeline definition generator declares the same names.
PARAM_INPUT_DATA_URI = "InputDataUri"
PARAM_DATASET_VERSION = "DatasetVersion"
PARAM_DATA_DIGEST = "DataDigest"
# The champion parameter's value when nothing is served (evaluate.py's NO_CHAMPION), and the
# ledger attribute that records the production model a claim started with.
NO_CHAMPION = production_model.NO_CHAMPION
CHAMPION_ATTRIBUTE = "champion_model_package_arn"

PIPELINE_EXECUTION_TIME_LIMIT_SECONDS = 672 * 3600
RUNNING_STATUSES = frozenset({"Executing", "Stopping"})
MAX_PARAMETER_LENGTH = 1024
_DISPLAY_NAME_LENGTH = 82
# HeadObject calls in flight while a version's objects are identified (content_identity).
LOOKUP_WORKERS = 32


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


def run_parameters(input_uri: str, dataset_version: str, data_digest: str) -> dict[str, str]:
    """The parameters every run gets; `DatasetVersion` carries the name's label
    (dataset_names), the raw name stays in `InputDataUri`. Raises Rejection for a name a run
    cannot carry (a version recorded before names were checked)."""
    dataset, _, version = dataset_version.partition("/")
    names.check_name("dataset", dataset)
    names.check_name("version", version)
    names.check_lengths(dataset_version, input_uri)
    return {
        PARAM_INPUT_DATA_URI: input_uri,
        PARAM_DATASET_VERSION: names.label(dataset_version),
        PARAM_DATA_DIGEST: data_digest,
    }


@dataclass(frozen=True)
class RunSpec:
    """What one StartPipelineExecution call needs."""

    parameters: dict[str, str]
    display_name: str
    description: str
    trigger: str


class RunStarter:
    """Claims and starts runs; all AWS clients are injected.

    `s3`, `sagemaker`, `sqs`, `cloudformation` (DescribeStacks of the Serving stack; None when
    SERVING_STACK_NAME is not set) are boto3 clients, `table` a boto3 DynamoDB Table resource,
    `clock` returns epoch seconds (default time.time), `lookup_workers` how many checksum
    lookups run at once when a version completes (default 32; 1 runs them in order).
    """

    def __init__(
        self,
        config: TriggerConfig,
        *,
        s3: Any,
        sagemaker: Any,
        sqs: Any,
        table: Any,
        cloudformation: Any = None,
        clock: Callable[[], float] = time.time,
        lookup_workers: int = LOOKUP_WORKERS,
    ) -> None:
        self.config = config
        self.lookup_workers = lookup_workers
        self.s3 = s3
        self.sagemaker = sagemaker
        self.sqs = sqs
        self.cloudformation = cloudformation
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

    # ---- what a version contains ---------------------------------------------------------

    def _contents(
        self,
        ref: VersionRef,
        listing: list[S3Object],
        completed_by: str,
        item: Mapping[str, Any] | None,
    ) -> VersionContents:
        """The version's contents (raises CompletionError); object versions that `item`'s
        version manifest already identifies are not looked up again."""
        return completion.version_contents(
            self.s3,
            ref.bucket,
            listing,
            completed_by=completed_by,
            known=version_manifest.known_identities(self._recorded_manifest(item)),
            workers=self.lookup_workers,
        )

    def _recorded_manifest(self, item: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The version manifest a ledger item's run was started with, if it has one."""
        if not item or item.get("digest_format") != DIGEST_FORMAT or not item.get("data_digest"):
            return None
        where = {"dataset_version": item.get("dataset_version"), "pk": item.get("pk")}
        try:
            doc = version_manifest.read(
                self.s3,
                self.config.manifest_bucket,
                self.config.manifest_prefix,
                str(item["data_digest"]),
            )
        except (ClientError, BotoCoreError):
            # Only a shortcut: without it the identities are looked up again.
            logger.exception("could not read the version manifest of a started run", extra=where)
            return None
        if doc is None:
            logger.warning(
                "the version manifest of a started run is missing or altered: that run cannot "
                "verify its inputs; identities are looked up again",
                extra=where,
            )
        return doc

    @staticmethod
    def _same_content(item: Mapping[str, Any], contents: VersionContents) -> bool:
        """Whether a ledger item recorded this content (in its own digest format)."""
        if item.get("digest_format") == DIGEST_FORMAT:
            return item.get("content_digest") == contents.content_digest
        return item.get("content_digest") == contents.legacy_content_digest

    def _write_manifest(self, contents: VersionContents) -> str:
        """Write the version manifest (write-once) before the run starts; its S3 URI."""
        try:
            return version_manifest.write(
                self.s3,
                self.config.manifest_bucket,
                self.config.manifest_prefix,
                contents.manifest(),
            )
        except version_manifest.ManifestConflict as conflict:
            raise Rejection("version-manifest-conflict", str(conflict)) from conflict

    # ---- claiming and starting ----------------------------------------------------------

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

    def _production(
        self, claimed: Mapping[str, Any] | None, requested: str | None = None
    ) -> dict[str, str]:
        """The parameters naming the run's production model (production_model): the one
        `claimed` (a STARTING item being taken over) started with, else the package the
        Serving stack serves now; `requested` a package the request named."""
        return production_model.model_parameters(
            self.cloudformation,
            self.config,
            claimed=claimed,
            requested=requested,
            attribute=CHAMPION_ATTRIBUTE,
        )

    def _champion_attribute(self, parameters: Mapping[str, str]) -> dict[str, str]:
        """The ledger attribute recording the production model a run starts with (nothing
        for a run that scores a package the request named)."""
        config = self.config
        if config.champion_parameter in parameters:
            return {CHAMPION_ATTRIBUTE: parameters[config.champion_parameter]}
        role = parameters.get(config.model_role_parameter) if config.model_role_parameter else None
        if config.model_package_parameter in parameters and role != production_model.ROLE_CANDIDATE:
            return {CHAMPION_ATTRIBUTE: parameters[config.model_package_parameter]}
        return {}

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

    def _enqueue(self, message: Any, *, delay: int, deferrals: int) -> None:
        self.sqs.send_message(
            QueueUrl=self.config.queue_url,
            MessageBody=json.dumps(message),
            DelaySeconds=delay,
            MessageAttributes={
                DEFERRALS_ATTRIBUTE: {"DataType": "Number", "StringValue": str(deferrals)}
            },
        )
