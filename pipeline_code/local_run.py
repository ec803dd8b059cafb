"""Run the training pipeline's step scripts end to end on this machine: no Docker, no AWS.

prepare -> train -> evaluate -> gate, with the very scripts the pipeline uploads, called
in-process with the arguments and `SM_*` variables the SageMaker containers would give them,
on a directory tree that mirrors the containers' (`<workdir>/<step>/opt/ml/...`).

    python -m pipeline_code.local_run                         # 30,000 bundled sample rows
    python -m pipeline_code.local_run --rows 1000000
    python -m pipeline_code.local_run --data my.csv --target label   # features inferred
    python -m pipeline_code.local_run --champion-model-dir .build/local-run/train/opt/ml/model

The schema, the split, the training choices and the gate's thresholds come from the project
configuration (`cdk.json`, environment dev) unless given here (see `local_settings`). The
champion folder is a model directory as the train step writes it (or holding its
model.tar.gz): its metadata carries the split rule, so the gate compares on the rows it never
trained on, exactly as in the pipeline. 30,000 sample rows by default: about 170 test
positives, so the gate's "too little evaluation data" guard (100 of each class) does not fire
on the bundled sample.

Prints the metrics (accuracy beside the always-majority baseline), calibration, the decision
threshold, the data-shift flags and the gate's decision with its reason. Exit code 0 when the
pipeline ran (whether or not the gate passed), 1 with a message naming the problem otherwise.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_config.tuning import tuning_objective, tuning_refusal
from pipeline_code import sample_data
from pipeline_code.gate import GateDecision, gate_decision
from pipeline_code.local_report import metrics_table, summary
from pipeline_code.local_settings import LocalRunError, Settings, resolve_settings
from pipeline_code.local_tuning import configured_ranges, random_search
from pipeline_code.schema_inference import SchemaInferenceError
from pipeline_code.steps import load

# The step scripts' mains and the modules whose names the run reads, imported as the containers
# import them.
STEP_MAINS = {step: load(step).main for step in ("prepare", "train", "evaluate")}
contract = load("evaluate", "evaluation_contract")
step_failure = load("common", "failure")
model_files = load("common", "model_files")

#: Enough rows that the test split holds about 170 positives: the gate's guard needs 100.
DEFAULT_ROWS = 30_000
DEFAULT_WORKDIR = ".build/local-run"
DEFAULT_SEED = 42
MARKER = ".local-run"

__all__ = [
    "LocalRunError",
    "LocalRunResult",
    "Settings",
    "main",
    "resolve_settings",
    "run_pipeline",
]


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
    tune: int = 0,
    environment: str = "dev",
) -> LocalRunResult:
    """prepare -> train -> evaluate -> gate under `workdir`; raises LocalRunError on failure.
    With `tune` trials, a random search over `environment`'s tuning ranges (local_tuning)
    picks the hyperparameters train then uses."""
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
    split = settings.split
    argv = [
        "--input-dir",
        str(input_dir),
        "--output-dir",
        str(prepared),
        "--schema",
        json.dumps(settings.schema),
        "--seed",
        str(seed),
        "--validation-fraction",
        str(split["validation_fraction"]),
        "--test-fraction",
        str(split["test_fraction"]),
    ]
    for key, flag in (("id_column", "--id-column"), ("time_column", "--time-column")):
        if split.get(key):
            argv += [flag, split[key]]
    seconds = _run_step(
        "prepare",
        argv,
        {},
        processing / "output" / "message",
    )
    report = json.loads((prepared / "report" / "split_report.json").read_text(encoding="utf-8"))
    timings.append(StepTiming("prepare", int(report["input"]["rows"]), seconds))
    log(_progress(timings[-1]))

    # train: Training job layout (script mode: hyperparameters as arguments, channels as SM_*)
    training = workdir / "train" / "opt" / "ml"
    model_dir = training / "model"
    hyperparameters = {
        **settings.hyperparameters,
        "seed": seed,
        "target": target,
        "scale_pos_weight": settings.scale_pos_weight,
        "decision_threshold": settings.decision_threshold,
    }

    def train(values: dict[str, Any], trial: Path) -> float:
        argv = [f"--{name}={value}" for name, value in values.items()]
        argv.append(f"--checkpoint_dir={trial / 'checkpoints'}")
        channels = {"SM_CHANNEL_TRAIN": str(prepared / "train")}
        channels["SM_CHANNEL_VALIDATION"] = str(prepared / "validation")
        _run_step(
            "train",
            argv,
            {**channels, "SM_MODEL_DIR": str(trial / "model")},
            trial / "output" / "failure",
        )
        metadata = trial / "model" / model_files.METADATA_DIR / model_files.METADATA_FILE
        # the tuning objective (objective.summary: best_<summary> in the model's metadata)
        recorded = json.loads(metadata.read_text(encoding="utf-8"))
        return float(recorded[f"best_{objective.summary}"]) if objective else 0.0

    problem_type = settings.schema.get("problem_type", "binary")
    objective = None
    if tune:
        # the objective pipeline.tuning gives this gate metric, or the same refusal
        refusal = tuning_refusal(settings.metric, 1, problem_type)
        if refusal is not None:
            raise LocalRunError(f"TUNE={tune} {refusal}")
        objective = tuning_objective(problem_type, settings.metric)
        ranges, origin = configured_ranges(environment)
        log(f"tuning: random search, {tune} trials over {', '.join(sorted(ranges))} ({origin})")
        best = random_search(
            tune,
            ranges,
            lambda values, trial: train({**hyperparameters, **values}, trial),
            workdir / "tune",
            seed,
            log,
            objective,
        )
        log(f"best: trial {best.number}, {objective.name} {best.objective:.4f}")
        hyperparameters = {**hyperparameters, **best.hyperparameters}
    started = time.perf_counter()
    train(hyperparameters, training)
    seconds = time.perf_counter() - started
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
        "--floor",
        repr(settings.floor),
        "--tolerance",
        repr(settings.tolerance),
        "--min-positives",
        str(settings.min_positives),
        "--gate-method",
        settings.gate_method,
    ]
    if champion_model_dir is not None:
        argv += ["--champion-model-dir", str(champion_model_dir)]
    seconds = _run_step("evaluate", argv, {}, processing / "output" / "message")
    evaluation = json.loads((output_dir / contract.EVALUATION_FILE).read_text(encoding="utf-8"))
    timings.append(
        StepTiming("evaluate", int(evaluation[contract.GATE_KEY][contract.GATE_TEST_ROWS]), seconds)
    )
    log(_progress(timings[-1]))

    decision = gate_decision(evaluation)
    return LocalRunResult(evaluation, decision, timings, workdir)


def _progress(timing: StepTiming) -> str:
    return f"{timing.step:<12} {timing.rows:>11,} rows {timing.seconds:7.1f} s"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run prepare -> train -> evaluate -> gate locally (no Docker, no AWS)."
    )
    parser.add_argument("--data", help="CSV/Parquet file or folder (default: sample data)")
    parser.add_argument("--target", help="target column of --data; features are then inferred")
    parser.add_argument(
        "--positive-class",
        help="the --target value that counts as class 1 (needed unless it is 0/1 or true/false)",
    )
    parser.add_argument(
        "--problem",
        choices=("binary", "multiclass", "regression"),
        help="the problem type of --target (default: inferred from its values)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        help=f"sample rows without --data ({DEFAULT_ROWS})",
    )
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"({DEFAULT_WORKDIR})")
    parser.add_argument("--floor", type=float, help="metric floor (default: cdk.json, dev)")
    parser.add_argument("--tolerance", type=float, help="champion tolerance (default: cdk.json)")
    parser.add_argument(
        "--min-positives", type=int, help="rows of each class the gate needs (default: cdk.json)"
    )
    parser.add_argument(
        "--champion-model-dir",
        help="the champion: a model folder as train writes it (e.g. a previous run's "
        f"{DEFAULT_WORKDIR}/train/opt/ml/model, copied) or one holding its model.tar.gz",
    )
    parser.add_argument("--schema-json", help="feature schema JSON (default: cdk.json)")
    parser.add_argument("--trainer", help="xgboost only (default); others: the pipeline runner")
    parser.add_argument(
        "--tune",
        type=int,
        default=0,
        help="trials of a local random search over pipeline.tuning's ranges before training",
    )
    parser.add_argument(
        "--env",
        default="dev",
        help="environment of cdk.json whose pipeline.tuning ranges --tune searches (dev)",
    )
    parser.add_argument(
        "--mlflow-store",
        help="log the run (and --tune's trials as its child runs) to this local MLflow store",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.rows < 1:
            raise LocalRunError(f"--rows {args.rows} is not allowed: at least 1")
        if args.tune < 0:
            raise LocalRunError(f"--tune {args.tune} is not allowed: 0 (off) or more trials")
        settings = resolve_settings(args)
        for note in settings.notes:
            print(f"note: {note}")
        result = run_pipeline(
            Path(args.workdir),
            settings,
            data=Path(args.data) if args.data else None,
            rows=args.rows,
            champion_model_dir=Path(args.champion_model_dir) if args.champion_model_dir else None,
            tune=args.tune,
            environment=args.env,
        )
    except (LocalRunError, SchemaInferenceError) as error:
        print(f"local run failed: {error}", file=sys.stderr)
        return 1
    total = sum(t.seconds for t in result.timings)
    print(f"{'total':<12} {'':>16} {total:7.1f} s\n")
    print(metrics_table(result.evaluation))
    print(summary(result.evaluation))
    print(f"\ngate: {'PASSED' if result.decision.passed else 'FAILED'} - {result.decision.reason}")
    print(f"outputs: {result.workdir}")
    if args.mlflow_store:
        _track(result.workdir, result.evaluation, total, Path(args.mlflow_store))
    return 0


def _track(workdir: Path, evaluation: dict[str, Any], seconds: float, store: Path) -> None:
    """Log the finished run to the local MLflow store; a failure is reported on one line, never
    fatal (as on AWS, tracking never blocks the loop): the run's result stands."""
    from pipeline_code.local_tracking import log_scripts_run

    try:
        print(log_scripts_run(workdir, evaluation, seconds, store))
    except Exception as error:  # noqa: BLE001 - any tracking failure leaves the run as it is
        print(f"note: the run was not logged to MLflow ({type(error).__name__}: {error})")


if __name__ == "__main__":
    sys.exit(main())
