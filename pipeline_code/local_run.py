"""Run the training pipeline's step scripts end to end on this machine: no Docker, no AWS.

prepare -> train -> evaluate -> gate, with the very scripts the pipeline uploads, called
in-process with the arguments and `SM_*` variables the SageMaker containers would give them,
on a directory tree that mirrors the containers' (`<workdir>/<step>/opt/ml/...`).

    python -m pipeline_code.local_run                         # 20,000 bundled sample rows
    python -m pipeline_code.local_run --rows 1000000
    python -m pipeline_code.local_run --data my.csv --target label   # features inferred
    python -m pipeline_code.local_run --champion-model-dir .build/local-run/train/opt/ml/model

The schema, the metric floor and the champion tolerance come from the project configuration
(`cdk.json`, environment dev) unless given here. Exit code 0 when the pipeline ran (whether
or not the gate passed), 1 with a message naming the problem otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_code import sample_data
from pipeline_code.gate import GateDecision, gate_decision
from pipeline_code.schema_inference import SchemaInferenceError, infer_schema
from pipeline_code.steps import load

# The step scripts' mains and the modules whose names the run reads, imported as the containers
# import them.
STEP_MAINS = {step: load(step).main for step in ("prepare", "train", "evaluate")}
contract = load("evaluate", "evaluation_contract")
quality_metrics = load("evaluate", "quality_metrics")
step_failure = load("common", "failure")
model_files = load("common", "model_files")

DEFAULT_ROWS = 20_000
DEFAULT_WORKDIR = ".build/local-run"
DEFAULT_SEED = 42
#: Used only when neither the command line nor cdk.json says otherwise.
FALLBACK_FLOOR = 0.8
FALLBACK_TOLERANCE = 0.01
FALLBACK_METRIC = "auc"
FALLBACK_BOOTSTRAP_SAMPLES = 1000
MARKER = ".local-run"


class LocalRunError(Exception):
    """The run cannot start or a step failed; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """Everything the run needs besides the data."""

    schema: dict[str, Any]
    floor: float
    tolerance: float
    metric: str = FALLBACK_METRIC
    bootstrap_samples: int = FALLBACK_BOOTSTRAP_SAMPLES
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepTiming:
    step: str
    rows: int
    seconds: float


@dataclass(frozen=True)
class LocalRunResult:
    evaluation: dict[str, Any]
    decision: GateDecision
    timings: list[StepTiming]
    workdir: Path


# ---------------------------------------------------------------------------- settings


