"""Shared by the pipeline definition tests: settings, generator runs, botocore checks.

The generator runs in subprocesses, exactly as the CDK app runs it (four runs, in parallel,
once per session; see ``conftest.py``): a baseline, the same inputs from another working
directory with another hash seed, no AWS settings and sockets blocked, a variant with a
changed train/train.py and ``use_spot`` off, and ``monitoring_engine="model-monitor"`` isolated like
the second run but with another region in the environment (its determinism is the snapshot's).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

from pipeline_code import generate

REPO = Path(__file__).resolve().parents[2]
STEPS_DIR = REPO / "pipeline_code" / "steps"
HASH = re.compile(r"[0-9a-f]{64}")
CODE_URI = re.compile(r"s3://\$\{ArtifactBucket\}/pipeline-code/([0-9a-f]{64})/([^\"]*)")

SETTINGS: dict[str, Any] = {
    "project": "fraud",
    "environment": "dev",
    "region": "eu-west-1",
    "pipeline_name": "fraud-dev-training",
    "model_package_group_name": "fraud-dev-models",
    "schema": {
        "target": "is_fraud",
        "features": [
            {"name": "amount", "type": "float"},
            {"name": "hour", "type": "int"},
            {"name": "merchant_category", "type": "int"},
            {"name": "distance_from_home_km", "type": "float"},
            {"name": "distance_from_last_txn_km", "type": "float"},
            {"name": "ratio_to_median_amount", "type": "float"},
            {"name": "used_chip", "type": "bool"},
            {"name": "used_pin", "type": "bool"},
            {"name": "online_order", "type": "bool"},
            {"name": "txn_count_24h", "type": "int"},
        ],
        "max_missing_fraction": 0.05,
    },
    "processing_instance_type": "ml.m5.xlarge",
    "processing_instance_count": 1,
    "training_instance_type": "ml.m5.2xlarge",
    "training_instance_count": 1,
    "use_spot": True,
    "max_runtime_seconds": 5400,
    "max_wait_seconds": 7200,
    "hyperparameters": {
        "num_round": 300,
        "max_depth": 6,
        "eta": 0.1,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 1,
        "early_stopping_rounds": 20,
    },
    "metric": "auc",
    "metric_floor": 0.85,
    "champion_tolerance": 0.01,
    "min_positives": 150,
    "gate_method": "delong",
    "decision_threshold": 0.35,
    "scale_pos_weight": "balanced",
    "split": {
        "id_column": "txn_id",
        "time_column": None,
        "validation_fraction": 0.2,
        "test_fraction": 0.25,
    },
    "bootstrap_samples": 500,
    "cache_expire_after": "P30D",
    "xgboost_framework_version": "3.0-5",
    "tags": {"cost-center": "ml-platform"},
    "evaluation_pipeline_name": "fraud-dev-evaluation",
    "model_quality_namespace": "fraud-dev/ModelQuality",
}
MODEL_MONITOR_SETTINGS: dict[str, Any] = SETTINGS | {"monitoring_engine": "model-monitor"}

# Plausible deploy-time values for the placeholders (what the custom resource substitutes).
DEPLOY_VALUES = {
    "ArtifactBucket": "fraud-dev-artifacts-123456789012",
    "ProcessingJobRoleArn": "arn:aws:iam::123456789012:role/fraud-dev-processing-jobs",
    "TrainingJobRoleArn": "arn:aws:iam::123456789012:role/fraud-dev-training-jobs",
    "KmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "ModelPackageGroupName": "fraud-dev-models",
}

# The role SageMaker Pipelines runs as: the pipeline's RoleArn, not a placeholder of the definition.
PIPELINE_ROLE_ARN = "arn:aws:iam::123456789012:role/fraud-dev-sagemaker-pipelines"

# Sockets refused and every attempt reported: the run fails even if the SDK swallows an error.
_NO_NETWORK_RUNNER = """
import runpy, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[1:2]))
    raise OSError("network access blocked by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
sys.argv = ["pipeline_code.generate", *sys.argv[1:]]
try:
    runpy.run_module("pipeline_code.generate", run_name="__main__", alter_sys=True)
finally:
    if attempts:
        print("NETWORK ATTEMPTS:", attempts, file=sys.stderr)
        sys.exit(3)
"""


@dataclass(frozen=True)
class Run:
    """One generator run: its output directory and process result."""

    out_dir: Path
    returncode: int
    stderr: str

    @property
    def definition(self) -> dict[str, Any]:
        """The training pipeline's definition."""
        return json.loads(self.definition_text)

    @property
    def definition_text(self) -> str:
        return (self.out_dir / generate.DEFINITION_FILE).read_text(encoding="utf-8")

    @property
    def evaluation(self) -> dict[str, Any]:
        """The evaluation-only pipeline's definition."""
        return json.loads(self.evaluation_text)

    @property
    def evaluation_text(self) -> str:
        return (self.out_dir / generate.EVALUATION_DEFINITION_FILE).read_text(encoding="utf-8")

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.out_dir / generate.MANIFEST_FILE).read_text(encoding="utf-8"))

    def files(self) -> dict[str, bytes]:
        return {
            path.relative_to(self.out_dir).as_posix(): path.read_bytes()
            for path in sorted(self.out_dir.rglob("*"))
            if path.is_file()
        }


