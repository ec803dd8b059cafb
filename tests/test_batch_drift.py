"""Drift in batch serving: each completed scoring run's rows are checked against the baseline of
the package version that scored them (the Evidently job of the realtime path, started by an
EventBridge rule instead of a schedule), publishing the same metrics under the scoring
pipeline's name, so the drift alarm, its retrain and the dashboard work unchanged.

Roles are judged by evaluating their statements against requests the way IAM does
(tests/policy_evaluation.py), not by their text alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.training_stack import retrain_alarm_prefix
from tests.conftest import BATCH, variant_config
from tests.policy_evaluation import Request, decision, resolve

pytestmark = pytest.mark.xdist_group("cdk")

ARN = "arn:aws:sagemaker:eu-west-1:111111111111"
SCORING = "mlops-loop-dev-scoring"
GROUP = "mlops-loop-dev-models"
DATA = "<import:mlops-loop-dev-data:ExportsOutputFnGetAttDataBucketArn"
ARTIFACTS = "<import:mlops-loop-dev-data:ExportsOutputFnGetAttArtifactBucketArnC5DE1C34>"


def _resources(template: Template, prefix: str, kind: str) -> list[dict[str, Any]]:
    return [
        r
        for k, r in template.to_json()["Resources"].items()
        if k.startswith(prefix) and r["Type"] == kind
    ]


def _statements(template: Template, policy_prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _resources(template, policy_prefix, "AWS::IAM::Policy")
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_a_completed_scoring_run_starts_its_drift_check(batch: dict[str, Template]) -> None:
    monitoring = batch["monitoring"]
    (rule,) = _resources(monitoring, "DriftOnScoringRunCompleted", "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Transform Job State Change"]
    assert pattern["detail"]["TransformJobStatus"] == ["Completed"]  # nothing partial is checked
    (prefix,) = pattern["detail"]["TransformOutput"]["S3OutputPath"]
    assert resolve(prefix["prefix"]) == (
        "s3://<import:mlops-loop-dev-data:ExportsOutputRefDataBucket17E4E1D7>/predictions/"
    )
    (target,) = rule["Properties"]["Targets"]
    assert "DriftStarterFunction" in str(target["Arn"])
    assert "DriftScheduleDeadLetters" in str(target["DeadLetterConfig"])  # its alarm notifies
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 7200
    # no endpoint, so no schedule
    assert _resources(monitoring, "Drift", "AWS::Scheduler::Schedule") == []
    (function,) = _resources(monitoring, "DriftStarterFunction", "AWS::Lambda::Function")
    env = function["Properties"]["Environment"]["Variables"]
    assert env["ENDPOINT_NAME"] == SCORING  # the metrics' EndpointName dimension
    assert env["MODEL_PACKAGE_GROUP"] == GROUP


def test_the_drift_alarm_retrains_on_the_scored_data(batch: dict[str, Template]) -> None:
    """The alarm watches the series the batch checks publish, and keeps the name prefix that
    lets it start a retrain (the Training stack's rule)."""
    (alarm,) = [
        a
        for a in _resources(batch["monitoring"], "DriftAlarm", "AWS::CloudWatch::Alarm")
        if a["Properties"].get("MetricName") == "DriftedFeatureShare"
    ]
    props = alarm["Properties"]
    assert props["Dimensions"] == [{"Name": "EndpointName", "Value": SCORING}]
    assert props["Namespace"] == "mlops-loop-dev/Drift"
    assert props["AlarmName"] == f"{retrain_alarm_prefix(variant_config('dev', BATCH))}drift"
    assert "the data scored by" in props["AlarmDescription"]
    (dashboard,) = _resources(batch["monitoring"], "Dashboard", "AWS::CloudWatch::Dashboard")
    body = str(resolve(dashboard["Properties"]["DashboardBody"]))
    assert f'EndpointName=\\"{SCORING}\\"' in body and "FeatureDrifted" in body


def _verdict(statements: list[dict[str, Any]], action: str, resource: str, **context: str) -> str:
    principal = "arn:aws:iam::111111111111:role/starter"
    return decision(statements, Request(action, resource, principal, {}, context))


def _drift_job_request(batch: dict[str, Template]) -> dict[str, str]:
    """The condition keys of the starter's CreateProcessingJob as it sends it: both KMS keys
    are its KMS_KEY_ARN (processing_job.py sets KmsKeyId and VolumeKmsKeyId from it), the
    instance type its INSTANCE_TYPE."""
    (starter,) = [
        r
        for k, r in batch["monitoring"].to_json()["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and "DriftStarter" in k
    ]
    variables = starter["Properties"]["Environment"]["Variables"]
    key = str(resolve(variables["KMS_KEY_ARN"]))
    return {
        "sagemaker:OutputKmsKey": key,
        "sagemaker:VolumeKmsKey": key,
        "sagemaker:InstanceTypes": variables["INSTANCE_TYPE"],
    }


@pytest.mark.parametrize("template", ["batch", "dev"])
def test_the_starter_starts_only_encrypted_drift_jobs_of_the_configured_type(
    batch: dict[str, Template], dev: dict[str, Template], template: str
) -> None:
    """In both modes: a request the starter would not send (another key, no key, another or no
    instance type) is refused by IAM, as the CreateTransformJob of the scoring runs is."""
    templates = {"batch": batch, "dev": dev}[template]
    statements = _statements(templates["monitoring"], "DriftStarterRole")
    request = _drift_job_request(templates)
    configured = variant_config("dev", BATCH if template == "batch" else "{}").monitoring
    assert request["sagemaker:InstanceTypes"] == configured.instance_type
    job = f"{ARN}:processing-job/drift-1"

    def verdict(**changes: str | None) -> str:
        context = {k: v for k, v in {**request, **changes}.items() if v is not None}
        return _verdict(statements, "sagemaker:CreateProcessingJob", job, **context)

    assert verdict() == "allow"
    other_key = "arn:aws:kms:eu-west-1:111111111111:key/other"
    for key in ("sagemaker:OutputKmsKey", "sagemaker:VolumeKmsKey"):
        assert verdict(**{key: other_key}) == "implicit-deny", key
        assert verdict(**{key: None}) == "implicit-deny", key  # unencrypted
    assert verdict(**{"sagemaker:InstanceTypes": "ml.p4d.24xlarge"}) == "implicit-deny"
    assert verdict(**{"sagemaker:InstanceTypes": None}) == "implicit-deny"


def test_the_starter_reads_only_packages_and_starts_only_drift_jobs(
    batch: dict[str, Template],
) -> None:
    statements = _statements(batch["monitoring"], "DriftStarterRole")
    package = f"{ARN}:model-package/{GROUP}/7"
    assert _verdict(statements, "sagemaker:DescribeModelPackage", package) == "allow"
    other_group = f"{ARN}:model-package/another-team/7"
    assert _verdict(statements, "sagemaker:DescribeModelPackage", other_group) == "implicit-deny"
    # no endpoint to follow: the endpoint path's reads are not granted
    for action, resource in (
        ("sagemaker:DescribeEndpoint", f"{ARN}:endpoint/mlops-loop-dev-endpoint"),
        ("sagemaker:DescribeEndpointConfig", f"{ARN}:endpoint-config/x"),
        ("sagemaker:DescribeModel", f"{ARN}:model/x"),
        ("sagemaker:DescribeTransformJob", f"{ARN}:transform-job/x"),
    ):
        assert _verdict(statements, action, resource) == "implicit-deny", action
    job = f"{ARN}:processing-job/drift-pipelines-x-score-1"
    request = _drift_job_request(batch)
    assert _verdict(statements, "sagemaker:CreateProcessingJob", job, **request) == "allow"
    assert (
        _verdict(
            statements, "sagemaker:CreateProcessingJob", f"{ARN}:processing-job/other", **request
        )
        == "implicit-deny"
    )
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert "DriftJobRole" in str(pass_role["Resource"])
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


def test_the_job_reads_pipeline_outputs_and_nothing_in_the_data_bucket(
    batch: dict[str, Template],
) -> None:
    """The scored rows and the baselines are pipeline outputs; the job never reads score/,
    predictions/ or capture/ (there is no capture) and writes only its reports."""
    statements = _statements(batch["monitoring"], "DriftJobRole")
    data_bucket = "<import:mlops-loop-dev-data:ExportsOutputFnGetAttDataBucketArn"
    for statement in statements:
        assert data_bucket not in str(resolve(statement["Resource"])), statement
    rows = f"{ARTIFACTS}/pipelines/{SCORING}/executions/e1/Check/rows/part-0.csv"
    assert _verdict(statements, "s3:GetObject", rows) == "allow"
    assert _verdict(statements, "s3:PutObject", rows) == "implicit-deny"
    report = f"{ARTIFACTS}/monitoring/{SCORING}/job/drift_report.html"
    assert _verdict(statements, "s3:PutObject", report) == "allow"
    assert (
        _verdict(statements, "cloudwatch:PutMetricData", "*", **{"cloudwatch:namespace": "Other"})
        == "implicit-deny"
    )
    assert (
        _verdict(
            statements,
            "cloudwatch:PutMetricData",
            "*",
            **{"cloudwatch:namespace": "mlops-loop-dev/Drift"},
        )
        == "allow"
    )


def test_realtime_drift_keeps_its_schedule_and_no_scoring_rule(dev: dict[str, Template]) -> None:
    monitoring = dev["monitoring"]
    assert _resources(monitoring, "DriftOnScoringRunCompleted", "AWS::Events::Rule") == []
    assert len(_resources(monitoring, "Drift", "AWS::Scheduler::Schedule")) == 1
    (function,) = _resources(monitoring, "DriftStarterFunction", "AWS::Lambda::Function")
    assert "MODEL_PACKAGE_GROUP" not in function["Properties"]["Environment"]["Variables"]


def test_a_drift_monitor_watches_an_endpoint_or_scoring_runs_not_both() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sns as sns

    from constructs.drift_monitor import DriftMonitor

    stack = Stack(App(), "S")
    key = kms.Key(stack, "K")
    bucket = s3.Bucket(stack, "B")
    common: dict[str, Any] = {
        "endpoint_name": "e",
        "data_bucket": bucket,
        "artifact_bucket": bucket,
        "encryption_key": key,
        "operations_key": key,
        "topic": sns.Topic(stack, "T"),
        "model_package_group_name": "g",
        "instance_type": "ml.m5.large",
        "drift_share_threshold": 0.3,
        "missing_share_threshold": 0.1,
        "metrics_namespace": "n",
        "project": "p",
        "environment": "dev",
    }
    with pytest.raises(ValueError, match="give one of the two"):
        DriftMonitor(stack, "Both", **common, schedule="rate(1 day)", capture_prefix="c/",
                     scoring_output_prefix="predictions/")  # fmt: skip
    with pytest.raises(ValueError, match="give one of the two"):
        DriftMonitor(stack, "Neither", **common)
