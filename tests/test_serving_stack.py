"""Serving stack: the guarded endpoint and the approval -> deploy wiring."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")


def _one(template: Template, kind: str) -> tuple[str, dict[str, Any]]:
    (item,) = [(k, r) for k, r in template.to_json()["Resources"].items() if r["Type"] == kind]
    return item


def test_no_endpoint_until_a_model_package_is_set(dev: dict[str, Template]) -> None:
    template = dev["serving"].to_json()
    assert template["Parameters"]["ModelPackageArn"]["Default"] == ""
    assert template["Conditions"]["HasModel"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ModelPackageArn"}, ""]}]
    }
    for kind in (
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
    ):
        assert _one(dev["serving"], kind)[1]["Condition"] == "HasModel", kind


def test_model_comes_from_the_package_with_network_isolation(dev: dict[str, Template]) -> None:
    _, model = _one(dev["serving"], "AWS::SageMaker::Model")
    assert model["Properties"]["PrimaryContainer"] == {
        "ModelPackageName": {"Ref": "ModelPackageArn"}
    }
    assert model["Properties"]["EnableNetworkIsolation"] is True


def test_endpoint_config_is_encrypted_and_captures_to_the_data_bucket(
    dev: dict[str, Template],
    prod: dict[str, Template],
) -> None:
    _, config = _one(dev["serving"], "AWS::SageMaker::EndpointConfig")
    props = config["Properties"]
    assert "KmsKeyId" in props
    capture = props["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 100
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert "KmsKeyId" in capture
    assert capture["DestinationS3Uri"]["Fn::Join"][1][-1] == "/capture"
    assert capture["CaptureContentTypeHeader"] == {"CsvContentTypes": ["text/csv"]}
    _, prod_config = _one(prod["serving"], "AWS::SageMaker::EndpointConfig")
    assert prod_config["Properties"]["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    assert prod_config["Properties"]["ProductionVariants"][0]["InstanceType"] == "ml.m5.xlarge"


def test_blue_green_canary_rolls_back_on_both_alarms(dev: dict[str, Template]) -> None:
    template = dev["serving"]
    _, endpoint = _one(template, "AWS::SageMaker::Endpoint")
    deployment = endpoint["Properties"]["DeploymentConfig"]
    routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        "WaitIntervalInSeconds": 600,
    }
    rollback_alarms = [
        a["AlarmName"]["Ref"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]
    ]
    alarms = template.to_json()["Resources"]
    metrics = sorted(alarms[a]["Properties"]["MetricName"] for a in rollback_alarms)
    assert metrics == ["Invocation5XXErrors", "ModelLatency"]
    latency = next(
        alarms[a]
        for a in rollback_alarms
        if alarms[a]["Properties"]["MetricName"] == "ModelLatency"
    )
    assert latency["Properties"]["Threshold"] == 500_000  # 500 ms in microseconds
    assert latency["Properties"]["ExtendedStatistic"] == "p99"


def test_autoscaling_tracks_invocations_per_instance(prod: dict[str, Template]) -> None:
    _, target = _one(prod["serving"], "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["Properties"]["MinCapacity"] == 2
    assert target["Properties"]["MaxCapacity"] == 6
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in str(
        target["Properties"]["RoleARN"]
    )
    _, policy = _one(prod["serving"], "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 200
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )


def test_approvals_of_this_group_reach_the_deployer_through_a_queue(
    dev: dict[str, Template],
) -> None:
    dev["serving"].has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "detail": {
                    "ModelPackageGroupName": ["mlops-loop-dev-models"],
                    "ModelApprovalStatus": ["Approved"],
                },
            }
        },
    )
    dev["serving"].has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["mlops.serving"],
                "detail-type": ["Rollback Requested"],
                "detail": {"model_package_group_name": ["mlops-loop-dev-models"]},
            }
        },
    )
    dev["serving"].has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": 1, "FunctionResponseTypes": ["ReportBatchItemFailures"]},
    )
    dev["serving"].has_resource_properties(
        "AWS::SQS::Queue",
        {
            "RedrivePolicy": {"maxReceiveCount": 20, "deadLetterTargetArn": Match.any_value()},
            "KmsMasterKeyId": Match.any_value(),
        },
    )


def test_deployer_environment_follows_the_config(
    dev: dict[str, Template],
    prod: dict[str, Template],
) -> None:
    for templates, deploy_on in ((dev, "approval"), (prod, "promotion")):
        templates["serving"].has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Environment": {
                    "Variables": Match.object_like(
                        {"DEPLOY_ON": deploy_on, "SERVING_STACK_NAME": Match.any_value()}
                    )
                },
                "Handler": "handler.lambda_handler",
            },
        )


def test_a_rolled_back_deployment_notifies_the_topic(dev: dict[str, Template]) -> None:
    dev["serving"].has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {
                    "source": ["aws.cloudformation"],
                    "detail": {
                        "status-details": {
                            "status": ["UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED"]
                        }
                    },
                }
            )
        },
    )
