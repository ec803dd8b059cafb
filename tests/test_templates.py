"""Every synthesized template: a snapshot per stack (refactoring guard) and cfn-lint clean."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import (
    BATCH,
    BATCH_VPC,
    MLFLOW_EXTERNAL,
    MLFLOW_MANAGED,
    MLFLOW_PROMOTE_TARGET,
    MLFLOW_SELF_HOSTED,
    MODEL_MONITOR,
    PROMOTE_TARGET_BATCH,
    SERVERLESS,
    SKLEARN_BATCH,
    normalized,
    synthesized,
)

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")

# CDK emits DependsOn that cfn-lint finds redundant; nothing else is ignored.
IGNORED_CFN_LINT_RULES = ["W3005"]


def _stacks(env: str, overrides: str = "{}") -> list[tuple[str, Template]]:
    return sorted(synthesized(env, overrides).items())


@pytest.fixture()
def snapshot_json(snapshot):  # type: ignore[no-untyped-def]
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("role", ["data", "training", "serving", "monitoring"])
def test_snapshot_per_stack(role: str, snapshot_json) -> None:  # type: ignore[no-untyped-def]
    templates = synthesized("dev")
    if role not in templates:
        pytest.skip(f"no {role} stack yet")
    assert normalized(templates[role].to_json()) == snapshot_json


# staging differs from prod only in values; CI lints all three (make synth ENV=all; make cfn-lint)
@pytest.mark.parametrize(
    ("env", "overrides"),
    [
        ("dev", "{}"),
        ("prod", "{}"),
        ("dev", MODEL_MONITOR),
        ("dev", SERVERLESS),
        ("dev", BATCH),
        ("dev", BATCH_VPC),
        ("dev", SKLEARN_BATCH),
        ("staging", PROMOTE_TARGET_BATCH),
        ("dev", MLFLOW_MANAGED),
        ("staging", MLFLOW_MANAGED),
        ("dev", MLFLOW_EXTERNAL),
        ("dev", MLFLOW_SELF_HOSTED),
        ("staging", MLFLOW_PROMOTE_TARGET),
    ],
)
def test_cfn_lint_finds_nothing(env: str, overrides: str) -> None:
    for role, template in _stacks(env, overrides):
        matches = lint(
            json.dumps(template.to_json()),
            config=ManualArgs(regions=["eu-west-1"], ignore_checks=IGNORED_CFN_LINT_RULES),
        )
        assert [str(m) for m in matches] == [], f"{env}/{role}"
