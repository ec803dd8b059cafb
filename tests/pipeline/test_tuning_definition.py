"""The training definition with `tuning`: a Tuning step in place of Train whose trials are the
Train step's training job (same image, role, channels, keys, isolation, spot), whose objective
regex reads what train.py really prints, and whose best trial's model goes on to Evaluate and
Register; every request accepted by botocore's model and the local definition checks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from mlops_config.tuning import TUNING_OBJECTIVES
from pipeline_code.definition.tuning import SCRIPT_MODE
from pipeline_code.local_pipeline import definition as local_definition
from pipeline_code.local_pipeline.errors import DefinitionError
from pipeline_code.steps import load
from tests.pipeline.generated import (
    DEPLOY_VALUES,
    HASH,
    PIPELINE_ROLE_ARN,
    REPO,
    SETTINGS,
    Run,
    resolved,
    settings_file,
    substituted,
    validate_request,
)
from tests.steps import SCHEMA_JSON, small_frame, write

AUC = TUNING_OBJECTIVES[("binary", "auc")]
OBJECTIVE_METRIC, OBJECTIVE_REGEX = AUC.name, AUC.regex
pytestmark = pytest.mark.slow  # one generator run (about 5 s) and one training run

TUNING = {
    "ranges": {
        "eta": {"min": 0.01, "max": 0.3, "scaling": "log"},
        "max_depth": {"min": 3, "max": 10},
        "subsample": {"values": [0.6, 0.8, 1.0]},
    },
    "strategy": "bayesian",
    "max_jobs": 6,
    "max_parallel_jobs": 2,
    "early_stopping": "auto",
}
SNAPSHOT = (
    Path(__file__).parent / "__snapshots__" / "test_definition" / ("test_definition_snapshot.json")
)


def generate(root: Path, settings: dict[str, Any], env: dict[str, str] | None = None) -> Path:
    """Run the generator on `settings` in a subprocess; the training definition's path."""
    out = root / "out"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_code.generate", "--settings"]
        + [str(settings_file(root, settings)), "--out-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return out / "training.json"


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("tuned")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    out = generate(root, SETTINGS | {"tuning": TUNING}, env).parent
    return Run(out_dir=out, returncode=0, stderr="")


@pytest.fixture(scope="module")
def steps(tuned: Run) -> dict[str, dict[str, Any]]:
    def walk(items: list[dict[str, Any]]) -> Any:
        for step in items:
            yield step
            for branch in ("IfSteps", "ElseSteps"):
                yield from walk(step.get("Arguments", {}).get(branch, []))

    return {step["Name"]: step for step in walk(tuned.definition["Steps"])}


def _plain_train_request() -> dict[str, Any]:
    """The Train step's CreateTrainingJob request without tuning (the definition snapshot)."""
    definition = json.loads(SNAPSHOT.read_text())
    return next(s for s in definition["Steps"] if s["Name"] == "Train")["Arguments"]


def _hashless(value: Any) -> Any:
    return json.loads(HASH.sub("HASH", json.dumps(value)))


def test_train_is_a_tuning_step_with_the_configured_search(steps: dict[str, Any]) -> None:
    train = steps["Train"]
    assert train["Type"] == "Tuning"
    assert train["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    config = train["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["HyperParameterTuningJobObjective"] == {
        "MetricName": OBJECTIVE_METRIC,
        "Type": "Maximize",  # the gate metric, AUC: higher is better
    }
    ranges = config["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"] == [
        {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.3", "ScalingType": "Logarithmic"}
    ]
    assert ranges["IntegerParameterRanges"] == [
        {"Name": "max_depth", "MinValue": "3", "MaxValue": "10", "ScalingType": "Auto"}
    ]
    assert ranges["CategoricalParameterRanges"] == [
        {"Name": "subsample", "Values": ["0.6", "0.8", "1.0"]}
    ]


def test_a_ranged_hyperparameter_is_no_pipeline_parameter(tuned: Run) -> None:
    # the trials' values come from the search: a parameter would show (in lineage, in the
    # execution's parameters) a value that trained nothing
    names = {p["Name"] for p in tuned.definition["Parameters"]}
    assert not names & {"Eta", "MaxDepth", "Subsample"}
    plain = {p["Name"] for p in json.loads(SNAPSHOT.read_text())["Parameters"]}
    assert names == plain - {"Eta", "MaxDepth", "Subsample"}
    assert "NumRound" in names  # bayesian: num_round is not derived from, so it stays


def test_every_trial_is_the_train_steps_training_job(steps: dict[str, Any]) -> None:
    trial = _hashless(steps["Train"]["Arguments"]["TrainingJobDefinition"])
    plain = _plain_train_request()
    for key in (
        "RoleArn",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining",
    ):
        assert trial[key] == plain[key], key
    assert (
        trial["AlgorithmSpecification"]["TrainingImage"]
        == (plain["AlgorithmSpecification"]["TrainingImage"])
    )
    channels = [c for c in plain["InputDataConfig"] if c["ChannelName"] != "sm_drivers"]
    assert trial["InputDataConfig"] == channels
    tuned = set(TUNING["ranges"])
    static = {k: v for k, v in plain["HyperParameters"].items() if k not in tuned}
    assert trial["StaticHyperParameters"] == static | SCRIPT_MODE
    # the tags of the jobs (cost allocation) on the tuning job; SageMaker tags its trials too
    assert steps["Train"]["Arguments"]["Tags"] == plain["Tags"]


def test_the_trials_keep_the_safety_properties(steps: dict[str, Any]) -> None:
    trial = steps["Train"]["Arguments"]["TrainingJobDefinition"]
    assert trial["EnableNetworkIsolation"] is True
    assert trial["EnableInterContainerTrafficEncryption"] is True
    assert trial["RoleArn"] == "${TrainingJobRoleArn}"
    assert trial["ResourceConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
    assert trial["OutputDataConfig"]["KmsKeyId"] == "${KmsKeyArn}"
    assert trial["OutputDataConfig"]["S3OutputPath"] == (
        "s3://${ArtifactBucket}/pipelines/fraud-dev-training/training"
    )
    # script mode from the code channel: the isolated container cannot fetch code from S3
    assert trial["StaticHyperParameters"]["sagemaker_submit_directory"] == (
        "/opt/ml/input/data/code"
    )
    assert "code" in {c["ChannelName"] for c in trial["InputDataConfig"]}
    # trials never share (and resume from) one checkpoint prefix
    assert "CheckpointConfig" not in trial


def test_the_best_trials_model_goes_to_evaluate_and_register(steps: dict[str, Any]) -> None:
    best = {"Get": "Steps.Train.TrainingJobSummaries[0].TrainingJobName"}
    model_uri = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3:/",
                "${ArtifactBucket}",
                "pipelines/fraud-dev-training/training",
                best,
                "output/model.tar.gz",
            ],
        }
    }
    evaluate_inputs = steps["Evaluate"]["Arguments"]["ProcessingInputs"]
    model_input = next(i for i in evaluate_inputs if i["InputName"] == "model")
    assert model_input["S3Input"]["S3Uri"] == model_uri
    register = next(s for name, s in steps.items() if name.startswith("Register"))
    package = register["Arguments"]
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == model_uri
    metadata = package["CustomerMetadataProperties"]
    assert metadata["training_job_name"] == best
    assert metadata["tuning_job_name"] == {"Get": "Steps.Train.HyperParameterTuningJobName"}


def _run_values(tuned: Run) -> dict[str, Any]:
    values: dict[str, Any] = {
        "InputDataUri": "s3://fraud-dev-data/landing/transactions/2026-11-01/",
        "DatasetVersion": "transactions/2026-11-01",
        "DataDigest": "sha256-0f3a",
        "ChampionModelPackageArn": "none",
    }
    return values | {
        p["Name"]: p["DefaultValue"] for p in tuned.definition["Parameters"] if "DefaultValue" in p
    }


def test_the_tuning_request_and_pipeline_are_valid_for_sagemaker(
    tuned: Run, steps: dict[str, Any]
) -> None:
    validate_request(
        "CreatePipeline",
        {
            "PipelineName": SETTINGS["pipeline_name"],
            "PipelineDefinition": substituted(tuned.definition_text),
            "RoleArn": PIPELINE_ROLE_ARN,
            "ClientRequestToken": "0123456789abcdef0123456789abcdef",
        },
    )
    requests = json.loads(substituted(json.dumps(steps)))
    request = resolved(requests["Train"]["Arguments"], _run_values(tuned))
    request["HyperParameterTuningJobName"] = "pipelines-abc123-Train"
    validate_request("CreateHyperParameterTuningJob", request)


def test_the_local_definition_checks_accept_every_property_read_from_the_tuning_step(
    tuned: Run,
) -> None:
    document = json.loads(substituted(tuned.definition_text))
    with pytest.raises(DefinitionError) as raised:
        local_definition.parse(document, SETTINGS["pipeline_name"])
    # the only objection: the local run cannot run a tuning job (a SageMaker service); every
    # Get of Evaluate and Register into it is a property of its Describe/List responses
    assert [str(p) for p in raised.value.problems] == [
        "Train: step type Tuning is not supported by the local run: hyperparameter tuning jobs "
        "are a SageMaker service"
    ]


def run_train_py(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """train.py as a trial runs it (script mode), on the channels Prepare wrote under
    `folder/ch`, saving its model in `folder/model`: with rounds enough that early stopping
    fires, so XGBoost's last evaluation line is a later round than the saved model's."""
    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(folder / "ch" / "train"),
        "SM_CHANNEL_VALIDATION": str(folder / "ch" / "validation"),
        "SM_MODEL_DIR": str(folder / "model"),
        "FAILURE_REASON_FILE": str(folder / "failure"),
        # in the container, common/ sits beside train.py (one code directory)
        "PYTHONPATH": str(REPO / "pipeline_code" / "steps"),
    }
    script = REPO / "pipeline_code" / "steps" / "train" / "train.py"
    done = subprocess.run(
        [sys.executable, str(script), "--num_round", "300", "--max_depth", "3", *extra]
        + ["--checkpoint_dir", str(folder / "checkpoints")],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def saved_model(folder: Path) -> dict[str, Any]:
    """The model metadata train.py wrote, once early stopping has fired: the saved model is an
    earlier round than XGBoost's last evaluation line (which then reports a later model)."""
    metadata = json.loads((folder / "model" / "metadata" / "model-metadata.json").read_text())
    assert metadata["rounds_trained"] > metadata["best_iteration"] + 1, metadata
    return cast(dict[str, Any], metadata)


def test_the_objective_regex_reads_what_train_py_prints(tmp_path: Path) -> None:
    prepare = load("prepare")
    write(small_frame(3000), tmp_path / "in" / "data.csv")
    assert (
        prepare.main(
            ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "ch")]
            + ["--schema", SCHEMA_JSON]
        )
        == 0
    )
    done = run_train_py(tmp_path)
    metadata = saved_model(tmp_path)
    # SageMaker reads the container's stdout and stderr (CloudWatch Logs)
    log = done.stdout + done.stderr
    values = [float(v) for v in re.findall(OBJECTIVE_REGEX, log)]
    assert len(values) >= 3  # XGBoost's reports every 10 rounds, then the summary
    # the final value, which ranks the trials, is the saved model's validation AUC, not
    # XGBoost's last line (a later round, after the best one)
    assert values[-1] == pytest.approx(metadata["best_validation_auc"], abs=5e-5)
    last_round = float(re.findall(r"validation-auc:(\S+)", log)[-1])
    assert last_round != pytest.approx(metadata["best_validation_auc"], abs=5e-5)
    assert all(0.5 < v <= 1.0 for v in values)


