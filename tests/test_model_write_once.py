"""Served models are written by the training job role alone (issue #13).

SageMaker re-reads a served model (`pipelines/<training pipeline>/training/.../model.tar.gz`)
whenever the endpoint scales out, without the SHA-256 check, so code running in a processing
job (Evaluate has network access) must not be able to replace it. Read from the synthesized
templates of dev and prod (prod trains on spot, with checkpoints) and evaluated as IAM does
(`tests/policy_evaluation.py`):

- the identity policies: the training job role may write models (and its checkpoints), the
  processing job role and the pipelines' role may not; each job role writes only its own
  prefixes; the job roles pass no role and start no job; the pipelines' role passes only the
  job roles, only to SageMaker, and starts training jobs only network-isolated;
- the artifact bucket policy: a model is refused to every principal but the training job role
  (by the tag the Training stack puts on it) and break glass, whatever IAM grants;
- the definitions: every step's role placeholder is substituted with the intended role (Train:
  the training job role; Prepare, Baseline, Evaluate, Validate: the processing job role), and
  each pipeline runs as the pipelines' role.

`test_removing_a_protection_is_caught` removes each protection from a copy of the templates
and expects its check to object.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from constructs.bucket_policies import writer_tag_key
from mlops_config import EnvironmentConfig
from stacks.pipeline_definitions import generate_pipelines
from tests.conftest import MODEL_MONITOR, synthesized, variant_config
from tests.policy_evaluation import Request, decision, denied
from tests.security_checks import attached_statements

pytestmark = pytest.mark.xdist_group("cdk")

Templates = dict[str, dict[str, Any]]
KINDS = ("PipelinesRole", "ProcessingJobRole", "TrainingJobRole")
VARIANTS = {"dev": ("dev", "{}"), "prod": ("prod", "{}"), "model-monitor": ("dev", MODEL_MONITOR)}
BREAK_GLASS_DEFAULT = "arn:aws:iam::{account}:root"


def templates(variant: str) -> Templates:
    """A fresh copy of the variant's templates by stack role (tests may change it)."""
    return {role: copy.deepcopy(t.to_json()) for role, t in synthesized(*VARIANTS[variant]).items()}


def config(variant: str) -> EnvironmentConfig:
    """The variant's configuration, as `synthesized` merges its overrides."""
    return cast(EnvironmentConfig, variant_config(*VARIANTS[variant]))


def roles(t: Templates) -> dict[str, str]:
    """Construct id -> logical id of the pipelines' three roles in the Training template."""
    found = {
        kind: [k for k, r in t["training"]["Resources"].items()
               if r["Type"] == "AWS::IAM::Role" and k.startswith(kind)]
        for kind in KINDS
    }  # fmt: skip
    assert all(len(ids) == 1 for ids in found.values()), found
    return {kind: ids[0] for kind, ids in found.items()}


