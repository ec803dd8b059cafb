"""The evaluation-only pipeline: Validate -> Evaluate, never registers, valid, deterministic.

It comes out of the same generator run as the training pipeline (fixtures in conftest.py).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from pipeline_code import definition, generate, offline
from pipeline_code.definition import PipelineSettings, SettingsError
from pipeline_code.steps import load
from tests.pipeline.generated import (
    CODE_URI,
    HASH,
    PIPELINE_ROLE_ARN,
    SETTINGS,
    Run,
    Runs,
    processing_code,
    resolved,
    step_code_files,
    stored_files,
    substituted,
    validate_request,
)

evaluate = load("evaluate")
prepare = load("prepare")
contract = load("evaluate", "evaluation_contract")

slow = pytest.mark.slow  # the generator runs (about 5 s, once per session)

# What the start-training Lambda passes when labelled data lands under ground-truth/.
RUN_TIME_VALUES = {
    "InputDataUri": "s3://fraud-dev-data/ground-truth/transactions/2026-11-01/",
    "DatasetVersion": "transactions/2026-11-01",
    "DataDigest": "sha256-0f3a",
}


@pytest.fixture(scope="session")
def steps(baseline: Run) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in baseline.evaluation["Steps"]}


def _arguments(step: dict[str, Any]) -> list[Any]:
    return step["Arguments"]["AppSpecification"]["ContainerArguments"]


def _value_after(arguments: list[Any], flag: str) -> Any:
    return arguments[arguments.index(flag) + 1]


def _run_time_arguments(step: dict[str, Any], baseline: Run, **overrides: str) -> list[str]:
    """The container arguments as the job receives them (parameter defaults + Lambda values)."""
    values = {p["Name"]: p.get("DefaultValue") for p in baseline.evaluation["Parameters"]}
    return resolved(_arguments(step), values | RUN_TIME_VALUES | overrides)


# ---------------------------------------------------------------------------------- structure


@slow
def test_validate_then_evaluate_and_nothing_else(baseline: Run) -> None:
    assert [(s["Name"], s["Type"]) for s in baseline.evaluation["Steps"]] == [
        ("Validate", "Processing"),
        ("Evaluate", "Processing"),
    ]
    assert baseline.evaluation["Steps"][1]["Arguments"]["ProcessingInputs"][0] == {
        "InputName": "test",
        "S3Input": {
            "LocalPath": "/opt/ml/processing/test",
            "S3CompressionType": "None",
            "S3DataDistributionType": "FullyReplicated",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3Uri": {
                "Get": "Steps.Validate.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"
            },
        },
    }


@slow
def test_it_never_registers_a_model(baseline: Run, steps: dict[str, Any]) -> None:
    text = baseline.evaluation_text
    assert {s["Type"] for s in baseline.evaluation["Steps"]} == {"Processing"}
    for never in (
        '"Type": "RegisterModel"',
        '"Type": "Condition"',
        '"Type": "Training"',
        "ModelApprovalStatus",
        "InferenceSpecification",
    ):
        assert never not in text, never
    arguments = _arguments(steps["Evaluate"])
    assert "--model-dir" not in arguments and "--champion-model-dir" not in arguments


@slow
def test_parameters_and_their_defaults(baseline: Run) -> None:
    parameters = baseline.evaluation["Parameters"]
    assert {p["Name"]: p.get("DefaultValue") for p in parameters} == {
        "InputDataUri": None,
        "DatasetVersion": None,
        "DataDigest": None,
        "ModelPackageArn": "",
        "ModelRole": "candidate",
        "ProcessingInstanceType": "ml.m5.xlarge",
    }
    roles = next(p for p in parameters if p["Name"] == "ModelRole")
    assert roles["EnumValues"] == ["candidate", "production"]
    assert {p["Type"] for p in parameters} == {"String"}
    # One start-training Lambda starts both pipelines: the dataset parameters are shared.
    training = {p["Name"] for p in baseline.definition["Parameters"]}
    assert {"InputDataUri", "DatasetVersion", "DataDigest"} <= training


@slow
def test_jobs_are_encrypted_tagged_time_bounded_and_single_instance(steps: dict) -> None:
    for step in steps.values():
        args = step["Arguments"]
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == "${KmsKeyArn}", step["Name"]
        cluster = args["ProcessingResources"]["ClusterConfig"]
        assert cluster["VolumeKmsKeyId"] == "${KmsKeyArn}"
        assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
        assert cluster["InstanceCount"] == 1
        assert args["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
        assert args["Tags"] == [
            {"Key": "project", "Value": "fraud"},
            {"Key": "environment", "Value": "dev"},
            {"Key": "pipeline", "Value": "fraud-dev-evaluation"},
            {"Key": "cost-center", "Value": "ml-platform"},
        ]
        assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": 5400}
        assert args["RoleArn"] == "${ProcessingJobRoleArn}"  # never the model writer


@slow
def test_validate_is_isolated_and_scoring_may_reach_aws(steps: dict[str, Any]) -> None:
    assert steps["Validate"]["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is True
    # The scoring step talks to the model registry, S3 and CloudWatch.
    assert steps["Evaluate"]["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is False
    assert steps["Evaluate"]["Arguments"]["Environment"] == {"AWS_DEFAULT_REGION": "eu-west-1"}


@slow
def test_validate_is_cached_per_data_digest_but_scoring_never_is(steps: dict) -> None:
    assert steps["Validate"]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    # The production model is resolved when the step runs: a cache hit could be a stale model.
    assert "CacheConfig" not in steps["Evaluate"]
    # The digest is part of the cache key: new data under an old prefix is validated again.
    arguments = _arguments(steps["Validate"])
    assert _value_after(arguments, "--data-digest") == {"Get": "Parameters.DataDigest"}
    assert "Execution." not in json.dumps(
        {k: steps["Validate"]["Arguments"].get(k) for k in ("AppSpecification", "Environment")}
    )


@slow
def test_validate_runs_prepare_py_in_all_to_test_mode(steps: dict, baseline: Run) -> None:
    step = steps["Validate"]
    assert step["Arguments"]["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "/opt/ml/processing/input/code/prepare.py",
    ]
    args = prepare.parse_args(_run_time_arguments(step, baseline))
    assert args.all_to_test is True
    assert args.data_digest == "sha256-0f3a"
    assert args.schema == "/opt/ml/processing/input/schema/schema.json"
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in step["Arguments"]["ProcessingInputs"]}
    assert inputs["data"] == {"Get": "Parameters.InputDataUri"}
    outputs = [o["OutputName"] for o in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]]
    assert outputs == ["test", "report"]


@slow
def test_evaluate_scores_the_production_model_and_publishes_metrics(
    steps: dict, baseline: Run
) -> None:
    step = steps["Evaluate"]
    arguments = _arguments(step)
    assert _value_after(arguments, "--model-package-arn") == {"Get": "Parameters.ModelPackageArn"}
    assert _value_after(arguments, "--model-package-group") == "${ModelPackageGroupName}"
    assert _value_after(arguments, "--metrics-namespace") == "fraud-dev/ModelQuality"
    # the alarm's metric (pipeline.metric): Evaluate fails rather than publish without it
    assert _value_after(arguments, "--metric") == "auc"

    args = evaluate.parse_args(_run_time_arguments(step, baseline))
    assert args.model_package_arn == ""  # the default: an error, there is no default model
    assert args.model_role == "candidate"  # unless the trigger says it chose the served one
    assert args.model_dir is None and args.champion_model_dir is None
    assert (args.dataset_version, args.data_digest) == ("transactions/2026-11-01", "sha256-0f3a")
    assert (args.test_dir, args.output_dir) == (
        "/opt/ml/processing/test",
        "/opt/ml/processing/evaluation",
    )
    assert args.bootstrap_samples == 500 and args.target == "is_fraud"
    given = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/fraud-dev-models/7"
    args = evaluate.parse_args(
        _run_time_arguments(step, baseline, ModelPackageArn=given, ModelRole="production")
    )
    assert (args.model_package_arn, args.model_role) == (given, "production")


@slow
def test_reports_land_under_the_dataset_version_per_execution(steps: dict) -> None:
    [output] = steps["Evaluate"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == "evaluation"
    assert output["S3Output"]["S3Uri"]["Std:Join"] == {
        "On": "/",
        "Values": [
            "s3:/",
            "${ArtifactBucket}",
            "pipelines",
            "fraud-dev-evaluation",
            "reports",
            {"Get": "Parameters.DatasetVersion"},
            {"Get": "Execution.PipelineExecutionId"},
        ],
    }
    for validate_output in steps["Validate"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]:
        values = validate_output["S3Output"]["S3Uri"]["Std:Join"]["Values"]
        assert values[:4] == ["s3:/", "${ArtifactBucket}", "pipelines", "fraud-dev-evaluation"]
        assert {"Get": "Execution.PipelineExecutionId"} in values


@slow
def test_the_steps_run_the_same_content_addressed_code_as_training(
    steps: dict[str, Any], baseline: Run
) -> None:
    training = {s["Name"]: s for s in baseline.definition["Steps"]}
    assert processing_code(steps["Validate"]) == processing_code(training["Prepare"])
    assert processing_code(steps["Evaluate"]) == processing_code(training["Evaluate"])
    for step, name in (("prepare", "Validate"), ("evaluate", "Evaluate")):
        digest, script = processing_code(steps[name])
        assert script == f"{step}.py"
        assert stored_files(baseline.out_dir / "code" / digest) == step_code_files(step)
    schema = {digest for digest, name in CODE_URI.findall(baseline.evaluation_text) if name}
    assert schema == {d for d, name in CODE_URI.findall(baseline.definition_text) if name}


@slow
def test_only_declared_placeholders(baseline: Run) -> None:
    # no training job: the training job role is not passed
    assert generate.placeholders_in(baseline.evaluation_text) == set(offline.PLACEHOLDERS) - {
        offline.TRAINING_JOB_ROLE_ARN
    }
    assert "offline-placeholder" not in baseline.evaluation_text


@slow
def test_manifest_lists_both_pipelines(baseline: Run) -> None:
    pipelines = baseline.manifest["pipelines"]
    assert set(pipelines) == {"training", "evaluation"}
    assert pipelines["evaluation"]["name"] == "fraud-dev-evaluation"
    assert pipelines["training"]["name"] == "fraud-dev-training"
    for entry in pipelines.values():
        encoded = (baseline.out_dir / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(encoded).hexdigest()
    assert pipelines["evaluation"]["file"] == "evaluation.json"


@slow
def test_evaluation_definition_snapshot(baseline: Run, snapshot_json: Any) -> None:
    assert json.loads(HASH.sub("HASH", baseline.evaluation_text)) == snapshot_json


# ------------------------------------------------------------------ determinism, botocore


@slow
def test_evaluation_output_is_byte_identical_across_runs(runs: Runs) -> None:
    assert runs.elsewhere.returncode == 0, runs.elsewhere.stderr
    assert runs.baseline.evaluation_text == runs.elsewhere.evaluation_text


@slow
def test_a_training_only_change_leaves_the_evaluation_pipeline_untouched(runs: Runs) -> None:
    # The variant changed train.py and use_spot; neither is used by the evaluation pipeline.
    assert runs.variant.returncode == 0, runs.variant.stderr
    assert runs.baseline.evaluation_text == runs.variant.evaluation_text
    assert runs.baseline.definition_text != runs.variant.definition_text


@slow
def test_create_pipeline_request_is_valid(baseline: Run) -> None:
    definition_text = substituted(baseline.evaluation_text)
    validate_request(
        "CreatePipeline",
        {
            "PipelineName": SETTINGS["evaluation_pipeline_name"],
            "PipelineDefinition": definition_text,
            "RoleArn": PIPELINE_ROLE_ARN,
            "ClientRequestToken": "0123456789abcdef0123456789abcdef",
        },
    )
    assert len(definition_text) < 1_048_576 / 20


@slow
def test_every_job_request_is_valid_for_its_api(steps: dict, baseline: Run) -> None:
    values = {p["Name"]: p.get("DefaultValue") for p in baseline.evaluation["Parameters"]}
    values |= RUN_TIME_VALUES
    for step in json.loads(substituted(json.dumps(steps))).values():
        request = resolved(step["Arguments"], values)
        request["ProcessingJobName"] = f"pipelines-abc123-{step['Name']}"
        validate_request("CreateProcessingJob", request)


# ------------------------------------------------------------------- settings (no SDK import)


def _settings(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(SETTINGS)
    for key, value in changes.items():
        if value is None:
            del raw[key]
        else:
            raw[key] = value
    return raw


def test_evaluation_names_default_to_project_and_environment() -> None:
    settings = PipelineSettings.from_dict(
        _settings(evaluation_pipeline_name=None, model_quality_namespace=None)
    )
    assert settings.evaluation_pipeline_name == "fraud-dev-evaluation"
    assert settings.model_quality_namespace == "fraud-dev/ModelQuality"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"evaluation_pipeline_name": "fraud_dev_evaluation"},
            "settings.evaluation_pipeline_name: got 'fraud_dev_evaluation'",
            id="pipeline-name-charset",
        ),
        pytest.param(
            {"evaluation_pipeline_name": "fraud-dev-training"},
            "settings.evaluation_pipeline_name: got 'fraud-dev-training'; expected a name other "
            "than pipeline_name",
            id="same-as-training",
        ),
        pytest.param(
            {"model_quality_namespace": "AWS/SageMaker"},
            "settings.model_quality_namespace: got 'AWS/SageMaker'; expected a CloudWatch "
            "namespace",
            id="aws-namespace",
        ),
        pytest.param(
            {"model_quality_namespace": "fraud|dev"},
            "settings.model_quality_namespace: got 'fraud|dev'",
            id="namespace-charset",
        ),
        pytest.param(
            {"model_quality_namespace": ""}, "settings.model_quality_namespace", id="empty"
        ),
    ],
)
def test_bad_evaluation_settings_name_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        PipelineSettings.from_dict(_settings(**changes))
    assert message in str(error.value)


def test_alarms_can_read_the_metric_names_without_importing_evaluate_py() -> None:
    names = definition.model_quality_metrics()
    assert names == {
        "auc": "AUC",
        "accuracy": "Accuracy",
        "precision": "Precision",
        "recall": "Recall",
        "f1": "F1",
        "log_loss": "LogLoss",
        "macro_f1": "MacroF1",
        "weighted_f1": "WeightedF1",
        "rmse": "RMSE",
        "mae": "MAE",
        "mse": "MSE",
        "r2": "R2",
        "rows": "RowsEvaluated",
        "group_dimension": "ModelPackageGroup",
        "version_dimension": "ModelVersion",
    }
    published = {name for name, _ in contract.CW_QUALITY_METRICS} | {contract.CW_METRIC_ROWS}
    # the other problem types' names: the quality alarm's, not yet published (the eval-only
    # pipeline refuses a multi-class or regression model)
    typed = {"MacroF1", "WeightedF1", "RMSE", "MAE", "MSE", "R2"}
    assert published == set(names.values()) - {"ModelPackageGroup", "ModelVersion"} - typed