def test_deploy_values_fill_every_placeholder_of_the_tuning_step(steps: dict[str, Any]) -> None:
    text = substituted(json.dumps(steps["Train"]))
    assert "${" not in text, [name for name in DEPLOY_VALUES if name in text]


def test_in_vpc_mode_every_trial_runs_in_the_environments_subnets(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("tuned-vpc")
    vpc = {"subnets": 2, "security_groups": 1}
    path = generate(root, SETTINGS | {"tuning": TUNING, "vpc": vpc})
    definition = json.loads(path.read_text())
    train = next(s for s in definition["Steps"] if s["Name"] == "Train")
    assert train["Arguments"]["TrainingJobDefinition"]["VpcConfig"] == {
        "SecurityGroupIds": ["${VpcSecurityGroup1}"],
        "Subnets": ["${VpcSubnet1}", "${VpcSubnet2}"],
    }


def test_hyperband_bounds_its_resource_above_what_a_full_trial_reports(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("tuned-hyperband")
    hyperband = TUNING | {"strategy": "hyperband", "early_stopping": "off"}
    definition = json.loads(generate(root, SETTINGS | {"tuning": hyperband}).read_text())
    train = next(s for s in definition["Steps"] if s["Name"] == "Train")
    config = train["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Hyperband"
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    # 300 rounds report at rounds 0, 10, ..., 290, the last round and the summary: 32 values,
    # one fewer than MaxResource (a trial that reaches it is stopped)
    assert config["StrategyConfig"] == {
        "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 33}
    }
    parameters = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    # MaxResource is derived from num_round: no run may override it (a larger NumRound would
    # stop every trial before it saves its model), so it is the configured value, fixed
    assert "NumRound" not in parameters
    trial = train["Arguments"]["TrainingJobDefinition"]
    assert trial["StaticHyperParameters"]["num_round"] == "300"
    request = resolved(json.loads(substituted(json.dumps(train["Arguments"]))), parameters)
    request["HyperParameterTuningJobName"] = "pipelines-abc123-Train"
    validate_request("CreateHyperParameterTuningJob", request)


def test_the_tuning_definition_is_byte_identical_from_run_to_run(
    tuned: Run, tmp_path: Path
) -> None:
    # step caching keys on the step's arguments: a regenerated definition must not differ
    env = {**os.environ, "PYTHONHASHSEED": "5"}
    path = generate(tmp_path, SETTINGS | {"tuning": TUNING}, env)
    assert path.read_text() == tuned.definition_text


PENGUIN_FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]


@pytest.mark.parametrize(
    ("problem", "target"), [("multiclass", "species"), ("regression", "body_mass_g")]
)
def test_every_objective_regex_reads_the_saved_models_value_from_train_py(
    tmp_path: Path, problem: str, target: str
) -> None:
    from pipeline_code import penguin_data

    prepare = load("prepare")
    (tmp_path / "in").mkdir()
    penguin_data.generate(1500, seed=5).to_csv(tmp_path / "in" / "data.csv", index=False)
    schema = {
        "target": target,
        "problem_type": problem,
        "max_missing_fraction": 0.05,
        "features": [{"name": n, "type": "float"} for n in PENGUIN_FEATURES],
    }
    argv = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "ch")]
    assert prepare.main([*argv, "--schema", json.dumps(schema)]) == 0
    done = run_train_py(tmp_path, "--target", target)
    metadata = saved_model(tmp_path)
    log = done.stdout + done.stderr
    objectives = {m: o for (p, m), o in TUNING_OBJECTIVES.items() if p == problem}
    assert objectives  # every problem type can be tuned on some gate metric
    for metric, objective in objectives.items():
        values = [float(v) for v in re.findall(objective.regex, log)]
        # the last value read, which ranks the trials, is the saved model's (train.py's summary)
        assert values, metric
        assert values[-1] == pytest.approx(metadata[f"best_{objective.summary}"], abs=5e-5), metric
        if objective.intermediate:  # XGBoost's last line is a later round's: not the saved model
            xgboost = re.findall(objective.regex.replace(f"|{objective.summary} ", ""), log)
            assert float(xgboost[-1]) != pytest.approx(values[-1], abs=5e-5), metric
        # the intermediate values early stopping and hyperband judge: XGBoost's every 10 rounds
        assert (len(values) >= 3) == objective.intermediate, (metric, len(values))


