"""The definitions' `vpc` setting (network.mode vpc): counts of subnet and security-group
placeholders, validated with a message naming the key; absent in public mode, so public
definitions are unchanged. No SDK import."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mlops_config import REQUIRED_ENDPOINTS, parse_environment, read_cdk_json_context
from pipeline_code.definition.settings import PipelineSettings, SettingsError
from stacks.pipeline_definitions import pipeline_settings
from tests.pipeline.generated import SETTINGS


def test_public_settings_have_no_vpc_and_no_vpc_placeholders() -> None:
    settings = PipelineSettings.from_dict(SETTINGS)
    assert settings.vpc is None and settings.vpc_placeholders == ([], [])
    raw = pipeline_settings(parse_environment(read_cdk_json_context(), "dev"))
    assert "vpc" not in raw


def test_vpc_counts_become_numbered_placeholders() -> None:
    settings = PipelineSettings.from_dict(SETTINGS | {"vpc": {"subnets": 3, "security_groups": 2}})
    assert settings.vpc_placeholders == (
        ["VpcSubnet1", "VpcSubnet2", "VpcSubnet3"],
        ["VpcSecurityGroup1", "VpcSecurityGroup2"],
    )


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ({"mode": "vpc", "create_vpc": True}, {"subnets": 2, "security_groups": 1}),
        (
            {
                "mode": "vpc",
                "vpc_id": "vpc-0123456789abcdef0",
                "subnet_ids": ["subnet-0a1b2c3d", "subnet-0e1f2a3b", "subnet-0c1d2e3f"],
                "security_group_ids": ["sg-0a1b2c3d", "sg-0e1f2a3b"],
                "s3_endpoint_ids": ["vpce-0a1b2c3d"],
                "endpoints": list(REQUIRED_ENDPOINTS),
            },
            {"subnets": 3, "security_groups": 2},
        ),
    ],
)
def test_the_cdk_apps_vpc_settings_match_its_network(
    network: dict[str, Any], expected: dict[str, int]
) -> None:
    context = copy.deepcopy(read_cdk_json_context())
    context["environments"]["dev"]["network"] = network
    raw = pipeline_settings(parse_environment(context, "dev"))
    assert raw["vpc"] == expected
    assert PipelineSettings.from_dict(json.loads(json.dumps(raw))).vpc == expected


@pytest.mark.parametrize(
    ("vpc", "message"),
    [
        ({"subnets": 0, "security_groups": 1}, "settings.vpc.subnets: got 0; expected an integer"),
        ({"subnets": 17, "security_groups": 1}, "settings.vpc.subnets: got 17"),
        ({"subnets": 2, "security_groups": 6}, "settings.vpc.security_groups: got 6"),
        ({"subnets": True, "security_groups": 1}, "settings.vpc.subnets: got True"),
        ({"subnets": 2}, "settings.vpc.security_groups: missing"),
        ({"subnets": 2, "security_groups": 1, "nat": 1}, "settings.vpc.nat: unknown key"),
        (["subnet-1"], "settings.vpc: got ['subnet-1']"),
    ],
)
def test_bad_vpc_settings_name_the_key(vpc: Any, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        PipelineSettings.from_dict(SETTINGS | {"vpc": vpc})
    assert str(raised.value).startswith(message)
