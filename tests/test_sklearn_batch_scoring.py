"""serving.mode batch with pipeline.trainer sklearn (#15): the environment synthesizes clean
(cdk-nag, the Control Tower rules), the scoring models' role pulls the scikit-learn image the
served package names (and XGBoost's, for a package registered before the switch) and no other
repository, as IAM evaluates it; the scoring pipeline's requests are ones SageMaker accepts and
name no image of their own, so the transform job runs the package's container (the scikit-learn
image in script mode with the archive's inference.py, registration.SCRIPT_MODE_ENVIRONMENT).
Under xgboost the scoring role pulls scikit-learn's repository too (a package approved before the
switch), and still no other.

Repository ARNs come from the SageMaker SDK's image table, not from the app."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.pipeline_definitions import generate_pipelines
from tests.conftest import BATCH, SKLEARN_BATCH, synthesized, variant_config
from tests.pipeline.test_scoring_definition import _resolved, _validate
from tests.security_checks import role_statements
from tests.test_sklearn_trainer_permissions import (
    LOOKALIKE,
    OTHER,
    SKLEARN_INFERENCE,
    _pulls,
    _repository,
)

pytestmark = pytest.mark.xdist_group("cdk")

XGBOOST_INFERENCE = _repository("xgboost", "3.0-5", "inference")


@pytest.fixture(scope="module")
def training() -> dict[str, Any]:
    """The Training stack of dev with batch serving and the scikit-learn trainer; synthesized()
    raises on any unacknowledged cdk-nag or Control Tower finding."""
    return synthesized("dev", SKLEARN_BATCH)["training"].to_json()


def test_the_scoring_models_pull_the_scikit_learn_and_xgboost_inference_images_only(
    training: dict[str, Any],
) -> None:
    statements = role_statements(training, "ScoringModelRole")
    assert _pulls(statements, SKLEARN_INFERENCE)
    # a package served before the switch to sklearn still scores until another is approved
    assert _pulls(statements, XGBOOST_INFERENCE)
    assert not _pulls(statements, OTHER)


def test_under_xgboost_the_scoring_models_still_pull_scikit_learn_and_nothing_else() -> None:
    """A scikit-learn package approved before the switch back to xgboost must still score."""
    statements = role_statements(
        synthesized("dev", BATCH)["training"].to_json(), "ScoringModelRole"
    )
    assert _pulls(statements, XGBOOST_INFERENCE)
    assert _pulls(statements, SKLEARN_INFERENCE)
    assert not _pulls(statements, OTHER)
    assert not _pulls(statements, LOOKALIKE)


def test_the_scoring_model_role_reads_no_step_code(training: dict[str, Any]) -> None:
    """The inference code travels inside model.tar.gz (SAGEMAKER_SUBMIT_DIRECTORY is
    /opt/ml/model/code): the role needs no read of the published step code."""
    statements = role_statements(training, "ScoringModelRole")
    reads = json.dumps([s["Resource"] for s in statements if "s3:GetObject" in str(s["Action"])])
    assert "/code/" not in reads and "training/*" in reads


@pytest.fixture(scope="module")
def scoring_steps() -> dict[str, dict[str, Any]]:
    generated = generate_pipelines(variant_config("dev", SKLEARN_BATCH))
    definition = json.loads(generated.definition_file("scoring").read_text())
    return {step["Name"]: step for step in definition["Steps"]}


def test_the_scoring_requests_are_accepted_and_run_the_packages_own_container(
    scoring_steps: dict[str, dict[str, Any]],
) -> None:
    model = scoring_steps["Model"]["Arguments"]
    # no Image, no Environment: CreateModel takes both from the package's InferenceSpecification
    assert set(model["PrimaryContainer"]) == {"ModelPackageName"}
    assert model["EnableNetworkIsolation"] is True
    _validate("CreateModel", {"ModelName": "scoring-model", **_resolved(model)})
    score = _resolved(scoring_steps["Score"]["Arguments"])
    _validate("CreateTransformJob", {"TransformJobName": "scoring-job", **score})
    assert score["TransformInput"]["ContentType"] == score["TransformOutput"]["Accept"]
    assert score["TransformInput"]["ContentType"] == "text/csv"
    assert score["BatchStrategy"] == "MultiRecord"
    assert score["DataProcessing"]["JoinSource"] == "Input"


def _register_container() -> dict[str, Any]:
    """The container of the package the training pipeline registers (the one scoring runs)."""
    generated = generate_pipelines(variant_config("dev", SKLEARN_BATCH))
    steps = json.loads(generated.definition_file("training").read_text())["Steps"]
    pending = list(steps)
    while pending:
        step = pending.pop()
        if step["Type"] == "RegisterModel":
            (container,) = step["Arguments"]["InferenceSpecification"]["Containers"]
            return dict(container)
        arguments = step.get("Arguments", {})
        pending += arguments.get("IfSteps", []) + arguments.get("ElseSteps", [])
    raise AssertionError("no RegisterModel step in the training definition")


def test_the_scoring_models_pull_the_image_the_registered_package_names(
    training: dict[str, Any],
) -> None:
    """Tied to the definition, not to the app's own image list: the registered package's
    Image (script mode, the code inside the archive) is one the scoring role may pull."""
    container = _register_container()
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    registry, _, repository = container["Image"].partition("/")
    account, region = registry.split(".")[0], registry.split(".")[3]
    arn = f"arn:aws:ecr:{region}:{account}:repository/{repository.split(':')[0]}"
    assert arn == SKLEARN_INFERENCE
    assert _pulls(role_statements(training, "ScoringModelRole"), arn)
