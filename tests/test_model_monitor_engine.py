"""`monitoring.engine` model-monitor: baselines as Serving-stack parameters, a data-quality
schedule on the endpoint, and the same drift-alarm contract as the evidently engine."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from constructs.model_monitor import analyzer_image_uri
from stacks.config import load_config

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")

DEV = load_config("dev")
ENDPOINT = "mlops-loop-dev-endpoint"
SCHEDULE = "mlops-loop-dev-endpoint-data-quality"
DATA_METRICS = "aws/sagemaker/Endpoints/data-metrics"


def _of_type(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template.to_json()["Resources"].items() if r["Type"] == kind}


def _one(template: Template, kind: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = _of_type(template, kind).items()
    return logical_id, resource


def test_the_served_packages_baselines_are_stack_parameters(
    model_monitor: dict[str, Template],
) -> None:
    template = model_monitor["serving"].to_json()
    for name in ("DataQualityStatisticsUri", "DataQualityConstraintsUri"):
        assert template["Parameters"][name]["Default"] == ""
    # a model without Model Monitor baselines is served but not monitored
    assert template["Conditions"]["HasMonitoredModel"] == {
        "Fn::And": [
            {"Condition": "HasModel"},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "DataQualityStatisticsUri"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "DataQualityConstraintsUri"}, ""]}]},
        ]
    }


def test_data_quality_job_reads_the_endpoint_against_the_baselines(
    model_monitor: dict[str, Template],
) -> None:
    endpoint_id, _ = _one(model_monitor["serving"], "AWS::SageMaker::Endpoint")
    _, definition = _one(model_monitor["serving"], "AWS::SageMaker::DataQualityJobDefinition")
    assert definition["Condition"] == "HasMonitoredModel"
    assert endpoint_id in definition["DependsOn"]
    props = definition["Properties"]
    assert "JobDefinitionName" not in props  # a new baseline replaces it without a name clash
    assert props["DataQualityAppSpecification"] == {
        "ImageUri": "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        "Environment": {"publish_cloudwatch_metrics": "Enabled"},
    }
    assert props["DataQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": {"Ref": "DataQualityConstraintsUri"}},
        "StatisticsResource": {"S3Uri": {"Ref": "DataQualityStatisticsUri"}},
    }
    assert props["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == ENDPOINT
    text = json.dumps(props)
    # reports and volumes are artifacts: the artifact key, never the data key
    assert "ArtifactKey" in json.dumps(props["DataQualityJobOutputConfig"]["KmsKeyId"])
    assert "ArtifactKey" in json.dumps(props["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"])
    assert "monitoring/model-monitor/mlops-loop-dev-endpoint" in text
    assert props["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert props["NetworkConfig"] == {"EnableInterContainerTrafficEncryption": True}
    assert {"Key": "project", "Value": DEV.project} in props["Tags"]


def test_schedule_follows_the_endpoint_on_model_monitors_cron(
    model_monitor: dict[str, Template],
) -> None:
    endpoint_id, _ = _one(model_monitor["serving"], "AWS::SageMaker::Endpoint")
    definition_id, _ = _one(model_monitor["serving"], "AWS::SageMaker::DataQualityJobDefinition")
    _, schedule = _one(model_monitor["serving"], "AWS::SageMaker::MonitoringSchedule")
    assert schedule["Condition"] == "HasMonitoredModel"
    assert endpoint_id in schedule["DependsOn"]
    props = schedule["Properties"]
    assert props["MonitoringScheduleName"] == SCHEDULE
    assert props["EndpointName"] == ENDPOINT
    config = props["MonitoringScheduleConfig"]
    # config's EventBridge cron(0 * * * ? *) in Model Monitor's form
    assert config["ScheduleConfig"] == {"ScheduleExpression": "cron(0 * ? * * *)"}
    assert config["MonitoringType"] == "DataQuality"
    assert config["MonitoringJobDefinitionName"] == {
        "Fn::Select": [1, {"Fn::Split": ["/", {"Ref": definition_id}]}]
    }


def test_job_role_publishes_only_model_monitor_metrics(model_monitor: dict[str, Template]) -> None:
    statements = [
        s
        for p in _of_type(model_monitor["serving"], "AWS::IAM::Policy").values()
        if "ModelMonitorJobRole" in json.dumps(p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    [metrics] = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": DATA_METRICS}}
    reads = json.dumps([s for s in statements if "s3:GetObject" in s["Action"]])
    assert "capture/mlops-loop-dev-endpoint/*" in reads
    [pull] = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    # the analyzer's publishing account in the region (the SDK's image table), not any account
    assert pull["Resource"] == (
        "arn:aws:ecr:eu-west-1:468650794304:repository/sagemaker-model-monitor-analyzer"
    )


def test_evidently_engine_has_no_model_monitor_resources(dev: dict[str, Template]) -> None:
    template = dev["serving"].to_json()
    assert "DataQualityStatisticsUri" not in template["Parameters"]
    assert not _of_type(dev["serving"], "AWS::SageMaker::MonitoringSchedule")
    assert not _of_type(dev["serving"], "AWS::SageMaker::DataQualityJobDefinition")


def test_drift_alarm_keeps_its_contract_on_model_monitor_metrics(
    model_monitor: dict[str, Template],
) -> None:
    alarms = _of_type(model_monitor["monitoring"], "AWS::CloudWatch::Alarm")
    [drift] = [a["Properties"] for a in alarms.values() if "Metrics" in a["Properties"]]
    assert drift["AlarmName"] == "mlops-loop-dev-retrain-drift"  # still starts a retrain
    assert drift["Threshold"] == DEV.monitoring.drift_share_threshold
    assert drift["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert len(drift["AlarmActions"]) == 1
    queries = {q["Id"]: q for q in drift["Metrics"]}
    features = [f.name for f in DEV.schema.features]
    [expression] = [q for q in queries.values() if "Expression" in q]
    assert expression["ReturnData"] is True
    t = DEV.monitoring.drift_distance_threshold
    assert expression["Expression"] == (
        "("
        + " + ".join(f"IF(f{i} >= {t}, 1, 0)" for i in range(len(features)))
        + f") / {len(features)}"
    )
    for i, _ in enumerate(features):
        stat = queries[f"f{i}"]["MetricStat"]
        assert stat["Metric"] == {
            "Namespace": DATA_METRICS,
            "MetricName": f"feature_baseline_drift__c{i}",
            "Dimensions": [
                {"Name": "Endpoint", "Value": ENDPOINT},
                {"Name": "MonitoringSchedule", "Value": SCHEDULE},
            ],
        }
        assert queries[f"f{i}"]["ReturnData"] is False


def test_failed_model_monitor_jobs_notify(model_monitor: dict[str, Template]) -> None:
    serving = model_monitor["serving"]
    rules = _of_type(serving, "AWS::Events::Rule").values()
    [failed] = [r for r in rules if "MonitoringScheduleArn" in json.dumps(r)]
    detail = failed["Properties"]["EventPattern"]["detail"]
    assert detail["ProcessingJobStatus"] == ["Failed"]
    schedule, role = detail["$or"]
    assert schedule == {
        "MonitoringScheduleArn": [
            f"arn:aws:sagemaker:eu-west-1:111111111111:monitoring-schedule/{SCHEDULE}"
        ]
    }
    assert "ModelMonitorJobRole" in json.dumps(role["RoleArn"])  # the schedule's own role
    assert "NotificationTopic" in json.dumps(failed["Properties"]["Targets"])


def test_a_schedule_that_publishes_nothing_for_two_intervals_alarms(
    model_monitor: dict[str, Template],
) -> None:
    [alarm] = [
        a
        for a in _of_type(model_monitor["serving"], "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == DATA_METRICS
    ]
    assert alarm["Condition"] == "HasMonitoredModel"  # no model, no schedule, no alarm
    props = alarm["Properties"]
    assert (props["Namespace"], props["MetricName"]) == (DATA_METRICS, "feature_baseline_drift__c0")
    assert props["Period"] == 3600 and props["EvaluationPeriods"] == 2  # hourly schedule
    assert props["TreatMissingData"] == "breaching"
    assert (props["Threshold"], props["ComparisonOperator"]) == (0, "LessThanThreshold")
    assert len(props["AlarmActions"]) == 1


def test_nothing_of_the_evidently_engine_is_built(model_monitor: dict[str, Template]) -> None:
    monitoring = model_monitor["monitoring"]
    assert not _of_type(monitoring, "AWS::Scheduler::Schedule")
    assert not _of_type(monitoring, "AWS::Lambda::Function")  # no drift starter
    dashboard = json.dumps(_one(monitoring, "AWS::CloudWatch::Dashboard")[1])
    assert "feature_baseline_drift__c0" in dashboard and "Baseline drift distance" in dashboard


def test_analyzer_image_is_the_one_the_sagemaker_sdk_names() -> None:
    from pipeline_code.offline import configure_environment

    configure_environment()
    from sagemaker.core import image_uris

    for region in ("eu-west-1", "us-east-1", "ap-southeast-2"):
        assert analyzer_image_uri(region) == image_uris.retrieve("model-monitor", region)
    with pytest.raises(ValueError, match="no analyzer image in xx-nowhere-1"):
        analyzer_image_uri("xx-nowhere-1")
