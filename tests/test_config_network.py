"""network: public by default; vpc mode imports a VPC by id or creates one, and an imported VPC
must list (or knowingly acknowledge) an endpoint for every service the loop calls."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_config import REQUIRED_ENDPOINTS, ConfigError, parse_environment, read_cdk_json_context

IMPORTED = {
    "mode": "vpc",
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0a1b2c3d", "subnet-0e1f2a3b"],
    "s3_endpoint_ids": ["vpce-0a1b2c3d4e5f60718"],
    "endpoints": list(REQUIRED_ENDPOINTS),
}


def parsed(network: dict[str, Any]) -> Any:
    context = copy.deepcopy(read_cdk_json_context())
    context["environments"]["dev"]["network"] = network
    return parse_environment(context, "dev").network


def error(network: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as raised:
        parsed(network)
    return str(raised.value)


def test_every_environment_of_cdk_json_is_public_by_default() -> None:
    context = read_cdk_json_context()
    for name in context["environments"]:
        network = parse_environment(context, name).network
        assert network.mode == "public" and not network.in_vpc


def test_an_imported_vpc_keeps_its_ids_and_a_created_one_needs_none() -> None:
    imported = parsed(IMPORTED)
    assert imported.in_vpc and imported.vpc_id == "vpc-0123456789abcdef0"
    assert imported.subnet_ids == ("subnet-0a1b2c3d", "subnet-0e1f2a3b")
    assert imported.missing_endpoints == ()
    created = parsed({"mode": "vpc", "create_vpc": True})
    assert created.in_vpc and created.create_vpc and created.vpc_id is None


def test_the_endpoint_list_covers_what_the_issue_names() -> None:
    assert set(REQUIRED_ENDPOINTS) == {
        "s3",
        "dynamodb",
        "sagemaker.api",
        "sagemaker.runtime",
        "sts",
        "kms",
        "logs",
        "monitoring",
        "ecr.api",
        "ecr.dkr",
        "sqs",
        "sns",
        "events",
        "cloudformation",
    }


def test_a_missing_endpoint_is_named_unless_acknowledged() -> None:
    without = [name for name in REQUIRED_ENDPOINTS if name not in ("ecr.dkr", "sns")]
    message = error({**IMPORTED, "endpoints": without})
    assert message.startswith("environments.dev.network.endpoints = [")
    assert "is missing ecr.dkr, sns:" in message
    assert "acknowledge_missing_endpoints" in message
    acknowledged = parsed(
        {**IMPORTED, "endpoints": without, "acknowledge_missing_endpoints": ["ecr.dkr", "sns"]}
    )
    assert acknowledged.missing_endpoints == ()


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        (
            {"mode": "vpc"},
            "environments.dev.network.vpc_id is missing: mode vpc needs it (with subnet_ids), "
            "or create_vpc: true",
        ),
        (
            {"mode": "public", "vpc_id": "vpc-0123456789abcdef0"},
            "environments.dev.network.vpc_id = 'vpc-0123456789abcdef0' is not allowed: mode is "
            "public",
        ),
        (
            {"mode": "vpc", "create_vpc": True, "subnet_ids": ["subnet-0a1b2c3d"]},
            "environments.dev.network.subnet_ids = ['subnet-0a1b2c3d'] is not allowed with "
            "create_vpc",
        ),
        (
            {**IMPORTED, "subnet_ids": []},
            "environments.dev.network.subnet_ids = [] is not allowed: 1 to 16 ids with vpc_id",
        ),
        (
            {**IMPORTED, "s3_endpoint_ids": []},
            "environments.dev.network.s3_endpoint_ids = [] is not allowed: 1 to 5 ids",
        ),
        (
            {**IMPORTED, "security_group_ids": ["sg-0a1b2c3d"] * 2},
            "environments.dev.network.security_group_ids = ['sg-0a1b2c3d', 'sg-0a1b2c3d'] is not "
            "allowed: an id is listed twice",
        ),
        (
            {**IMPORTED, "subnet_ids": ["subnet-xyz"]},
            "environments.dev.network.subnet_ids[0] = 'subnet-xyz' is not allowed: a subnet id",
        ),
        (
            {**IMPORTED, "endpoints": ["s3", "ssm"]},
            "environments.dev.network.endpoints[1] = 'ssm' is not allowed: one of s3, dynamodb",
        ),
        ({"mode": "private"}, "environments.dev.network.mode = 'private' is not allowed: one of"),
        (
            {"mode": "vpc", "create_vpc": "yes"},
            "environments.dev.network.create_vpc = 'yes' is not allowed: true or false",
        ),
        (
            {"mode": "vpc", "subnet": ["subnet-0a1b2c3d"]},
            "environments.dev.network.subnet is not a known key: did you mean subnet_ids?",
        ),
    ],
)
def test_bad_network_settings_name_the_key(network: dict[str, Any], expected: str) -> None:
    assert error(network).startswith(expected)