@pytest.mark.parametrize(
    ("problem", "metric", "floor", "objective"),
    [
        ("regression", "rmse", 450.0, {"MetricName": "validation:rmse", "Type": "Minimize"}),
        ("multiclass", "log_loss", 0.9, {"MetricName": "validation:mlogloss", "Type": "Minimize"}),
        ("multiclass", "accuracy", 0.7, {"MetricName": "validation:accuracy", "Type": "Maximize"}),
    ],
)
def test_a_tuned_definition_of_another_problem_type_tunes_its_gate_metric(
    tmp_path: Path, problem: str, metric: str, floor: float, objective: dict[str, str]
) -> None:
    from tests.pipeline.test_problem_type_definition import TYPED_SETTINGS

    settings = TYPED_SETTINGS[problem] | {"metric": metric, "metric_floor": floor}
    tuning = {**TUNING, "early_stopping": "off"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    definition = json.loads(generate(tmp_path, settings | {"tuning": tuning}, env).read_text())
    (train,) = [step for step in definition["Steps"] if step["Name"] == "Train"]
    arguments = train["Arguments"]
    assert arguments["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] == (
        objective
    )
    (definition_of_metric,) = arguments["TrainingJobDefinition"]["AlgorithmSpecification"][
        "MetricDefinitions"
    ]
    expected = TUNING_OBJECTIVES[(problem, metric)]
    assert definition_of_metric == {"Name": objective["MetricName"], "Regex": expected.regex}
    request = json.loads(substituted(json.dumps(arguments)))
    run = Run(out_dir=tmp_path / "out", returncode=0, stderr="")
    request = resolved(request, _run_values(run))
    request["HyperParameterTuningJobName"] = "pipelines-abc123-Train"
    validate_request("CreateHyperParameterTuningJob", request)
