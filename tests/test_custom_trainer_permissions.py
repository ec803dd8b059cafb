"""pipeline.trainer = custom, as IAM evaluates the synthesized roles: the training job pulls
exactly the repository of `pipeline.custom.image_uri` (no other repository of the account, not
XGBoost's), the endpoint never the custom image (it serves with SageMaker's XGBoost and
scikit-learn inference images, constructs/ecr_images.served_image_uris)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import synthesized
from tests.security_checks import role_statements
from tests.test_sklearn_trainer_permissions import XGBOOST, _pulls, _repository

pytestmark = pytest.mark.xdist_group("cdk")

IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/team/my-trainer@sha256:" + "cd" * 32
CUSTOM = json.dumps(
    {
        "pipeline": {
            "trainer": "custom",
            "custom": {"image_uri": IMAGE, "source_dir": "examples/custom_trainer"},
        }
    }
)
REPOSITORY = "arn:aws:ecr:eu-west-1:111111111111:repository/team/my-trainer"


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return {role: t.to_json() for role, t in synthesized("dev", CUSTOM).items()}


def test_the_training_job_pulls_exactly_the_custom_repository(
    templates: dict[str, dict[str, Any]],
) -> None:
    statements = role_statements(templates["training"], "TrainingJobRole")
    assert _pulls(statements, REPOSITORY)
    for other in (
        "arn:aws:ecr:eu-west-1:111111111111:repository/team/other",
        "arn:aws:ecr:eu-west-1:111111111111:repository/team/my-trainer-2",
        "arn:aws:ecr:us-east-1:111111111111:repository/team/my-trainer",
        XGBOOST,
    ):
        assert not _pulls(statements, other), other
    # No other role pulls it: Evaluate and serving run XGBoost's images.
    assert not _pulls(role_statements(templates["training"], "ProcessingJobRole"), REPOSITORY)


def test_the_endpoint_does_not_pull_the_custom_image(
    templates: dict[str, dict[str, Any]],
) -> None:
    serving = templates["serving"]
    inference = _repository("xgboost", "3.0-5", "inference")
    roles = [
        kind
        for kind, resource in serving["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        and _pulls(role_statements(serving, kind), inference)
    ]
    assert roles
    for kind in roles:
        assert not _pulls(role_statements(serving, kind), REPOSITORY)
