"""The generated dev definitions, copies of them to break, and one small training run that the
other tests start from (its steps are then cache hits, so a broken Gate costs no training)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# XGBoost's OpenMP threads spin while idle; the step processes inherit this.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

from mlops_config import load_config
from pipeline_code.local_pipeline import runner, sources, trigger
from stacks.pipeline_definitions import GeneratedPipelines, generate_pipelines

ROWS = 3000
#: Few boosting rounds: the suite tests the wiring, not the model.
FAST = {"NumRound": "20"}


@dataclass
class Baseline:
    """The session's first training run and its work folder."""

    generated: GeneratedPipelines
    names: sources.LocalNames
    workdir: Path
    run: runner.Run
    lines: list[str]


@pytest.fixture(scope="session")
def generated() -> GeneratedPipelines:
    return generate_pipelines(load_config("dev"))


@pytest.fixture(scope="session")
def names() -> sources.LocalNames:
    config = load_config("dev")
    return sources.local_names(config.prefix, config.region, config.model_package_group_name)


def definition(
    generated: GeneratedPipelines,
    folder: Path,
    pipeline: str = "training",
    change: Callable[[dict[str, Any]], Any] | None = None,
) -> sources.DefinitionSource:
    """A copy of the generated definition (changed by `change`), with the generated code and
    the pipeline's own name (so cache entries of the baseline apply)."""
    document = json.loads(generated.definition_file(pipeline).read_text())
    if change is not None:
        change(document)
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"{pipeline}.json"
    file.write_text(json.dumps(document, indent=2))
    # The generator's manifest beside it: the copy keeps the pipeline's name (and cache).
    (folder / sources.MANIFEST_FILE).write_text(json.dumps(generated.manifest))
    return sources.from_file(file, generated.code_dir)


def gate_forced(outcome: bool) -> Callable[[dict[str, Any]], None]:
    """A change that makes the Condition step's outcome `outcome` whatever the evaluation says
    (the gate's rules are the evaluate step's business; these tests are about what follows)."""

    def change(document: dict[str, Any]) -> None:
        (gate,) = [s for s in document["Steps"] if s["Type"] == "Condition"]
        gate["Arguments"]["Conditions"] = [
            {"Type": "Equals", "LeftValue": 1, "RightValue": 1 if outcome else 0}
        ]

    return change


def execute(
    source: sources.DefinitionSource,
    names: sources.LocalNames,
    workdir: Path,
    lines: list[str] | None = None,
    **parameters: str,
) -> runner.Run:
    """Run `source` on the sample; the training pipeline with FAST's values unless given."""
    progress = lines.append if lines is not None else (lambda _: None)
    fast = FAST if source.file.stem == "training" else {}
    options = runner.RunOptions(
        workdir=workdir,
        data=trigger.DataSource(rows=ROWS),
        parameters={**fast, **parameters},
        progress=progress,
    )
    return runner.run(source, names, options)


def copy_world(workdir: Path, target: Path) -> Path:
    """The baseline's buckets, registry and cache in a folder of the test's own."""
    for part in ("s3", "registry", "cache"):
        if (workdir / part).exists():
            shutil.copytree(workdir / part, target / part)
    return target


@pytest.fixture(scope="session")
def registered(baseline: Baseline, tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    """The baseline's world after a run whose gate passed: one package in the registry."""
    folder = tmp_path_factory.mktemp("registered")
    work = copy_world(baseline.workdir, folder / "work")
    source = definition(baseline.generated, folder / "definition", change=gate_forced(True))
    lines: list[str] = []
    done = execute(source, baseline.names, work, lines)
    return Baseline(baseline.generated, baseline.names, work, done, lines)


@pytest.fixture(scope="session")
def baseline(
    generated: GeneratedPipelines,
    names: sources.LocalNames,
    tmp_path_factory: pytest.TempPathFactory,
) -> Baseline:
    folder = tmp_path_factory.mktemp("baseline")
    lines: list[str] = []
    done = execute(definition(generated, folder / "definition"), names, folder / "work", lines)
    return Baseline(generated, names, folder / "work", done, lines)


def step(done: runner.Run, name: str) -> Any:
    return done.result.record(name)
