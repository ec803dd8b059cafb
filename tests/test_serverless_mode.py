"""serving.mode serverless: the synthesized endpoint is a Serverless Inference endpoint that
SageMaker accepts, with none of what AWS excludes for serverless (instances, autoscaling, data
capture, network isolation, VPC), rolled out all at once with rollback on alarms that read
metrics serverless endpoints publish; the Monitoring stack builds no drift check (no capture).

Shapes and bounds come from botocore's SageMaker model; the metric list from AWS's "Alarms and
logs for tracking metrics from serverless endpoints" page (an exhaustive list: "Any metric not
listed below is not published for serverless endpoints").
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from aws_cdk.assertions import Template
from botocore.validate import ParamValidator

from tests.conftest import SERVERLESS

pytestmark = pytest.mark.xdist_group("cdk")

CONFIGURED = json.loads(SERVERLESS)["serving"]
SERVERLESS_METRICS = {
    "Invocations",
    "Invocation4XXErrors",
    "Invocation5XXErrors",
    "ModelLatency",
    "OverheadLatency",
    "ModelSetupTime",
    "MemoryUtilization",
    "ServerlessConcurrentExecutionsUtilization",
    "ServerlessProvisionedConcurrencyExecutions",
    "ServerlessProvisionedConcurrencyUtilization",
    "ServerlessProvisionedConcurrencyInvocations",
    "ServerlessProvisionedConcurrencySpilloverInvocations",
}
BAKE_SECONDS = 10 * 60  # serving.bake_minutes in cdk.json's defaults


def _one(template: Template, kind: str) -> dict[str, Any]:
    (resource,) = [r for r in template.to_json()["Resources"].values() if r["Type"] == kind]
    return resource


def _of_type(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template.to_json()["Resources"].items() if r["Type"] == kind}


def test_the_endpoint_config_is_serverless_and_sagemaker_accepts_it(
    serverless: dict[str, Template],
) -> None:
    props = _one(serverless["serving"], "AWS::SageMaker::EndpointConfig")["Properties"]
    (variant,) = props["ProductionVariants"]
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": CONFIGURED["memory_size_mb"],
        "MaxConcurrency": CONFIGURED["max_concurrency"],
        "ProvisionedConcurrency": CONFIGURED["provisioned_concurrency"],
    }
    for instance_only in ("InstanceType", "InitialInstanceCount", "InitialVariantWeight"):
        assert instance_only not in variant
    # no capture, and no volume key: serverless endpoints have neither
    assert "DataCaptureConfig" not in props and "KmsKeyId" not in props
    request = {
        "EndpointConfigName": "config",
        "ProductionVariants": [{**variant, "ModelName": "model"}],
    }
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(
        request, model.operation_model("CreateEndpointConfig").input_shape
    )
    assert not report.has_errors(), report.generate_report()


def test_on_demand_only_leaves_provisioned_concurrency_out() -> None:
    from tests.conftest import synthesized

    on_demand = synthesized("dev", '{"serving": {"mode": "serverless"}}')
    props = _one(on_demand["serving"], "AWS::SageMaker::EndpointConfig")["Properties"]
    assert props["ProductionVariants"][0]["ServerlessConfig"] == {
        "MemorySizeInMB": 2048,
        "MaxConcurrency": 5,
    }


def test_the_model_is_not_isolated_nor_in_a_vpc_and_says_why(
    serverless: dict[str, Template],
) -> None:
    model = _one(serverless["serving"], "AWS::SageMaker::Model")
    assert model["Properties"]["EnableNetworkIsolation"] is False
    assert "VpcConfig" not in model["Properties"]
    (skip,) = model["Metadata"]["checkov"]["skip"]
    assert skip["id"] == "CKV_AWS_370" and "feature exclusions" in skip["comment"]


def test_no_autoscaling_and_every_endpoint_resource_waits_for_a_model(
    serverless: dict[str, Template],
) -> None:
    serving = serverless["serving"]
    for kind in (
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
    ):
        assert _of_type(serving, kind) == {}
    for kind in (
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
    ):
        assert _one(serving, kind)["Condition"] == "HasModel", kind


def test_the_update_shifts_all_at_once_bakes_and_rolls_back_on_both_alarms(
    serverless: dict[str, Template],
) -> None:
    template = serverless["serving"].to_json()
    endpoint = _one(serverless["serving"], "AWS::SageMaker::Endpoint")["Properties"]
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE",
        "WaitIntervalInSeconds": BAKE_SECONDS,
    }
    assert (
        policy["MaximumExecutionTimeoutInSeconds"]
        > BAKE_SECONDS + policy["TerminationWaitInSeconds"]
    )
    rollback = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    alarms = {a["AlarmName"]["Ref"] for a in rollback}
    assert len(alarms) == 2
    for logical_id in alarms:
        props = template["Resources"][logical_id]["Properties"]
        metrics = (
            [props]
            if "MetricName" in props
            else [q["MetricStat"]["Metric"] for q in props["Metrics"] if "MetricStat" in q]
        )
        assert metrics, logical_id
        for metric in metrics:
            assert metric["Namespace"] == "AWS/SageMaker"
            assert metric["MetricName"] in SERVERLESS_METRICS, metric["MetricName"]
            assert {d["Name"] for d in metric["Dimensions"]} == {"EndpointName", "VariantName"}


def test_the_model_role_cannot_write_captured_traffic(
    serverless: dict[str, Template], dev: dict[str, Template]
) -> None:
    def writes(template: Template) -> bool:
        roles = _of_type(template, "AWS::IAM::Role")
        (model_role,) = [k for k in roles if k.startswith("EndpointModelRole")]
        statements = [
            s
            for p in _of_type(template, "AWS::IAM::Policy").values()
            if {"Ref": model_role} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        return any("s3:PutObject" in json.dumps(s["Action"]) for s in statements)

    assert writes(dev["serving"])  # realtime: the capture is the model role's only S3 write
    assert not writes(serverless["serving"])


def test_no_drift_check_without_capture_but_the_quality_alarm_stays(
    serverless: dict[str, Template],
) -> None:
    monitoring = serverless["monitoring"]
    alarms = {
        r["Properties"].get("AlarmName")
        for r in _of_type(monitoring, "AWS::CloudWatch::Alarm").values()
    }
    assert "mlops-loop-dev-retrain-quality" in alarms
    assert "mlops-loop-dev-retrain-drift" not in alarms
    assert _of_type(monitoring, "AWS::Scheduler::Schedule") == {}  # the drift job's schedule
    assert _of_type(monitoring, "AWS::Lambda::Function") == {}  # its starter


def test_the_dashboard_shows_cold_starts_and_concurrency(
    serverless: dict[str, Template],
) -> None:
    body = json.dumps(_one(serverless["monitoring"], "AWS::CloudWatch::Dashboard")["Properties"])
    assert "ModelSetupTime" in body
    assert "ServerlessConcurrentExecutionsUtilization" in body
    assert "drifted features" not in body.lower()
