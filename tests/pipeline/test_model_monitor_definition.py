"""``monitoring_engine="model-monitor"``: a Model Monitor Baseline step whose statistics and
constraints the model package carries as its data-quality baselines.

The generator run comes from ``conftest.py`` (``runs.model_monitor``: sockets blocked, another
cwd, HOME and hash seed, another region in the environment); the default (``"evidently"``)
definition is ``runs.baseline``.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest

from pipeline_code import definition
from pipeline_code.definition import PipelineSettings, SettingsError
from pipeline_code.steps import load
from tests.pipeline.generated import (
    HASH,
    MODEL_MONITOR_SETTINGS,
    PIPELINE_ROLE_ARN,
    SETTINGS,
    Run,
    Runs,
    resolved,
    substituted,
    validate_request,
)

split_outputs = load("prepare", "split_outputs")

slow = pytest.mark.slow  # the generator runs (about 5 s, once per session)

PREPARE_BASELINE = {
    "Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"
}
STATISTICS = {"Get": "Steps.Baseline.CalculatedBaselineStatistics"}
CONSTRAINTS = {"Get": "Steps.Baseline.CalculatedBaselineConstraints"}
JOB_TAGS = [
    {"Key": "project", "Value": "fraud"},
    {"Key": "environment", "Value": "dev"},
    {"Key": "pipeline", "Value": "fraud-dev-training"},
    {"Key": "cost-center", "Value": "ml-platform"},
]
KMS = "${KmsKeyArn}"


def _all_steps(run: Run) -> dict[str, dict[str, Any]]:
    """Every step by name, the condition's branches included."""
    found: dict[str, dict[str, Any]] = {}
    for step in run.definition["Steps"]:
        found[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for nested in step["Arguments"].get(branch, []):
                found[nested["Name"]] = nested
    return found


@pytest.fixture(scope="session")
def steps(model_monitor: Run) -> dict[str, dict[str, Any]]:
    return _all_steps(model_monitor)


@pytest.fixture(scope="session")
def baseline_step(steps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return steps["Baseline"]


def _referenced_steps(node: Any) -> set[str]:
    """Names of the steps whose properties ``node`` reads."""
    return set(re.findall(r'"Steps\.([A-Za-z0-9-]+)[.\[]', json.dumps(node)))


def _model_monitor_image(region: str) -> str:
    """The analyzer image from the pinned SDK's image config (read without importing the SDK)."""
    config_file = distribution("sagemaker-core").locate_file(
        "sagemaker/core/image_uri_config/model-monitor.json"
    )
    config = json.loads(Path(str(config_file)).read_text(encoding="utf-8"))
    [version] = config["versions"].values()
    account = version["registries"][region]
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{version['repository']}"


# ----------------------------------------------------------------------------- Baseline step


@slow
def test_baseline_runs_after_prepare_parallel_to_train(model_monitor: Run, steps: dict) -> None:
    top_level = [(s["Name"], s["Type"]) for s in model_monitor.definition["Steps"]]
    assert top_level == [
        ("Prepare", "Processing"),
        ("Baseline", "QualityCheck"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("Gate", "Condition"),
    ]
    baseline = steps["Baseline"]
    assert "DependsOn" not in baseline
    assert _referenced_steps(baseline) == {"Prepare"}  # not Train, not Evaluate
    # ... and nothing but Register waits for it: Train and Evaluate start as before.
    waiting = {name for name, step in steps.items() if "Baseline" in _referenced_steps(step)}
    assert waiting == {"Gate", "Register"}  # Gate only through its if-branch, Register
    assert _referenced_steps(steps["Gate"]["Arguments"]["Conditions"]) == {"Evaluate"}


@slow
def test_baseline_is_a_data_quality_baseline_that_checks_nothing(baseline_step: dict) -> None:
    assert baseline_step["CheckType"] == "DATA_QUALITY"
    assert baseline_step["SkipCheck"] is True
    assert baseline_step["RegisterNewBaseline"] is True
    assert baseline_step["SuppliedBaselineStatistics"] is None
    assert baseline_step["SuppliedBaselineConstraints"] is None
    assert baseline_step["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}


@slow
def test_baseline_reads_the_headerless_features_csv(baseline_step: dict[str, Any]) -> None:
    args = baseline_step["Arguments"]
    [dataset] = args["ProcessingInputs"]
    assert dataset["S3Input"]["S3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [PREPARE_BASELINE, split_outputs.MODEL_MONITOR_BASELINE_FILE],
        }
    }
    assert dataset["S3Input"]["S3DataType"] == "S3Prefix"
    assert dataset["S3Input"]["S3InputMode"] == "File"
    environment = args["Environment"]
    assert json.loads(environment["dataset_format"]) == {
        "csv": {"header": False, "output_columns_position": "START"}
    }
    assert environment["dataset_source"] == dataset["S3Input"]["LocalPath"]
    assert environment["publish_cloudwatch_metrics"] == "Disabled"
    [output] = args["ProcessingOutputConfig"]["Outputs"]
    assert environment["output_path"] == output["S3Output"]["LocalPath"]


@slow
def test_baseline_results_are_per_execution_under_the_artifact_bucket(
    baseline_step: dict[str, Any],
) -> None:
    [output] = baseline_step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3:/",
                "${ArtifactBucket}",
                "pipelines",
                "fraud-dev-training",
                "executions",
                {"Get": "Execution.PipelineExecutionId"},
                "Baseline",
                "results",
            ],
        }
    }
    assert output["S3Output"]["S3UploadMode"] == "EndOfJob"


