"""The training definition of `pipeline.trainer = sklearn`, per problem type: every job
request is valid for its API (botocore's service model); the training job and Evaluate run in
the SageMaker scikit-learn image and the package is served by its inference image, each as the
SDK's published image table names it for the region (read here from the table itself); the
training job stays network-isolated and runs train_sklearn.py with train/'s modules beside it;
the estimator and its parameters reach it as hyperparameters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline_code import generate
from tests.pipeline.generated import (
    CODE_URI,
    REPO,
    SETTINGS,
    STEPS_DIR,
    processing_code,
    settings_file,
    stored_files,
)
from tests.pipeline.test_problem_type_definition import TYPED_SETTINGS, _requests, _steps

SKLEARN = {
    "binary": (
        "sklearn.ensemble.HistGradientBoostingClassifier",
        {"max_iter": 200, "learning_rate": 0.05},
    ),
    "multiclass": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 300}),
    "regression": ("sklearn.linear_model.Ridge", {"alpha": 0.5}),
}
BINARY = SETTINGS | {"training_instance_count": 1, "use_spot": False}


def _image(scope: str, region: str) -> str:
    """The scikit-learn 1.9-0 image of `region`, from the SDK's own image table (JSON)."""
    import sagemaker.core

    table_file = Path(sagemaker.core.__file__).parent / "image_uri_config" / "sklearn.json"
    entry = json.loads(table_file.read_text())[scope]["versions"]["1.9-0"]
    account = entry["registries"][region]
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{entry['repository']}:1.9-0-cpu-py3"


@pytest.fixture(scope="module", params=sorted(SKLEARN))
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    kind = request.param
    estimator, params = SKLEARN[kind]
    base = BINARY if kind == "binary" else TYPED_SETTINGS[kind]
    settings = base | {
        "sklearn": {"estimator": estimator, "params": params, "framework_version": "1.9-0"}
    }
    definition, out = generated_training(tmp_path_factory.mktemp(f"sklearn-{kind}"), settings)
    return kind, settings, definition, out


def generated_training(root: Path, settings: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """The training definition the generator writes for `settings` (run as the CDK app runs
    it), and its output folder."""
    out = root / "out"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_code.generate"]
        + ["--settings", str(settings_file(root, settings)), "--out-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads((out / generate.DEFINITION_FILE).read_text(encoding="utf-8")), out


def test_every_job_request_is_valid_and_runs_in_the_scikit_learn_image(generated: Any) -> None:
    from tests.pipeline.generated import validate_request

    kind, settings, definition, out = generated
    requests = _requests(definition)
    for operation, request in requests.values():
        validate_request(operation, request)
    region = settings["region"]
    _, train = requests["Train"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == _image("training", region)
    assert train["EnableNetworkIsolation"] is True
    _, prepare = requests["Prepare"]
    _, evaluate = requests["Evaluate"]
    assert evaluate["AppSpecification"]["ImageUri"] == _image("training", region)
    # Evaluate unpickles only because the configuration says sklearn (not the model's metadata).
    arguments = evaluate["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--trainer") + 1] == "sklearn"
    # Prepare stays in the XGBoost image (it needs no scikit-learn model).
    assert "sagemaker-xgboost" in prepare["AppSpecification"]["ImageUri"]
    _, register = requests["Register"]
    [container] = register["InferenceSpecification"]["Containers"]
    assert container["Image"] == _image("inference", region)
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert register["CustomerMetadataProperties"]["trainer"] == "sklearn"
    assert register["Task"] == ("REGRESSION" if kind == "regression" else "CLASSIFICATION")
    # The eval-only pipeline scores the registered scikit-learn package in that image too.
    evaluation = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    [score] = [s for s in evaluation["Steps"] if s["Name"] == "Evaluate"]
    image = score["Arguments"]["AppSpecification"]["ImageUri"]
    assert image == _image("training", region)
    arguments = score["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--trainer") + 1] == "sklearn"


def test_the_training_job_gets_the_estimator_and_its_code(generated: Any) -> None:
    kind, settings, definition, out = generated
    _, train = _requests(definition)["Train"]
    hyperparameters = train["HyperParameters"]
    estimator, params = SKLEARN[kind]
    assert hyperparameters["estimator"] == estimator
    assert json.loads(hyperparameters["estimator_params"]) == params
    assert hyperparameters["target"] == settings["schema"]["target"]
    # No XGBoost hyperparameter reaches the scikit-learn script.
    assert not {"num_round", "eta", "max_depth", "scale_pos_weight"} & set(hyperparameters)
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in _steps(definition)["Train"]["Arguments"]["InputDataConfig"]}  # fmt: skip
    drivers = stored_files(out / "code" / CODE_URI.fullmatch(channels["sm_drivers"]).group(1))
    assert json.loads(drivers["sourcecode.json"])["entry_script"] == "train_sklearn.py"
    files = stored_files(out / "code" / CODE_URI.fullmatch(channels["code"]).group(1))
    assert (
        files["train_sklearn.py"] == (STEPS_DIR / "train_sklearn" / "train_sklearn.py").read_bytes()
    )
    assert files["train/channels.py"] == (STEPS_DIR / "train" / "channels.py").read_bytes()
    assert "common/sklearn_predictions.py" in files
    # Evaluate's code is the unchanged evaluate directory.
    _, script = processing_code(_steps(definition)["Evaluate"])
    assert script == "evaluate.py"


def test_the_definition_is_byte_identical_from_run_to_run(generated: Any, tmp_path: Path) -> None:
    """Step caching needs a stable definition: another process, working directory and hash
    seed render the same bytes (the estimator's params are written with sorted keys)."""
    import os

    kind, settings, _, out = generated
    if kind != "binary":
        pytest.skip("one problem type is enough")
    params = settings["sklearn"]["params"]
    reordered = settings | {
        "sklearn": {**settings["sklearn"], "params": dict(reversed(params.items()))}
    }
    again = tmp_path / "again"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_code.generate", "--settings",
         str(settings_file(tmp_path, reordered)), "--out-dir", str(again)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "123"},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("training.json", "evaluation.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
