"""The training definition of `pipeline.trainer = custom`: every job request is valid for its
API (botocore's service model); the training job runs the user's image, network-isolated, with
the user's folder as its code (content-addressed, byte for byte) and the user's
hyperparameters; Evaluate and the registered package stay in the SageMaker XGBoost image (the
contract's model is an XGBoost booster, served in algorithm mode; with category features in
script mode by the loop's inference.py, shipped to the script in mlops_loop/ and to Evaluate,
which checks the archive's code/ against it)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.pipeline.generated import (
    CODE_URI,
    REPO,
    SETTINGS,
    processing_code,
    settings_file,
    stored_files,
)
from tests.pipeline.test_problem_type_definition import TYPED_SETTINGS, _requests, _steps
from tests.pipeline.test_sklearn_definition import generated_training

IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/my-trainer@sha256:" + "ab" * 32
CUSTOM = {
    "image_uri": IMAGE,
    "source_dir": "examples/custom_trainer",
    "entry_script": "train.py",
    "hyperparameters": {"num_round": "80"},
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = SETTINGS | {"training_instance_count": 1, "use_spot": False, "custom": CUSTOM}
    return generated_training(tmp_path_factory.mktemp("custom"), settings)


def test_every_job_request_is_valid_and_only_training_runs_the_custom_image(
    generated: Any,
) -> None:
    from tests.pipeline.generated import validate_request

    definition, _ = generated
    requests = _requests(definition)
    for operation, request in requests.values():
        validate_request(operation, request)
    _, train = requests["Train"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert train["EnableNetworkIsolation"] is True
    _, evaluate = requests["Evaluate"]
    assert "/sagemaker-xgboost:3.0-5" in evaluate["AppSpecification"]["ImageUri"]
    # Evaluate refuses a pickle under trainer custom, whatever the model's metadata says.
    arguments = evaluate["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--trainer") + 1] == "custom"
    _, register = requests["Register"]
    [container] = register["InferenceSpecification"]["Containers"]
    assert "/sagemaker-xgboost:3.0-5" in container["Image"]
    assert "SAGEMAKER_PROGRAM" not in container.get("Environment", {})  # algorithm mode
    assert register["CustomerMetadataProperties"]["trainer"] == "custom"


def test_the_training_job_runs_the_users_folder_with_the_users_hyperparameters(
    generated: Any,
) -> None:
    definition, out = generated
    _, train = _requests(definition)["Train"]
    assert train["HyperParameters"]["num_round"] == "80"
    assert train["HyperParameters"]["target"] == SETTINGS["schema"]["target"]
    assert not {"eta", "max_depth", "scale_pos_weight"} & set(train["HyperParameters"])
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in _steps(definition)["Train"]["Arguments"]["InputDataConfig"]}  # fmt: skip
    drivers = stored_files(out / "code" / CODE_URI.fullmatch(channels["sm_drivers"]).group(1))
    assert json.loads(drivers["sourcecode.json"])["entry_script"] == "train.py"
    files = stored_files(out / "code" / CODE_URI.fullmatch(channels["code"]).group(1))
    example = REPO / "examples" / "custom_trainer"
    assert files == {
        p.relative_to(example).as_posix(): p.read_bytes()
        for p in sorted(example.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_a_missing_entry_script_fails_generation_naming_the_key(tmp_path: Any) -> None:
    settings = SETTINGS | {
        "training_instance_count": 1,
        "use_spot": False,
        "custom": CUSTOM | {"entry_script": "fit.py"},
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_code.generate", "--settings",
         str(settings_file(tmp_path, settings)), "--out-dir", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "settings.custom: no fit.py in" in done.stderr


def test_the_readme_contract_names_every_command_the_sdk_driver_requires() -> None:
    """The commands `sm_train.sh`'s check_python looks up (`command -v ...`) are read from the
    SDK's own template, not from this repository: each must be in the custom image contract."""
    import re

    from sagemaker.train import templates

    [check] = re.findall(r"check_python\(\) \{\{(.*?)\}\}", templates.TRAIN_SCRIPT_TEMPLATE, re.S)
    commands = set(re.findall(r"command -v (\w+)", check))
    assert {"pip3", "python3"} <= commands
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    contract = readme[readme.index("**A custom trainer**") : readme.index("- *Input channels*")]
    for command in commands:
        assert f"`{command}`" in contract, command


@pytest.fixture(scope="module")
def generated_categories(tmp_path_factory: pytest.TempPathFactory) -> Any:
    schema = json.loads(json.dumps(SETTINGS["schema"]))
    schema["features"][2]["type"] = "category"  # merchant_category
    settings = SETTINGS | {
        "training_instance_count": 1,
        "use_spot": False,
        "custom": CUSTOM,
        "schema": schema,
    }
    return generated_training(tmp_path_factory.mktemp("custom-categories"), settings)


