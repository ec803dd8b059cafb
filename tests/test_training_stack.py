"""Training stack: the pipeline custom resource, the roles it and its jobs run as, status
notifications."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.config import load_config
from stacks.pipeline_definitions import generate_pipelines

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")


def _resources(template: Template, kind: str) -> list[dict[str, Any]]:
    return [r for r in template.to_json()["Resources"].values() if r["Type"] == kind]


def test_pipeline_resource_carries_name_definition_hash_and_substitutions(
    dev: dict[str, Template],
) -> None:
    generated = generate_pipelines(load_config("dev"))
    pipelines = {
        p["Properties"]["PipelineName"]: p["Properties"]
        for p in _resources(dev["training"], "Custom::SageMakerPipeline")
    }
    assert set(pipelines) == {"mlops-loop-dev-training", "mlops-loop-dev-evaluation"}
    for name, key in (
        ("mlops-loop-dev-training", "training"),
        ("mlops-loop-dev-evaluation", "evaluation"),
    ):
        props = pipelines[name]
        definition = generated.definition_file(key).read_bytes()
        # the hash CloudFormation sees is the file's own: any definition change shows in diff
        assert props["DefinitionSha256"] == hashlib.sha256(definition).hexdigest()
        assert sorted(props["Substitutions"]) == sorted(generated.placeholders)
        assert props["MaxParallelExecutionSteps"] == "4"
        assert {"Key": "environment", "Value": "dev"} in props["Tags"]


def test_step_code_is_copied_to_the_artifact_bucket_under_pipeline_code(
    dev: dict[str, Template],
) -> None:
    # one copy of the step code serves both pipelines; old code stays for runs in flight
    (deployment,) = _resources(dev["training"], "Custom::CDKBucketDeployment")
    assert deployment["Properties"]["DestinationBucketKeyPrefix"] == "pipeline-code/"
    assert deployment["Properties"]["Prune"] is False
    assert deployment["Properties"]["RetainOnDelete"] is True


def _sagemaker_roles(template: Template) -> dict[str, str]:
    """Construct id prefix -> logical id of every role SageMaker assumes."""
    roles = template.find_resources(
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        Match.object_like({"Principal": {"Service": "sagemaker.amazonaws.com"}})
                    ]
                }
            }
        },
    )
    kinds = ("PipelinesRole", "ProcessingJobRole", "TrainingJobRole")
    found = {kind: [r for r in roles if r.startswith(kind)] for kind in kinds}
    assert sorted(roles) == sorted(r for ids in found.values() for r in ids), roles
    return {kind: ids[0] for kind, ids in found.items() if len(ids) == 1}


def test_the_pipelines_role_passes_only_the_job_roles_and_no_role_is_broad(
    dev: dict[str, Template],
) -> None:
    template = dev["training"]
    roles = _sagemaker_roles(template)
    assert len(roles) == 3
    policies = _resources(template, "AWS::IAM::Policy")
    for kind, role_id in roles.items():
        statements = [
            s
            for p in policies
            if p["Properties"]["Roles"] == [{"Ref": role_id}]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        pass_role = [s for s in statements if s["Action"] == "iam:PassRole"]
        if kind == "PipelinesRole":
            (passing,) = pass_role
            assert passing["Resource"] == [
                {"Fn::GetAtt": [roles["ProcessingJobRole"], "Arn"]},
                {"Fn::GetAtt": [roles["TrainingJobRole"], "Arn"]},
            ]
        else:  # a job's code can neither pass a role nor start a job
            assert pass_role == [], kind
        for statement in statements:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert "s3:*" not in actions and "sagemaker:*" not in actions and "*" not in actions
            if kind != "PipelinesRole" and statement.get("Effect") != "Deny":
                sagemaker = {a for a in actions if a.startswith("sagemaker:")}
                expected = (
                    {"sagemaker:DescribeModelPackage"} if kind == "ProcessingJobRole" else set()
                )
                assert sagemaker <= expected, (kind, actions)
            if statement["Resource"] == "*" and statement.get("Effect") != "Deny":
                # only actions that have no resource-level permissions
                assert set(actions) <= {
                    "ecr:GetAuthorizationToken",
                    "cloudwatch:PutMetricData",
                }, actions


def test_model_registration_is_limited_to_this_environments_group(
    dev: dict[str, Template],
) -> None:
    text = json.dumps(dev["training"].to_json())
    assert "model-package/mlops-loop-dev-models/*" in text
    assert "model-package/*" not in text


def test_pipeline_handler_may_manage_only_its_own_pipeline(dev: dict[str, Template]) -> None:
    statements = [
        s
        for p in _resources(dev["training"], "AWS::IAM::Policy")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "sagemaker:CreatePipeline" in s["Action"]
    ]
    # one handler per pipeline, each limited to its own pipeline
    assert sorted(s["Resource"] for s in statements) == [
        "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/mlops-loop-dev-evaluation",
        "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/mlops-loop-dev-training",
    ]


def test_execution_status_changes_notify_the_topic(dev: dict[str, Template]) -> None:
    dev["training"].has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
                "detail": {
                    "pipelineArn": [Match.any_value()],
                    "currentPipelineExecutionStatus": ["Failed", "Succeeded", "Stopped"],
                },
            },
            "Targets": [
                Match.object_like({"Arn": Match.any_value(), "InputTransformer": Match.any_value()})
            ],
        },
    )


def test_every_function_log_group_is_kms_encrypted(dev: dict[str, Template]) -> None:
    for role in ("training", "serving"):
        groups = _resources(dev[role], "AWS::Logs::LogGroup")
        assert groups, role
        assert all("KmsKeyId" in g["Properties"] for g in groups), role


def test_outputs_the_cli_and_producers_rely_on(dev: dict[str, Template]) -> None:
    outputs = {
        role: set(dev[role].to_json().get("Outputs", {}))
        for role in ("data", "training", "serving")
    }
    assert {"DataBucketName", "ArtifactBucketName", "ModelPackageGroupName"} <= outputs["data"]
    assert {
        "PipelineName",
        "StartTrainingFunctionName",
        "EvaluationPipelineName",
        "EvaluationTriggerFunctionName",
    } <= outputs["training"]
    assert {"EndpointName", "ServedModelPackage"} <= outputs["serving"]


def test_each_prefix_starts_its_own_pipeline_with_its_own_ledger(dev: dict[str, Template]) -> None:
    functions = {
        f["Properties"]["Environment"]["Variables"]["LANDING_PREFIX"]: f["Properties"][
            "Environment"
        ]["Variables"]
        for f in _resources(dev["training"], "AWS::Lambda::Function")
        if "LANDING_PREFIX" in f["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert functions["landing/"]["PIPELINE_NAME"] == "mlops-loop-dev-training"
    assert functions["ground-truth/"]["PIPELINE_NAME"] == "mlops-loop-dev-evaluation"
    # only the evaluation pipeline scores a package named in a request
    assert functions["ground-truth/"]["MODEL_PACKAGE_PARAMETER"] == "ModelPackageArn"
    assert functions["landing/"]["MODEL_PACKAGE_PARAMETER"] == ""
    # training runs start with the package the Serving stack serves (Evaluate's cache key);
    # evaluations score it as the production model unless a request names a candidate
    assert functions["landing/"]["CHAMPION_PARAMETER"] == "ChampionModelPackageArn"
    assert "CHAMPION_PARAMETER" not in functions["ground-truth/"]
    assert functions["ground-truth/"]["MODEL_ROLE_PARAMETER"] == "ModelRole"
    for variables in functions.values():
        assert variables["SERVING_STACK_NAME"] == "mlops-loop-dev-serving"
    ledgers = {prefix: json.dumps(v["LEDGER_TABLE"]) for prefix, v in functions.items()}
    assert "DatasetLedger" in ledgers["landing/"]
    assert "EvaluationLedger" in ledgers["ground-truth/"]
    prefixes = sorted(
        r["Properties"]["EventPattern"]["detail"]["object"]["key"][0]["prefix"]
        for r in _resources(dev["training"], "AWS::Events::Rule")
        if r["Properties"]["EventPattern"].get("source") == ["aws.s3"]
    )
    assert prefixes == ["ground-truth/", "landing/"]


def test_jobs_may_publish_model_quality_metrics_only_to_our_namespace(
    dev: dict[str, Template],
) -> None:
    text = json.dumps(dev["training"].to_json())
    assert '"cloudwatch:namespace": ["/aws/sagemaker/*", "mlops-loop-dev/ModelQuality"]' in text


def test_every_pipeline_job_is_tagged_with_its_dataset_version_and_execution(
    dev: dict[str, Template],
) -> None:
    template = dev["training"]
    [rule] = [
        r
        for r in _resources(template, "AWS::Events::Rule")
        if "SageMaker Training Job State Change" in r["Properties"]["EventPattern"]["detail-type"]
    ]
    # only jobs SageMaker Pipelines started: the tagger may read no other job's tags
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": [
            "SageMaker Training Job State Change",
            "SageMaker Processing Job State Change",
        ],
        "detail": {
            "$or": [
                {"TrainingJobName": [{"prefix": "pipelines-"}]},
                {"ProcessingJobName": [{"prefix": "pipelines-"}]},
            ]
        },
    }
    [target] = rule["Properties"]["Targets"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 7200, "MaximumRetryAttempts": 8}
    assert "JobTaggerDeadLetters" in json.dumps(target["DeadLetterConfig"])
    assert "JobTaggerFunction" in json.dumps(target["Arn"])

    [function] = [
        f
        for f in _resources(template, "AWS::Lambda::Function")
        if "PIPELINE_NAMES" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["PIPELINE_NAMES"] == "mlops-loop-dev-training,mlops-loop-dev-evaluation"
    assert (variables["DATASET_VERSION_TAG"], variables["EXECUTION_ID_TAG"]) == (
        "dataset-version",
        "execution-id",
    )

    statements = {
        s["Action"]: s
        for p in _resources(template, "AWS::IAM::Policy")
        if "JobTagger" in json.dumps(p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if isinstance(s["Action"], str) and s["Action"].startswith("sagemaker:")
    }
    jobs = [
        "arn:aws:sagemaker:eu-west-1:111111111111:processing-job/pipelines-*",
        "arn:aws:sagemaker:eu-west-1:111111111111:training-job/pipelines-*",
    ]
    assert sorted(statements["sagemaker:ListTags"]["Resource"]) == jobs
    # it may add only the two run-time tags, never change project/environment
    assert sorted(statements["sagemaker:AddTags"]["Resource"]) == jobs
    assert statements["sagemaker:AddTags"]["Condition"] == {
        "ForAllValues:StringEquals": {"aws:TagKeys": ["dataset-version", "execution-id"]}
    }
    assert sorted(statements["sagemaker:ListPipelineParametersForExecution"]["Resource"]) == [
        "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/mlops-loop-dev-evaluation/execution/*",
        "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/mlops-loop-dev-training/execution/*",
    ]
    assert set(statements) == {
        "sagemaker:ListTags",
        "sagemaker:AddTags",
        "sagemaker:ListPipelineParametersForExecution",
    }


def test_the_job_tagger_keeps_and_reports_what_it_fails_on(dev: dict[str, Template]) -> None:
    """EventBridge invokes it asynchronously: after Lambda's two retries the event goes to the
    same dead-letter queue as undeliverable events, and its errors alarm."""
    template = dev["training"]
    resources = template.to_json()["Resources"]
    [function_id] = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
        and "PIPELINE_NAMES" in r["Properties"].get("Environment", {}).get("Variables", {})
    ]
    [config] = _resources(template, "AWS::Lambda::EventInvokeConfig")
    assert config["Properties"]["FunctionName"] == {"Ref": function_id}
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    destination = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    [rule] = [
        r
        for r in _resources(template, "AWS::Events::Rule")
        if "SageMaker Training Job State Change" in r["Properties"]["EventPattern"]["detail-type"]
    ]
    assert destination == rule["Properties"]["Targets"][0]["DeadLetterConfig"]["Arn"]
    [errors] = [
        r["Properties"]
        for r in _resources(template, "AWS::CloudWatch::Alarm")
        if r["Properties"].get("MetricName") == "Errors"
    ]
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    assert len(errors["AlarmActions"]) == 1
    skips = {s["id"]: s["comment"] for s in resources[function_id]["Metadata"]["checkov"]["skip"]}
    assert skips["CKV_AWS_116"].startswith("Invoked asynchronously: failed events go to an on-")