def _project_config() -> Any | None:
    """The dev environment's parsed config, or None when the project has no cdk.json yet."""
    try:
        import mlops_config as config
    except ImportError:
        return None
    if not config.CDK_JSON.exists():
        return None
    try:
        return config.load_config("dev")
    except config.ConfigError as error:
        raise LocalRunError(f"cdk.json: {error}") from error


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Command line first, then cdk.json (dev), then the bundled sample's schema."""
    notes: list[str] = []
    cfg = _project_config()
    if args.schema_json:
        try:
            schema = json.loads(args.schema_json)
        except json.JSONDecodeError as error:
            raise LocalRunError(f"--schema-json is not valid JSON: {error}") from error
        if not isinstance(schema, dict):
            raise LocalRunError("--schema-json must be a JSON object")
        notes.append("schema from --schema-json")
    elif args.data and args.target:
        schema = infer_schema(Path(args.data), args.target)
        notes.append(
            f"schema inferred from {args.data}: target {args.target!r}, features "
            + ", ".join(f"{f['name']} ({f['type']})" for f in schema["features"])
        )
    elif cfg is not None:
        schema = json.loads(cfg.schema.to_json())
        notes.append("schema from cdk.json")
    elif args.data:
        raise LocalRunError(
            "no schema for --data: give --target COLUMN (features are inferred) or --schema-json"
        )
    else:
        schema = sample_data.sample_schema()
        notes.append("schema of the bundled sample data (no cdk.json found)")
    if args.data is None and schema.get("target") != sample_data.TARGET:
        raise LocalRunError(
            f"the bundled sample data has target {sample_data.TARGET!r}, the schema "
            f"{schema.get('target')!r}: pass --data with your own file"
        )

    pipeline = cfg.pipeline if cfg is not None else None
    floor = args.floor
    if floor is None:
        floor = pipeline.metric_floor if pipeline else FALLBACK_FLOOR
    tolerance = args.tolerance
    if tolerance is None:
        tolerance = pipeline.champion_tolerance if pipeline else FALLBACK_TOLERANCE
    if not 0.0 <= floor <= 1.0:
        raise LocalRunError(f"--floor {floor} is not allowed: from 0 to 1")
    if tolerance < 0.0:
        raise LocalRunError(f"--tolerance {tolerance} is not allowed: at least 0")
    hyperparameters: dict[str, Any] = {}
    if pipeline is not None:
        hp = pipeline.hyperparameters
        hyperparameters = {
            "num_round": hp.num_round,
            "max_depth": hp.max_depth,
            "eta": hp.eta,
            "subsample": hp.subsample,
            "colsample_bytree": hp.colsample_bytree,
            "min_child_weight": hp.min_child_weight,
            "early_stopping_rounds": hp.early_stopping_rounds,
        }
    return Settings(
        schema=schema,
        floor=float(floor),
        tolerance=float(tolerance),
        metric=pipeline.metric if pipeline else FALLBACK_METRIC,
        bootstrap_samples=pipeline.bootstrap_samples if pipeline else FALLBACK_BOOTSTRAP_SAMPLES,
        hyperparameters=hyperparameters,
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------- running


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a step, then restore the old ones."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def prepare_workdir(workdir: Path) -> None:
    """Empty `workdir` for a new run; refuse to touch a directory a run did not create."""
    if workdir.exists():
        if not workdir.is_dir():
            raise LocalRunError(f"--workdir {workdir} is a file")
        if any(workdir.iterdir()) and not (workdir / MARKER).exists():
            raise LocalRunError(
                f"--workdir {workdir} is not empty and was not created by a local run: "
                "choose another directory"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("created by pipeline_code.local_run\n", encoding="utf-8")


def _run_step(name: str, argv: list[str], env: dict[str, str], failure: Path) -> float:
    started = time.perf_counter()
    with environment({**env, step_failure.FAILURE_FILE_ENV: str(failure)}):
        code = STEP_MAINS[name](argv)
    if code != 0:
        reason = failure.read_text(encoding="utf-8") if failure.exists() else "see the log above"
        raise LocalRunError(f"{name} failed: {reason}")
    return time.perf_counter() - started


def _package_model(model_dir: Path, archive: Path) -> None:
    """Tar the model directory like SageMaker does for the training job's model.tar.gz."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)


def run_pipeline(
    workdir: Path,
    settings: Settings,
    data: Path | None = None,
    rows: int = DEFAULT_ROWS,
    champion_model_dir: Path | None = None,
    seed: int = DEFAULT_SEED,
    log: Callable[[str], None] = print,
) -> LocalRunResult:
    """prepare -> train -> evaluate -> gate under `workdir`; raises LocalRunError on failure."""
    prepare_workdir(workdir)
    timings: list[StepTiming] = []
    target = settings.schema["target"]

    # prepare: Processing job layout
    processing = workdir / "prepare" / "opt" / "ml"
    input_dir = processing / "processing" / "input" / "data"
    input_dir.mkdir(parents=True)
    if data is None:
        started = time.perf_counter()
        sample_data.write(sample_data.generate(rows, seed), input_dir / "transactions.csv")
        log(f"{'sample data':<12} {rows:>11,} rows {time.perf_counter() - started:7.1f} s")
    elif data.is_dir():
        input_dir = data
    elif data.is_file():
        try:
            (input_dir / data.name).symlink_to(data.resolve())
        except OSError:  # file systems without symlinks
            shutil.copy2(data, input_dir / data.name)
    else:
        raise LocalRunError(f"--data {data}: no such file or directory")
    prepared = processing / "processing" / "output"
    seconds = _run_step(
        "prepare",
        [
            "--input-dir",
            str(input_dir),
            "--output-dir",
            str(prepared),
            "--schema",
            json.dumps(settings.schema),
            "--seed",
            str(seed),
        ],
        {},
        processing / "output" / "message",
    )
    report = json.loads((prepared / "report" / "split_report.json").read_text(encoding="utf-8"))
    timings.append(StepTiming("prepare", int(report["input"]["rows"]), seconds))
    log(_progress(timings[-1]))

    # train: Training job layout (script mode: hyperparameters as arguments, channels as SM_*)
    training = workdir / "train" / "opt" / "ml"
    model_dir = training / "model"
    hyperparameters = {**settings.hyperparameters, "seed": seed, "target": target}
    argv = [f"--{name}={value}" for name, value in hyperparameters.items()]
    argv.append(f"--checkpoint_dir={training / 'checkpoints'}")
    seconds = _run_step(
        "train",
        argv,
        {
            "SM_CHANNEL_TRAIN": str(prepared / "train"),
            "SM_CHANNEL_VALIDATION": str(prepared / "validation"),
            "SM_MODEL_DIR": str(model_dir),
        },
        training / "output" / "failure",
    )
    timings.append(StepTiming("train", int(report["splits"]["train"]["rows"]), seconds))
    log(_progress(timings[-1]))

    # evaluate: Processing job layout, the model arrives as the training job's model.tar.gz
    processing = workdir / "evaluate" / "opt" / "ml"
    _package_model(model_dir, processing / "processing" / "model" / model_files.MODEL_ARCHIVE)
    output_dir = processing / "processing" / "evaluation"
    argv = [
        "--model-dir",
        str(processing / "processing" / "model"),
        "--test-dir",
        str(prepared / "test"),
        "--output-dir",
        str(output_dir),
        "--target",
        target,
        "--metric",
        settings.metric,
        "--bootstrap-samples",
        str(settings.bootstrap_samples),
        "--seed",
        str(seed),
    ]
    if champion_model_dir is not None:
        argv += ["--champion-model-dir", str(champion_model_dir)]
    seconds = _run_step("evaluate", argv, {}, processing / "output" / "message")
    evaluation = json.loads((output_dir / contract.EVALUATION_FILE).read_text(encoding="utf-8"))
    timings.append(
        StepTiming("evaluate", int(evaluation[contract.GATE_KEY][contract.GATE_TEST_ROWS]), seconds)
    )
    log(_progress(timings[-1]))

    decision = gate_decision(evaluation, settings.floor, settings.tolerance)
    return LocalRunResult(evaluation, decision, timings, workdir)


def _progress(timing: StepTiming) -> str:
    return f"{timing.step:<12} {timing.rows:>11,} rows {timing.seconds:7.1f} s"


def metrics_table(evaluation: dict[str, Any]) -> str:
    """Challenger (and champion) metrics, value ± bootstrap standard deviation."""
    challenger = evaluation[contract.METRICS_KEY]
    champion = evaluation.get(contract.CHAMPION_METRICS_KEY)
    header = f"{'metric':<10} {'challenger':>20}" + (f" {'champion':>20}" if champion else "")
    lines = [header, "-" * len(header)]
    for metric in quality_metrics.SCALAR_METRICS:
        row = f"{metric:<10} {_cell(challenger[metric]):>20}"
        if champion:
            row += f" {_cell(champion[metric]):>20}"
        lines.append(row)
    matrix = challenger["confusion_matrix"]
    lines.append(
        f"confusion matrix (actual/predicted): TN {matrix['0']['0']:,}  FP {matrix['0']['1']:,}"
        f"  FN {matrix['1']['0']:,}  TP {matrix['1']['1']:,}"
    )
    return "\n".join(lines)


def _cell(entry: dict[str, float]) -> str:
    return f"{entry['value']:.4f} ± {entry['standard_deviation']:.4f}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run prepare -> train -> evaluate -> gate locally (no Docker, no AWS)."
    )
    parser.add_argument("--data", help="CSV/Parquet file or folder (default: sample data)")
    parser.add_argument("--target", help="target column of --data; features are then inferred")
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        help=f"sample rows without --data ({DEFAULT_ROWS})",
    )
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"({DEFAULT_WORKDIR})")
    parser.add_argument("--floor", type=float, help="metric floor (default: cdk.json, dev)")
    parser.add_argument("--tolerance", type=float, help="champion tolerance (default: cdk.json)")
    parser.add_argument("--champion-model-dir", help="a model folder to use as the champion")
    parser.add_argument("--schema-json", help="feature schema JSON (default: cdk.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.rows < 1:
            raise LocalRunError(f"--rows {args.rows} is not allowed: at least 1")
        settings = resolve_settings(args)
        for note in settings.notes:
            print(f"note: {note}")
        result = run_pipeline(
            Path(args.workdir),
            settings,
            data=Path(args.data) if args.data else None,
            rows=args.rows,
            champion_model_dir=Path(args.champion_model_dir) if args.champion_model_dir else None,
        )
    except (LocalRunError, SchemaInferenceError) as error:
        print(f"local run failed: {error}", file=sys.stderr)
        return 1
    total = sum(t.seconds for t in result.timings)
    print(f"{'total':<12} {'':>16} {total:7.1f} s\n")
    print(metrics_table(result.evaluation))
    print(f"\ngate: {'PASSED' if result.decision.passed else 'FAILED'} - {result.decision.reason}")
    print(f"outputs: {result.workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