def test_with_category_features_the_custom_model_is_served_by_the_loops_inference_script(
    generated_categories: Any,
) -> None:
    """Script mode from the archive's code/ (the container's variables, as for train.py's
    category models); the training job's code is the user's folder plus the loop's serving
    code in mlops_loop/; Evaluate's code has the inference.py it checks code/ against."""
    from pipeline_code.definition.registration import SCRIPT_MODE_ENVIRONMENT
    from tests.pipeline.generated import validate_request

    definition, out = generated_categories
    requests = _requests(definition)
    for operation, request in requests.values():
        validate_request(operation, request)
    _, register = requests["Register"]
    [container] = register["InferenceSpecification"]["Containers"]
    assert "/sagemaker-xgboost:3.0-5" in container["Image"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert container["Environment"] == {**container["Environment"], **SCRIPT_MODE_ENVIRONMENT}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in _steps(definition)["Train"]["Arguments"]["InputDataConfig"]}  # fmt: skip
    files = stored_files(out / "code" / CODE_URI.fullmatch(channels["code"]).group(1))
    example = REPO / "examples" / "custom_trainer"
    steps = REPO / "pipeline_code" / "steps"
    assert files["train.py"] == (example / "train.py").read_bytes()
    assert (
        files["mlops_loop/serving_files.py"] == (steps / "train" / "serving_files.py").read_bytes()
    )
    assert files["mlops_loop/inference.py"] == (steps / "train" / "inference.py").read_bytes()
    assert (
        files["mlops_loop/common/categories.py"]
        == (steps / "common" / "categories.py").read_bytes()
    )
    digest, script = processing_code(_steps(definition)["Evaluate"])
    assert script == "evaluate.py"
    evaluate_files = stored_files(out / "code" / digest)
    assert evaluate_files["train/inference.py"] == (steps / "train" / "inference.py").read_bytes()
    assert (
        evaluate_files["custom_serving.py"]
        == (steps / "evaluate" / "custom_serving.py").read_bytes()
    )


# Multi-class and regression under the custom trainer: with the config's category feature
# (script mode, the loop's inference.py) and with numbers only (algorithm mode).
TYPED_CUSTOM = {
    (kind, features): TYPED_SETTINGS[kind]
    | {
        "training_instance_count": 1,
        "use_spot": False,
        "custom": CUSTOM,
        "cache_expire_after": "PT12H",  # not the default: ExpireAfter must come from here
        "schema": TYPED_SETTINGS[kind]["schema"]
        | {
            "features": [
                f
                for f in TYPED_SETTINGS[kind]["schema"]["features"]
                if features == "category" or f["type"] != "category"
            ]
        },
    }
    for kind in sorted(TYPED_SETTINGS)
    for features in ("category", "numeric")
}


@pytest.fixture(scope="module", params=sorted(TYPED_CUSTOM), ids="-".join)
def typed_custom(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    kind, features = request.param
    root = tmp_path_factory.mktemp(f"custom-{kind}-{features}")
    definition, _ = generated_training(root, TYPED_CUSTOM[request.param])
    return kind, features, definition


def test_a_typed_custom_definition_is_valid_and_registers_the_types_package(
    typed_custom: Any,
) -> None:
    """Every request is valid for its API; the package's Task is the type's (CreateModelPackage:
    REGRESSION or CLASSIFICATION); the package serves CSV in the XGBoost image, in script mode
    exactly when the schema has a category feature (README, custom trainer contract)."""
    from pipeline_code.definition.registration import SCRIPT_MODE_ENVIRONMENT
    from tests.pipeline.generated import validate_request

    kind, features, definition = typed_custom
    requests = _requests(definition)
    assert list(requests) == ["Prepare", "Train", "Evaluate", "Register"]
    for operation, request in requests.values():
        validate_request(operation, request)
    _, train = requests["Train"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert train["EnableNetworkIsolation"] is True
    assert train["HyperParameters"]["target"] == TYPED_SETTINGS[kind]["schema"]["target"]
    _, register = requests["Register"]
    assert register["Task"] == ("REGRESSION" if kind == "regression" else "CLASSIFICATION")
    specification = register["InferenceSpecification"]
    assert specification["SupportedContentTypes"] == ["text/csv"]
    assert specification["SupportedResponseMIMETypes"] == ["text/csv"]
    [container] = specification["Containers"]
    assert "/sagemaker-xgboost:3.0-5" in container["Image"]
    environment = container.get("Environment", {})
    if features == "category":
        assert environment == {**environment, **SCRIPT_MODE_ENVIRONMENT}
        assert environment["SAGEMAKER_PROGRAM"] == "inference.py"
    else:
        assert "SAGEMAKER_PROGRAM" not in environment  # algorithm mode
    assert register["CustomerMetadataProperties"]["trainer"] == "custom"


def test_a_typed_custom_training_step_is_cached_for_the_configured_time(
    typed_custom: Any,
) -> None:
    steps = _steps(typed_custom[2])
    assert steps["Train"]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "PT12H"}
