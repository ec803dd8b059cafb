"""Retraining: scheduled and manual `retrain-latest`, `retrain-version` re-runs of one
version, and alarm-driven retrains with their cooldown (dataset_trigger's "Retraining")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dataset_ledger as ledger_items
import dataset_names as names
import production_model
from aws_lambda_powertools.utilities.data_classes.cloud_watch_alarm_event import (
    CloudWatchAlarmData,
)
from dataset_ledger import Claim
from dataset_versions import VersionRef
from retrain_inputs import RetrainInputs
from trigger_events import (
    ACTION_RETRAIN,
    ACTION_RETRAIN_VERSION,
    DEFAULT_VERSION_RERUN_REASON,
    MODEL_PACKAGE_ARN,
    retrain_request_key,
)
from trigger_outcomes import Kind, Outcome, Rejection, logger
from trigger_runs import (
    PARAM_DATA_DIGEST,
    PARAM_INPUT_DATA_URI,
    RunSpec,
    display_name,
    run_parameters,
    run_token,
)


class Retrains(RetrainInputs):
    """Starts new runs of versions that already ran."""

    # ---- retraining -------------------------------------------------------------------------

    def _on_retrain_request(self, message: dict[str, Any]) -> Outcome:
        """`retrain-latest`: a new run of the newest started version (of `dataset`, if given)."""
        reason, request_id = retrain_request_key(message, ACTION_RETRAIN, "schedule")
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
        reason, request_id = retrain_request_key(
            message, ACTION_RETRAIN_VERSION, DEFAULT_VERSION_RERUN_REASON
        )
        ref, item = self._named_version(message.get("dataset_version"))
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
        if not isinstance(arn, str) or not MODEL_PACKAGE_ARN.match(arn):
            raise Rejection(
                "malformed-retrain-request",
                "model_package_arn must be a versioned model package ARN "
                f"(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<n>), got "
                f"{str(arn)[:100]!r}",
            )
        return {"model_package_arn": arn}

    def _named_version(self, named: Any) -> tuple[VersionRef, dict[str, Any] | None]:
        """The version a request names and its ledger item. A version is named as landed;
        one with no ledger item under that name may be named by its DatasetVersion label
        (what `mlops runs`, tags and the registry show): the name as landed always wins."""
        ref = self._version_ref(named)
        item = self.ledger.get(ref.pk)
        try:
            landed = names.unlabel(ref.dataset_version)
        except ValueError:
            return ref, item
        if item is not None or landed == ref.dataset_version:
            return ref, item
        labelled = self._version_ref(landed)
        labelled_item = self.ledger.get(labelled.pk)
        if labelled_item is None:
            return ref, item
        logger.info(
            "retrain-version named the version by its DatasetVersion label",
            extra={"label": ref.dataset_version, "dataset_version": landed},
        )
        return labelled, labelled_item

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
        prefix = self.config.retrain_alarm_prefix
        if prefix and not str(name).startswith(prefix):
            raise Rejection(
                "foreign-alarm",
                f"alarm {name!r} is not one of this environment's retrain alarms (names "
                f"starting with {prefix!r})",
            )
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
        digest = str(source["data_digest"])
        if not taking_over:
            digest = self._retrain_data(dataset_version, digest)
        parameters = run_parameters(str(source["input_uri"]), dataset_version, digest)
        requested = details.get("model_package_arn")
        parameters.update(self._production(item if taking_over else None, requested))
        if not taking_over and self.config.champion_parameter:
            champion = parameters[self.config.champion_parameter]
            why = production_model.no_new_data(self.sagemaker, self.config, champion, parameters)
            if why:
                return Outcome(
                    Kind.SKIPPED,
                    "no-new-data",
                    why,
                    dataset_version=dataset_version,
                    trigger=trigger,
                    details=details,
                )
        self._reserve_slot()
        attributes = {
            "dataset_version": dataset_version,
            "input_uri": parameters[PARAM_INPUT_DATA_URI],
            "data_digest": parameters[PARAM_DATA_DIGEST],
            "client_request_token": run_token(self.config.pipeline_name, pk, generation),
            "trigger": trigger,
            **{k: str(v) for k, v in details.items()},
            **self._champion_attribute(parameters),
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
