"""Completing a dataset version and starting its run: object and marker events, the
quiet-period checks, and the re-upload rules (dataset_trigger's "Producer contract")."""

from __future__ import annotations

import json
from typing import Any

import dataset_completion as completion
import dataset_ledger as ledger_items
from dataset_completion import CompletionError, S3Object
from dataset_ledger import Claim
from dataset_versions import VersionRef, locate_version, version_ref
from trigger_config import COMPLETION_MODE_QUIET, MAX_SQS_DELAY_SECONDS
from trigger_events import ACTION_QUIET_CHECK, ObjectEvent, parse_object_event
from trigger_outcomes import Deferral, Kind, Outcome, Rejection, logger
from trigger_runs import RunSpec, RunStarter, display_name, run_parameters, run_token
from version_manifest import DIGEST_FORMAT


class VersionStarts(RunStarter):
    """Starts the one run of each completed dataset version."""

    _check_due: dict[str, int]  # RunStarter's; mypy sees the Lambda's own modules as Any

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

    def _already_started(
        self,
        item: dict[str, Any],
        ref: VersionRef,
        reason: str,
        message: str,
        *,
        key: str | None = None,
    ) -> Outcome:
        """A duplicate of a started version: re-apply its idempotent records (a write that
        failed after the start is repaired this way) and start nothing."""
        self._record_version_run(item)
        return Outcome(
            Kind.DUPLICATE,
            reason,
            message,
            dataset_version=ref.dataset_version,
            key=key,
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
            return self._already_started(
                item,
                ref,
                "redelivered-marker",
                "marker event already processed; started nothing",
                key=event.key,
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
        ref = version_ref(self.config, dataset, version)
        self._check_due.pop(ref.pk, None)
        item = self.ledger.get(ref.pk)
        if (
            item
            and item.get("status") == ledger_items.STATUS_STARTED
            and not self.config.allow_reupload
        ):
            return self._already_started(
                item,
                ref,
                "version-already-started",
                "quiet-period check for a version that already started; nothing to do",
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
            contents = self._contents(ref, listing, completed_by, item)
        except CompletionError as error:
            return Outcome(
                Kind.REJECTED, error.reason, error.message, dataset_version=ref.dataset_version
            )
        status = item.get("status") if item else None
        generation, previous, trigger = 1, None, "data"
        if item and status == ledger_items.STATUS_STARTED:
            if self._same_content(item, contents):
                return self._already_started(
                    item,
                    ref,
                    "same-content",
                    "version already started with identical content; started nothing",
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
                "manifest sha256 values not verified here: S3 stores no full-object SHA-256 "
                "for these objects (upload with --checksum-algorithm SHA256 to check them at "
                "once); the pipeline's input check recomputes them",
                extra={
                    "dataset_version": ref.dataset_version,
                    "files": contents.unverified_checksums,
                },
            )
        parameters = run_parameters(ref.input_uri, ref.dataset_version, contents.data_digest)
        parameters.update(
            self._production(item if status == ledger_items.STATUS_STARTING else None)
        )
        self._reserve_slot()
        manifest_uri = self._write_manifest(contents)
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
            "digest_format": DIGEST_FORMAT,
            "version_manifest": manifest_uri,
            "identities": contents.identity_counts(),
            "client_request_token": token,
            "trigger": trigger,
            **self._champion_attribute(parameters),
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
            if not self._same_content(claim, contents):
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
            details={
                "generation": generation,
                "files": len(contents.files),
                "identities": contents.identity_counts(),
            },
        )
