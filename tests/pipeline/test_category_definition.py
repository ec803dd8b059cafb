"""The definition for a schema with category features and a text label: the model package is
served in script mode from the code inside the model archive, records what class 1 means, and
every job request is still valid for its API (botocore's service model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline_code import generate
from tests.pipeline.generated import (
    REPO,
    SETTINGS,
    resolved,
    settings_file,
    substituted,
    validate_request,
)

CATEGORY_SETTINGS: dict[str, Any] = SETTINGS | {
    "schema": {
        "target": "sex",
        "positive_class": "female",
        "features": [
            {"name": "species", "type": "category"},
            {"name": "island", "type": "category"},
            {"name": "bill_length_mm", "type": "float"},
            {"name": "body_mass_g", "type": "int"},
        ],
        "max_missing_fraction": 0.05,
    },
    "split": {
        "id_column": None,
        "time_column": None,
        "validation_fraction": 0.15,
        "test_fraction": 0.15,
    },
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generator's output folder for the category settings."""
    root = tmp_path_factory.mktemp("category-definition")
    settings = settings_file(root, CATEGORY_SETTINGS)
    out = root / "out"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_code.generate", "--settings", str(settings)]
        + ["--out-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def definition(generated: Path) -> dict[str, Any]:
    return json.loads((generated / generate.DEFINITION_FILE).read_text(encoding="utf-8"))


def _steps(definition: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def walk(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            found[step["Name"]] = step
            arguments = step.get("Arguments", {})
            if step["Type"] == "Condition":
                walk(arguments.get("IfSteps", []) + arguments.get("ElseSteps", []))

    walk(definition["Steps"])
    return found


def test_a_model_with_categories_is_served_by_its_own_inference_script(
    definition: dict[str, Any],
) -> None:
    register = _steps(definition)["Register"]["Arguments"]
    [container] = register["InferenceSpecification"]["Containers"]
    # Script mode with the code inside model.tar.gz (Train writes code/inference.py): no
    # repack step, nothing for a network-isolated endpoint to download.
    assert container["Environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        # Script mode's default Accept is JSON; algorithm mode answers text/csv.
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
    }
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert register["CustomerMetadataProperties"]["positive_class"] == "female"


def test_prepare_reads_the_schema_with_its_positive_class_and_categories(
    generated: Path,
) -> None:
    [schema_file] = [p for p in generated.rglob("schema.json") if p.is_file()]
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert schema["positive_class"] == "female"
    assert [f["type"] for f in schema["features"]][:2] == ["category", "category"]


def test_every_job_request_of_the_category_definition_is_valid(definition: dict[str, Any]) -> None:
    values = {
        "InputDataUri": "s3://fraud-dev-data/landing/penguins/v1/",
        "DatasetVersion": "penguins/v1",
        "DataDigest": "sha256-0f3a",
        "ChampionModelPackageArn": "none",
    } | {p["Name"]: p["DefaultValue"] for p in definition["Parameters"] if "DefaultValue" in p}
    steps = json.loads(substituted(json.dumps(_steps(definition))))
    operations = {
        "Processing": ("CreateProcessingJob", "ProcessingJobName"),
        "Training": ("CreateTrainingJob", "TrainingJobName"),
        "RegisterModel": ("CreateModelPackage", None),
    }
    checked = []
    for step in steps.values():
        if step["Type"] not in operations:
            continue
        operation, name_key = operations[step["Type"]]
        request = resolved(step["Arguments"], values)
        if name_key:
            request[name_key] = f"pipelines-abc123-{step['Name']}"
        validate_request(operation, request)
        checked.append(step["Name"])
    assert checked == ["Prepare", "Train", "Evaluate", "Register"]


def test_without_categories_the_package_keeps_algorithm_mode() -> None:
    from pipeline_code.definition.registration import label_metadata, serving_environment

    assert serving_environment(SETTINGS["schema"]) is None
    assert label_metadata(SETTINGS["schema"]) == {}
    assert Path(REPO / "pipeline_code" / "steps" / "train" / "inference.py").is_file()