@slow
def test_baseline_job_is_encrypted_tagged_bounded_and_runs_as_the_pipeline_role(
    baseline_step: dict[str, Any],
) -> None:
    args = baseline_step["Arguments"]
    assert args["ProcessingOutputConfig"]["KmsKeyId"] == KMS
    cluster = args["ProcessingResources"]["ClusterConfig"]
    assert cluster["VolumeKmsKeyId"] == KMS
    assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
    assert cluster["InstanceCount"] == 1
    assert args["RoleArn"] == "${ProcessingJobRoleArn}"
    assert args["Tags"] == JOB_TAGS
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": SETTINGS["max_runtime_seconds"]}
    assert "ProcessingJobName" not in args  # use_custom_job_prefix=False
    # it needs no network: input and output go through SageMaker's channels
    assert args["NetworkConfig"] == {
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
    }


@slow
def test_baseline_uses_the_analyzer_image_of_the_settings_region(
    baseline_step: dict[str, Any], runs: Runs
) -> None:
    image = baseline_step["Arguments"]["AppSpecification"]["ImageUri"]
    assert image == "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    assert image == _model_monitor_image(SETTINGS["region"])
    # The run had AWS_DEFAULT_REGION=us-west-2: the image still is eu-west-1's.
    assert _model_monitor_image("us-west-2") not in runs.model_monitor.definition_text


# ----------------------------------------------------------------------------------- Register


@slow
def test_register_carries_the_model_monitor_baselines(steps: dict[str, Any], baseline: Run) -> None:
    args = steps["Register"]["Arguments"]
    data_quality = {
        "Statistics": {"ContentType": "application/json", "S3Uri": STATISTICS},
        "Constraints": {"ContentType": "application/json", "S3Uri": CONSTRAINTS},
    }
    assert args["DriftCheckBaselines"]["ModelDataQuality"] == data_quality
    assert args["ModelMetrics"]["ModelDataQuality"] == data_quality
    # Model quality is unchanged: evaluate.py's evaluation.json.
    default = _all_steps(baseline)["Register"]["Arguments"]
    assert (
        args["DriftCheckBaselines"]["ModelQuality"]
        == default["DriftCheckBaselines"]["ModelQuality"]
    )
    assert args["ModelMetrics"]["ModelQuality"] == default["ModelMetrics"]["ModelQuality"]


@slow
def test_register_records_the_evidently_baseline_folder(steps: dict, baseline: Run) -> None:
    metadata = steps["Register"]["Arguments"]["CustomerMetadataProperties"]
    assert metadata[definition.BASELINE_METADATA_KEY] == PREPARE_BASELINE
    assert definition.BASELINE_METADATA_KEY == "baseline_s3_uri"  # lambdas/start_drift_job
    default = _all_steps(baseline)["Register"]["Arguments"]["CustomerMetadataProperties"]
    assert {k: v for k, v in metadata.items() if k != "baseline_s3_uri"} == default


