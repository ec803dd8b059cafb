"""One execution of a checked pipeline: steps in dependency order, each resolved against the
parameters, execution variables, earlier steps' properties and property files, then run by the
runner of its type (or taken from the cache); a Condition picks its branch, the other branch's
steps are not executed; the first failure stops the execution, as in SageMaker (the steps not
yet started never start).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline_code.local_pipeline import caching, control, processing, registry, training
from pipeline_code.local_pipeline.aws_stand_in import ACCOUNT
from pipeline_code.local_pipeline.bucket import S3UriError, join_uri
from pipeline_code.local_pipeline.definition import Pipeline, Step
from pipeline_code.local_pipeline.errors import StepError
from pipeline_code.local_pipeline.expressions import Scope, resolve
from pipeline_code.local_pipeline.jobs import RunContext, StepOutcome
from pipeline_code.local_pipeline.properties import PropertyPathError, lookup, parse_path

SUCCEEDED, FAILED = "Succeeded", "Failed"
NOT_EXECUTED, NOT_STARTED = "NotExecuted", "NotStarted"
EXECUTION_FAILURE = "Step failure: One or multiple steps failed."


@dataclass
class StepRecord:
    """One row of the step table."""

    name: str
    type: str
    status: str = NOT_STARTED
    seconds: float = 0.0
    cache: str = "-"
    reason: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class ExecutionResult:
    """How the execution ended."""

    pipeline: str
    execution_id: str
    status: str
    steps: list[StepRecord]
    parameters: dict[str, Any]
    failure_reason: str = ""
    decisions: dict[str, control.Decision] = field(default_factory=dict)
    failed_step: str = ""
    #: Each step's properties (its Describe* response), as later steps read them.
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The property files read, by "<step>.<PropertyFileName>" (e.g. Evaluate's evaluation.json).
    property_files: dict[str, Any] = field(default_factory=dict)

    def record(self, name: str) -> StepRecord:
        return next(r for r in self.steps if r.name == name)


class Execution:
    """Runs `pipeline` once in `context` (see module docstring)."""

    def __init__(
        self,
        pipeline: Pipeline,
        parameters: dict[str, Any],
        context: RunContext,
        cache: caching.CacheIndex,
        use_cache: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self.context = context
        self.cache = cache
        self.use_cache = use_cache
        region, name = context.world.region, pipeline.name
        started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        pipeline_arn = f"arn:aws:sagemaker:{region}:{ACCOUNT}:pipeline/{name.lower()}"
        self.scope = Scope(
            parameters,
            {
                "PipelineExecutionId": context.execution_id,
                "PipelineExecutionArn": f"{pipeline_arn}/execution/{context.execution_id}",
                "PipelineName": name,
                "PipelineArn": pipeline_arn,
                "StartDateTime": started,
                "CurrentDateTime": started,
            },
            read_property_file=self._property_file,
        )
        self.property_files: dict[tuple[str, str], Any] = {}
        self.result = ExecutionResult(
            name,
            context.execution_id,
            "Executing",
            [StepRecord(s.name, s.type) for s in pipeline.steps.values()],
            parameters,
        )
        self.scope.properties = self.result.properties

    def run(self) -> ExecutionResult:
        for name in self.pipeline.order:
            step, record = self.pipeline.steps[name], self.result.record(name)
            if self.result.failed_step:
                break
            if not self._reached(step):
                record.status = NOT_EXECUTED
                continue
            if step.body.get("RetryPolicies"):
                record.notes.append("RetryPolicies are not applied locally: a failure is final")
            self.context.progress(f"{name} ({step.type}) started")
            started = time.perf_counter()
            try:
                self._run_step(step, record)
                record.status = SUCCEEDED
            except StepError as error:
                record.status, record.reason = FAILED, error.reason
                if error.log is not None:
                    record.notes.append(f"log: {error.log}")
                self.result.failed_step = name
            record.seconds = time.perf_counter() - started
            self.context.progress(_finished_line(record))
        failed = bool(self.result.failed_step)
        self.result.property_files = {f"{s}.{n}": v for (s, n), v in self.property_files.items()}
        self.result.status = FAILED if failed else SUCCEEDED
        self.result.failure_reason = EXECUTION_FAILURE if failed else ""
        (self.context.run_dir / "execution.json").write_text(
            json.dumps(asdict(self.result), indent=2, default=str) + "\n", encoding="utf-8"
        )
        return self.result

    def _reached(self, step: Step) -> bool:
        """False for a step in the branch its Condition did not take, or after such a step."""
        if step.condition is not None:
            decision = self.result.decisions.get(step.condition)
            if decision is None or (step.branch == "IfSteps") != decision.outcome:
                return False
        return all(
            self.result.record(d).status == SUCCEEDED for d in self.pipeline.dependencies[step.name]
        )

    def _run_step(self, step: Step, record: StepRecord) -> None:
        self.scope.execution["CurrentDateTime"] = (
            datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        if step.type == "Condition":
            arguments = {
                k: v for k, v in step.arguments.items() if k not in ("IfSteps", "ElseSteps")
            }
            decision = control.run_condition(arguments, self.scope, step.name)
            self.result.decisions[step.name] = decision
            self.scope.properties[step.name] = {"Outcome": decision.outcome}
            return
        if step.type == "Fail":
            message = control.fail_message(step.arguments, self.scope, step.name)
            raise StepError(step.name, message)
        request = resolve(step.arguments, self.scope, step.name)
        if step.type == "RegisterModel":
            outcome = registry.register(step.name, request, self.context)
        else:
            outcome = self._cached_or_run(step, request, record)
        self.scope.properties[step.name] = outcome.properties
        record.notes += outcome.notes
        self._load_property_files(step)

    def _cached_or_run(
        self, step: Step, request: dict[str, Any], record: StepRecord
    ) -> StepOutcome:
        config = step.cache_config
        if not caching.enabled(config):
            record.cache = "off"
            return self._run_job(step, request)
        assert config is not None
        key = caching.cache_key(self.pipeline.name, step.name, step.type, request)
        entry = self.cache.lookup(self.pipeline.name, step.name, key, config)
        if entry is not None and self.use_cache:
            record.cache = f"hit ({entry.execution_id})"
            return StepOutcome(entry.properties, entry.outputs)
        record.cache = f"miss, would hit ({entry.execution_id})" if entry else "miss"
        outcome = self._run_job(step, request)
        self.cache.record(
            self.pipeline.name,
            step.name,
            caching.CacheEntry(
                key, self.context.execution_id, time.time(), outcome.properties, outcome.outputs
            ),
        )
        return outcome

    def _run_job(self, step: Step, request: dict[str, Any]) -> StepOutcome:
        if step.type == "Processing":
            isolated = bool(request.get("NetworkConfig", {}).get("EnableNetworkIsolation", False))
            return processing.run_processing(step.name, request, isolated, self.context)
        return training.run_training(step.name, request, self.context)

    def _load_property_files(self, step: Step) -> None:
        """Read the step's property files now: a missing or invalid one fails this step."""
        for declared in step.property_files:
            name, output = declared["PropertyFileName"], declared["OutputName"]
            try:
                base = lookup(
                    self.scope.properties[step.name],
                    parse_path(f"ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"),
                )
                uri = join_uri(base, declared["FilePath"])
                path = self.context.s3.path(uri)
            except (PropertyPathError, S3UriError) as error:
                raise StepError(step.name, f"property file {name}: {error}") from error
            if not path.is_file():
                raise StepError(
                    step.name,
                    f"property file {name}: {uri} does not exist (output {output!r}, FilePath "
                    f"{declared['FilePath']!r}); the job did not write it",
                )
            try:
                self.property_files[(step.name, name)] = json.loads(
                    path.read_text(encoding="utf-8")
                )
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise StepError(
                    step.name, f"property file {name}: {uri} is not JSON: {error}"
                ) from error

    def _property_file(self, step: str, name: str) -> Any:
        if (step, name) not in self.property_files:
            raise StepError(step, f"property file {name} was not read (the step did not succeed)")
        return self.property_files[(step, name)]


def _finished_line(record: StepRecord) -> str:
    cache = f", cache {record.cache}" if record.cache != "-" else ""
    if record.status == FAILED:
        return f"{record.name} failed after {record.seconds:.1f} s{cache}: {record.reason}"
    return f"{record.name} succeeded in {record.seconds:.1f} s{cache}"
