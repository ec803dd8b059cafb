"""The definitions of a multi-class and a regression config: every job request is valid for
its API (botocore's service model), the Train job trains the config's type, and the model
package's Task is the one CreateModelPackage knows for it (REGRESSION for a regression model)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from pipeline_code import generate
from pipeline_code.definition import PipelineSettings, SettingsError
from tests.pipeline.generated import (
    REPO,
    SETTINGS,
    resolved,
    settings_file,
    substituted,
    validate_request,
)

_PENGUIN_FEATURES = [
    {"name": "island", "type": "category"},
    {"name": "bill_length_mm", "type": "float"},
    {"name": "flipper_length_mm", "type": "float"},
]
_SPLIT = {
    "id_column": None,
    "time_column": None,
    "validation_fraction": 0.15,
    "test_fraction": 0.15,
}
_TYPED = {k: v for k, v in SETTINGS.items() if k not in ("decision_threshold", "scale_pos_weight")}

TYPED_SETTINGS: dict[str, dict[str, Any]] = {
    "multiclass": _TYPED
    | {
        "schema": {
            "target": "species",
            "problem_type": "multiclass",
            "features": _PENGUIN_FEATURES,
            "max_missing_fraction": 0.05,
        },
        "metric": "macro_f1",
        "metric_floor": 0.7,
        "gate_method": "bootstrap",
        "split": _SPLIT,
    },
    "regression": _TYPED
    | {
        "schema": {
            "target": "body_mass_g",
            "problem_type": "regression",
            "features": _PENGUIN_FEATURES,
            "max_missing_fraction": 0.05,
        },
        "metric": "rmse",
        "metric_floor": 450.0,
        "champion_tolerance": 25.0,
        "gate_method": "bootstrap",
        "split": _SPLIT,
    },
}


@pytest.fixture(scope="module", params=sorted(TYPED_SETTINGS))
def typed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(problem type, its training definition, its evaluation-only definition)."""
    kind = request.param
    root = tmp_path_factory.mktemp(f"{kind}-definition")
    out = root / "out"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_code.generate"]
        + ["--settings", str(settings_file(root, TYPED_SETTINGS[kind])), "--out-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return (
        kind,
        json.loads((out / generate.DEFINITION_FILE).read_text(encoding="utf-8")),
        json.loads((out / generate.EVALUATION_DEFINITION_FILE).read_text(encoding="utf-8")),
    )


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


def _requests(definition: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    values = {
        "InputDataUri": "s3://fraud-dev-data/landing/penguins/v1/",
        "DatasetVersion": "penguins/v1",
        "DataDigest": "sha256-0f3a",
        "ChampionModelPackageArn": "none",
    } | {p["Name"]: p["DefaultValue"] for p in definition["Parameters"] if "DefaultValue" in p}
    operations = {
        "Processing": ("CreateProcessingJob", "ProcessingJobName"),
        "Training": ("CreateTrainingJob", "TrainingJobName"),
        "RegisterModel": ("CreateModelPackage", None),
    }
    requests = {}
    for name, step in json.loads(substituted(json.dumps(_steps(definition)))).items():
        if step["Type"] in operations:
            operation, name_key = operations[step["Type"]]
            request = resolved(step["Arguments"], values)
            if name_key:
                request[name_key] = f"pipelines-abc123-{name}"
            requests[name] = (operation, request)
    return requests


def test_every_job_request_of_a_typed_definition_is_valid(typed: Any) -> None:
    _, definition, _ = typed
    requests = _requests(definition)
    for operation, request in requests.values():
        validate_request(operation, request)
    assert list(requests) == ["Prepare", "Train", "Evaluate", "Register"]


def test_the_evaluation_only_definition_of_a_typed_config_is_valid(typed: Any) -> None:
    """The eval-only pipeline scores every problem type (the ground-truth trigger and the
    quality alarm exist for these configs): its job requests are valid, Validate keeps every
    labelled row, and Evaluate scores the package named by ModelPackageArn on the config's
    target."""
    kind, _, evaluation = typed
    requests = _requests(evaluation)
    assert list(requests) == ["Validate", "Evaluate"]
    for operation, request in requests.values():
        validate_request(operation, request)
    validate = requests["Validate"][1]["AppSpecification"]["ContainerArguments"]
    assert "--all-to-test" in validate
    arguments = requests["Evaluate"][1]["AppSpecification"]["ContainerArguments"]
    target = TYPED_SETTINGS[kind]["schema"]["target"]
    assert arguments[arguments.index("--target") + 1] == target
    assert "--model-package-arn" in arguments and "--model-dir" not in arguments


def test_the_package_task_is_the_problem_types(typed: Any) -> None:
    kind, definition, _ = typed
    _, register = _requests(definition)["Register"]
    assert register["Task"] == ("REGRESSION" if kind == "regression" else "CLASSIFICATION")
    assert register["ModelApprovalStatus"] == "PendingManualApproval"


def test_train_gets_no_binary_only_choice(typed: Any) -> None:
    """Train reads the type from Prepare's labels; the binary-only settings keep their
    defaults (train.py ignores them for these types)."""
    _, definition, _ = typed
    _, train = _requests(definition)["Train"]
    hyperparameters = train["HyperParameters"]
    assert (hyperparameters["decision_threshold"], hyperparameters["scale_pos_weight"]) == (
        "max-f1",
        "1",
    )


def test_a_binary_package_stays_a_classification() -> None:
    from pipeline_code.definition.registration import registry_task

    assert registry_task(SETTINGS["schema"]) == "CLASSIFICATION"
    assert registry_task(TYPED_SETTINGS["regression"]["schema"]) == "REGRESSION"


@pytest.mark.parametrize(
    ("settings", "method"),
    [(SETTINGS, "delong"),
     ({**SETTINGS, "metric": "f1"}, "bootstrap"),
     (TYPED_SETTINGS["multiclass"], "bootstrap"),
     (TYPED_SETTINGS["regression"], "bootstrap")],
)  # fmt: skip
def test_an_unset_gate_method_follows_the_metric(settings: dict[str, Any], method: str) -> None:
    # DeLong's variance is the AUC's (a Mann-Whitney statistic); no other metric has it.
    raw = {key: value for key, value in settings.items() if key != "gate_method"}
    assert PipelineSettings.from_dict(raw).gate_method == method
    assert PipelineSettings.from_dict({**raw, "gate_method": None}).gate_method == method


@pytest.mark.parametrize("kind", sorted(TYPED_SETTINGS))
def test_delong_is_refused_for_another_metric_than_auc(kind: str) -> None:
    settings = TYPED_SETTINGS[kind]
    with pytest.raises(SettingsError) as error:
        PipelineSettings.from_dict({**settings, "gate_method": "delong"})
    assert str(error.value) == (
        f"settings.gate_method: got 'delong'; expected bootstrap with metric "
        f"{settings['metric']} (delong is AUC's)"
    )
    assert PipelineSettings.from_dict({**SETTINGS, "gate_method": "delong"}).gate_method == "delong"
