"""Estimate what one pipeline execution cost, from its jobs' instance types and billed seconds.

Per step with a job (ListPipelineExecutionSteps metadata):

* training (DescribeTrainingJob): BillableTimeInSeconds x InstanceCount x hourly rate / 3600.
  With managed spot training, BillableTimeInSeconds is already reduced by the spot discount, so
  the spot saving is (TrainingTimeInSeconds - BillableTimeInSeconds) x count x rate / 3600.
* processing (DescribeProcessingJob) and batch transform (DescribeTransformJob):
  (end - start) x InstanceCount x rate / 3600; a job still running counts until now.
* tuning (DescribeHyperParameterTuningJob, ListTrainingJobsForHyperParameterTuningJob): the
  sum of its trials, each priced as a training job above (instance-seconds summed).
* a cache hit ran no job and costs 0; what it saved is the estimate of the same step in the
  execution it reused (CacheHitResult.SourcePipelineExecutionArn), when that can be read.
* condition, fail and register steps run no instances.

Rates are on-demand USD per instance-hour from a pinned, region-aware table (cli/prices.json,
`regions.<region>.<training|processing|transform>.<instance type>`). Its `refresh` entry says
how to update it from the AWS Price List API; the CLI itself never calls the pricing API.
Storage, data transfer, S3 and Savings Plans are not included: this is an estimate of compute.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cli.aws import CliError, Ops, describe_aws_error
from cli.runs import Step, steps

PRICES_FILE = Path(__file__).resolve().parent / "prices.json"
SECONDS_PER_HOUR = 3600.0
MAX_CACHE_DEPTH = 3  # a cache hit's source is the execution that ran the job; follow a few


@dataclass(frozen=True)
class PriceTable:
    """On-demand rates per region, job kind and instance type (USD per instance-hour)."""

    regions: Mapping[str, Mapping[str, Mapping[str, float]]]
    compiled: str
    source: str
    path: Path

    @classmethod
    def load(cls, path: Path = PRICES_FILE) -> PriceTable:
        """Read and validate a price table; CliError naming the file and the problem."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            regions = raw["regions"]
            for region, kinds in regions.items():
                for kind, rates in kinds.items():
                    for instance_type, rate in rates.items():
                        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
                            raise ValueError(
                                f"regions.{region}.{kind}.{instance_type} = {rate!r} is not a "
                                "non-negative number"
                            )
        except (OSError, json.JSONDecodeError, KeyError, AttributeError, ValueError) as error:
            raise CliError(f"price table {path}: {error}") from error
        return cls(regions, str(raw.get("compiled", "?")), str(raw.get("source", "?")), path)

    def rate(self, region: str, kind: str, instance_type: str) -> float | None:
        """USD per instance-hour, or None when the table has no price for it."""
        rate = self.regions.get(region, {}).get(kind, {}).get(instance_type)
        return None if rate is None else float(rate)


@dataclass(frozen=True)
class JobUsage:
    """What a job ran on and for how long (seconds per instance)."""

    kind: str
    name: str
    status: str
    instance_type: str | None
    instance_count: int
    run_seconds: float
    billed_seconds: float
    spot: bool
    running: bool = False


@dataclass
class StepCost:
    step: str
    status: str
    kind: str | None
    usage: JobUsage | None = None
    rate: float | None = None
    cost: float = 0.0
    spot_savings: float = 0.0
    cache_source: str | None = None
    cache_saved: float | None = None
    note: str = ""