@dataclass(frozen=True)
class Runs:
    baseline: Run
    elsewhere: Run  # other cwd, hash seed, no AWS env, empty HOME, sockets blocked
    variant: Run  # train/train.py changed, use_spot off
    # monitoring_engine "model-monitor", isolated like `elsewhere`, with AWS_DEFAULT_REGION
    # another region than the settings'
    model_monitor: Run


def settings_file(directory: Path, settings: dict[str, Any]) -> Path:
    path = directory / "settings.json"
    path.write_text(json.dumps(settings, indent=2))
    return path


def start(arguments: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *arguments], cwd=cwd, env=env, text=True, stderr=subprocess.PIPE
    )


def generate_runs(root: Path) -> Runs:
    """Run the generator four times in parallel under ``root`` (about 5 s each, idle)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    module = ["-m", "pipeline_code.generate"]

    inputs = root / "inputs"
    inputs.mkdir()
    settings = ["--settings", str(settings_file(inputs, SETTINGS))]

    home = root / "empty-home"
    home.mkdir()
    isolated = env | {"PYTHONHASHSEED": "4242", "HOME": str(home), "PYTHONPATH": str(REPO)}

    steps = root / "variant-steps"
    shutil.copytree(STEPS_DIR, steps, ignore=shutil.ignore_patterns("__pycache__"))
    with (steps / "train" / "train.py").open("a", encoding="utf-8") as train:
        train.write("\n# a change to the training script only\n")
    variant_inputs = root / "variant-inputs"
    variant_inputs.mkdir()
    variant = ["--settings", str(settings_file(variant_inputs, SETTINGS | {"use_spot": False}))]

    monitor_inputs = root / "model-monitor-inputs"
    monitor_inputs.mkdir()
    monitor = ["--settings", str(settings_file(monitor_inputs, MODEL_MONITOR_SETTINGS))]
    monitor_home = root / "empty-home-model-monitor"
    monitor_home.mkdir()
    monitor_isolated = isolated | {
        "HOME": str(monitor_home),
        "PYTHONHASHSEED": "99",
        # Region-specific values must come from the settings (eu-west-1), never from here.
        "AWS_DEFAULT_REGION": "us-west-2",
    }

    outs = {name: root / name for name in ("baseline", "elsewhere", "variant", "model_monitor")}
    processes = {
        "baseline": start(
            [*module, *settings, "--out-dir", str(outs["baseline"])],
            cwd=REPO,
            env=env | {"PYTHONHASHSEED": "0"},
        ),
        "elsewhere": start(
            ["-c", _NO_NETWORK_RUNNER, *settings, "--out-dir", str(outs["elsewhere"])],
            cwd=home,
            env=isolated,
        ),
        "variant": start(
            [*module, *variant, "--out-dir", str(outs["variant"]), "--steps-dir", str(steps)],
            cwd=REPO,
            env=env | {"PYTHONHASHSEED": "7"},
        ),
        "model_monitor": start(
            ["-c", _NO_NETWORK_RUNNER, *monitor, "--out-dir", str(outs["model_monitor"])],
            cwd=monitor_home,
            env=monitor_isolated,
        ),
    }
    results = {}
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        results[name] = Run(out_dir=outs[name], returncode=process.returncode, stderr=stderr)
    return Runs(**results)


# ------------------------------------------------------------------------------- step code


def step_code_files(step: str, steps_dir: Path = STEPS_DIR) -> dict[str, bytes]:
    """What a step's code directory must hold: its folder, with common/ inside (no caches)."""
    files = {}
    for folder, root in (("", steps_dir / step), ("common/", steps_dir / "common")):
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files[folder + path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def stored_files(directory: Path) -> dict[str, bytes]:
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def tree_digest(files: dict[str, bytes]) -> str:
    """The content address of a directory: SHA-256 of its sorted (path, file SHA-256) list."""
    tree = hashlib.sha256()
    for name, data in sorted(files.items()):
        tree.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return tree.hexdigest()


def processing_code(step: dict[str, Any]) -> tuple[str, str]:
    """A processing step's code: (digest of its code directory, the script it runs)."""
    inputs = step["Arguments"]["ProcessingInputs"]
    [code] = [i["S3Input"] for i in inputs if i["InputName"] == "code"]
    assert code["LocalPath"] == "/opt/ml/processing/input/code"
    match = CODE_URI.fullmatch(code["S3Uri"])
    assert match and match.group(2) == "", code  # the directory, not a single file
    entrypoint = step["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
    assert entrypoint[:-1] == ["python3"], entrypoint
    script = entrypoint[-1].removeprefix("/opt/ml/processing/input/code/")
    return match.group(1), script


# ---------------------------------------------------------------------------- botocore checks


def substituted(text: str) -> str:
    for name, value in DEPLOY_VALUES.items():
        text = text.replace("${" + name + "}", value)
    return text


def max_violations(value: Any, shape: Any, path: str = "") -> list[str]:
    """Max-length/size violations (botocore's validator only checks minimums)."""
    found = []
    limit = shape.metadata.get("max")
    if shape.type_name == "string" and limit is not None and len(value) > limit:
        found.append(f"{path}: {len(value)} characters > {limit}")
    elif shape.type_name == "list":
        if limit is not None and len(value) > limit:
            found.append(f"{path}: {len(value)} items > {limit}")
        for index, item in enumerate(value):
            found += max_violations(item, shape.member, f"{path}[{index}]")
    elif shape.type_name == "map":
        if limit is not None and len(value) > limit:
            found.append(f"{path}: {len(value)} entries > {limit}")
        for key, item in value.items():
            found += max_violations(key, shape.key, f"{path}.{key}(key)")
            found += max_violations(item, shape.value, f"{path}.{key}")
    elif shape.type_name == "structure":
        for key, item in value.items():
            found += max_violations(item, shape.members[key], f"{path}.{key}")
    return found


def validate_request(operation: str, params: dict[str, Any]) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), f"{operation}: {report.generate_report()}"
    assert max_violations(params, shape) == [], operation


# Plausible evaluation.json values where a number would not do (the rest read 0.91).
JSON_GET_VALUES = {
    "lineage.model_artifact_sha256": "5f" * 32,
    "lineage.champion_comparison": "scored on the same features",
}


def resolved(node: Any, parameters: dict[str, Any]) -> Any:
    """Replace pipeline expressions with plausible run-time values."""
    if isinstance(node, list):
        return [resolved(item, parameters) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Get"}:
        reference = node["Get"]
        if reference.startswith("Parameters."):
            return parameters[reference.removeprefix("Parameters.")]
        if reference == "Steps.Train.TrainingJobName":
            return "pipelines-abc123-Train-xyz"
        if reference.startswith("Execution."):
            return "abc123def456"
        return "s3://fraud-dev-artifacts-123456789012/pipelines/some/output"
    if set(node) == {"Std:Join"}:
        join = node["Std:Join"]
        return join["On"].join(str(resolved(v, parameters)) for v in join["Values"])
    if set(node) == {"Std:JsonGet"}:
        return JSON_GET_VALUES.get(node["Std:JsonGet"]["Path"], 0.91)
    return {key: resolved(value, parameters) for key, value in node.items()}
