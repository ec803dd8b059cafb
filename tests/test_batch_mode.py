"""serving.mode batch: the Serving stack builds no endpoint (no model, endpoint config,
autoscaling or endpoint alarm) and keeps the `ModelPackageArn` parameter, which the deployer sets
on approval and served_package reads: the package the next scoring run uses. Its deploy role can
do nothing but read the bootstrap version; the Monitoring stack watches no endpoint.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.serving_stack import MODEL_PACKAGE_PARAMETER
from tests.conftest import BATCH, variant_config
from tests.policy_evaluation import Request, decision, resolve

pytestmark = pytest.mark.xdist_group("cdk")

ENDPOINT_TYPES = {
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::SageMaker::MonitoringSchedule",
    "AWS::SageMaker::DataQualityJobDefinition",
}


def _resources(template: Template) -> dict[str, Any]:
    return dict(template.to_json()["Resources"])


def _statements(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    found = []
    for resource in _resources(template).values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = [r.get("Ref", "") for r in resource["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_no_endpoint_and_nothing_that_serves_one(batch: dict[str, Template]) -> None:
    types = {r["Type"] for r in _resources(batch["serving"]).values()}
    assert types.isdisjoint(ENDPOINT_TYPES)
    for role in ("serving", "monitoring"):
        for resource in _resources(batch[role]).values():
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                assert resource["Properties"].get("Namespace") != "AWS/SageMaker", resource


def test_the_served_package_is_still_the_stack_parameter(
    batch: dict[str, Template], dev: dict[str, Template]
) -> None:
    """served_package (deployer, triggers, CLI) reads this parameter: batch keeps its contract."""
    batch_json, realtime_json = batch["serving"].to_json(), dev["serving"].to_json()
    parameter = batch_json["Parameters"][MODEL_PACKAGE_PARAMETER]
    realtime = realtime_json["Parameters"][MODEL_PACKAGE_PARAMETER]
    assert parameter["AllowedPattern"] == realtime["AllowedPattern"]
    assert parameter["Default"] == ""
    assert "next versions landing under score/" in parameter["Description"]
    outputs = batch_json["Outputs"]
    assert "EndpointName" not in outputs
    assert "ServedModelPackage" in outputs and "DeployRoleArn" in outputs


def test_the_deploy_role_can_only_read_the_bootstrap_version(batch: dict[str, Template]) -> None:
    """Worst case of the deployer's service role in batch mode: it reads an SSM parameter."""
    (statement,) = _statements(batch["serving"], "DeployRole")
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "ssm:GetParameters"
    assert statement["Resource"] == ("arn:aws:ssm:eu-west-1:111111111111:parameter/cdk-bootstrap/*")


