"""Batch serving's scoring models: each run's model is deleted once its transform job finished,
by a function that can delete nothing but this environment's scoring models; and the role those
models run as can write predictions but never a `_SUCCESS` marker.

Roles are judged by evaluating their statements against requests the way IAM does
(tests/policy_evaluation.py); the tag the cleanup's condition relies on is read from the
generated scoring pipeline definition, not restated.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.conftest import BATCH, variant_config
from tests.policy_evaluation import Request, decision

pytestmark = pytest.mark.xdist_group("cdk")

SCORING = "mlops-loop-dev-scoring"
MODEL = "arn:aws:sagemaker:eu-west-1:111111111111:model/pipelines-k2x9q1w7e3r5-model-1a2b3c"


def _resources(template: Template, prefix: str, kind: str) -> list[dict[str, Any]]:
    return [
        r
        for k, r in template.to_json()["Resources"].items()
        if k.startswith(prefix) and r["Type"] == kind
    ]


def _statements(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    found = []
    for policy in _resources(template, "", "AWS::IAM::Policy"):
        roles = [r.get("Ref", "") for r in policy["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_finished_scoring_jobs_send_their_model_to_the_cleanup(batch: dict[str, Template]) -> None:
    (rule,) = _resources(batch["training"], "ScoringModelCleanupOnTransform", "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Transform Job State Change"]
    # success or failure: every finished run's model goes
    assert sorted(pattern["detail"]["TransformJobStatus"]) == ["Completed", "Failed", "Stopped"]
    assert pattern["detail"]["ModelName"] == [{"prefix": "pipelines-"}]
    (target,) = rule["Properties"]["Targets"]
    assert "ScoringModelCleanupDeadLetters" in json.dumps(target["DeadLetterConfig"])
    alarms = _resources(batch["training"], "ScoringModelCleanup", "AWS::CloudWatch::Alarm")
    assert len(alarms) == 2 and all(a["Properties"]["AlarmActions"] for a in alarms)


def test_only_this_environments_scoring_runs_reach_the_cleanup(
    batch: dict[str, Template],
) -> None:
    """Any SageMaker Pipelines transform job runs a `pipelines-*` model: only those writing
    under predictions/ of this environment's data bucket (the same prefix the predictions
    marker watches) are scoring runs whose model the cleanup may delete."""
    (rule,) = _resources(batch["training"], "ScoringModelCleanupOnTransform", "AWS::Events::Rule")
    (marker,) = _resources(batch["training"], "PredictionsMarker", "AWS::Events::Rule")
    (prefix,) = rule["Properties"]["EventPattern"]["detail"]["TransformOutput"]["S3OutputPath"]
    (marked,) = marker["Properties"]["EventPattern"]["detail"]["TransformOutput"]["S3OutputPath"]
    assert prefix == marked
    parts = prefix["prefix"]["Fn::Join"][1]
    assert parts[0] == "s3://" and parts[-1] == "/predictions/"
    assert "DataBucket" in json.dumps(parts[1])


def test_the_scoring_pipelines_failed_or_stopped_runs_reach_the_cleanup(
    batch: dict[str, Template],
) -> None:
    """A run whose transform job never started sends no transform event: its execution's end
    (of the scoring pipeline only, Failed or Stopped) does, into the same dead-letter queue."""
    rules = _resources(batch["training"], "ScoringModelCleanup", "AWS::Events::Rule")
    (rule,) = [
        r
        for r in rules
        if r["Properties"]["EventPattern"]["detail-type"]
        == ["SageMaker Model Building Pipeline Execution Status Change"]
    ]
    detail = rule["Properties"]["EventPattern"]["detail"]
    assert sorted(detail["currentPipelineExecutionStatus"]) == ["Failed", "Stopped"]
    (arn,) = detail["pipelineArn"]
    assert arn["Fn::GetAtt"][0].startswith("ScoringPipeline")
    (target,) = rule["Properties"]["Targets"]
    assert "ScoringModelCleanupDeadLetters" in json.dumps(target["DeadLetterConfig"])


def test_the_cleanup_lists_only_the_scoring_pipelines_steps(batch: dict[str, Template]) -> None:
    statements = _statements(batch["training"], "ScoringModelCleanupFunction")
    principal = "arn:aws:iam::111111111111:role/cleanup"
    scoring = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/mlops-loop-dev-scoring"
    training = scoring.replace("-scoring", "-training")

    def verdict(resource: str) -> str:
        request = Request("sagemaker:ListPipelineExecutionSteps", resource, principal, {}, {})
        return decision(statements, request)

    assert verdict(f"{scoring}/execution/k2x9q1w7e3r5") == "allow"
    assert verdict(f"{training}/execution/k2x9q1w7e3r5") == "implicit-deny"


def test_realtime_has_no_scoring_model_cleanup(dev: dict[str, Template]) -> None:
    assert _resources(dev["training"], "ScoringModelCleanup", "AWS::Lambda::Function") == []


def test_the_cleanup_deletes_only_this_environments_scoring_models(
    batch: dict[str, Template],
) -> None:
    statements = _statements(batch["training"], "ScoringModelCleanupFunction")
    sagemaker = {a for s in statements for a in _as_list(s["Action"]) if a.startswith("sage")}
    assert sagemaker == {"sagemaker:DeleteModel", "sagemaker:ListPipelineExecutionSteps"}
    principal = "arn:aws:iam::111111111111:role/cleanup"

    def verdict(action: str, resource: str, pipeline_tag: str | None) -> str:
        context = {} if pipeline_tag is None else {"aws:ResourceTag/pipeline": pipeline_tag}
        return decision(statements, Request(action, resource, principal, {}, context))

    assert verdict("sagemaker:DeleteModel", MODEL, SCORING) == "allow"
    # another pipeline's model, an untagged one, one not named by SageMaker Pipelines
    assert verdict("sagemaker:DeleteModel", MODEL, "mlops-loop-dev-training") == "implicit-deny"
    assert verdict("sagemaker:DeleteModel", MODEL, None) == "implicit-deny"
    served = MODEL.replace("pipelines-k2x9q1w7e3r5-model-1a2b3c", "modela1b2c3")
    assert verdict("sagemaker:DeleteModel", served, SCORING) == "implicit-deny"
    for action in ("sagemaker:DeleteEndpoint", "sagemaker:DeleteModelPackage"):
        assert verdict(action, MODEL, SCORING) == "implicit-deny"


def test_the_scoring_pipelines_models_carry_the_tag_the_cleanup_requires() -> None:
    from stacks.pipeline_definitions import generate_pipelines

    generated = generate_pipelines(variant_config("dev", BATCH))
    steps = json.loads(generated.definition_file("scoring").read_text())["Steps"]
    (model,) = [step for step in steps if step["Name"] == "Model"]
    assert {"Key": "pipeline", "Value": SCORING} in model["Arguments"]["Tags"]


def test_the_scoring_models_write_predictions_but_never_a_marker(
    batch: dict[str, Template],
) -> None:
    statements = _statements(batch["training"], "ScoringModelRole")
    principal = "arn:aws:iam::111111111111:role/scoring-model"
    bucket = next(
        str(_resolve(s["Resource"])).split("/predictions/")[0]
        for s in statements
        if s["Effect"] == "Allow" and "s3:PutObject" in _as_list(s["Action"])
    )
    run = f"{bucket}/predictions/transactions/2026-12-07/3/k2x9q1w7e3r5"

    def verdict(key: str) -> str:
        return decision(statements, Request("s3:PutObject", key, principal))

    assert verdict(f"{run}/part-0.csv.out") == "allow"
    assert verdict(f"{run}/_SUCCESS") == "explicit-deny"
    assert verdict(f"{bucket}/predictions/transactions/_SUCCESS") == "explicit-deny"
    assert verdict(f"{bucket}/score/transactions/2026-12-07/_SUCCESS") == "implicit-deny"
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Sid"] == "NeverWritesCompletionMarkers"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resolve(value: Any) -> Any:
    from tests.policy_evaluation import resolve

    return resolve(value)


def test_a_promotion_target_scores_with_the_received_copies() -> None:
    """A target trains nothing: its scoring trigger runs the served copy, whose artifact the
    receiver wrote under the models prefix's promoted/, which the scoring model role reads."""
    from tests.conftest import PROMOTE_TARGET_BATCH, synthesized

    training = synthesized("staging", PROMOTE_TARGET_BATCH)["training"]
    functions = _resources(training, "", "AWS::Lambda::Function")
    prefixes = {
        f["Properties"]["Environment"]["Variables"].get("LANDING_PREFIX") for f in functions
    }
    assert "score/" in prefixes and "landing/" not in prefixes
    statements = _statements(training, "ScoringModelRole")
    bucket = "<import:mlops-loop-staging-data:ExportsOutputFnGetAttArtifactBucketArnC5DE1C34>"
    models = f"{bucket}/pipelines/mlops-loop-staging-training/training"
    principal = "arn:aws:iam::222222222222:role/scoring-model"

    def verdict(action: str, key: str) -> str:
        return decision(statements, Request(action, key, principal))

    assert verdict("s3:GetObject", f"{models}/promoted/mlops-loop-dev-models-7/model.tar.gz") == (
        "allow"
    )
    assert verdict("s3:PutObject", f"{models}/promoted/x/model.tar.gz") == "implicit-deny"
