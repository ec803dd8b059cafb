"""`python -m pipeline_code.local_pipeline` (what `make local-run` calls).

    python -m pipeline_code.local_pipeline                          # dev's training pipeline
    python -m pipeline_code.local_pipeline --pipeline evaluation    # the eval-only pipeline
    python -m pipeline_code.local_pipeline --definition my.json     # any definition file
    python -m pipeline_code.local_pipeline --data my.csv --target label --param NumRound=50
    python -m pipeline_code.local_pipeline --workers 2                # distributed training
    python -m pipeline_code.local_pipeline --processors 3             # sharded Prepare, Evaluate
    python -m pipeline_code.local_pipeline approve                  # approve the newest package

Exit codes: 0 the execution succeeded; 3 it stopped at a Fail step (the gate said no);
1 another step failed; 2 it could not start (bad arguments, configuration or definition).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mlops_config
from mlops_config import EnvironmentConfig
from pipeline_code import sample_data
from pipeline_code.local_pipeline import container, registry, runner, sources, trigger
from pipeline_code.local_pipeline.errors import DefinitionError, LocalPipelineError
from pipeline_code.local_pipeline.execution import FAILED
from pipeline_code.local_pipeline.parameters import parse_assignments
from pipeline_code.local_pipeline.report import render
from pipeline_code.schema_inference import SchemaInferenceError, describe, infer

EXIT_FAILED_STEP, EXIT_CANNOT_START, EXIT_FAIL_STEP = 1, 2, 3
MAX_WORKERS = 10


def _config(env: str) -> EnvironmentConfig:
    try:
        return mlops_config.load_config(env)
    except mlops_config.ConfigError as error:
        raise LocalPipelineError(f"cdk.json, environment {env}: {error}") from error


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.local_pipeline",
        description="Execute a SageMaker pipeline definition on this machine (no Docker, no AWS).",
    )
    parser.add_argument("--env", default="dev", help="environment of cdk.json (dev)")
    parser.add_argument(
        "--workdir", type=Path, default=runner.DEFAULT_WORKDIR, help="(%(default)s)"
    )
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run a pipeline (the default)")
    run.add_argument("--pipeline", default="training", choices=sources.PIPELINES)
    run.add_argument(
        "--definition", type=Path, help="a definition file instead of the generated one"
    )
    run.add_argument("--code-dir", type=Path, help="the folder behind its pipeline-code/ URIs")
    run.add_argument("--data", type=Path, help="CSV/Parquet file or folder (default: sample data)")
    run.add_argument(
        "--target",
        help="target column of --data: the definition is generated for the schema inferred from it",
    )
    run.add_argument(
        "--positive-class",
        help="the --target value that counts as class 1 (needed unless it is 0/1 or true/false)",
    )
    run.add_argument(
        "--problem",
        choices=("binary", "multiclass", "regression"),
        help="the problem type of --target (default: inferred from its values)",
    )
    run.add_argument(
        "--trainer",
        choices=("xgboost", "sklearn", "custom"),
        help="pipeline.trainer for this run (default: the environment's; custom without a "
        "pipeline.custom block: examples/custom_trainer)",
    )
    run.add_argument(
        "--min-positives",
        type=int,
        help="rows of each class the gate needs (default: the environment's)",
    )
    run.add_argument("--rows", type=int, default=20_000, help="sample rows without --data (20000)")
    run.add_argument("--seed", type=int, default=42, help="sample data seed (42)")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="Name=value",
        help="a pipeline parameter's value (repeatable)",
    )
    run.add_argument(
        "--workers",
        type=int,
        help="training instances (pipeline.training_instance_count): N > 1 trains with N "
        "worker processes over loopback (default: as configured)",
    )
    run.add_argument(
        "--processors",
        type=int,
        help="processing instances (pipeline.processing_instance_count): N > 1 runs "
        "PrepareShards and EvaluateShards on N local hosts, each its share of the files "
        "(default: as configured)",
    )
    run.add_argument("--no-cache", action="store_true", help="run every step; report would-be hits")
    run.add_argument("--verbose", action="store_true", help="print every line the steps print")
    run.add_argument(
        "--mlflow-store",
        type=Path,
        help="log the execution as one MLflow run in this local store (make local-run: mlruns)",
    )
    approve = commands.add_parser("approve", help="approve a package of the local registry")
    approve.add_argument("--group", help="model package group (default: the environment's)")
    approve.add_argument("--version", default="latest", help="version number or latest (latest)")
    known = {"run", "approve", "-h", "--help"}
    if not any(a in known for a in argv):
        argv = _with_command(argv)
    return parser.parse_args(argv)


def _with_command(argv: list[str]) -> list[str]:
    """Insert `run` after the global options (--env, --workdir) when no command is given."""
    head: list[str] = []
    rest = list(argv)
    while rest and rest[0] in ("--env", "--workdir"):
        head += rest[:2]
        rest = rest[2:]
    while rest and rest[0].startswith(("--env=", "--workdir=")):
        head.append(rest.pop(0))
    return [*head, "run", *rest]


def _source(
    args: argparse.Namespace, config: EnvironmentConfig
) -> tuple[sources.DefinitionSource, list[str]]:
    schema = config.schema.to_dict()
    notes: list[str] = []
    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise LocalPipelineError(
            f"--workers {args.workers} is not allowed: 1 to {MAX_WORKERS} (the range of "
            "pipeline.training_instance_count)"
        )
    processors = getattr(args, "processors", None)
    if processors is not None and not 1 <= processors <= MAX_WORKERS:
        raise LocalPipelineError(
            f"--processors {processors} is not allowed: 1 to {MAX_WORKERS} (the range of "
            "pipeline.processing_instance_count)"
        )
    if args.definition is not None:
        for flag, value in (("--workers", args.workers), ("--processors", processors)):
            if value is not None:
                raise LocalPipelineError(
                    f"{flag} works with the generated definition only: the instance count of "
                    "--definition is the file's"
                )
        if args.target:
            raise LocalPipelineError(
                "--target works with the generated definition only: the "
                "schema of --definition is the file's"
            )
        return sources.from_file(args.definition, args.code_dir), notes
    for flag, value in (("--positive-class", args.positive_class), ("--problem", args.problem)):
        if value is not None and not args.target:
            raise LocalPipelineError(f"{flag} goes with --data and --target")
    if args.target:
        if args.data is None:
            raise LocalPipelineError("--target needs --data (the sample's target is fixed)")
        schema, ignored, why = infer(
            args.data,
            args.target,
            getattr(args, "positive_class", None),
            getattr(args, "problem", None),
        )
        notes.append(f"schema inferred from {args.data}: {describe(schema, ignored, why)}")
        return (
            sources.generated(
                args.env,
                args.pipeline,
                schema,
                args.workers,
                processors=processors,
                min_positives=args.min_positives,
                trainer=args.trainer,
            ),
            notes,
        )
    if args.data is None and schema["target"] != sample_data.TARGET:
        raise LocalPipelineError(
            f"the bundled sample data has target {sample_data.TARGET!r}, the schema of "
            f"{args.env} {schema['target']!r}: pass --data (make local-run DATA=... TARGET=...)"
        )
    return (
        sources.generated(
            args.env,
            args.pipeline,
            workers=args.workers,
            processors=processors,
            min_positives=args.min_positives,
            trainer=args.trainer,
        ),
        notes,
    )


def _progress(started: float) -> Callable[[str], None]:
    def line(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {text}", flush=True)

    return line


def run(args: argparse.Namespace) -> int:
    if args.rows < 1:
        raise LocalPipelineError(f"--rows {args.rows} is not allowed: at least 1")
    config = _config(args.env)
    source, notes = _source(args, config)
    names = sources.local_names(
        config.prefix,
        config.region,
        config.model_package_group_name,
    )
    started = time.perf_counter()
    options = runner.RunOptions(
        workdir=args.workdir,
        data=trigger.DataSource(args.data, args.rows, args.seed),
        parameters=parse_assignments(args.param),
        use_cache=not args.no_cache,
        progress=_progress(started),
        echo=(lambda line: print(f"    {line}")) if args.verbose else None,
    )
    print(f"definition: {source.file} (pipeline {source.pipeline_name})")
    done = runner.run(source, names, options)
    for note in [*notes, *done.notes]:
        print(f"note: {note}")
    print()
    print(render(done.result, done.pipeline))
    print(f"outputs: {done.run_dir} (steps, logs), {args.workdir / 's3'} (buckets)")
    if args.mlflow_store is not None:
        _track(done, names.region, args.workdir, args.mlflow_store)
    if done.result.status != FAILED:
        return 0
    failed = done.result.record(done.result.failed_step)
    for note in failed.notes:
        if note.startswith("log: "):
            log = Path(note.removeprefix("log: "))
            print(f"\nthe end of {failed.name}'s log ({log}):\n{container.log_tail(log)}")
    return EXIT_FAIL_STEP if failed.type == "Fail" else EXIT_FAILED_STEP


def _track(done: runner.Run, region: str, workdir: Path, store: Path) -> None:
    """Log the execution to the local MLflow store; a failure is reported, never fatal (as on
    AWS, tracking never blocks the loop)."""
    from pipeline_code.local_pipeline.bucket import LocalS3
    from pipeline_code.local_tracking import log_local_run

    try:
        print(log_local_run(done.result, LocalS3(workdir.resolve() / "s3"), region, store))
    except Exception as error:  # noqa: BLE001 - any tracking failure leaves the run as it is
        print(f"note: the run was not logged to MLflow ({type(error).__name__}: {error})")


def approve(args: argparse.Namespace) -> int:
    group = args.group or _config(args.env).model_package_group_name
    package = registry.approve(args.workdir / "registry", group, args.version)
    print(f"approved {package['ModelPackageArn']}: the next run compares against it")
    print(json.dumps({k: package[k] for k in ("ModelPackageVersion", "ModelApprovalStatus")}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return approve(args) if args.command == "approve" else run(args)
    except DefinitionError as error:
        print("local run cannot start: the definition has problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CANNOT_START
    except (LocalPipelineError, SchemaInferenceError) as error:
        print(f"local run cannot start: {error}", file=sys.stderr)
        return EXIT_CANNOT_START
