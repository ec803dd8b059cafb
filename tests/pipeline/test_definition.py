"""The training pipeline definition: generated offline, deterministic, valid, cache-friendly.

The generator runs once per session in subprocesses (see ``generated.py``). Settings
validation and the offline helpers are tested in-process; they do not import the SageMaker SDK.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline_code import definition, generate, offline
from pipeline_code.definition import PipelineSettings, SettingsError
from tests.pipeline.generated import (
    CODE_URI,
    HASH,
    PIPELINE_ROLE_ARN,
    SETTINGS,
    STEPS_DIR,
    Run,
    Runs,
    processing_code,
    resolved,
    settings_file,
    step_code_files,
    stored_files,
    substituted,
    tree_digest,
    validate_request,
)


@pytest.fixture(scope="session")
def steps(baseline: Run) -> dict[str, dict[str, Any]]:
    """Every step by name, the condition's branches included."""
    found: dict[str, dict[str, Any]] = {}
    for step in baseline.definition["Steps"]:
        found[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for nested in step["Arguments"].get(branch, []):
                found[nested["Name"]] = nested
    return found


def _job_steps(steps: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in steps.values() if s["Type"] in ("Processing", "Training")]


def _json_get(path: str) -> dict[str, Any]:
    return {
        "Std:JsonGet": {
            "Path": path,
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
        }
    }


# ---------------------------------------------------------------------------------- structure

pytestmark_slow = pytest.mark.slow  # the generator runs (about 5 s, once per session)


@pytestmark_slow
def test_the_generator_prints_one_progress_line(baseline: Run) -> None:
    lines = baseline.stderr.strip().splitlines()
    assert len(lines) == 1, baseline.stderr
    assert lines[0].startswith("pipeline definition: fraud-dev-training -> ")
    assert "fraud-dev-evaluation -> " in lines[0] and "evaluation.json" in lines[0]


@pytestmark_slow
def test_steps_run_prepare_train_evaluate_then_gate(
    steps: dict[str, dict[str, Any]], baseline: Run
) -> None:
    top_level = [(s["Name"], s["Type"]) for s in baseline.definition["Steps"]]
    assert top_level == [
        ("Prepare", "Processing"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("Gate", "Condition"),
    ]
    train_inputs = json.dumps(steps["Train"]["Arguments"]["InputDataConfig"])
    assert "Steps.Prepare.ProcessingOutputConfig.Outputs['train']" in train_inputs
    assert "Steps.Prepare.ProcessingOutputConfig.Outputs['validation']" in train_inputs
    evaluate_inputs = json.dumps(steps["Evaluate"]["Arguments"]["ProcessingInputs"])
    assert "Steps.Train.ModelArtifacts.S3ModelArtifacts" in evaluate_inputs
    assert "Steps.Prepare.ProcessingOutputConfig.Outputs['test']" in evaluate_inputs


@pytestmark_slow
def test_register_only_if_the_gate_passes_and_fail_otherwise(baseline: Run) -> None:
    gate = next(s for s in baseline.definition["Steps"] if s["Name"] == "Gate")
    assert [s["Name"] for s in gate["Arguments"]["IfSteps"]] == ["Register"]
    assert [s["Type"] for s in gate["Arguments"]["IfSteps"]] == ["RegisterModel"]
    assert [s["Name"] for s in gate["Arguments"]["ElseSteps"]] == ["Fail"]
    assert [s["Type"] for s in gate["Arguments"]["ElseSteps"]] == ["Fail"]


@pytestmark_slow
def test_the_gate_registers_iff_evaluate_decided_so(steps: dict[str, Any]) -> None:
    from pipeline_code.steps import load

    contract = load("evaluate", "evaluation_contract")
    decision = f"{contract.GATE_KEY}.{contract.GATE_DECISION}"
    assert steps["Gate"]["Arguments"]["Conditions"] == [
        {"Type": "Equals", "LeftValue": _json_get(decision), "RightValue": contract.GATE_REGISTER}
    ]
    assert steps["Evaluate"]["PropertyFiles"] == [
        {
            "PropertyFileName": "EvaluationReport",
            "OutputName": "evaluation",
            "FilePath": contract.EVALUATION_FILE,
        }
    ]


def _flags(arguments: list[Any]) -> dict[str, Any]:
    """`--flag value` pairs of a ContainerArguments list (values may be pipeline references)."""
    return {a: b for a, b in zip(arguments, arguments[1:], strict=False) if isinstance(a, str)}


@pytestmark_slow
def test_the_gates_thresholds_are_the_deployed_configurations(steps: dict[str, Any]) -> None:
    """Evaluate decides with the configuration's floor, tolerance, guard and method: constants
    in the definition, so only a deploy changes them (issue 13: no run-time override)."""
    arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    given = _flags(arguments)
    assert (given["--floor"], given["--tolerance"]) == ("0.85", "0.01")
    assert (given["--min-positives"], given["--gate-method"]) == ("150", "delong")
    assert (given["--metric"], given["--bootstrap-samples"]) == ("auc", "500")


@pytestmark_slow
def test_fail_message_is_evaluates_reason(steps: dict[str, Any]) -> None:
    assert steps["Fail"]["Arguments"]["ErrorMessage"] == {
        "Std:Join": {"On": "", "Values": ["Gate failed: ", _json_get("gate.reason")]}
    }


@pytestmark_slow
def test_prepare_splits_by_the_configured_rule(steps: dict[str, Any]) -> None:
    arguments = steps["Prepare"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    given = _flags(arguments)
    assert given["--seed"] == "42"
    assert (given["--validation-fraction"], given["--test-fraction"]) == ("0.2", "0.25")
    assert given["--id-column"] == "txn_id"
    assert "--time-column" not in given


@pytestmark_slow
def test_training_calibrates_and_chooses_the_threshold_as_configured(steps: dict) -> None:
    hp = steps["Train"]["Arguments"]["HyperParameters"]
    assert (hp["scale_pos_weight"], hp["decision_threshold"]) == ("balanced", "0.35")


@pytestmark_slow
def test_parameters_and_their_defaults(baseline: Run) -> None:
    parameters = {p["Name"]: p for p in baseline.definition["Parameters"]}
    defaults = {name: p.get("DefaultValue") for name, p in parameters.items()}
    types = {name: p["Type"] for name, p in parameters.items()}
    assert defaults == {
        "InputDataUri": None,
        "DatasetVersion": None,
        "DataDigest": None,
        "CodeCommit": "unknown",
        "ProcessingInstanceType": "ml.m5.xlarge",
        "ProcessingInstanceCount": 1,
        "TrainingInstanceType": "ml.m5.2xlarge",
        "NumRound": 300,
        "MaxDepth": 6,
        "Eta": 0.1,
        "Subsample": 0.8,
        "ColsampleBytree": 0.8,
        "MinChildWeight": 1.0,
        "EarlyStoppingRounds": 20,
        # set by the start-training Lambda as the run starts: no default, so no run without
        "ChampionModelPackageArn": None,
    }
    assert types["ProcessingInstanceCount"] == types["NumRound"] == "Integer"
    assert types["Eta"] == "Float"
    # The gate's thresholds are not parameters: a run cannot loosen them.
    assert not {"MetricFloor", "MinDeltaCiLow", "ChampionTolerance"} & set(parameters)
    # No run can register anything but PendingManualApproval (test_lineage_definition.py).
    assert "ModelApprovalStatus" not in parameters


@pytestmark_slow
def test_every_job_is_encrypted_with_the_kms_key(steps: dict[str, Any]) -> None:
    kms = "${KmsKeyArn}"
    for step in _job_steps(steps):
        args = step["Arguments"]
        if step["Type"] == "Processing":
            assert args["ProcessingOutputConfig"]["KmsKeyId"] == kms, step["Name"]
            assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == kms
        else:
            assert args["OutputDataConfig"]["KmsKeyId"] == kms
            assert args["ResourceConfig"]["VolumeKmsKeyId"] == kms
            assert args["EnableInterContainerTrafficEncryption"] is True


@pytestmark_slow
def test_every_job_is_cached_tagged_and_time_bounded(steps: dict[str, Any]) -> None:
    jobs = _job_steps(steps)
    assert [s["Name"] for s in jobs] == ["Prepare", "Train", "Evaluate"]
    for step in jobs:
        assert step["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}, step["Name"]
        # cost allocation: SageMaker adds the execution ARN to pipeline jobs itself
        assert step["Arguments"]["Tags"] == [
            {"Key": "project", "Value": "fraud"},
            {"Key": "environment", "Value": "dev"},
            {"Key": "pipeline", "Value": "fraud-dev-training"},
            {"Key": "cost-center", "Value": "ml-platform"},
        ]
        assert step["Arguments"]["StoppingCondition"]["MaxRuntimeInSeconds"] == 5400
        # the training job role alone writes models; every other job runs as the processing one
        role = "TrainingJobRoleArn" if step["Name"] == "Train" else "ProcessingJobRoleArn"
        assert step["Arguments"]["RoleArn"] == "${" + role + "}", step["Name"]


@pytestmark_slow
def test_network_isolation_except_where_the_champion_is_fetched(steps: dict[str, Any]) -> None:
    assert steps["Prepare"]["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert steps["Train"]["Arguments"]["EnableNetworkIsolation"] is True
    assert steps["Evaluate"]["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is False
    arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    # the champion chosen as the run started: in the cache key, so a new champion re-evaluates
    champion = arguments[arguments.index("--champion-model-package-arn") + 1]
    assert champion == {"Get": "Parameters.ChampionModelPackageArn"}
    # the group the champion must belong to (Evaluate checks it in the registry)
    group = arguments[arguments.index("--model-package-group") + 1]
    assert group == "${ModelPackageGroupName}"


@pytestmark_slow
def test_cache_keys_never_contain_the_execution_id(steps: dict[str, Any]) -> None:
    # Default cache key attributes per step type, from the SageMaker developer guide.
    key_fields = {
        "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
        "Training": (
            "AlgorithmSpecification",
            "CheckpointConfig",
            "DebugHookConfig",
            "DebugRuleConfigurations",
            "Environment",
            "HyperParameters",
            "InputDataConfig",
        ),
    }
    for step in _job_steps(steps):
        cache_key = {k: step["Arguments"].get(k) for k in key_fields[step["Type"]]}
        assert "Execution." not in json.dumps(cache_key), step["Name"]


@pytestmark_slow
def test_outputs_are_per_execution_so_concurrent_runs_never_collide(steps: dict) -> None:
    for name in ("Prepare", "Evaluate"):
        for output in steps[name]["Arguments"]["ProcessingOutputConfig"]["Outputs"]:
            values = output["S3Output"]["S3Uri"]["Std:Join"]["Values"]
            assert {"Get": "Execution.PipelineExecutionId"} in values, output["OutputName"]
            assert values[:2] == ["s3:/", "${ArtifactBucket}"]


@pytestmark_slow
def test_spot_training_checkpoints_per_data_code_and_hyperparameters(
    steps: dict[str, Any], runs: Runs
) -> None:
    args = steps["Train"]["Arguments"]
    assert args["EnableManagedSpotTraining"] is True
    assert args["StoppingCondition"]["MaxWaitTimeInSeconds"] == 7200
    checkpoint = json.dumps(args["CheckpointConfig"])
    assert "Parameters.DataDigest" in checkpoint and "Parameters.NumRound" in checkpoint
    assert args["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"

    assert runs.variant.returncode == 0, runs.variant.stderr
    variant = next(s for s in runs.variant.definition["Steps"] if s["Name"] == "Train")
    assert "EnableManagedSpotTraining" not in variant["Arguments"]
    assert "CheckpointConfig" not in variant["Arguments"]
    assert variant["Arguments"]["StoppingCondition"] == {"MaxRuntimeInSeconds": 5400}


@pytestmark_slow
def test_training_uses_the_xgboost_image_and_hyperparameter_parameters(steps: dict) -> None:
    args = steps["Train"]["Arguments"]
    image = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
    assert args["AlgorithmSpecification"]["TrainingImage"] == image
    hp = args["HyperParameters"]
    assert hp["num_round"] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.NumRound"}]}}
    assert hp["early_stopping_rounds"]["Std:Join"]["Values"] == [
        {"Get": "Parameters.EarlyStoppingRounds"}
    ]
    assert hp["target"] == "is_fraud"
    assert args["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    channels = {c["ChannelName"] for c in args["InputDataConfig"]}
    assert channels == {"train", "validation", "code", "sm_drivers"}


@pytestmark_slow
def test_register_records_metrics_baselines_and_lineage(steps: dict[str, Any]) -> None:
    args = steps["Register"]["Arguments"]
    assert args["ModelPackageGroupName"] == "${ModelPackageGroupName}"
    assert args["ModelApprovalStatus"] == "PendingManualApproval"
    spec = args["InferenceSpecification"]
    assert spec["SupportedContentTypes"] == spec["SupportedResponseMIMETypes"] == ["text/csv"]
    [container] = spec["Containers"]
    assert container["Image"].endswith("/sagemaker-xgboost:3.0-5")
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert container.get("Environment", {}) == {}  # no script mode: the stock XGBoost server

    quality = json.dumps(args["ModelMetrics"]["ModelQuality"])
    assert "Outputs['evaluation']" in quality and "evaluation.json" in quality
    drift = json.dumps(args["DriftCheckBaselines"]["ModelDataQuality"])
    assert "Outputs['baseline']" in drift and "statistics.json" in drift

    metadata = args["CustomerMetadataProperties"]
    assert "input_data_uri" not in metadata  # raw: any character, up to 1,024 of them
    assert metadata["version_manifest_uri"] == {
        "Std:Join": {
            "On": "",
            "Values": [
                "s3://${ArtifactBucket}/dataset-manifests/",
                {"Get": "Parameters.DataDigest"},
                ".json",
            ],
        }
    }
    assert metadata["model_artifact_sha256"] == _json_get("lineage.model_artifact_sha256")
    assert metadata["champion_features"] == _json_get("lineage.champion_comparison")
    assert metadata["champion_model_package_arn"] == {"Get": "Parameters.ChampionModelPackageArn"}
    assert metadata["dataset_version"] == {"Get": "Parameters.DatasetVersion"}
    assert metadata["data_digest"] == {"Get": "Parameters.DataDigest"}
    assert metadata["code_commit"] == {"Get": "Parameters.CodeCommit"}
    assert metadata["pipeline_execution_id"] == {"Get": "Execution.PipelineExecutionId"}
    assert metadata["sdk_version"] == "3.27.0"
    assert metadata["image_uri"] == container["Image"]
    for key in ("split_rule", "decision_threshold", "data_shift", "champion_comparison"):
        assert metadata[key] == {
            "Std:Join": {"On": "", "Values": [_json_get(f"registry_metadata.{key}")]}
        }, key


@pytestmark_slow
def test_prepare_gets_the_schema_as_a_content_addressed_file(steps: dict, baseline: Run) -> None:
    args = steps["Prepare"]["Arguments"]
    arguments = args["AppSpecification"]["ContainerArguments"]
    schema_path = arguments[arguments.index("--schema") + 1]
    assert schema_path == "/opt/ml/processing/input/schema/schema.json"
    [schema_input] = [i for i in args["ProcessingInputs"] if i["InputName"] == "schema"]
    match = CODE_URI.fullmatch(schema_input["S3Input"]["S3Uri"])
    assert match, schema_input
    digest, name = match.groups()
    stored = (baseline.out_dir / "code" / digest / name).read_bytes()
    assert json.loads(stored) == SETTINGS["schema"]
    assert hashlib.sha256(stored).hexdigest() == digest


@pytestmark_slow
def test_every_code_uri_is_written_under_its_content_hash(
    steps: dict[str, Any], baseline: Run
) -> None:
    code = baseline.out_dir / "code"
    uris = set(CODE_URI.findall(baseline.definition_text))
    files = {name: digest for digest, name in uris if name}
    assert set(files) == {"schema.json"}  # a single file: its directory is the hash of its bytes
    schema = (code / files["schema.json"] / "schema.json").read_bytes()
    assert hashlib.sha256(schema).hexdigest() == files["schema.json"]

    # Each step's code is its folder with common/ inside, addressed by the hash of the tree.
    directories = {
        "prepare": processing_code(steps["Prepare"]),
        "evaluate": processing_code(steps["Evaluate"]),
    }
    [train_code] = [
        c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in steps["Train"]["Arguments"]["InputDataConfig"]
        if c["ChannelName"] == "code"
    ]
    train_match = CODE_URI.fullmatch(train_code)
    assert train_match and train_match.group(2) == ""
    directories["train"] = (train_match.group(1), "train.py")
    for step, (digest, script) in directories.items():
        assert script == f"{step}.py"
        shipped = stored_files(code / digest)
        assert shipped == step_code_files(step), step
        assert tree_digest(shipped) == digest, step
        assert "common/failure.py" in shipped and script in shipped

    prefixes = {digest for digest, name in uris if not name}
    [drivers] = prefixes - {digest for digest, _ in directories.values()}
    assert {"sm_train.sh", "sourcecode.json", "scripts/environment.py"} <= set(
        stored_files(code / drivers)
    )
    assert {p.name for p in code.iterdir()} == {digest for digest, _ in uris}  # no strays
    assert not list(code.rglob("__pycache__")) and not list(code.rglob("*.pyc"))


@pytestmark_slow
def test_only_declared_placeholders_and_no_account_values(baseline: Run) -> None:
    text = baseline.definition_text
    assert generate.placeholders_in(text) == set(offline.PLACEHOLDERS)
    assert baseline.manifest["placeholders"] == sorted(offline.PLACEHOLDERS)
    # AWS's own ECR registry accounts are the only account numbers allowed.
    without_images = re.sub(r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com", "ECR", text)
    assert not re.search(r"\b\d{12}\b", without_images)
    assert "offline-placeholder" not in text


@pytestmark_slow
def test_manifest_describes_the_output(baseline: Run) -> None:
    manifest = baseline.manifest
    training = manifest["pipelines"]["training"]
    assert training["file"] == "training.json"
    assert training["name"] == "fraud-dev-training"
    encoded = (baseline.out_dir / "training.json").read_bytes()
    assert training["sha256"] == hashlib.sha256(encoded).hexdigest()
    assert manifest["code_prefix"] == "pipeline-code/"
    assert manifest["sdk_version"] == "3.27.0"


@pytestmark_slow
def test_definition_snapshot(baseline: Run, snapshot_json) -> None:  # type: ignore[no-untyped-def]
    assert json.loads(HASH.sub("HASH", baseline.definition_text)) == snapshot_json


# ------------------------------------------------------------------ determinism, network, hash


@pytestmark_slow
def test_output_is_byte_identical_across_cwd_hash_seed_and_environment(runs: Runs) -> None:
    assert runs.elsewhere.returncode == 0, runs.elsewhere.stderr
    assert runs.baseline.files() == runs.elsewhere.files()


@pytestmark_slow
def test_generation_never_opens_a_connection(runs: Runs) -> None:
    # The run had sockets blocked and no AWS variables or ~/.aws: any attempt exits with 3.
    assert runs.elsewhere.returncode == 0, runs.elsewhere.stderr
    assert "NETWORK ATTEMPTS" not in runs.elsewhere.stderr


@pytestmark_slow
def test_changing_one_script_changes_only_that_steps_code(runs: Runs) -> None:
    assert runs.variant.returncode == 0, runs.variant.stderr

    def by_name(run: Run) -> dict[str, dict[str, Any]]:
        return {s["Name"]: s for s in run.definition["Steps"]}

    before, after = by_name(runs.baseline), by_name(runs.variant)
    # Unchanged steps are byte-identical, so their cache keys survive the update.
    assert before["Prepare"] == after["Prepare"]
    assert before["Evaluate"] == after["Evaluate"]
    # train.py's directory and ModelTrainer's drivers (which name that directory) both move.
    old = set(CODE_URI.findall(json.dumps(before["Train"])))
    new = set(CODE_URI.findall(json.dumps(after["Train"])))
    assert len(old) == len(new) == 2 and old.isdisjoint(new)
    shipped = [runs.variant.out_dir / "code" / digest / "train.py" for digest, _ in new]
    [train] = [path for path in shipped if path.is_file()]
    assert train.read_text(encoding="utf-8").endswith("# a change to the training script only\n")


@pytestmark_slow
def test_create_pipeline_request_is_valid_and_within_the_size_bound(baseline: Run) -> None:
    definition_text = substituted(baseline.definition_text)
    validate_request(
        "CreatePipeline",
        {
            "PipelineName": SETTINGS["pipeline_name"],
            "PipelineDefinition": definition_text,
            "RoleArn": PIPELINE_ROLE_ARN,
            "ClientRequestToken": "0123456789abcdef0123456789abcdef",
        },
    )
    # Room to grow: the custom resource can send it minified, which is smaller still.
    assert len(definition_text) < 1_048_576 / 10


@pytestmark_slow
def test_every_job_request_is_valid_for_its_api(steps: dict[str, Any], baseline: Run) -> None:
    # Run-time values: the start-training Lambda's four, the definition's defaults for the rest.
    values: dict[str, Any] = {
        "InputDataUri": "s3://fraud-dev-data/landing/transactions/2026-11-01/",
        "DatasetVersion": "transactions/2026-11-01",
        "DataDigest": "sha256-0f3a",
        "ChampionModelPackageArn": "none",
    }
    values |= {
        p["Name"]: p["DefaultValue"]
        for p in baseline.definition["Parameters"]
        if "DefaultValue" in p
    }
    stepsresolved = json.loads(substituted(json.dumps(steps)))
    operations = {
        "Processing": ("CreateProcessingJob", "ProcessingJobName"),
        "Training": ("CreateTrainingJob", "TrainingJobName"),
        "RegisterModel": ("CreateModelPackage", None),
    }
    checked = []
    for step in stepsresolved.values():
        if step["Type"] not in operations:
            continue
        operation, name_key = operations[step["Type"]]
        request = resolved(step["Arguments"], values)
        if name_key:
            request[name_key] = f"pipelines-abc123-{step['Name']}"
        validate_request(operation, request)
        checked.append(step["Name"])
    assert checked == ["Prepare", "Train", "Evaluate", "Register"]


# ------------------------------------------------------------------- settings (no SDK import)


def test_max_gate_metric_is_the_train_steps_rule_for_the_gate_metric() -> None:
    for metric, rule in (("f1", "max-f1"), ("accuracy", "max-accuracy")):
        raw = SETTINGS | {"metric": metric, "decision_threshold": "max-gate-metric"}
        del raw["gate_method"]  # SETTINGS' delong is AUC's; unset, it follows the metric
        assert PipelineSettings.from_dict(raw).decision_threshold == rule
    optional = ("split", "decision_threshold", "min_positives")
    defaults = {k: v for k, v in SETTINGS.items() if k not in optional}
    settings = PipelineSettings.from_dict(defaults)
    assert (settings.decision_threshold, settings.min_positives) == ("max-f1", 100)
    assert settings.split == {
        "id_column": None,
        "time_column": None,
        "validation_fraction": 0.15,
        "test_fraction": 0.15,
    }


def test_settings_parse_into_typed_values() -> None:
    settings = PipelineSettings.from_dict(SETTINGS)
    assert settings.hyperparameters.min_child_weight == 1.0
    assert settings.job_tags == (
        ("project", "fraud"),
        ("environment", "dev"),
        ("cost-center", "ml-platform"),
    )
    assert settings.code_commit == "unknown"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_cdk_apps_settings_are_accepted(env: str) -> None:
    from stacks.config import parse_environment, read_cdk_json_context
    from stacks.pipeline_definitions import pipeline_settings

    raw = pipeline_settings(parse_environment(read_cdk_json_context(), env))
    assert PipelineSettings.from_dict(json.loads(json.dumps(raw))).environment == env


def _without(key: str) -> dict[str, Any]:
    broken = copy.deepcopy(SETTINGS)
    del broken[key]
    return broken


def _with(path: str, value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(SETTINGS)
    *parents, leaf = path.split(".")
    node = broken
    for parent in parents:
        node = node[int(parent)] if isinstance(node, list) else node[parent]
    node[leaf] = value
    return broken


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(_without("region"), "settings.region: missing", id="missing-key"),
        pytest.param(SETTINGS | {"regoin": "x"}, "settings.regoin: unknown key", id="unknown-key"),
        pytest.param(_with("region", "Europe"), "settings.region: got 'Europe'", id="region"),
        pytest.param(
            _with("pipeline_name", "my_pipeline"),
            "settings.pipeline_name",
            id="pipeline-name-charset",
        ),
        pytest.param(
            _with("processing_instance_type", "m5.xlarge"),
            "settings.processing_instance_type: got 'm5.xlarge'",
            id="instance-type",
        ),
        pytest.param(
            _with("processing_instance_count", 0),
            "settings.processing_instance_count: got 0; expected an integer >= 1",
            id="instance-count",
        ),
        pytest.param(
            _with("training_instance_count", True),
            "settings.training_instance_count",
            id="bool-is-not-an-int",
        ),
        pytest.param(_with("use_spot", "yes"), "settings.use_spot: got 'yes'", id="use-spot"),
        pytest.param(
            _with("max_wait_seconds", 60),
            "settings.max_wait_seconds: got 60; expected at least max_runtime_seconds",
            id="spot-wait-shorter-than-runtime",
        ),
        pytest.param(
            _with("hyperparameters.eta", 0), "settings.hyperparameters.eta: got 0", id="eta-zero"
        ),
        pytest.param(
            _with("hyperparameters.subsample", 1.5),
            "settings.hyperparameters.subsample: got 1.5",
            id="subsample",
        ),
        pytest.param(
            _with("hyperparameters.num_round", "300"),
            "settings.hyperparameters.num_round: got '300'",
            id="string-number",
        ),
        pytest.param(
            _with("hyperparameters.depth", 3),
            "settings.hyperparameters.depth: unknown",
            id="unknown-hyperparameter",
        ),
        pytest.param(
            _with("metric", "log_loss"),
            "settings.metric: got 'log_loss'; expected one of",
            id="lower-is-better-metric",
        ),
        pytest.param(_with("metric_floor", float("nan")), "settings.metric_floor", id="nan"),
        pytest.param(
            _with("champion_tolerance", -0.1),
            "settings.champion_tolerance: got -0.1",
            id="negative-tolerance",
        ),
        pytest.param(
            _with("cache_expire_after", "30 days"),
            "settings.cache_expire_after: got '30 days'",
            id="duration",
        ),
        pytest.param(
            _with("xgboost_framework_version", "3.0.5"),
            "settings.xgboost_framework_version: got '3.0.5'",
            id="framework-version",
        ),
        pytest.param(_with("tags", {"owner": "a,b"}), "settings.tags", id="tag-charset"),
        pytest.param(
            _with("tags", {"project": "x"}),
            "no 'project' or 'environment' key",
            id="tag-overrides-project",
        ),
        pytest.param(
            _with("schema.features", []), "settings.schema.features: got []", id="no-features"
        ),
        pytest.param(
            _with("schema.features.1.type", "string"),
            "settings.schema.features[1].type: got 'string'",
            id="feature-type",
        ),
        pytest.param(
            _with("schema.features.1.name", "amount"),
            "settings.schema.features[1].name: got 'amount'",
            id="duplicate-feature",
        ),
        pytest.param(
            _with("schema.features.1.name", "is_fraud"),
            "settings.schema.features[1].name: got 'is_fraud'",
            id="target-as-feature",
        ),
        pytest.param(
            _with("schema.max_missing_fraction", 1),
            "settings.schema.max_missing_fraction: got 1.0",
            id="missing-fraction",
        ),
        pytest.param(
            _with("split.id_column", "amount"),
            "settings.split.id_column: got 'amount'; expected null or a column that is not the "
            "target or a feature",
            id="split-key-is-a-feature",
        ),
        pytest.param(
            _with("split.time_column", "ts"),
            "settings.split.time_column: got 'ts'; expected null when id_column is set",
            id="split-by-id-and-time",
        ),
        pytest.param(
            _with("split.test_fraction", 0.85),
            "settings.split.test_fraction: got 0.85; expected fractions summing below 1",
            id="split-fractions",
        ),
        pytest.param(
            _with("split.seed", 1), "settings.split.seed: unknown key", id="split-unknown-key"
        ),
        pytest.param(
            _with("decision_threshold", "max-gate-metric"),
            "settings.decision_threshold: got 'max-gate-metric'; expected max-f1 or a number with "
            "metric 'auc'",
            id="threshold-metric",
        ),
        pytest.param(
            _with("decision_threshold", 1),
            "settings.decision_threshold: got 1; expected max-f1, max-gate-metric or a number",
            id="threshold-number",
        ),
        pytest.param(
            _with("scale_pos_weight", 0),
            "settings.scale_pos_weight: got 0; expected a number above 0 or 'balanced'",
            id="class-weight",
        ),
        pytest.param(
            _with("gate_method", "exact"),
            "settings.gate_method: got 'exact'; expected one of delong, bootstrap",
            id="gate-method",
        ),
        pytest.param(
            _with("min_positives", 0),
            "settings.min_positives: got 0; expected an integer >= 1",
            id="min-positives",
        ),
        pytest.param([], "settings: got list; expected a JSON object", id="not-an-object"),
    ],
)
def test_bad_settings_are_rejected_naming_key_and_value(raw: Any, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        PipelineSettings.from_dict(raw)
    assert message in str(error.value)


def test_cli_reports_bad_settings_and_keeps_earlier_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    (out / "code").mkdir(parents=True)
    (out / "training.json").write_text("earlier")
    settings = settings_file(tmp_path, _with("metric_floor", 2))
    assert generate.main(["--settings", str(settings), "--out-dir", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        "pipeline definition: settings.metric_floor: got 2; expected a number in [0.0, 1.0]"
    )
    assert (out / "training.json").read_text() == "earlier"
    assert (out / "code").is_dir()


def test_cli_takes_settings_and_output_folders_in_pairs_and_stops_at_the_first_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = settings_file(tmp_path, SETTINGS)
    with pytest.raises(SystemExit) as exit_:
        generate.main(["--settings", str(good), "--out-dir", "a", "--settings", str(good)])
    assert exit_.value.code == 2
    assert "give --settings and --out-dir in pairs" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    bad = settings_file(tmp_path / "bad", _with("metric_floor", 2))
    after = tmp_path / "after"
    # the bad pair first: the good one after it is never generated
    arguments = ["--settings", str(bad), "--out-dir", str(tmp_path / "o")]
    assert generate.main([*arguments, "--settings", str(good), "--out-dir", str(after)]) == 2
    assert "settings.metric_floor: got 2" in capsys.readouterr().err
    assert not after.exists()


def test_cli_reports_unreadable_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text("{not json")
    assert generate.main(["--settings", str(settings), "--out-dir", str(tmp_path / "o")]) == 2
    assert f"settings file {settings}" in capsys.readouterr().err


def test_cli_reports_missing_step_scripts_before_touching_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("earlier")
    settings = settings_file(tmp_path, SETTINGS)
    code = generate.main(
        ["--settings", str(settings), "--out-dir", str(out), "--steps-dir", str(tmp_path / "none")]
    )
    assert code == 2
    assert "step scripts not found" in capsys.readouterr().err
    assert (out / "manifest.json").read_text() == "earlier"


# ------------------------------------------------------------- evaluate.py contract, offline


def test_gate_keys_are_read_from_evaluate_py_without_importing_it() -> None:
    keys = definition.evaluation_keys(STEPS_DIR / "evaluate" / "evaluation_contract.py")
    assert keys["gate"] == "gate" and keys["decision"] == "decision"
    assert (keys["register"], keys["registry"]) == ("register", "registry_metadata")
    assert keys["file"] == "evaluation.json"


def test_a_missing_evaluate_constant_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "evaluate.py"
    script.write_text('GATE_KEY = "gate"\nEVALUATION_FILE: str = "evaluation.json"\n')
    with pytest.raises(ValueError, match="does not define GATE_CHALLENGER, GATE_DECISION,"):
        definition.evaluation_keys(script)


def test_code_store_addresses_files_and_trees_by_content(tmp_path: Path) -> None:
    store = offline.CodeStore(tmp_path / "code")
    uri = store.put_bytes("train.py", b"print(1)\n")
    digest = hashlib.sha256(b"print(1)\n").hexdigest()
    assert uri == f"s3://${{ArtifactBucket}}/pipeline-code/{digest}/train.py"
    assert (tmp_path / "code" / digest / "train.py").read_bytes() == b"print(1)\n"

    tree = tmp_path / "tree"
    (tree / "scripts" / "__pycache__").mkdir(parents=True)
    (tree / "scripts" / "env.py").write_text("A = 1\n")
    (tree / "scripts" / "__pycache__" / "env.cpython-311.pyc").write_bytes(b"\0")
    (tree / "run.sh").write_text("echo\n")
    prefix = store.put_dir(tree)
    assert prefix.endswith("/") and prefix == store.put_dir(tree)
    stored = tmp_path / "code" / prefix.rstrip("/").rsplit("/", 1)[-1]
    assert sorted(p.relative_to(stored).as_posix() for p in stored.rglob("*") if p.is_file()) == [
        "run.sh",
        "scripts/env.py",
    ]
    (tree / "run.sh").write_text("echo changed\n")
    assert store.put_dir(tree) != prefix


def test_an_empty_tree_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "__pycache__").mkdir(parents=True)
    with pytest.raises(ValueError, match="nothing to publish"):
        offline.CodeStore(tmp_path / "code").put_dir(tmp_path / "empty")


def test_the_call_guard_refuses_and_remembers_every_aws_request() -> None:
    session = boto3.Session(
        aws_access_key_id="offline", aws_secret_access_key="offline", region_name="eu-west-1"
    )
    guard = offline.AwsCallGuard()
    session.events.register("before-send", guard)
    with pytest.raises(offline.OfflineViolationError, match="POST https://iam.amazonaws.com/"):
        session.client("iam").get_role(RoleName="anything")
    with pytest.raises(offline.OfflineViolationError, match="the SageMaker SDK tried"):
        guard.check()


def test_unknown_placeholders_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown placeholder 'AccountId'"):
        offline.placeholder("AccountId")


def test_the_stand_in_role_must_never_reach_the_definition() -> None:
    with pytest.raises(offline.OfflineViolationError, match="leaked into the definition"):
        offline.check_no_internal_values(json.dumps({"RoleArn": offline.arn_shaped_role()}))


def test_rendering_refuses_an_sdk_other_than_the_pinned_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.metadata

    real_version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "1.28.0" if name == "sagemaker-train" else real_version(name),
    )
    with pytest.raises(RuntimeError, match=r"sagemaker-train 1\.28\.0 \(pinned: 1\.27\.0\)"):
        definition.check_sdk_version()


@pytestmark_slow
def test_prepare_cache_key_changes_with_the_data_digest(steps: dict[str, Any]) -> None:
    # a re-upload under the same prefix (trigger.allow_reupload) must not hit Prepare's cache
    arguments = steps["Prepare"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    digest = arguments[arguments.index("--data-digest") + 1]
    assert digest == {"Get": "Parameters.DataDigest"}
