"""tracking: off by default everywhere; managed takes a size, external an ARN, and every wrong
combination is one error naming the key."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_config import (
    REQUIRED_ENDPOINTS,
    ConfigError,
    TrackingConfig,
    parse_environment,
    read_cdk_json_context,
)

SERVER_ARN = "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/team-mlflow"


def parsed(tracking: dict[str, Any], **block: Any) -> TrackingConfig:
    context = copy.deepcopy(read_cdk_json_context())
    context["environments"]["dev"]["tracking"] = tracking
    context["environments"]["dev"].update(block)
    return parse_environment(context, "dev").tracking


def error(tracking: dict[str, Any], **block: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        parsed(tracking, **block)
    return str(raised.value)


def test_every_environment_of_cdk_json_tracks_nothing_by_default() -> None:
    context = read_cdk_json_context()
    for name in context["environments"]:
        tracking = parse_environment(context, name).tracking
        assert tracking.mlflow == "off" and not tracking.enabled


def test_managed_takes_a_size_and_version_and_external_an_arn() -> None:
    managed = parsed({"mlflow": "managed", "server_size": "Medium", "mlflow_version": "3.0"})
    assert managed.enabled and managed.server_size == "Medium"
    assert managed.mlflow_version == "3.0" and managed.server_arn is None
    assert parsed({"mlflow": "managed"}).server_size == "Small"
    external = parsed({"mlflow": "external", "server_arn": SERVER_ARN})
    assert external.enabled and external.server_arn == SERVER_ARN


@pytest.mark.parametrize(
    ("tracking", "expected"),
    [
        ({"mlflow": "on"}, "tracking.mlflow = 'on' is not allowed: one of off, managed, external"),
        ({"mlflow": "external"}, "tracking.server_arn is missing: mlflow external needs it"),
        (
            {"mlflow": "managed", "server_arn": SERVER_ARN},
            "tracking.server_arn = ",
        ),
        ({"mlflow": "managed", "server_size": "small"}, "tracking.server_size = 'small'"),
        ({"mlflow": "external", "server_arn": "https://mlflow.example.com"}, "server_arn"),
        ({"mlflow": "off", "mlflow_version": "3.0"}, "tracking.mlflow_version = '3.0'"),
        ({"mlflow": "managed", "mlflow_version": "latest"}, "tracking.mlflow_version"),
        ({"mlfow": "managed"}, "tracking.mlfow"),
    ],
)
def test_bad_tracking_is_one_error_naming_the_key(tracking: dict[str, Any], expected: str) -> None:
    message = error(tracking)
    assert expected in message and "\n" not in message


IMPORTED_VPC = {
    "mode": "vpc",
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0a1b2c3d"],
    "s3_endpoint_ids": ["vpce-0a1b2c3d4e5f60718"],
    "endpoints": list(REQUIRED_ENDPOINTS),
}
MANAGED, EXTERNAL = {"mlflow": "managed"}, {"mlflow": "external", "server_arn": SERVER_ARN}


@pytest.mark.parametrize("tracking", [MANAGED, EXTERNAL], ids=["managed", "external"])
def test_tracking_in_a_created_vpc_is_allowed(tracking: dict[str, Any]) -> None:
    # the app creates the MLflow endpoint with the VPC (tests/test_vpc_mode.py)
    assert parsed(tracking, network={"mode": "vpc", "create_vpc": True}).enabled


@pytest.mark.parametrize("tracking", [MANAGED, EXTERNAL], ids=["managed", "external"])
def test_an_imported_vpc_without_the_mlflow_endpoint_is_one_error_naming_it(
    tracking: dict[str, Any],
) -> None:
    message = error(tracking, network=IMPORTED_VPC)
    assert message.startswith("environments.dev.network.endpoints = [")
    assert "is missing sagemaker.experiments:" in message and "\n" not in message
    assert f"tracking.mlflow = {tracking['mlflow']!r}" in message
    assert "aws.sagemaker.<region>.experiments" in message


@pytest.mark.parametrize("key", ["endpoints", "acknowledge_missing_endpoints"])
def test_an_imported_vpc_listing_or_acknowledging_the_mlflow_endpoint_tracks(key: str) -> None:
    network = {**IMPORTED_VPC, key: [*IMPORTED_VPC.get(key, []), "sagemaker.experiments"]}
    assert parsed(MANAGED, network=network).enabled


def test_the_mlflow_endpoint_is_not_required_without_tracking() -> None:
    assert "sagemaker.experiments" not in REQUIRED_ENDPOINTS
    assert not parsed({"mlflow": "off"}, network=IMPORTED_VPC).enabled


@pytest.mark.parametrize(
    "arn",
    [
        SERVER_ARN.replace("111111111111", "999999999999"),  # another account
        SERVER_ARN.replace("eu-west-1", "us-east-1"),  # another region
    ],
)
def test_an_external_server_elsewhere_is_refused_naming_the_key(arn: str) -> None:
    message = error({"mlflow": "external", "server_arn": arn})
    assert message.startswith(f"environments.dev.tracking.server_arn = {arn!r} is not allowed")
    assert "resource policy" in message and "\n" not in message


def test_a_promotion_target_may_track_its_eval_only_runs() -> None:
    from mlops_config.tracking import tracked_pipelines
    from tests.test_config_promotion import promote_context

    context = promote_context()
    context["environments"]["staging"]["tracking"] = MANAGED
    staging = parse_environment(context, "staging")
    assert staging.tracking.enabled and not staging.promotion.trains
    assert tracked_pipelines(staging) == [staging.evaluation_pipeline_name]
    # the source still tracks both
    context["environments"]["dev"]["tracking"] = MANAGED
    dev = parse_environment(context, "dev")
    assert tracked_pipelines(dev) == [dev.pipeline_name, dev.evaluation_pipeline_name]
