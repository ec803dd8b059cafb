"""One pipeline execution as an MLflow run: what the steps wrote (`ExecutionRecord`), turned into
the run's parameters, metrics, tags and artifacts (`run_content`). Pure: no I/O.

Naming (what `mlops runs compare` and the README rely on):

- params: every pipeline parameter of the execution under its pipeline name (`NumRound`,
  `DatasetVersion`, `ChampionModelPackageArn`, ...), and the gate's settings as `gate.<key>`
  (`gate.metric`, `gate.floor`, `gate.tolerance`, `gate.method`, `gate.min_positives`).
- metrics: `challenger.<metric>` (every test row) and `champion.<metric>` (only when the champion
  was scored on every test row; else tag `mlops.champion_rows` says why) with `.std` and the
  normal 95 % interval `.ci95_low` / `.ci95_high` (value +- 1.96 standard deviations of the
  bootstrap, clipped to the metric's range, none when the deviation is 0); the paired numbers
  the gate compared, `gate.challenger`, `gate.champion` and `gate.compared_rows`;
  the gate's `gate.delta`, `gate.standard_error`, `gate.delta.lower_97_5` and
  `gate.delta.upper_97_5` (together the two-sided 95 % interval of the delta the gate used),
  `gate.test_rows`; every number of `calibration` (`calibration.<key>`) and the split's row
  counts (`split.rows`, `split.fraction.<split>`). All at the execution's end time, step 0, so
  logging the same execution twice writes the same values.
- tags: `mlops.execution_arn` (the idempotency key), `mlops.pipeline`, `mlops.status`,
  `mlops.gate_decision`, `mlops.gate_reason`, `mlops.model_package_arn`,
  `mlops.dataset_version`, `mlops.data_digest`, `mlops.code_commit`, `mlops.code.<Step>` (the
  content hashes of each step's uploaded code), `mlops.failure_reason`, and
  `mlops.artifact.<name>`: where each artifact is in our bucket (`s3://...`, the step's output).
- artifacts: `evaluation.json`, `split_report.json` and the evaluation's plots (`*.png`),
  copied into the run only when the server's artifact store is ours (managed mode; an external
  server's store is not writable by us: its runs keep the `mlops.artifact.<name>` links).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trials import Tuning

EXECUTION_TAG = "mlops.execution_arn"
# Set last, just before the run is marked finished: a run without it was interrupted.
COMPLETE_TAG = "mlops.logged"
PACKAGE_TAG = "mlops.model_package_arn"
ARTIFACT_TAG_PREFIX = "mlops.artifact."
# A run retired as the duplicate of another (concurrent deliveries): the winner's run id.
DUPLICATE_TAG = "mlops.duplicate_of"
# The tag the model package gets: the MLflow run that logged the execution that registered it.
PACKAGE_RUN_TAG = "mlflow-run-id"
PARAMETER_DATASET_VERSION = "DatasetVersion"
PARAMETER_DATA_DIGEST = "DataDigest"
PARAMETER_CODE_COMMIT = "CodeCommit"
# Pipeline execution status -> MLflow run status.
RUN_STATUS = {"Succeeded": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
GATE_SETTINGS = ("metric", "floor", "tolerance", "method", "min_positives")
GATE_NUMBERS = {
    "delta": "gate.delta",
    "standard_error": "gate.standard_error",
    "lower_97_5": "gate.delta.lower_97_5",
    "upper_97_5": "gate.delta.upper_97_5",
    "test_rows": "gate.test_rows",
    "test_positives": "gate.test_positives",
}
Z_95 = 1.959963984540054
# Where a metric can lie: its interval is clipped to it (unlisted: unbounded).
UNIT = (0.0, 1.0)
# Binary, multiclass (pipeline_code/steps/evaluate/metrics_multiclass.py) and regression
# (metrics_regression.py): shares and F-scores in [0, 1], errors at least 0, r2 at most 1.
ERROR = (0.0, math.inf)
METRIC_RANGES = {
    **dict.fromkeys(("auc", "accuracy", "precision", "recall", "f1"), UNIT),
    **dict.fromkeys(("macro_f1", "weighted_f0_5", "weighted_f1", "weighted_f2"), UNIT),
    **dict.fromkeys(("weighted_recall", "weighted_precision"), UNIT),
    **dict.fromkeys(("log_loss", "rmse", "mae", "mse"), ERROR),
    "r2": (-math.inf, 1.0),
}
# MLflow's limits: a param value at most 6000 characters, a tag value 8000.
PARAM_MAX = 6000
TAG_MAX = 8000


@dataclass(frozen=True)
class ExecutionRecord:
    """What one finished execution of a pipeline left behind."""

    pipeline_name: str
    execution_arn: str
    status: str
    start_ms: int
    end_ms: int
    parameters: Mapping[str, str] = field(default_factory=dict)
    evaluation: Mapping[str, Any] | None = None
    split_report: Mapping[str, Any] | None = None
    plots: Mapping[str, bytes] = field(default_factory=dict)
    step_code: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    model_package_arn: str | None = None
    failure_reason: str | None = None
    # artifact name (as in RunContent.artifacts) -> its s3:// URI in our bucket
    artifact_sources: Mapping[str, str] = field(default_factory=dict)
    # the Train step's tuning job and its trials (trials.py), when the step tuned
    tuning: Tuning | None = None

    @property
    def run_name(self) -> str:
        """`<execution id>` (the last part of the ARN), unique within the pipeline."""
        return self.execution_arn.rsplit("/", 1)[-1]

    @property
    def run_status(self) -> str:
        return RUN_STATUS.get(self.status, "FAILED")


@dataclass(frozen=True)
class RunContent:
    params: dict[str, str]
    metrics: list[dict[str, Any]]
    tags: dict[str, str]
    artifacts: dict[str, bytes]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _interval(name: str, value: float, spread: float) -> Iterator[tuple[str, float]]:
    """value +- 1.96 spread, clipped to the metric's range; none without a spread (0: fewer than
    two bootstrap replicates, no interval to speak of)."""
    if spread <= 0:
        return
    low, high = METRIC_RANGES.get(name.rsplit(".", 1)[-1], (-math.inf, math.inf))
    yield f"{name}.ci95_low", max(low, value - Z_95 * spread)
    yield f"{name}.ci95_high", min(high, value + Z_95 * spread)


def _model_metrics(evaluation: Mapping[str, Any], role: str) -> Iterator[tuple[str, float]]:
    """`<role>.<metric>` and its spread, for every `{value, standard_deviation}` entry of the
    evaluation's `*_metrics` section of that role (the champion's start with `champion_`)."""
    for section, metrics in evaluation.items():
        is_champion = section.startswith("champion_")
        if not section.endswith("_metrics") or not isinstance(metrics, Mapping):
            continue
        if is_champion != (role == "champion"):
            continue
        for name, entry in metrics.items():
            if not isinstance(entry, Mapping):
                continue
            value = _number(entry.get("value"))
            if value is None:
                continue
            yield f"{role}.{name}", value
            spread = _number(entry.get("standard_deviation"))
            if spread is not None:
                yield f"{role}.{name}.std", spread
                yield from _interval(f"{role}.{name}", value, spread)


def _all_rows_compared(gate: Mapping[str, Any]) -> bool:
    """The champion was scored on every test row: its block pairs with the challenger's."""
    compared = _number((gate.get("comparison") or {}).get("rows"))
    return compared is not None and compared == _number(gate.get("test_rows"))


