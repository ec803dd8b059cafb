"""Run a definition end to end: fill its placeholders, check its wiring, lay out the local
world (buckets, registry, cache under the work folder), publish the step code where the
definition's code URIs point, land the data as the trigger does, resolve the parameters, and
execute.

Work folder layout (default `.build/local-run/`): `s3/<bucket>/<key>` (the local buckets),
`registry/<group>/<version>/`, `cache/<pipeline>/<step>/<key>.json`, and `runs/<execution id>/`
(`steps/<step>/container/` is the step's container file system, beside it its `log.txt`;
`execution.json` sums the run up). The newest KEEP_RUNS run folders are kept.
"""

from __future__ import annotations

import json
import secrets
import shutil
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_code import offline
from pipeline_code.local_pipeline import definition, trigger
from pipeline_code.local_pipeline.bucket import LocalS3
from pipeline_code.local_pipeline.caching import CacheIndex
from pipeline_code.local_pipeline.container import World
from pipeline_code.local_pipeline.errors import DefinitionError
from pipeline_code.local_pipeline.execution import Execution, ExecutionResult
from pipeline_code.local_pipeline.jobs import RunContext
from pipeline_code.local_pipeline.parameters import parameter_values
from pipeline_code.local_pipeline.sources import DefinitionSource, LocalNames

DEFAULT_WORKDIR = Path(".build/local-run")
KEEP_RUNS = 5
_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class RunOptions:
    """How to run: where, on which data, with which parameter values."""

    workdir: Path = DEFAULT_WORKDIR
    data: trigger.DataSource = field(default_factory=trigger.DataSource)
    parameters: dict[str, str] = field(default_factory=dict)
    use_cache: bool = True
    progress: Callable[[str], None] = print
    echo: Callable[[str], None] | None = None


@dataclass(frozen=True)
class Run:
    """A finished run: the checked pipeline, the execution's result, notes on the start."""

    pipeline: definition.Pipeline
    result: ExecutionResult
    run_dir: Path
    notes: list[str]


def load(source: DefinitionSource, names: LocalNames) -> definition.Pipeline:
    """The checked pipeline of `source` with local placeholder values; DefinitionError."""
    # vpc mode's subnets and security groups are not modelled locally: any stand-in will do
    subnets, groups = offline.vpc_placeholders(16, 5)
    stand_ins = {name: f"local-{name}" for name in (*subnets, *groups)}
    values = {**stand_ins, **names.placeholders()}
    text = definition.substitute(source.file.read_text(encoding="utf-8"), values)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DefinitionError([f"{source.file} is not JSON: {error}"]) from error
    return definition.parse(document, source.pipeline_name)


def publish_code(source: DefinitionSource, s3: LocalS3, bucket: str) -> None:
    """Copy the generated step code to where the definition's code URIs point (content
    addressed, so a folder already there is the same code)."""
    if source.code_dir is None:
        return
    for folder in sorted(source.code_dir.iterdir()):
        uri = f"s3://{bucket}/{source.code_prefix}{folder.name}"
        if folder.is_dir() and not s3.path(uri).exists():
            shutil.copytree(folder, s3.path(uri))


def new_execution_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def run(source: DefinitionSource, names: LocalNames, options: RunOptions) -> Run:
    """Run `source`'s pipeline once; DefinitionError or LocalPipelineError if it cannot start
    (a failed step is a result, not an exception)."""
    pipeline = load(source, names)
    workdir = options.workdir.resolve()
    s3 = LocalS3(workdir / "s3")
    world = World(s3.root, workdir / "registry", names.region)
    publish_code(source, s3, names.artifact_bucket)
    start = trigger.land(
        options.data,
        s3,
        names.data_bucket,
        names.artifact_bucket,
        world.registry,
        names.model_package_group,
    )
    parameters = parameter_values(pipeline.parameters, start.parameters, options.parameters)
    execution_id = new_execution_id()
    run_dir = workdir / "runs" / execution_id
    run_dir.mkdir(parents=True)
    context = RunContext(s3, world, run_dir, execution_id, options.progress, options.echo)
    execution = Execution(
        pipeline, parameters, context, CacheIndex(workdir / "cache", s3), options.use_cache
    )
    result = execution.run()
    _prune_runs(workdir / "runs", keep=KEEP_RUNS)
    return Run(pipeline, result, run_dir, start.notes)


def _prune_runs(runs: Path, keep: int) -> None:
    folders = sorted((d for d in runs.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
    for stale in folders[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