@slow
def test_only_baseline_and_register_differ_from_the_evidently_definition(
    model_monitor: Run, baseline: Run, steps: dict[str, Any]
) -> None:
    default = _all_steps(baseline)
    assert set(steps) - set(default) == {"Baseline"}
    for name in default:
        if name not in ("Gate", "Register"):
            assert steps[name] == default[name], name
    changed = {k for k in default["Register"] if steps["Register"][k] != default["Register"][k]}
    assert changed == {"Arguments"}
    register_args = {
        k
        for k, v in default["Register"]["Arguments"].items()
        if steps["Register"]["Arguments"][k] != v
    }
    assert register_args == {"DriftCheckBaselines", "ModelMetrics", "CustomerMetadataProperties"}
    assert model_monitor.definition["Parameters"] == baseline.definition["Parameters"]
    # The evaluation pipeline does not depend on the engine.
    assert model_monitor.evaluation_text == baseline.evaluation_text


# ----------------------------------------------------------------- validity, determinism, offline


@slow
def test_create_pipeline_request_is_valid(model_monitor: Run) -> None:
    validate_request(
        "CreatePipeline",
        {
            "PipelineName": SETTINGS["pipeline_name"],
            "PipelineDefinition": substituted(model_monitor.definition_text),
            "RoleArn": PIPELINE_ROLE_ARN,
            "ClientRequestToken": "0123456789abcdef0123456789abcdef",
        },
    )


@slow
def test_baseline_and_register_requests_are_valid_for_their_apis(
    model_monitor: Run, steps: dict[str, Any]
) -> None:
    values: dict[str, Any] = {
        "InputDataUri": "s3://fraud-dev-data/landing/transactions/2026-11-01/",
        "DatasetVersion": "transactions/2026-11-01",
        "DataDigest": "sha256-0f3a",
        "ChampionModelPackageArn": "none",
    }
    values |= {
        p["Name"]: p["DefaultValue"]
        for p in model_monitor.definition["Parameters"]
        if "DefaultValue" in p
    }
    substituted_steps = json.loads(substituted(json.dumps(steps)))
    job = resolved(substituted_steps["Baseline"]["Arguments"], values)
    job["ProcessingJobName"] = "pipelines-abc123-Baseline"
    validate_request("CreateProcessingJob", job)
    validate_request(
        "CreateModelPackage", resolved(substituted_steps["Register"]["Arguments"], values)
    )


@slow
def test_model_monitor_output_is_offline(runs: Runs) -> None:
    # sockets blocked (any attempt exits with 3); determinism: the snapshot below, run to run
    assert runs.model_monitor.returncode == 0, runs.model_monitor.stderr
    assert "NETWORK ATTEMPTS" not in runs.model_monitor.stderr


@slow
def test_model_monitor_definition_snapshot(model_monitor: Run, snapshot_json) -> None:  # type: ignore[no-untyped-def]
    assert json.loads(HASH.sub("HASH", model_monitor.definition_text)) == snapshot_json


# ------------------------------------------------------------------- settings (no SDK import)


def test_the_engine_defaults_to_evidently() -> None:
    assert PipelineSettings.from_dict(SETTINGS).monitoring_engine == "evidently"
    explicit = PipelineSettings.from_dict(SETTINGS | {"monitoring_engine": "evidently"})
    assert explicit == PipelineSettings.from_dict(SETTINGS)
    monitor = PipelineSettings.from_dict(MODEL_MONITOR_SETTINGS)
    assert monitor.monitoring_engine == "model-monitor"


@pytest.mark.parametrize("value", ["sagemaker", "Model-Monitor", "model-monitor\n", "", None, 1])
def test_an_unknown_engine_is_rejected_naming_the_key(value: Any) -> None:
    with pytest.raises(SettingsError) as error:
        PipelineSettings.from_dict(SETTINGS | {"monitoring_engine": value})
    assert str(error.value) == (
        f"settings.monitoring_engine: got {value!r}; expected one of evidently, model-monitor"
    )


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_cdk_app_passes_its_monitoring_engine(env: str) -> None:
    from stacks.config import parse_environment, read_cdk_json_context
    from stacks.pipeline_definitions import pipeline_settings

    config = parse_environment(read_cdk_json_context(), env)
    raw = json.loads(json.dumps(pipeline_settings(config)))
    assert raw["monitoring_engine"] == config.monitoring.engine
    assert PipelineSettings.from_dict(raw).monitoring_engine == config.monitoring.engine


def test_the_baseline_file_name_is_prepare_pys() -> None:
    assert definition.MODEL_MONITOR_BASELINE_FILE == split_outputs.MODEL_MONITOR_BASELINE_FILE
    assert definition.BASELINE_STATISTICS_FILE == "statistics.json"