def _has_champion_metrics(evaluation: Mapping[str, Any]) -> bool:
    """The evaluation scored a champion: a non-empty `champion_<problem>_metrics` section
    (binary, multiclass or regression)."""
    return any(
        key.startswith("champion_") and key.endswith("_metrics") and bool(section)
        for key, section in evaluation.items()
    )


def _gate_pair(gate: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    """The paired numbers the gate compared: both models on the same rows (`gate.challenger`
    is the challenger on the compared rows, which may be fewer than its test split)."""
    comparison = gate.get("comparison") or {}
    challenger = _number(comparison.get("challenger"))
    if challenger is None:
        challenger = _number(gate.get("challenger"))
    for name, value in (
        ("gate.challenger", challenger),
        ("gate.champion", _number(gate.get("champion"))),
        ("gate.compared_rows", _number(comparison.get("rows"))),
    ):
        if value is not None:
            yield name, value


def _evaluation_metrics(evaluation: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    gate = evaluation.get("gate") or {}
    yield from _model_metrics(evaluation, "challenger")
    if _all_rows_compared(gate):  # else it is on fewer rows than challenger.*: gate.* pairs
        yield from _model_metrics(evaluation, "champion")
    yield from _gate_pair(gate)
    for key, name in GATE_NUMBERS.items():
        value = _number(gate.get(key))
        if value is not None:
            yield name, value
    for key, raw in (evaluation.get("calibration") or {}).items():
        value = _number(raw)
        if value is not None:
            yield f"calibration.{key}", value


def _split_metrics(report: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    rows = _number((report.get("input") or {}).get("rows"))
    if rows is not None:
        yield "split.rows", rows
    for split, raw in (report.get("fractions") or {}).items():
        value = _number(raw)
        if value is not None:
            yield f"split.fraction.{split}", value


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text[:limit]


def run_content(record: ExecutionRecord) -> RunContent:
    """The run's parameters, metrics, tags and artifacts for `record` (see the module doc)."""
    evaluation = record.evaluation or {}
    gate = evaluation.get("gate") or {}
    params = {name: _text(value, PARAM_MAX) for name, value in sorted(record.parameters.items())}
    for key in GATE_SETTINGS:
        if gate.get(key) is not None:
            params[f"gate.{key}"] = _text(gate[key], PARAM_MAX)

    numbers = dict(_evaluation_metrics(evaluation))
    numbers.update(_split_metrics(record.split_report or {}))
    metrics = [
        {"key": key, "value": value, "timestamp": record.end_ms, "step": 0}
        for key, value in sorted(numbers.items())
    ]

    tags = {
        EXECUTION_TAG: record.execution_arn,
        "mlops.pipeline": record.pipeline_name,
        "mlops.status": record.status,
    }
    for tag, parameter in (
        ("mlops.dataset_version", PARAMETER_DATASET_VERSION),
        ("mlops.data_digest", PARAMETER_DATA_DIGEST),
        ("mlops.code_commit", PARAMETER_CODE_COMMIT),
    ):
        if record.parameters.get(parameter):
            tags[tag] = record.parameters[parameter]
    if gate.get("decision"):
        tags["mlops.gate_decision"] = str(gate["decision"])
    compared = (gate.get("comparison") or {}).get("rows")
    if _has_champion_metrics(evaluation) and not _all_rows_compared(gate):
        tags["mlops.champion_rows"] = (
            f"the champion scored {compared} of {gate.get('test_rows')} test rows: champion.* "
            "not logged, compare gate.challenger with gate.champion (same rows)"
        )
    if gate.get("reason"):
        tags["mlops.gate_reason"] = _text(gate["reason"], TAG_MAX)
    if record.model_package_arn:
        tags[PACKAGE_TAG] = record.model_package_arn
    if record.failure_reason:
        tags["mlops.failure_reason"] = _text(record.failure_reason, TAG_MAX)
    for step, hashes in sorted(record.step_code.items()):
        tags[f"mlops.code.{step}"] = ",".join(hashes)
    for name, uri in sorted(record.artifact_sources.items()):
        tags[f"{ARTIFACT_TAG_PREFIX}{name}"] = _text(uri, TAG_MAX)

    artifacts: dict[str, bytes] = {}
    if record.evaluation is not None:
        artifacts["evaluation.json"] = json.dumps(record.evaluation, indent=2).encode()
    if record.split_report is not None:
        artifacts["split_report.json"] = json.dumps(record.split_report, indent=2).encode()
    artifacts.update({f"plots/{name}": content for name, content in sorted(record.plots.items())})
    return RunContent(params=params, metrics=metrics, tags=tags, artifacts=artifacts)