@dataclass
class CostReport:
    execution_arn: str
    region: str
    prices: PriceTable
    steps: list[StepCost] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(s.cost for s in self.steps)

    @property
    def spot_savings(self) -> float:
        return sum(s.spot_savings for s in self.steps)

    @property
    def cache_hits(self) -> list[StepCost]:
        return [s for s in self.steps if s.cache_source]

    @property
    def cache_saved(self) -> float:
        return sum(s.cache_saved or 0.0 for s in self.cache_hits)

    @property
    def cache_saved_unknown(self) -> int:
        return sum(1 for s in self.cache_hits if s.cache_saved is None)

    @property
    def unpriced(self) -> list[StepCost]:
        """Steps that ran a job the table has no price for (the total leaves them out)."""
        return [s for s in self.steps if s.usage is not None and s.rate is None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "execution_arn": self.execution_arn,
            "region": self.region,
            "currency": "USD",
            "prices": {"file": str(self.prices.path), "compiled": self.prices.compiled},
            "total": round(self.total, 6),
            "spot_savings": round(self.spot_savings, 6),
            "cache_hits": len(self.cache_hits),
            "cache_saved": round(self.cache_saved, 6),
            "cache_saved_unknown": self.cache_saved_unknown,
            "unpriced_steps": [s.step for s in self.unpriced],
            "steps": [
                {
                    "step": s.step,
                    "status": s.status,
                    "kind": s.kind,
                    "job": s.usage.name if s.usage else None,
                    "instance_type": s.usage.instance_type if s.usage else None,
                    "instance_count": s.usage.instance_count if s.usage else None,
                    "run_seconds": s.usage.run_seconds if s.usage else None,
                    "billed_seconds": s.usage.billed_seconds if s.usage else None,
                    "spot": s.usage.spot if s.usage else None,
                    "rate_per_hour": s.rate,
                    "cost": round(s.cost, 6),
                    "spot_savings": round(s.spot_savings, 6),
                    "cache_source": s.cache_source,
                    "cache_saved": None if s.cache_saved is None else round(s.cache_saved, 6),
                    "note": s.note,
                }
                for s in self.steps
            ],
        }


def _seconds(start: Any, end: Any, now: datetime) -> tuple[float, bool]:
    if not isinstance(start, datetime):
        return 0.0, False
    if isinstance(end, datetime):
        return max(0.0, (end - start).total_seconds()), False
    return max(0.0, (now - start).total_seconds()), True


def job_usage(sagemaker: Any, kind: str, arn: str, now: datetime) -> JobUsage:
    """Describe one job and return its instance type, count and billed seconds."""
    name = arn.rsplit("/", 1)[-1]
    if kind == "training":
        job = sagemaker.describe_training_job(TrainingJobName=name)
        resources = job.get("ResourceConfig", {})
        spot = bool(job.get("EnableManagedSpotTraining"))
        status = job.get("TrainingJobStatus", "?")
        run, running = _seconds(job.get("TrainingStartTime"), job.get("TrainingEndTime"), now)
        run = float(job.get("TrainingTimeInSeconds", run))
        # Billable time is set when the job ends; until then the on-demand time is all we know.
        billed = float(job.get("BillableTimeInSeconds", run))
        return JobUsage(
            kind,
            name,
            status,
            resources.get("InstanceType"),
            int(resources.get("InstanceCount", 1)),
            run,
            billed,
            spot,
            running and "BillableTimeInSeconds" not in job,
        )
    if kind == "processing":
        job = sagemaker.describe_processing_job(ProcessingJobName=name)
        cluster = job.get("ProcessingResources", {}).get("ClusterConfig", {})
        return _billed_for_its_run(kind, name, job, "Processing", cluster, now)
    if kind == "transform":
        job = sagemaker.describe_transform_job(TransformJobName=name)
        resources = job.get("TransformResources", {})
        return _billed_for_its_run(kind, name, job, "Transform", resources, now)
    raise ValueError(f"no usage for {kind} jobs")


def _billed_for_its_run(
    kind: str, name: str, job: dict[str, Any], field: str, resources: dict[str, Any], now: datetime
) -> JobUsage:
    """The usage of an on-demand job billed for its run: `<field>StartTime` to
    `<field>EndTime` (or to `now` while it runs), its status in `<field>JobStatus`."""
    run, running = _seconds(job.get(f"{field}StartTime"), job.get(f"{field}EndTime"), now)
    return JobUsage(
        kind,
        name,
        job.get(f"{field}JobStatus", "?"),
        resources.get("InstanceType"),
        int(resources.get("InstanceCount", 1)),
        run,
        run,
        False,
        running,
    )


