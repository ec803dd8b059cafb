"""The step folders as the containers run them: each uploaded directory (a step's folder with
common/ inside) runs its entry script with nothing else on the import path, and every module
name is unique, so the local run and the tests can load all steps into one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pandas as pd
import pytest

from pipeline_code import offline
from pipeline_code.definition import PipelineSettings, publish_step_code
from pipeline_code.steps import COMMON, SCORING_STEPS, STEPS, STEPS_DIR, load
from tests.pipeline.generated import SETTINGS
from tests.steps import SCHEMA_JSON, TARGET, small_frame, write


def module_names(folder: Path) -> set[str]:
    return {path.stem for path in folder.glob("*.py")}


def test_module_names_are_unique_across_the_steps_and_common() -> None:
    seen: dict[str, str] = {COMMON: COMMON}
    for step in (*STEPS, *SCORING_STEPS):
        for name in module_names(STEPS_DIR / step):
            assert name not in seen, f"{step}/{name}.py and {seen[name]} share a name"
            seen[name] = f"{step}/{name}.py"


def test_no_step_module_shadows_the_standard_library_or_an_installed_package() -> None:
    installed = set(packages_distributions())
    for step in (*STEPS, *SCORING_STEPS):
        for name in module_names(STEPS_DIR / step) | {COMMON}:
            assert name not in sys.stdlib_module_names, f"{step}/{name}.py"
            assert name not in installed, f"{step}/{name}.py shadows an installed package"


def test_loading_an_unknown_step_is_refused() -> None:
    with pytest.raises(ValueError, match="step 'deploy' is not allowed: one of prepare, train"):
        load("deploy")


def container_env(**extra: str) -> dict[str, str]:
    """The environment of a job: no PYTHONPATH, nothing that points into this repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    return env | {"OMP_WAIT_POLICY": "PASSIVE", **extra}


def run_script(script: Path, args: list[str], cwd: Path, **env: str) -> None:
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=container_env(FAILURE_REASON_FILE=str(cwd / "failure"), **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_the_uploaded_directories_run_end_to_end_outside_the_repository(tmp_path: Path) -> None:
    store = offline.CodeStore(tmp_path / "uploaded")
    code = publish_step_code(PipelineSettings.from_dict(SETTINGS), STEPS_DIR, store)
    local = {  # where each directory lands in its container
        step: tmp_path / "uploaded" / uri.removesuffix(f"{step}.py").rstrip("/").rsplit("/")[-1]
        for step, uri in (
            ("prepare", code.prepare_script),
            ("train", code.train_source_dir),
            ("evaluate", code.evaluate_script),
        )
    }
    work = tmp_path / "work"
    write(small_frame(3000), work / "data" / "part-0.csv")

    # Processing: python3 /opt/ml/processing/input/code/prepare.py, from another directory.
    prepared = work / "prepared"
    arguments = ["--input-dir", str(work / "data"), "--output-dir", str(prepared)]
    run_script(local["prepare"] / "prepare.py", [*arguments, "--schema", SCHEMA_JSON], work)

    # Training: the driver runs `python3 train.py` in the code directory.
    model = work / "model"
    run_script(
        Path("train.py"),
        ["--num_round", "20", "--target", TARGET, "--checkpoint_dir", str(work / "checkpoints")],
        local["train"],
        SM_CHANNEL_TRAIN=str(prepared / "train"),
        SM_CHANNEL_VALIDATION=str(prepared / "validation"),
        SM_MODEL_DIR=str(model),
    )

    evaluated = work / "evaluation"
    arguments = ["--model-dir", str(model), "--test-dir", str(prepared / "test")]
    arguments += ["--output-dir", str(evaluated), "--target", TARGET, "--bootstrap-samples", "50"]
    run_script(local["evaluate"] / "evaluate.py", arguments, work)

    report = json.loads((evaluated / "evaluation.json").read_text(encoding="utf-8"))
    rows = len(pd.read_csv(prepared / "test" / "test.csv"))
    assert report["gate"]["test_rows"] == rows
    assert report["gate"]["challenger"] > 0.5
