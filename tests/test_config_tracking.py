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
SERVER_URI = "https://mlflow.example.com"
# Secrets Manager appends "-" and 6 random characters to a secret's name in its ARN
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:team/mlflow-a1B2c3"


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
        # a self-hosted server: https only, no credentials in the URL, one server only
        ({"mlflow": "external", "server_uri": "http://mlflow.example.com"}, "tracking.server_uri"),
        (
            {"mlflow": "external", "server_uri": "https://me:secret@mlflow.example.com"},
            "tracking.server_uri",
        ),
        (
            {"mlflow": "external", "server_uri": SERVER_URI, "server_arn": SERVER_ARN},
            "tracking.server_uri = 'https://mlflow.example.com' is not allowed with server_arn",
        ),
        ({"mlflow": "managed", "server_uri": SERVER_URI}, "tracking.server_uri = "),
        ({"mlflow": "off", "server_uri": SERVER_URI}, "tracking.server_uri = "),
        (
            {"mlflow": "external", "server_arn": SERVER_ARN, "credentials_secret_arn": SECRET_ARN},
            "tracking.credentials_secret_arn = ",
        ),
        (
            {"mlflow": "external", "server_uri": SERVER_URI, "credentials_secret_arn": "mlflow"},
            "tracking.credentials_secret_arn = 'mlflow'",
        ),
        (  # a partial ARN (no suffix) could not be granted exactly
            {
                "mlflow": "external",
                "server_uri": SERVER_URI,
                "credentials_secret_arn": SECRET_ARN.removesuffix("-a1B2c3"),
            },
            "tracking.credentials_secret_arn",
        ),
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


def test_a_self_hosted_server_takes_an_https_uri_and_optionally_a_secret() -> None:
    bare = parsed({"mlflow": "external", "server_uri": SERVER_URI})
    assert bare.enabled and bare.server_arn is None and bare.credentials_secret_arn is None
    uri = "https://mlflow.example.com:8443/team"
    tracking = {"mlflow": "external", "server_uri": uri, "credentials_secret_arn": SECRET_ARN}
    found = parsed(tracking)
    assert (found.server_uri, found.credentials_secret_arn) == (uri, SECRET_ARN)


@pytest.mark.parametrize(
    "network", [{"mode": "vpc", "create_vpc": True}, IMPORTED_VPC], ids=["created", "imported"]
)
def test_a_self_hosted_server_in_vpc_mode_is_one_error_naming_the_key(
    network: dict[str, Any],
) -> None:
    message = error({"mlflow": "external", "server_uri": SERVER_URI}, network=network)
    assert message.startswith(
        f"environments.dev.tracking.server_uri = {SERVER_URI!r} is not allowed with "
        "network.mode = 'vpc'"
    )
    assert "\n" not in message
