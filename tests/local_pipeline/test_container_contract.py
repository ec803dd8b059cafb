"""The container contract: /opt/ml mapped to the step's sandbox (arguments, environment and the
script's own file access), the SM_* variables ModelTrainer's drivers derive, and AWS calls
answered locally, blocked by network isolation, or refused by name."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from pipeline_code.local_pipeline import aws_stand_in, container
from pipeline_code.local_pipeline.errors import StepError
from pipeline_code.local_pipeline.jobs import check_aws_calls
from tests.local_pipeline.conftest import Baseline

SCRIPT = """
import os, pathlib, sys
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
print("argument:", out)
pathlib.Path(out, "model-dir.txt").write_text(os.environ["SM_MODEL_DIR"])
pathlib.Path("/opt/ml/output/data").mkdir(parents=True, exist_ok=True)
pathlib.Path("/opt/ml/output/data/from-default.txt").write_text("written by a default path")
print(sorted(os.listdir("/opt/ml/output/data")))
"""


def _run(
    tmp_path: Path, code: str, *arguments: str, isolated: bool = False
) -> tuple[container.Finished, container.Sandbox]:
    (tmp_path / "script.py").write_text(code)
    sandbox = container.Sandbox(tmp_path / "step" / "container")
    sandbox.root.mkdir(parents=True)
    world = container.World(tmp_path / "s3", tmp_path / "registry", "eu-west-1")
    finished = container.run(
        ["python3", str(tmp_path / "script.py"), *arguments],
        sandbox,
        world,
        {"SM_MODEL_DIR": "/opt/ml/model"},
        isolated,
        timeout=60,
    )
    return finished, sandbox


def test_container_paths_land_in_the_sandbox(tmp_path: Path) -> None:
    real_prefix_existed = Path("/opt/ml").exists()
    finished, sandbox = _run(tmp_path, SCRIPT, "/opt/ml/processing/output")
    log = finished.log.read_text()
    assert finished.exit_code == 0, log
    # Arguments and environment are rewritten before the script sees them ...
    output = sandbox.host_path("/opt/ml/processing/output")
    assert f"argument: {output}" in log
    assert (output / "model-dir.txt").read_text() == str(sandbox.host_path("/opt/ml/model"))
    # ... and the script's own /opt/ml paths are redirected.
    data = sandbox.host_path("/opt/ml/output/data")
    assert (data / "from-default.txt").read_text() == "written by a default path"
    assert "['from-default.txt']" in log
    assert Path("/opt/ml").exists() == real_prefix_existed


def test_a_host_path_is_not_a_container_path(tmp_path: Path) -> None:
    sandbox = container.Sandbox(tmp_path)
    with pytest.raises(container.ContainerError, match="is not under /opt/ml"):
        sandbox.host_path("/data/input")
    assert sandbox.rewrite("--out=/opt/ml/x") == f"--out={tmp_path}/opt/ml/x"
    assert sandbox.rewrite("/opt/mlx /tmp/opt/ml") == "/opt/mlx /tmp/opt/ml"


def test_the_image_entrypoint_and_image_programs_are_named(tmp_path: Path) -> None:
    sandbox = container.Sandbox(tmp_path)
    with pytest.raises(container.ContainerError, match="the image's own entrypoint"):
        container.program([], sandbox, "")
    with pytest.raises(container.ContainerError, match="'/usr/bin/serve' is part of the image"):
        container.program(["/usr/bin/serve"], sandbox, "")
    assert container.program(["python3", "/opt/ml/code/x.py"], sandbox, "") == [
        sys.executable,
        f"{tmp_path}/opt/ml/code/x.py",
    ]


AWS_SCRIPT = """
import boto3, botocore.exceptions
s3 = boto3.client("s3")
print("object:", s3.get_object(Bucket="local-artifacts", Key="a/b.txt")["Body"].read().decode())
packages = boto3.client("sagemaker").list_model_packages(
    ModelPackageGroupName="g", ModelApprovalStatus="Approved", SortBy="CreationTime",
    SortOrder="Descending")
