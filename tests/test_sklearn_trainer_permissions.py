"""pipeline.trainer = sklearn, as IAM evaluates the synthesized roles: the training job pulls
only the SageMaker scikit-learn repository (not XGBoost's), the processing jobs pull XGBoost's
(Prepare) and scikit-learn's (Evaluate), and the endpoint pulls the scikit-learn repository its
package names and XGBoost's (the model served before the switch), under xgboost too; no role
pulls any other repository. The repositories' ARNs come from the
SDK's image table (the account that publishes each image in the region), not from the app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import synthesized
from tests.policy_evaluation import Request, decision
from tests.security_checks import role_statements

pytestmark = pytest.mark.xdist_group("cdk")

PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
SKLEARN = json.dumps({"pipeline": {"trainer": "sklearn"}})


def _repository(framework: str, version: str, scope: str, region: str = "eu-west-1") -> str:
    import sagemaker.core

    table = Path(sagemaker.core.__file__).parent / "image_uri_config" / f"{framework}.json"
    entry = json.loads(table.read_text())[scope]["versions"][version]
    return f"arn:aws:ecr:{region}:{entry['registries'][region]}:repository/{entry['repository']}"


SKLEARN_TRAINING = _repository("sklearn", "1.9-0", "training")
SKLEARN_INFERENCE = _repository("sklearn", "1.9-0", "inference")
XGBOOST = _repository("xgboost", "3.0-5", "training")
OTHER = SKLEARN_TRAINING.rsplit("/", 1)[0] + "/someone-elses-image"
#: scikit-learn's repository name in an account that is not SageMaker's.
LOOKALIKE = "arn:aws:ecr:eu-west-1:111111111111:repository/" + SKLEARN_INFERENCE.split("/", 1)[1]


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return {role: t.to_json() for role, t in synthesized("dev", SKLEARN).items()}


def _pulls(statements: list[dict[str, Any]], repository: str) -> bool:
    got = {
        decision(statements, Request(action, repository, "arn:aws:iam::111111111111:role/x"))
        for action in PULL
    }
    assert len(got) == 1, got
    return got == {"allow"}


def test_the_training_job_pulls_only_the_scikit_learn_image(
    templates: dict[str, dict[str, Any]],
) -> None:
    statements = role_statements(templates["training"], "TrainingJobRole")
    assert _pulls(statements, SKLEARN_TRAINING)
    assert not _pulls(statements, XGBOOST)
    assert not _pulls(statements, OTHER)


def test_the_processing_jobs_pull_prepares_and_evaluates_images(
    templates: dict[str, dict[str, Any]],
) -> None:
    statements = role_statements(templates["training"], "ProcessingJobRole")
    assert _pulls(statements, XGBOOST) and _pulls(statements, SKLEARN_TRAINING)
    assert not _pulls(statements, OTHER)


def test_the_endpoint_pulls_the_scikit_learn_and_xgboost_inference_images_only(
    templates: dict[str, dict[str, Any]],
) -> None:
    """XGBoost's too: the model served before the switch to sklearn must still scale out and be
    replaced, and an older XGBoost package must still deploy when approved."""
    serving = templates["serving"]
    pulling = [
        kind
        for kind, resource in serving["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        and _pulls(role_statements(serving, kind), SKLEARN_INFERENCE)
    ]
    assert pulling, "no serving role pulls the scikit-learn inference image"
    for kind in pulling:
        statements = role_statements(serving, kind)
        assert _pulls(statements, _repository("xgboost", "3.0-5", "inference"))
        assert not _pulls(statements, OTHER)


def test_under_xgboost_the_endpoint_still_pulls_scikit_learn_and_nothing_else() -> None:
    """Both AWS-owned inference repositories whatever the trainer is now: a scikit-learn
    package approved (or served) before a switch back to xgboost must still deploy and scale
    out. Nothing else: not another repository of that account, not a repository of the same
    name in another account."""
    serving = synthesized("dev")["serving"].to_json()
    xgboost = _repository("xgboost", "3.0-5", "inference")
    pulling = [
        kind
        for kind, resource in serving["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and _pulls(role_statements(serving, kind), xgboost)
    ]
    assert pulling, "no serving role pulls the XGBoost inference image"
    for kind in pulling:
        statements = role_statements(serving, kind)
        assert _pulls(statements, SKLEARN_INFERENCE)
        assert not _pulls(statements, OTHER)
        assert not _pulls(statements, LOOKALIKE)