def statements(t: Templates, kind: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to one of the three roles."""
    return attached_statements(t["training"], roles(t)[kind])


def tags(t: Templates, kind: str) -> dict[str, str]:
    role = t["training"]["Resources"][roles(t)[kind]]
    return {tag["Key"]: tag["Value"] for tag in role["Properties"].get("Tags", [])}


def artifact_bucket(t: Templates) -> str:
    """The artifact bucket's ARN as the Training template's policies name it (an import)."""
    (name,) = set(re.findall(r'"Fn::ImportValue": "([^"]*ArtifactBucketArn[^"]*)"',
                             json.dumps(t["training"])))  # fmt: skip
    return f"<import:{name}>"


def model_key(c: EnvironmentConfig) -> str:
    return f"pipelines/{c.pipeline_name}/training/pipelines-0a1b-Train-2c3d/output/model.tar.gz"


# ---- checks: each returns what is wrong (nothing in the real templates) ----------------------


def identity_problems(t: Templates, c: EnvironmentConfig) -> list[str]:
    """Who may write (and read) what under pipelines/, by the roles' own policies."""
    bucket = artifact_bucket(t)
    training, evaluation = c.pipeline_name, c.evaluation_pipeline_name
    model = f"{bucket}/{model_key(c)}"
    checkpoint = f"{bucket}/pipelines/{training}/checkpoints/d1g/abc/300-6/ckpt-1.json"
    outputs = {
        "training executions": f"{bucket}/pipelines/{training}/executions/e1/Evaluate/evaluation/x",
        "eval-only executions": f"{bucket}/pipelines/{evaluation}/executions/e2/Validate/test/x",
        "eval-only reports": f"{bucket}/pipelines/{evaluation}/reports/v1/e2/evaluation.json",
    }
    expected: list[tuple[str, str, str, str]] = [
        ("TrainingJobRole", "s3:PutObject", model, "allow"),
        ("ProcessingJobRole", "s3:PutObject", model, "implicit-deny"),
        ("PipelinesRole", "s3:PutObject", model, "implicit-deny"),
        # Evaluate reads the challenger and the champion
        ("ProcessingJobRole", "s3:GetObject", model, "allow"),
        ("TrainingJobRole", "s3:PutObject", checkpoint, "allow" if c.pipeline.use_spot
         else "implicit-deny"),
        ("ProcessingJobRole", "s3:PutObject", checkpoint, "implicit-deny"),
        ("PipelinesRole", "s3:GetObject", outputs["training executions"], "allow"),  # JsonGet
        *[("ProcessingJobRole", "s3:PutObject", uri, "allow") for uri in outputs.values()],
        *[(kind, "s3:PutObject", uri, "implicit-deny")
          for uri in outputs.values() for kind in ("TrainingJobRole", "PipelinesRole")],
        ("TrainingJobRole", "s3:GetObject", outputs["training executions"], "allow"),
        ("ProcessingJobRole", "s3:PutObject", f"{bucket}/pipeline-code/h/prepare.py",
         "implicit-deny"),
    ]  # fmt: skip
    return [
        f"{kind}: {action} {resource}: {verdict}, expected {want}"
        for kind, action, resource, want in expected
        for verdict in [decision(statements(t, kind), Request(action, resource, kind))]
        if verdict != want
    ]


def pass_and_start_problems(t: Templates, c: EnvironmentConfig) -> list[str]:
    """Only the pipelines' role starts jobs and passes roles: the job roles, to SageMaker, and
    training jobs only network-isolated."""
    ids = roles(t)
    training_job = f"arn:aws:sagemaker:{c.region}:{c.account}:training-job/pipelines-0a1b-Train"
    to_sagemaker = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    isolated, open_ = ({"sagemaker:NetworkIsolation": v} for v in ("true", "false"))
    expected: list[tuple[str, str, str, dict[str, str], str]] = [
        ("PipelinesRole", "iam:PassRole", f"<{ids['TrainingJobRole']}>", to_sagemaker, "allow"),
        ("PipelinesRole", "iam:PassRole", f"<{ids['ProcessingJobRole']}>", to_sagemaker, "allow"),
        ("PipelinesRole", "iam:PassRole", f"<{ids['TrainingJobRole']}>",
         {"iam:PassedToService": "lambda.amazonaws.com"}, "implicit-deny"),
        ("PipelinesRole", "iam:PassRole", f"<{ids['PipelinesRole']}>", to_sagemaker,
         "implicit-deny"),
        ("PipelinesRole", "sagemaker:CreateTrainingJob", training_job, isolated, "allow"),
        ("PipelinesRole", "sagemaker:CreateTrainingJob", training_job, open_, "explicit-deny"),
        ("PipelinesRole", "sagemaker:CreateTrainingJob", training_job, {}, "explicit-deny"),
        *[(kind, action, resource, to_sagemaker | isolated, "implicit-deny")
          for kind in ("ProcessingJobRole", "TrainingJobRole")
          for action, resource in (
              ("iam:PassRole", f"<{ids['TrainingJobRole']}>"),
              ("sagemaker:CreateTrainingJob", training_job),
              ("sagemaker:CreateProcessingJob", training_job.replace("training-", "processing-")),
          )],
    ]  # fmt: skip
    return [
        f"{kind}: {action} {resource} {context}: {verdict}, expected {want}"
        for kind, action, resource, context, want in expected
        for verdict in [decision(statements(t, kind), Request(action, resource, kind, {}, context))]
        if verdict != want
    ]


def bucket_problems(t: Templates, c: EnvironmentConfig) -> list[str]:
    """The artifact bucket refuses a model to all but the training job role and break glass,
    whatever their IAM policies say (principals carry the tags the Training stack gives them)."""
    (policy,) = [
        r["Properties"]["PolicyDocument"]
        for r in t["data"]["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and r["Properties"]["Bucket"] == {"Ref": "ArtifactBucket"}
    ]
    keeper = (
        c.security.break_glass_principals or (BREAK_GLASS_DEFAULT.format(account=c.account),)
    )[0]
    who = {kind: (f"arn:aws:iam::{c.account}:role/{kind}", tags(t, kind)) for kind in KINDS}
    who |= {"someone": (f"arn:aws:iam::{c.account}:role/Admin", {}), "break glass": (keeper, {})}
    model = f"<ArtifactBucket>/{model_key(c)}"
    outputs = f"<ArtifactBucket>/pipelines/{c.pipeline_name}/executions/e1/Prepare/train/a.csv"
    expected = [
        ("TrainingJobRole", model, False),
        ("break glass", model, False),
        ("ProcessingJobRole", model, True),
        ("PipelinesRole", model, True),
        ("someone", model, True),
        ("ProcessingJobRole", outputs, False),
        ("someone", outputs, True),
    ]
    return [
        f"{name}: PutObject {resource}: {'refused' if refused else 'allowed'}"
        for name, resource, want in expected
        for refused in [denied(policy, Request("s3:PutObject", resource, *who[name]))]
        if refused != want
    ]


def _steps(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in items:
        yield step
        arguments = step.get("Arguments")
        if isinstance(arguments, dict):
            for branch in ("IfSteps", "ElseSteps"):
                yield from _steps(arguments.get(branch, []))


def step_role_problems(t: Templates, c: EnvironmentConfig) -> list[str]:
    """Each job step's RoleArn placeholder resolves, through the pipeline resource's
    substitutions, to its intended role; each pipeline runs as the pipelines' role."""
    generated = generate_pipelines(c)
    files = {
        generated.manifest["pipelines"][key]["name"]: key for key in generated.manifest["pipelines"]
    }
    by_logical_id = {v: k for k, v in roles(t).items()}

    def kind_of(value: Any) -> str:
        return by_logical_id.get(value.get("Fn::GetAtt", [""])[0], repr(value))

    problems = []
    pipelines = [r["Properties"] for r in t["training"]["Resources"].values()
                 if r["Type"] == "Custom::SageMakerPipeline"]  # fmt: skip
    assert len(pipelines) == 2
    for props in pipelines:
        name = props["PipelineName"]
        if kind_of(props["RoleArn"]) != "PipelinesRole":
            problems.append(f"{name} runs as {props['RoleArn']}")
        definition = json.loads(generated.definition_file(files[name]).read_text())
        for step in _steps(definition["Steps"]):
            if step["Type"] not in ("Processing", "Training", "QualityCheck"):
                continue
            placeholder = re.fullmatch(r"\$\{(\w+)\}", step["Arguments"]["RoleArn"])
            assert placeholder, step["Arguments"]["RoleArn"]
            actual = kind_of(props["Substitutions"][placeholder[1]])
            intended = "TrainingJobRole" if step["Type"] == "Training" else "ProcessingJobRole"
            if actual != intended:
                problems.append(f"{name}/{step['Name']} runs as {actual}, not {intended}")
    return problems


CHECKS: dict[str, Callable[[Templates, EnvironmentConfig], list[str]]] = {
    "identity": identity_problems,
    "pass-and-start": pass_and_start_problems,
    "bucket": bucket_problems,
    "step-roles": step_role_problems,
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("check", sorted(CHECKS))
def test_only_the_training_job_role_writes_models(variant: str, check: str) -> None:
    assert CHECKS[check](templates(variant), config(variant)) == []


def test_the_eval_only_pipeline_never_passes_the_training_job_role() -> None:
    t = templates("dev")
    (props,) = [r["Properties"] for r in t["training"]["Resources"].values()
                if r["Type"] == "Custom::SageMakerPipeline"
                and r["Properties"]["PipelineName"].endswith("-evaluation")]  # fmt: skip
    definition = generate_pipelines(config("dev")).definition_file("evaluation").read_text()
    assert "${TrainingJobRoleArn}" not in definition
    assert "${ProcessingJobRoleArn}" in definition
    assert props["Substitutions"]["ProcessingJobRoleArn"] == {
        "Fn::GetAtt": [roles(t)["ProcessingJobRole"], "Arn"]
    }


# ---- each protection, removed, is caught ---------------------------------------------------


def _policy_of(t: Templates, kind: str) -> dict[str, Any]:
    (policy,) = [
        r
        for k, r in t["training"]["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and k.startswith(f"{kind}DefaultPolicy")
    ]
    document: dict[str, Any] = policy["Properties"]["PolicyDocument"]
    return document


def _widen_processing_writes(t: Templates) -> None:
    """The processing job role may write anywhere under pipelines/ (a grant added later)."""
    bucket = {"Fn::ImportValue": artifact_bucket(t)[len("<import:") : -1]}
    _policy_of(t, "ProcessingJobRole")["Statement"].append(
        {"Effect": "Allow", "Action": "s3:PutObject",
         "Resource": {"Fn::Join": ["", [bucket, "/pipelines/*"]]}}
    )  # fmt: skip


def _drop_bucket_statement(t: Templates, sid: str) -> None:
    (policy,) = [r["Properties"]["PolicyDocument"] for r in t["data"]["Resources"].values()
                 if r["Type"] == "AWS::S3::BucketPolicy"
                 and r["Properties"]["Bucket"] == {"Ref": "ArtifactBucket"}]  # fmt: skip
    kept = [s for s in policy["Statement"] if s.get("Sid") != sid]
    assert len(kept) == len(policy["Statement"]) - 1, sid
    policy["Statement"] = kept


def _drop_role_statement(t: Templates, kind: str, sid: str) -> None:
    document = _policy_of(t, kind)
    kept = [s for s in document["Statement"] if s.get("Sid") != sid]
    assert len(kept) == len(document["Statement"]) - 1, sid
    document["Statement"] = kept


def _tag_processing_as_model_writer(t: Templates) -> None:
    for tag in t["training"]["Resources"][roles(t)["ProcessingJobRole"]]["Properties"]["Tags"]:
        if tag["Key"] == writer_tag_key("mlops-loop"):
            tag["Value"] = "models"


def _train_as_processing_role(t: Templates) -> None:
    for resource in t["training"]["Resources"].values():
        if resource["Type"] == "Custom::SageMakerPipeline":
            substitutions = resource["Properties"]["Substitutions"]
            if "TrainingJobRoleArn" in substitutions:
                substitutions["TrainingJobRoleArn"] = substitutions["ProcessingJobRoleArn"]


def _pass_any_role(t: Templates) -> None:
    for statement in _policy_of(t, "PipelinesRole")["Statement"]:
        if statement.get("Sid") == "PassOnlyTheJobRoles":
            statement["Resource"] = "*"


MUTATIONS: dict[str, tuple[Callable[[Templates], None], str]] = {
    "processing-role-writes-all-of-pipelines": (_widen_processing_writes, "identity"),
    "bucket-admits-any-writer-of-models": (
        lambda t: _drop_bucket_statement(t, "ModelsOneWriter"),
        "bucket",
    ),
    "processing-role-tagged-as-model-writer": (_tag_processing_as_model_writer, "bucket"),
    "training-without-network-isolation": (
        lambda t: _drop_role_statement(t, "PipelinesRole", "TrainOnlyNetworkIsolated"),
        "pass-and-start",
    ),
    "pipelines-role-passes-any-role": (_pass_any_role, "pass-and-start"),
    "train-step-runs-as-the-processing-role": (_train_as_processing_role, "step-roles"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_removing_a_protection_is_caught(mutation: str) -> None:
    mutate, check = MUTATIONS[mutation]
    t = templates("dev")
    assert CHECKS[check](t, config("dev")) == []
    mutate(t)
    assert CHECKS[check](t, config("dev")) != []