def test_the_deployer_still_deploys_approvals_through_that_role(
    batch: dict[str, Template],
) -> None:
    deployer = [
        s
        for s in _statements(batch["serving"], "Deployer")
        if "cloudformation:UpdateStack"
        in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert deployer, "the deployer must still update the Serving stack's ModelPackageArn"
    for statement in deployer:
        assert "cloudformation:RoleArn" in str(statement.get("Condition", {}))


def _resource(template: Template, prefix: str, kind: str) -> dict[str, Any]:
    (found,) = [
        r for k, r in _resources(template).items() if k.startswith(prefix) and r["Type"] == kind
    ]
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def _joined(resource: Any) -> str:
    if isinstance(resource, dict) and "Fn::Join" in resource:
        return "".join(p if isinstance(p, str) else "<ref>" for p in resource["Fn::Join"][1])
    return resource if isinstance(resource, str) else "<ref>"


def test_the_scoring_ledger_is_a_pinned_encrypted_table_of_batch_mode_only(
    batch: dict[str, Template], dev: dict[str, Template]
) -> None:
    ledger = _resources(batch["data"])["ScoringLedger"]
    assert ledger["Type"] == "AWS::DynamoDB::Table"
    assert ledger["Properties"]["SSESpecification"]["SSEEnabled"] is True
    assert "ScoringLedger" not in _resources(dev["data"])


def test_score_versions_trigger_the_scoring_pipeline_with_the_served_package(
    batch: dict[str, Template],
) -> None:
    """The same trigger (construct and Lambda code) as landing/ and ground-truth/, on score/."""
    function = _resource(batch["training"], "ScoringTrigger", "AWS::Lambda::Function")
    env = function["Properties"]["Environment"]["Variables"]
    assert env["LANDING_PREFIX"] == "score/"
    assert env["PIPELINE_NAME"] == "mlops-loop-dev-scoring"
    assert env["MODEL_PACKAGE_PARAMETER"] == "ModelPackageArn"  # the served package
    assert env["SERVING_STACK_NAME"] == "mlops-loop-dev-serving"
    assert env["ALLOW_REUPLOAD"] == "true"  # a corrected re-upload runs (test_scoring_trigger)
    outputs = batch["training"].to_json()["Outputs"]
    assert set(outputs) >= {"ScoringPipelineName", "ScoringTriggerFunctionName"}  # mlops CLI
    assert "ScoringLedger" in str(env["LEDGER_TABLE"])
    rule = _resource(batch["training"], "ScoringTrigger", "AWS::Events::Rule")
    assert rule["Properties"]["EventPattern"]["detail"]["object"]["key"] == [{"prefix": "score/"}]
    dead_letters = _resource(batch["training"], "ScoringTrigger", "AWS::CloudWatch::Alarm")
    assert dead_letters["Properties"]["AlarmActions"]  # DLQ + alarm to the topic


def test_the_pipelines_role_creates_only_isolated_models_and_scores_only_with_them(
    batch: dict[str, Template], dev: dict[str, Template]
) -> None:
    statements = {
        s.get("Sid"): s for s in _statements(batch["training"], "PipelinesRole") if s.get("Sid")
    }
    create = statements["CreateOnlyNetworkIsolatedScoringModels"]
    assert _actions(create) == ["sagemaker:CreateModel"]
    assert create["Condition"] == {"Bool": {"sagemaker:NetworkIsolation": "true"}}
    assert create["Resource"].endswith(":model/pipelines-*")
    transform = statements["ScoreOnlyWithThoseModels"]
    assert _actions(transform) == ["sagemaker:CreateTransformJob"]
    assert transform["Condition"]["ArnLike"]["sagemaker:ModelArn"].endswith(":model/pipelines-*")
    realtime = [s.get("Sid") for s in _statements(dev["training"], "PipelinesRole")]
    assert "CreateOnlyNetworkIsolatedScoringModels" not in realtime
    assert "ScoreOnlyWithThoseModels" not in realtime
    for statement in _statements(dev["training"], "PipelinesRole"):
        assert not any(
            "Transform" in a or a == "sagemaker:CreateModel" for a in _actions(statement)
        )


def test_transform_jobs_only_with_the_definitions_keys_and_the_configured_instance_type(
    batch: dict[str, Template],
) -> None:
    """CreateTransformJob's request keys (Service Authorization Reference): the predictions
    encrypted by the data key, the volumes by the key the definitions use for volumes, on
    `serving.batch.instance_type`; a request that omits one of them matches no Allow."""
    (transform,) = [
        s
        for s in _statements(batch["training"], "PipelinesRole")
        if s.get("Sid") == "ScoreOnlyWithThoseModels"
    ]
    assert transform["Effect"] == "Allow"
    conditions = transform["Condition"]
    pipeline = _resource(batch["training"], "ScoringPipeline", "Custom::SageMakerPipeline")
    substitutions = pipeline["Properties"]["Substitutions"]
    # the very values the scoring definition's KmsKeyId and VolumeKmsKeyId are substituted with
    assert conditions["ArnEquals"] == {
        "sagemaker:OutputKmsKey": substitutions["DataKmsKeyArn"],
        "sagemaker:VolumeKmsKey": substitutions["KmsKeyArn"],
    }
    assert "DataKey" in str(substitutions["DataKmsKeyArn"])
    assert "ArtifactKey" in str(substitutions["KmsKeyArn"])
    configured = variant_config("dev", BATCH).serving.batch.instance_type
    instance_types = conditions["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"]
    assert instance_types in (configured, [configured])
    # ForAllValues alone would let a request without the key through
    assert conditions["Null"] == {"sagemaker:InstanceTypes": "false"}

    # as requests: only the definition's keys and the configured instance type are allowed
    statements = _statements(batch["training"], "PipelinesRole")
    resource = str(resolve(transform["Resource"])).replace("pipelines-*", "pipelines-x-Score-1")
    good = {
        "sagemaker:ModelArn": str(resolve(conditions["ArnLike"]["sagemaker:ModelArn"])).replace(
            "pipelines-*", "pipelines-x-Model-1"
        ),
        "sagemaker:OutputKmsKey": str(resolve(substitutions["DataKmsKeyArn"])),
        "sagemaker:VolumeKmsKey": str(resolve(substitutions["KmsKeyArn"])),
        "sagemaker:InstanceTypes": configured,
    }

    def verdict(**context: str | None) -> str:
        request = {k: v for k, v in {**good, **context}.items() if v is not None}
        principal = "arn:aws:iam::111111111111:role/pipelines"
        return decision(
            statements, Request("sagemaker:CreateTransformJob", resource, principal, {}, request)
        )

    assert verdict() == "allow"
    other_key = "arn:aws:kms:eu-west-1:111111111111:key/other"
    for key in ("sagemaker:OutputKmsKey", "sagemaker:VolumeKmsKey"):
        assert verdict(**{key: other_key}) == "implicit-deny"
        assert verdict(**{key: None}) == "implicit-deny"  # unencrypted
    assert verdict(**{"sagemaker:InstanceTypes": "ml.p4d.24xlarge"}) == "implicit-deny"
    assert verdict(**{"sagemaker:InstanceTypes": None}) == "implicit-deny"


def test_the_scoring_model_role_writes_only_predictions(batch: dict[str, Template]) -> None:
    """Worst case of the role the transform jobs run as: it reads the trained models and the
    checked rows, and creates objects under predictions/; nothing else in S3, no SageMaker or
    IAM action, no delete."""
    statements = _statements(batch["training"], "ScoringModelRole")
    actions = {a for s in statements for a in _actions(s)}
    assert not any(a.startswith(("sagemaker:", "iam:")) or "Delete" in a for a in actions)
    writes = [s for s in statements if "s3:PutObject" in _actions(s) and s["Effect"] == "Allow"]
    assert [_joined(s["Resource"]) for s in writes] == ["<ref>/predictions/*"]
    reads = [s for s in statements if "s3:GetObject" in _actions(s)]
    assert sorted(_joined(r) for s in reads for r in s["Resource"]) == [
        "<ref>/pipelines/mlops-loop-dev-scoring/executions/*",
        "<ref>/pipelines/mlops-loop-dev-training/training/*",
    ]


def test_the_scoring_pipeline_gets_its_role_and_the_data_key(batch: dict[str, Template]) -> None:
    pipeline = _resource(batch["training"], "ScoringPipeline", "Custom::SageMakerPipeline")[
        "Properties"
    ]
    assert pipeline["PipelineName"] == "mlops-loop-dev-scoring"
    substitutions = pipeline["Substitutions"]
    assert "ScoringModelRole" in str(substitutions["ScoringModelRoleArn"])
    assert "DataKeyArn" in str(substitutions["DataKmsKeyArn"])
    notifications = _resource(batch["training"], "ScoringPipelineStatus", "AWS::Events::Rule")
    assert notifications["Properties"]["EventPattern"]["detail"]["currentPipelineExecutionStatus"]


def test_only_completed_scoring_jobs_mark_their_predictions(batch: dict[str, Template]) -> None:
    rule = _resource(batch["training"], "PredictionsMarker", "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Transform Job State Change"]
    assert pattern["detail"]["TransformJobStatus"] == ["Completed"]
    (prefix,) = pattern["detail"]["TransformOutput"]["S3OutputPath"]
    assert _joined(prefix["prefix"]) == "s3://<ref>/predictions/"
    target = rule["Properties"]["Targets"][0]
    assert "DeadLetterConfig" in target  # undeliverable events end in the alarmed DLQ


def test_the_marker_can_only_write_success_markers(batch: dict[str, Template]) -> None:
    """Worst case of the marker's role: a premature _SUCCESS under predictions/."""
    statements = _statements(batch["training"], "PredictionsMarker")
    s3_statements = [s for s in statements if any(a.startswith("s3:") for a in _actions(s))]
    assert [_actions(s) for s in s3_statements] == [["s3:PutObject"]]
    assert _joined(s3_statements[0]["Resource"]) == "<ref>/predictions/*/_SUCCESS"
    actions = {a for s in statements for a in _actions(s)}
    assert not any(a.startswith(("sagemaker:", "iam:")) for a in actions)


def test_in_a_vpc_the_scoring_models_run_only_in_its_subnets() -> None:
    """The Model step names the environment's subnets and groups, the pipelines' role may
    create no model outside them, and the scoring model role may place its interfaces."""
    import json

    from stacks.pipeline_definitions import generate_pipelines
    from tests.conftest import BATCH_VPC, synthesized, variant_config

    generated = generate_pipelines(variant_config("dev", BATCH_VPC))
    steps = json.loads(generated.definition_file("scoring").read_text())["Steps"]
    (model,) = [step for step in steps if step["Name"] == "Model"]
    assert model["Arguments"]["VpcConfig"] == {
        "SecurityGroupIds": ["${VpcSecurityGroup1}"],
        "Subnets": ["${VpcSubnet1}", "${VpcSubnet2}"],
    }
    training = synthesized("dev", BATCH_VPC)["training"]
    denies = [
        s
        for s in _statements(training, "PipelinesRole")
        if s["Effect"] == "Deny" and s.get("Sid", "").startswith("OnlyInTheEnvironmentsSubnets")
    ]
    assert denies and all("sagemaker:CreateModel" in _actions(s) for s in denies)
    eni = [
        r
        for k, r in _resources(training).items()
        if r["Type"] == "AWS::IAM::Policy"
        and any(
            role.get("Ref", "").startswith("ScoringModelRole") for role in r["Properties"]["Roles"]
        )
        and "ec2:CreateNetworkInterface" in json.dumps(r)
    ]
    assert eni, "the scoring model role needs its network-interface policy in a VPC"


def test_in_a_vpc_every_acknowledgement_is_used_but_the_vpc_forms_own() -> None:
    """As the VPC variants are checked (tests/test_vpc_mode.py): cfn-lint's acknowledgements of
    the created VPC's flow log apply to rules that do not fire on every template."""
    from pathlib import Path

    from tests.conftest import BATCH_VPC, assembly_dir, synthesized
    from tests.test_nag import unused_acknowledgements

    synthesized("dev", BATCH_VPC)
    unused = unused_acknowledgements(Path(assembly_dir("dev", BATCH_VPC)))
    assert [u for u in unused if "CloudFormation-Validate::" not in u] == []


def test_the_job_tagger_tags_the_scoring_runs_transform_jobs(
    batch: dict[str, Template], dev: dict[str, Template]
) -> None:
    """Batch: transform job state changes reach the tagger, which may tag pipelines-* transform
    jobs with the two run-time keys only; realtime has no transform job to tag."""
    rule = _resource(batch["training"], "JobTaggerOnJobStateChange", "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    assert "SageMaker Transform Job State Change" in pattern["detail-type"]
    assert {"TransformJobName": [{"prefix": "pipelines-"}]} in pattern["detail"]["$or"]
    statements = _statements(batch["training"], "JobTaggerFunction")
    job = "arn:aws:sagemaker:eu-west-1:111111111111:transform-job/pipelines-x-score-1"
    principal = "arn:aws:iam::111111111111:role/tagger"

    def verdict(action: str, resource: str, keys: str) -> str:
        request = Request(action, resource, principal, {}, {"aws:TagKeys": keys})
        return decision(statements, request)

    assert verdict("sagemaker:ListTags", job, "") == "allow"
    assert verdict("sagemaker:AddTags", job, "dataset-version") == "allow"
    assert verdict("sagemaker:AddTags", job, "project") == "implicit-deny"
    other = job.replace("pipelines-x", "someone-elses")
    assert verdict("sagemaker:AddTags", other, "dataset-version") == "implicit-deny"
    realtime = _resource(dev["training"], "JobTaggerOnJobStateChange", "AWS::Events::Rule")
    assert "SageMaker Transform Job State Change" not in str(realtime["Properties"])
    assert "transform-job" not in str(_statements(dev["training"], "JobTaggerFunction"))