def tuning_usage(sagemaker: Any, arn: str, now: datetime) -> tuple[JobUsage, str]:
    """A tuning job's usage: its trials' (training jobs') instance-seconds summed, as one job of
    one instance priced at the training rate; and a note naming the trials and the best."""
    name = arn.rsplit("/", 1)[-1]
    job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    paginator = sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job")
    trials = [
        summary["TrainingJobName"]
        for page in paginator.paginate(HyperParameterTuningJobName=name)
        for summary in page["TrainingJobSummaries"]
    ]
    usages = [job_usage(sagemaker, "training", trial, now) for trial in trials]
    types = {usage.instance_type for usage in usages}
    best = (job.get("BestTrainingJob") or {}).get("TrainingJobName")
    status = job.get("HyperParameterTuningJobStatus", "?")
    usage = JobUsage(
        "training",
        name,
        status,
        types.pop() if len(types) == 1 else None,
        1,
        sum(u.run_seconds * u.instance_count for u in usages),
        sum(u.billed_seconds * u.instance_count for u in usages),
        any(u.spot for u in usages),
        status == "InProgress" or any(u.running for u in usages),
    )
    note = f"tuning: {len(trials)} training jobs, instance-seconds summed"
    return usage, note + (f"; best {best}" if best else "")


class Estimator:
    """Estimates executions of one environment; caches source executions of cache hits."""

    def __init__(
        self, ops: Ops, prices: PriceTable, now: Callable[[], datetime] | None = None
    ) -> None:
        self.ops = ops
        self.prices = prices
        self.region = ops.config.region
        self.now = now or (lambda: datetime.now(UTC))
        self._source_steps: dict[str, dict[str, Step]] = {}

    def estimate(self, execution_arn: str) -> CostReport:
        report = CostReport(execution_arn, self.region, self.prices)
        for step in steps(self.ops, execution_arn):
            report.steps.append(self.step_cost(step, depth=0))
        return report

    def step_cost(self, step: Step, depth: int) -> StepCost:
        result = StepCost(step.name, step.status, step.job_kind)
        if step.cache_source:
            result.cache_source = step.cache_source
            result.note = "cache hit"
            result.cache_saved, problem = self._saved_by_cache(step, depth)
            if problem:
                result.note = f"cache hit; saving unknown: {problem}"
            return result
        if step.job_kind not in ("training", "processing", "transform", "tuning"):
            return result
        if not step.job_arn:
            return result
        try:
            sagemaker = self.ops.client("sagemaker")
            if step.job_kind == "tuning":
                usage, result.note = tuning_usage(sagemaker, step.job_arn, self.now())
            else:
                usage = job_usage(sagemaker, step.job_kind, step.job_arn, self.now())
        except ClientError as error:
            result.note = f"job not readable: {describe_aws_error(error)}"
            return result
        result.usage = usage
        if not usage.instance_type:
            result.note = "no single instance type (heterogeneous cluster): not estimated"
            return result
        result.rate = self.prices.rate(self.region, usage.kind, usage.instance_type)
        if result.rate is None:
            result.note = (
                f"no {usage.kind} price for {usage.instance_type} in {self.region} "
                f"({self.prices.path.name}): not in the total"
            )
            return result
        per_second = result.rate * usage.instance_count / SECONDS_PER_HOUR
        result.cost = usage.billed_seconds * per_second
        if usage.spot:
            result.spot_savings = max(0.0, usage.run_seconds - usage.billed_seconds) * per_second
        if usage.running:
            result.note = "; ".join(filter(None, ["still running: cost so far", result.note]))
        return result

    def _saved_by_cache(self, step: Step, depth: int) -> tuple[float | None, str | None]:
        source = step.cache_source or ""
        if depth >= MAX_CACHE_DEPTH:
            return None, "cache chain too long"
        try:
            if source not in self._source_steps:
                self._source_steps[source] = {s.name: s for s in steps(self.ops, source)}
        except (ClientError, CliError) as error:
            message = error.message if isinstance(error, CliError) else describe_aws_error(error)
            return None, message
        original = self._source_steps[source].get(step.name)
        if original is None:
            return None, f"step not found in {source}"
        cost = self.step_cost(original, depth + 1)
        if original.cache_source:
            return cost.cache_saved, None if cost.cache_saved is not None else cost.note
        if cost.usage is None or cost.rate is None:
            return None, cost.note or "source job not priced"
        return cost.cost, None
