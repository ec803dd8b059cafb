"""The training definition with several training instances (`training_instance_count` 3):
Prepare cuts the train split into one shard per instance, the train channel is fed
ShardedByS3Key, validation and the training data record reach every instance, and every request
is accepted by botocore's SageMaker model. (One instance: the snapshot of test_definition.py is
the proof that nothing changed.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import botocore.session
import pytest

from pipeline_code.definition import training_channels
from pipeline_code.steps import load
from tests.pipeline.generated import (
    PIPELINE_ROLE_ARN,
    REPO,
    SETTINGS,
    Run,
    resolved,
    settings_file,
    substituted,
    validate_request,
)

pytestmark = pytest.mark.slow  # one generator run (about 5 s)

INSTANCES = 3


@pytest.fixture(scope="module")
def distributed(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("distributed")
    settings = settings_file(root, SETTINGS | {"training_instance_count": INSTANCES})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    out = root / "out"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_code.generate", "--settings", str(settings)]
        + ["--out-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return Run(out_dir=out, returncode=done.returncode, stderr=done.stderr)


@pytest.fixture(scope="module")
def steps(distributed: Run) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in distributed.definition["Steps"]}


def _join(node: Any) -> tuple[Any, list[Any]]:
    return node["Std:Join"]["On"], node["Std:Join"]["Values"]


def test_prepare_writes_one_train_shard_per_instance(steps: dict[str, Any]) -> None:
    arguments = steps["Prepare"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    at = arguments.index("--train-shards")
    assert arguments[at + 1] == str(INSTANCES)


def test_training_runs_on_every_instance_with_its_shard_of_the_train_split(
    steps: dict[str, Any],
) -> None:
    request = steps["Train"]["Arguments"]
    assert request["ResourceConfig"]["InstanceCount"] == INSTANCES
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "validation", "train_record", "code", "sm_drivers"}
    for every_host in ("code", "sm_drivers"):  # the script and its drivers run on each host
        source = channels[every_host]["DataSource"]["S3DataSource"]
        assert source["S3DataDistributionType"] == "FullyReplicated"
    prepare_train = {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}

    train = channels["train"]["DataSource"]["S3DataSource"]
    assert train["S3DataDistributionType"] == "ShardedByS3Key"
    assert train["S3DataType"] == "S3Prefix"
    assert _join(train["S3Uri"]) == ("/", [prepare_train, "shards"])

    validation = channels["validation"]["DataSource"]["S3DataSource"]
    assert validation["S3DataDistributionType"] == "FullyReplicated"
    assert validation["S3Uri"] == {
        "Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['validation'].S3Output.S3Uri"
    }

    record = channels["train_record"]["DataSource"]["S3DataSource"]
    assert record["S3DataDistributionType"] == "FullyReplicated"
    assert _join(record["S3Uri"]) == ("/", [prepare_train, "training_data.json"])


def test_the_channel_names_are_what_the_step_scripts_write_and_read() -> None:
    assert training_channels.TRAIN_SHARDS_DIR == load("prepare", "train_shards").SHARDS_DIR
    record = load("common", "training_data").TRAINING_DATA_FILE
    assert record == training_channels.TRAINING_DATA_FILE
    parser_defaults = load("train").parse_args([])
    assert hasattr(parser_defaults, training_channels.TRAIN_RECORD_CHANNEL)


def test_spot_checkpoints_stay_one_prefix_for_the_job(steps: dict[str, Any]) -> None:
    # Every instance syncs the same S3 prefix; only the master writes into it (train.py).
    checkpoint = steps["Train"]["Arguments"]["CheckpointConfig"]
    assert checkpoint["LocalPath"] == "/opt/ml/checkpoints"
    # A run after the instance count changed does not resume from another count's checkpoint.
    _, segments = _join(checkpoint["S3Uri"])
    assert segments[-1] == f"instances-{INSTANCES}"


def test_the_hosts_stay_isolated_and_encrypt_their_traffic(steps: dict[str, Any]) -> None:
    request = steps["Train"]["Arguments"]
    assert request["EnableNetworkIsolation"] is True
    assert request["EnableInterContainerTrafficEncryption"] is True


def _run_values(distributed: Run) -> dict[str, Any]:
    """The start-training Lambda's four run-time values, the definition's defaults for the rest."""
    values: dict[str, Any] = {
        "InputDataUri": "s3://fraud-dev-data/landing/transactions/2026-11-01/",
        "DatasetVersion": "transactions/2026-11-01",
        "DataDigest": "sha256-0f3a",
        "ChampionModelPackageArn": "none",
    }
    return values | {
        p["Name"]: p["DefaultValue"]
        for p in distributed.definition["Parameters"]
        if "DefaultValue" in p
    }


def test_the_multi_instance_definition_is_valid_for_sagemaker(
    distributed: Run, steps: dict[str, Any]
) -> None:
    definition_text = substituted(distributed.definition_text)
    validate_request(
        "CreatePipeline",
        {
            "PipelineName": SETTINGS["pipeline_name"],
            "PipelineDefinition": definition_text,
            "RoleArn": PIPELINE_ROLE_ARN,
            "ClientRequestToken": "0123456789abcdef0123456789abcdef",
        },
    )
    requests = json.loads(substituted(json.dumps(steps)))
    for name, operation, name_key in (
        ("Prepare", "CreateProcessingJob", "ProcessingJobName"),
        ("Train", "CreateTrainingJob", "TrainingJobName"),
    ):
        request = resolved(requests[name]["Arguments"], _run_values(distributed))
        request[name_key] = f"pipelines-abc123-{name}"
        validate_request(operation, request)


def test_the_distribution_types_are_sagemakers_own(steps: dict[str, Any]) -> None:
    """botocore's validator checks types, not enums: check them against the model."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    allowed = model.shape_for("S3DataDistribution").enum
    used = {
        c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in steps["Train"]["Arguments"]["InputDataConfig"]
    }
    assert used == {"ShardedByS3Key", "FullyReplicated"}
    assert used <= set(allowed)
