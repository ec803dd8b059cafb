"""Step caching under the scikit-learn and custom trainers, as for XGBoost
(test_definition.py): Train is cached for the configured time, and a change to the trainer's
code moves the code URIs in Train's cache key (InputDataConfig) while the other steps stay
byte-identical, so their cache entries survive. Four generator runs, in parallel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline_code import generate
from tests.pipeline.generated import CODE_URI, REPO, SETTINGS, STEPS_DIR, settings_file

CHANGE = "\n# a change to the trainer's script only\n"
BASE = SETTINGS | {"training_instance_count": 1, "use_spot": False, "cache_expire_after": "P7D"}
SKLEARN = BASE | {
    "sklearn": {
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "params": {"max_iter": 200},
        "framework_version": "1.9-0",
    }
}
IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/my-trainer@sha256:" + "ab" * 32
EXAMPLE = REPO / "examples" / "custom_trainer"


CUSTOM = BASE | {
    "custom": {
        "image_uri": IMAGE,
        "source_dir": "examples/custom_trainer",
        "entry_script": "train.py",
    }
}


@pytest.fixture(scope="module")
def definitions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, Path]]:
    root = tmp_path_factory.mktemp("trainer-caching")
    steps = root / "variant-steps"
    shutil.copytree(STEPS_DIR, steps, ignore=shutil.ignore_patterns("__pycache__"))
    with (steps / "train_sklearn" / "train_sklearn.py").open("a", encoding="utf-8") as script:
        script.write(CHANGE)
    # pipeline.custom.source_dir must be a folder of the repository the generator runs from:
    # a copy of the generator and the example, with the user's script changed.
    copy = root / "variant-repository"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "pipeline_code", copy / "pipeline_code", ignore=ignore)
    shutil.copytree(EXAMPLE, copy / "examples" / "custom_trainer", ignore=ignore)
    with (copy / "examples" / "custom_trainer" / "train.py").open("a", encoding="utf-8") as script:
        script.write(CHANGE)
    runs = {
        "sklearn": (SKLEARN, [], REPO),
        "sklearn-variant": (SKLEARN, ["--steps-dir", str(steps)], REPO),
        "custom": (CUSTOM, [], REPO),
        "custom-variant": (CUSTOM, [], copy),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    processes = {}
    for name, (settings, extra, cwd) in runs.items():
        (root / name).mkdir()
        arguments = ["--settings", str(settings_file(root / name, settings))]
        arguments += ["--out-dir", str(root / name / "out"), *extra]
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "pipeline_code.generate", *arguments],
            cwd=cwd, env=env, text=True, stderr=subprocess.PIPE,
        )  # fmt: skip
    found = {}
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}: {stderr}"
        out = root / name / "out"
        found[name] = (json.loads((out / generate.DEFINITION_FILE).read_text("utf-8")), out)
    return found


def _by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in definition["Steps"]}


@pytest.mark.parametrize("trainer", ["sklearn", "custom"])
def test_train_is_cached_for_the_configured_time(definitions: dict, trainer: str) -> None:
    train = _by_name(definitions[trainer][0])["Train"]
    assert train["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P7D"}


@pytest.mark.parametrize(
    ("trainer", "script"), [("sklearn", "train_sklearn.py"), ("custom", "train.py")]
)
def test_a_change_to_the_trainers_code_moves_only_trains_cache_key(
    definitions: dict, trainer: str, script: str
) -> None:
    (before_definition, _), (after_definition, after_out) = (
        definitions[trainer],
        definitions[f"{trainer}-variant"],
    )
    before, after = _by_name(before_definition), _by_name(after_definition)
    assert before["Prepare"] == after["Prepare"]
    assert before["Evaluate"] == after["Evaluate"]
    # The code directory and ModelTrainer's drivers (which name it) both move, in
    # InputDataConfig: a cache-key field of a training step (SageMaker developer guide).
    old = set(CODE_URI.findall(json.dumps(before["Train"]["Arguments"]["InputDataConfig"])))
    new = set(CODE_URI.findall(json.dumps(after["Train"]["Arguments"]["InputDataConfig"])))
    assert len(old) == len(new) == 2 and old.isdisjoint(new)
    shipped = [after_out / "code" / digest / script for digest, _ in new]
    [changed] = [path for path in shipped if path.is_file()]
    assert changed.read_text(encoding="utf-8").endswith(CHANGE)
    # Nothing else in Train's request moved.
    for key in set(before["Train"]["Arguments"]) - {"InputDataConfig"}:
        assert before["Train"]["Arguments"][key] == after["Train"]["Arguments"][key], key