print("approved:", [p["ModelPackageVersion"] for p in packages["ModelPackageSummaryList"]])
try:
    boto3.client("sts").get_caller_identity()
except botocore.exceptions.ClientError as error:
    print("sts:", error.response["Error"]["Code"])
"""


def _package(version: int, status: str, created: str) -> dict[str, object]:
    return {
        "ModelPackageName": "g",
        "ModelPackageGroupName": "g",
        "ModelPackageVersion": version,
        "ModelPackageArn": aws_stand_in.package_arn("eu-west-1", "g", version),
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": status,
        "CreationTime": created,
    }


def test_aws_calls_are_answered_locally_or_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "s3" / "local-artifacts" / "a").mkdir(parents=True)
    (tmp_path / "s3" / "local-artifacts" / "a" / "b.txt").write_text("local object")
    for version, status, created in (
        (1, "Approved", "2026-01-01T00:00:00+00:00"),
        (2, "Approved", "2026-01-02T00:00:00+00:00"),
        (3, "PendingManualApproval", "2026-01-03T00:00:00+00:00"),
    ):
        aws_stand_in.write_package(tmp_path / "registry", _package(version, status, created))
    finished, _ = _run(tmp_path, AWS_SCRIPT)
    log = finished.log.read_text()
    assert finished.exit_code == 0, log
    assert "object: local object" in log
    assert "approved: [2, 1]" in log
    assert "sts: LocalRunUnsupported" in log
    with pytest.raises(StepError, match="called sts:GetCallerIdentity, which the local run does"):
        check_aws_calls("Evaluate", finished)


def test_a_network_isolated_step_reaches_no_aws(tmp_path: Path) -> None:
    code = "import boto3\nboto3.client('s3').list_buckets()\n"
    finished, _ = _run(tmp_path, code, isolated=True)
    assert finished.exit_code == 1
    assert "EndpointConnectionError" in finished.log.read_text()
    assert finished.aws_calls == [
        {"call": "s3:ListBuckets", "outcome": "blocked: network isolation"}
    ]


def test_a_step_that_runs_too_long_is_stopped(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text("import time\ntime.sleep(30)\n")
    sandbox = container.Sandbox(tmp_path / "step" / "container")
    sandbox.root.mkdir(parents=True)
    world = container.World(tmp_path / "s3", tmp_path / "registry", "eu-west-1")
    finished = container.run(
        ["python3", str(tmp_path / "script.py")], sandbox, world, {}, True, timeout=1
    )
    assert finished.timed_out and finished.seconds < 10


@pytest.mark.xdist_group("local_pipeline")
def test_training_gets_the_sm_variables_of_the_model_trainer_drivers(baseline: Baseline) -> None:
    ml = baseline.run.run_dir / "steps" / "Train" / "container" / "opt" / "ml"
    exported = {}
    for line in (ml / "input" / "sm_training.env").read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        exported[name] = shlex.split(value)[0]
    assert exported["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert exported["SM_CHANNEL_VALIDATION"] == "/opt/ml/input/data/validation"
    assert exported["SM_MODEL_DIR"] == "/opt/ml/model"
    assert exported["SM_OUTPUT_DATA_DIR"] == "/opt/ml/output/data"
    assert exported["SM_HP_NUM_ROUND"] == "20"
    assert exported["SM_HP_TARGET"] == "is_fraud"
    assert json.loads(exported["SM_HPS"])["eta"] == 0.1
    assert exported["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(exported["SM_HOSTS"]) == ["algo-1"]
    assert int(exported["SM_NUM_CPUS"]) >= 1
    assert exported["SM_ENTRY_SCRIPT"] == "train.py"
    # The model the entry script saved under SM_MODEL_DIR is the sandbox's /opt/ml/model.
    assert (ml / "model" / "xgboost-model").is_file()
