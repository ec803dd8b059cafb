"""The training definition with several processing instances (`processing_instance_count` 3):
PrepareShards runs prepare.py --shard on every instance with the version's objects dealt out
ShardedByS3Key, Prepare merges its parts on one instance (everything downstream reads
Prepare's outputs as before), EvaluateShards predicts the test split's files on every instance
(ShardedByS3Key) and Evaluate reads those predictions on one instance, and every request is
accepted by botocore's SageMaker model. (One instance: the snapshot of test_definition.py is
the proof that nothing changed.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import botocore.session
import pytest

from pipeline_code.definition import shared_steps
from pipeline_code.definition.contract import TEST_FILES_PREFIX
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
PARTS = {"Get": "Steps.PrepareShards.ProcessingOutputConfig.Outputs['parts'].S3Output.S3Uri"}


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("sharded")
    settings = settings_file(root, SETTINGS | {"processing_instance_count": INSTANCES})
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
def steps(sharded: Run) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in sharded.definition["Steps"]}


def _inputs(step: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["InputName"]: i["S3Input"] for i in step["Arguments"]["ProcessingInputs"]}


def _arguments(step: dict[str, Any]) -> list[Any]:
    return step["Arguments"]["AppSpecification"]["ContainerArguments"]


def test_every_processing_instance_reads_its_share_of_the_objects(
    steps: dict[str, Any],
) -> None:
    shards = steps["PrepareShards"]
    assert shards["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == {
        "Get": "Parameters.ProcessingInstanceCount"
    }
    inputs = _inputs(shards)
    assert inputs["data"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert inputs["data"]["S3Uri"] == {"Get": "Parameters.InputDataUri"}
    # Every instance verifies its files against the whole manifest and reads the schema.
    assert inputs["manifest"]["S3DataDistributionType"] == "FullyReplicated"
    assert inputs["schema"]["S3DataDistributionType"] == "FullyReplicated"
    assert "--shard" in _arguments(shards)
    outputs = shards["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert [o["OutputName"] for o in outputs] == ["parts"]
    assert outputs[0]["S3Output"]["LocalPath"] == "/opt/ml/processing/output/parts"
    assert shards["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is True


def test_the_parts_go_below_the_prefix_the_artifact_bucket_expires(steps: dict[str, Any]) -> None:
    """pipelines/<pipeline>/shard-parts/<execution>/PrepareShards/parts: a lifecycle prefix
    rule (constructs/secure_bucket.shard_parts_expiry) matches it, the execution id keeps
    concurrent executions apart."""
    (output,) = steps["PrepareShards"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    join = output["S3Output"]["S3Uri"]["Std:Join"]
    assert join["On"] == "/"
    values = join["Values"]
    assert values[0] == "s3:/"  # joined by "/": s3://<bucket>/...
    assert values[2:5] == ["pipelines", SETTINGS["pipeline_name"], "shard-parts"]
    assert values[5] == {"Get": "Execution.PipelineExecutionId"}
    assert values[6:] == ["PrepareShards", "parts"]


def test_prepare_merges_the_parts_on_one_instance_with_the_same_split(
    steps: dict[str, Any],
) -> None:
    prepare = steps["Prepare"]
    assert prepare["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    inputs = _inputs(prepare)
    assert "data" not in inputs
    assert inputs["parts"]["S3Uri"] == PARTS
    assert inputs["parts"]["S3DataDistributionType"] == "FullyReplicated"
    arguments = _arguments(prepare)
    assert arguments[arguments.index("--parts-dir") + 1] == inputs["parts"]["LocalPath"]
    assert "--input-dir" not in arguments and "--shard" not in arguments
    # The same split and manifest arguments on both sides (the merge recomputes the split).
    split = [a for a in _arguments(steps["PrepareShards"]) if a not in ("--shard",)]
    shared = [a for a in split if a not in ("--input-dir", "/opt/ml/processing/input/data")]
    assert [a for a in arguments if a not in ("--parts-dir", shared_steps.PARTS_DIR)] == shared
    outputs = [o["OutputName"] for o in prepare["Arguments"]["ProcessingOutputConfig"]["Outputs"]]
    assert outputs == ["train", "validation", "test", "baseline", "report"]


PREDICTIONS = {
    "Get": "Steps.EvaluateShards.ProcessingOutputConfig.Outputs['predictions'].S3Output.S3Uri"
}


def test_evaluate_runs_on_one_instance_on_evaluate_shards_predictions(
    steps: dict[str, Any],
) -> None:
    evaluate = steps["Evaluate"]
    assert evaluate["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    inputs = _inputs(evaluate)
    assert inputs["predictions"]["S3Uri"] == PREDICTIONS
    assert inputs["predictions"]["S3DataDistributionType"] == "FullyReplicated"
    arguments = _arguments(evaluate)
    assert arguments[arguments.index("--predictions-dir") + 1] == inputs["predictions"]["LocalPath"]
    # the whole test split too: the data-shift section and the champion's rows need every row
    assert inputs["test"]["S3DataDistributionType"] == "FullyReplicated"


def test_every_processing_instance_predicts_its_share_of_the_test_files(
    steps: dict[str, Any],
) -> None:
    shards = steps["EvaluateShards"]
    assert shards["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == {
        "Get": "Parameters.ProcessingInstanceCount"
    }
    inputs = _inputs(shards)
    evaluate_inputs = _inputs(steps["Evaluate"])
    # the same test split and model as Evaluate: the test files dealt out (their key prefix,
    # so labels.json is not one of the objects dealt), the model to all
    assert inputs["test"]["S3Uri"] == {
        "Std:Join": {"On": "/", "Values": [evaluate_inputs["test"]["S3Uri"], "test"]}
    }
    assert inputs["test"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert inputs["model"]["S3Uri"] == evaluate_inputs["model"]["S3Uri"]
    assert inputs["model"]["S3DataDistributionType"] == "FullyReplicated"
    arguments = _arguments(shards)
    (output,) = shards["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == "predictions"
    assert arguments[arguments.index("--predictions-output") + 1] == output["S3Output"]["LocalPath"]
    # the same champion (a parameter, so in the cache key) and registry group as Evaluate
    evaluate_arguments = _arguments(steps["Evaluate"])
    for flag in ("--champion-model-package-arn", "--model-package-group", "--target"):
        value = arguments[arguments.index(flag) + 1]
        assert value == evaluate_arguments[evaluate_arguments.index(flag) + 1]
    assert shards["Arguments"]["AppSpecification"] == {
        **steps["Evaluate"]["Arguments"]["AppSpecification"],
        "ContainerArguments": arguments,
    }
    # cached: a new model (its S3 URI), new test data or another champion is a new key
    assert shards["CacheConfig"]["Enabled"] is True
    assert shards["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is False


def test_the_predictions_go_below_the_prefix_the_artifact_bucket_expires(
    steps: dict[str, Any],
) -> None:
    (output,) = steps["EvaluateShards"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    values = output["S3Output"]["S3Uri"]["Std:Join"]["Values"]
    assert values[2:5] == ["pipelines", SETTINGS["pipeline_name"], "shard-parts"]
    assert values[5] == {"Get": "Execution.PipelineExecutionId"}
    assert values[6:] == ["EvaluateShards", "predictions"]


def test_both_prepare_steps_are_cached_on_the_data_digest(steps: dict[str, Any]) -> None:
    for name in ("PrepareShards", "Prepare"):
        assert steps[name]["CacheConfig"]["Enabled"] is True
        assert {"Get": "Parameters.DataDigest"} in _arguments(steps[name])


def test_the_test_files_prefix_matches_the_test_files_prepare_writes_and_nothing_else() -> None:
    split_test_files = load("prepare", "split_test_files")
    prefix = TEST_FILES_PREFIX
    names = ["test.csv", *(split_test_files.TEST_PART.format(n) for n in (0, 1, 99999))]
    assert all(name.startswith(prefix) for name in names)
    assert not "labels.json".startswith(prefix)


def test_the_parts_folder_is_what_prepare_writes() -> None:
    shard_parts = load("prepare", "shard_parts")
    assert shard_parts.PARTS_DIR == "parts"


def _values(definition: dict[str, Any]) -> dict[str, Any]:
    """The parameters' values of an execution: the trigger's, then the defaults."""
    return {
        "InputDataUri": "s3://fraud-dev-data/landing/transactions/2026-11-01/",
        "DatasetVersion": "transactions/2026-11-01",
        "DataDigest": "0f3a" * 16,
        "ChampionModelPackageArn": "none",
    } | {p["Name"]: p["DefaultValue"] for p in definition["Parameters"] if "DefaultValue" in p}


def test_the_sharded_definition_is_valid_for_sagemaker(sharded: Run, steps: dict[str, Any]) -> None:
    validate_request(
        "CreatePipeline",
        {
            "PipelineName": SETTINGS["pipeline_name"],
            "PipelineDefinition": substituted(sharded.definition_text),
            "RoleArn": PIPELINE_ROLE_ARN,
            "ClientRequestToken": "0123456789abcdef0123456789abcdef",
        },
    )
    values = _values(sharded.definition)
    assert values["ProcessingInstanceCount"] == INSTANCES
    requests = json.loads(substituted(json.dumps(steps)))
    for name in ("PrepareShards", "Prepare", "EvaluateShards", "Evaluate"):
        request = resolved(requests[name]["Arguments"], values)
        request["ProcessingJobName"] = f"pipelines-abc123-{name}"
        validate_request("CreateProcessingJob", request)
    model = botocore.session.get_session().get_service_model("sagemaker")
    allowed = model.shape_for("ProcessingS3DataDistributionType").enum
    for name in ("PrepareShards", "EvaluateShards"):
        used = {i["S3DataDistributionType"] for i in _inputs(steps[name]).values()}
        assert used == {"ShardedByS3Key", "FullyReplicated"} and used <= set(allowed)


def test_a_scikit_learn_model_is_predicted_in_the_image_evaluate_runs_in(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """EvaluateShards unpickles the model as Evaluate does: the scikit-learn image, told the
    trainer is sklearn; its request is valid for botocore's model."""
    from tests.pipeline.test_sklearn_definition import BINARY, SKLEARN, _image, generated_training

    estimator, params = SKLEARN["binary"]
    settings = BINARY | {
        "processing_instance_count": INSTANCES,
        "sklearn": {"estimator": estimator, "params": params, "framework_version": "1.9-0"},
    }
    definition, _ = generated_training(tmp_path_factory.mktemp("sklearn-sharded"), settings)
    steps = {step["Name"]: step for step in definition["Steps"]}
    image = _image("training", settings["region"])
    for name in ("EvaluateShards", "Evaluate"):
        assert steps[name]["Arguments"]["AppSpecification"]["ImageUri"] == image
        arguments = _arguments(steps[name])
        assert arguments[arguments.index("--trainer") + 1] == "sklearn"
    values = _values(definition)
    request = resolved(
        json.loads(substituted(json.dumps(steps)))["EvaluateShards"]["Arguments"], values
    )
    request["ProcessingJobName"] = "pipelines-abc123-EvaluateShards"
    validate_request("CreateProcessingJob", request)
