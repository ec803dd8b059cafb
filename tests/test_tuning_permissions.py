"""pipeline.tuning's permissions: the pipelines' role may create the Train step's tuning job
only as it may create training jobs (network-isolated, in the environment's subnets and
security groups), evaluated the way IAM does; no other role may, and without tuning nobody can.
The variant synthesizes with cdk-nag and the Control Tower rules (`synthesized` raises on any
finding) and is one of checkov's variants (tests/variants.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from tests.conftest import synthesized
from tests.policy_evaluation import Request, decision
from tests.security_checks import role_statements
from tests.test_vpc_mode import IMPORTED_NETWORK, SUBNETS

pytestmark = pytest.mark.xdist_group("cdk")

TUNING = {"ranges": {"eta": {"min": 0.01, "max": 0.3, "scaling": "log"}}, "max_jobs": 4}
TUNING_VPC = json.dumps({"network": IMPORTED_NETWORK, "pipeline": {"tuning": TUNING}})
CREATE = "sagemaker:CreateHyperParameterTuningJob"
KINDS = ("PipelinesRole", "ProcessingJobRole", "TrainingJobRole")


def _groups(template: Mapping[str, Any]) -> list[str]:
    """The security groups the VPC denies admit (created by the app: logical ids)."""
    for statement in role_statements(template, "PipelinesRole"):
        if statement.get("Sid") == "OnlyWithTheEnvironmentsGroups":
            condition = statement["Condition"]["ForAnyValue:StringNotEquals"]
            values = condition["sagemaker:VpcSecurityGroupIds"]
            return [json.dumps(v) if isinstance(v, dict) else v for v in values]
    raise AssertionError("no security-group deny")


@pytest.fixture(scope="module")
def training() -> Mapping[str, Any]:
    return synthesized("dev", TUNING_VPC)["training"].to_json()


def _tuning_job(region: str = "eu-west-1") -> str:
    return f"arn:aws:sagemaker:{region}:*:hyper-parameter-tuning-job/pipelines-0a1b2c3d4e5f"


def test_the_pipelines_role_tunes_only_isolated_in_the_environments_subnets(
    training: dict[str, Any],
) -> None:
    from tests.policy_evaluation import resolve

    statements = role_statements(training, "PipelinesRole")
    [allow] = [s for s in statements if s.get("Sid") == "RunPipelineTuningJobs"]
    resource = resolve(allow["Resource"])
    assert resource.endswith(":hyper-parameter-tuning-job/pipelines-*")
    job = resource.replace("pipelines-*", "pipelines-0a1b2c3d4e5f")
    [group] = [resolve(json.loads(g)) if g.startswith("{") else g for g in _groups(training)]
    inside = {
        "sagemaker:NetworkIsolation": "true",
        "sagemaker:VpcSubnets": SUBNETS[0],
        "sagemaker:VpcSecurityGroupIds": group,
    }
    role = "arn:aws:iam::111111111111:role/pipelines"
    cases = [
        (inside, "allow"),
        ({**inside, "sagemaker:NetworkIsolation": "false"}, "explicit-deny"),
        ({k: v for k, v in inside.items() if k != "sagemaker:NetworkIsolation"}, "explicit-deny"),
        ({**inside, "sagemaker:VpcSubnets": "subnet-0fffffff"}, "explicit-deny"),
        ({k: v for k, v in inside.items() if k != "sagemaker:VpcSubnets"}, "explicit-deny"),
        ({**inside, "sagemaker:VpcSecurityGroupIds": "sg-0fffffff"}, "explicit-deny"),
    ]
    for context, want in cases:
        got = decision(statements, Request(CREATE, job, role, context=context))
        assert got == want, (context, got)
    # following the job: describe it, list its trials (the best model's name), stop it
    for action in (
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
        "sagemaker:StopHyperParameterTuningJob",
    ):
        assert decision(statements, Request(action, job, role)) == "allow", action
    # another environment's or a hand-named tuning job: no
    other = job.replace("pipelines-0a1b2c3d4e5f", "someone-elses")
    assert decision(statements, Request(CREATE, other, role, context=inside)) == "implicit-deny"


def test_no_job_role_can_tune(training: dict[str, Any]) -> None:
    isolated = {"sagemaker:NetworkIsolation": "true", "sagemaker:VpcSubnets": SUBNETS[0]}
    for kind in ("ProcessingJobRole", "TrainingJobRole"):
        got = decision(
            role_statements(training, kind),
            Request(CREATE, _tuning_job(), "arn:aws:iam::111111111111:role/x", context=isolated),
        )
        assert got == "implicit-deny", kind


def test_without_tuning_nobody_can_tune() -> None:
    training = synthesized("dev")["training"].to_json()
    for kind in KINDS:
        for statement in role_statements(training, kind):
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            assert not any("HyperParameterTuningJob" in a for a in actions), (kind, statement)


def test_the_job_tagger_reads_a_trials_pipeline_tuning_job_only(training: dict[str, Any]) -> None:
    # a trial may lack the execution tag: the tagger follows TuningJobArn to its tuning job
    from tests.policy_evaluation import resolve

    statements = role_statements(training, "JobTaggerFunctionRole")
    [listing] = [s for s in statements if s["Action"] == "sagemaker:ListTags"][:1]
    base = resolve(listing["Resource"])
    base = base[0] if isinstance(base, list) else base
    prefix = ":".join(base.split(":")[:5])  # arn:<partition>:sagemaker:<region>:<account>
    role = "arn:aws:iam::111111111111:role/tagger"
    trial = f"{prefix}:training-job/pipelines-0a1b2c3d4e5f-001-3b2f1a9c"
    tuning_job = f"{prefix}:hyper-parameter-tuning-job/pipelines-0a1b2c3d4e5f"
    allowed = [
        ("sagemaker:DescribeTrainingJob", trial),
        ("sagemaker:ListTags", tuning_job),
    ]
    denied = [
        ("sagemaker:DescribeTrainingJob", trial.replace("pipelines-", "someone-")),
        ("sagemaker:ListTags", tuning_job.replace("pipelines-", "someone-")),
        ("sagemaker:AddTags", tuning_job),  # it tags the trial, never the tuning job
        ("sagemaker:DescribeHyperParameterTuningJob", tuning_job),
    ]
    for action, resource in allowed:
        assert decision(statements, Request(action, resource, role)) == "allow", action
    for action, resource in denied:
        got = decision(statements, Request(action, resource, role))
        assert got == "implicit-deny", (action, resource)
    [environment] = [
        r["Properties"]["Environment"]["Variables"]
        for k, r in training["Resources"].items()
        if k.startswith("JobTaggerFunction") and r["Type"] == "AWS::Lambda::Function"
    ]
    assert environment["FOLLOW_TUNING_JOBS"] == "true"


def test_without_tuning_the_job_tagger_follows_no_tuning_job() -> None:
    training = synthesized("dev")["training"].to_json()
    statements = role_statements(training, "JobTaggerFunctionRole")
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert "sagemaker:DescribeTrainingJob" not in actions
    assert "hyper-parameter-tuning-job" not in json.dumps(statements)
    [environment] = [
        r["Properties"]["Environment"]["Variables"]
        for k, r in training["Resources"].items()
        if k.startswith("JobTaggerFunction") and r["Type"] == "AWS::Lambda::Function"
    ]
    assert "FOLLOW_TUNING_JOBS" not in environment
