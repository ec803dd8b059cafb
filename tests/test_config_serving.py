"""serving.mode: realtime by default; serverless takes its memory and concurrency within the
bounds of SageMaker's ProductionVariantServerlessConfig, refuses the realtime keys, a VPC and
Model Monitor (AWS lists VPC configuration and data capture among its exclusions). Batch mode's
keys: tests/test_config_batch.py."""

from __future__ import annotations

import copy
from typing import Any, get_args

import botocore.session
import pytest

from mlops_config import ConfigError, parse_environment, read_cdk_json_context
from mlops_config.serving import (
    MAX_SERVERLESS_CONCURRENCY,
    REALTIME_KEYS,
    SERVERLESS_KEYS,
    MemorySize,
    ServingConfig,
)

SERVERLESS = {"mode": "serverless"}


def serving_context(serving: dict[str, Any], **sections: Any) -> dict[str, Any]:
    """cdk.json's context with dev's `serving` block replaced and `sections` set beside it."""
    context = copy.deepcopy(read_cdk_json_context())
    block = context["environments"]["dev"]
    block["serving"] = serving
    block.update(sections)
    return context


def parsed(serving: dict[str, Any], **sections: Any) -> ServingConfig:
    return parse_environment(serving_context(serving, **sections), "dev").serving


def error(serving: dict[str, Any], **sections: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        parsed(serving, **sections)
    return str(raised.value)


def serverless_shape(member: str) -> Any:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.shape_for("ProductionVariantServerlessConfig").members[member]


def test_every_environment_of_cdk_json_serves_in_real_time() -> None:
    context = read_cdk_json_context()
    for name in context["environments"]:
        serving = parse_environment(context, name).serving
        assert serving.mode == "realtime" and not serving.serverless


def test_serverless_alone_changes_only_the_mode() -> None:
    realtime = parsed({})
    serverless = parsed(SERVERLESS)
    assert serverless.serverless
    assert serverless.model_dump() == {**realtime.model_dump(), "mode": "serverless"}
    assert (serverless.memory_size_mb, serverless.max_concurrency) == (2048, 5)
    assert serverless.provisioned_concurrency == 0


def test_the_bounds_are_the_ones_sagemaker_accepts() -> None:
    memory = serverless_shape("MemorySizeInMB")
    assert get_args(MemorySize) == tuple(
        range(memory.metadata["min"], memory.metadata["max"] + 1, 1024)
    )
    for member in ("MaxConcurrency", "ProvisionedConcurrency"):
        assert serverless_shape(member).metadata == {"min": 1, "max": MAX_SERVERLESS_CONCURRENCY}


def test_serverless_keys_land_in_their_settings() -> None:
    serving = parsed(
        {
            **SERVERLESS,
            "memory_size_mb": 6144,
            "max_concurrency": 200,
            "provisioned_concurrency": 200,
            "bake_minutes": 0,
            "deploy_on": "promotion",
        }
    )
    assert (serving.memory_size_mb, serving.max_concurrency) == (6144, 200)
    assert (serving.provisioned_concurrency, serving.bake_minutes) == (200, 0)
    assert serving.deploy_on == "promotion"


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("memory_size_mb", value, "one of 1024, 2048, 3072, 4096, 5120, 6144")
        for value in (1000, 512, 8192, 0, 2048.0, True, "2048", None)
    ]
    + [
        ("max_concurrency", value, "an integer from 1 to 200")
        for value in (0, 201, True, 5.0, "5", None)
    ]
    + [
        ("provisioned_concurrency", value, "an integer from 0 to 200")
        for value in (-1, 201, False, 1.0, "1")
    ],
)
def test_a_bad_serverless_value_is_refused(key: str, value: Any, allowed: str) -> None:
    assert error({**SERVERLESS, key: value}) == (
        f"environments.dev.serving.{key} = {value!r} is not allowed: {allowed}"
    )


def test_provisioned_concurrency_is_at_most_the_max() -> None:
    assert error({**SERVERLESS, "max_concurrency": 3, "provisioned_concurrency": 4}) == (
        "environments.dev.serving.provisioned_concurrency = 4 is not allowed: at most "
        "max_concurrency (3)"
    )
    assert parsed({**SERVERLESS, "max_concurrency": 3, "provisioned_concurrency": 3})


REALTIME_VALUES = {
    "instance_type": "ml.c5.large",
    "initial_instance_count": 2,
    "min_capacity": 2,
    "max_capacity": 3,
    "target_invocations_per_instance": 100,
    "capture_sampling_percent": 20,
    "canary_traffic_percent": 20,
}


def test_the_realtime_values_cover_every_realtime_key() -> None:
    assert set(REALTIME_VALUES) == set(REALTIME_KEYS)


@pytest.mark.parametrize("key", REALTIME_KEYS)
def test_a_realtime_key_is_refused_in_serverless_mode(key: str) -> None:
    value = REALTIME_VALUES[key]
    assert error({**SERVERLESS, key: value}) == (
        f"environments.dev.serving.{key} = {value!r} is not allowed: mode is serverless (it "
        "applies to realtime mode only: remove it or leave its default)"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [("memory_size_mb", 4096), ("max_concurrency", 10), ("provisioned_concurrency", 1)],
)
def test_a_serverless_key_is_refused_in_realtime_mode(key: str, value: int) -> None:
    assert key in SERVERLESS_KEYS
    assert error({key: value}) == (
        f"environments.dev.serving.{key} = {value!r} is not allowed: mode is realtime (it "
        "applies to serverless mode only: remove it or leave its default)"
    )


def test_the_realtime_defaults_written_out_do_not_block_serverless() -> None:
    """cdk.json's defaults block writes every key with its default: an environment switching
    to serverless must not have to remove them."""
    defaults = read_cdk_json_context()["defaults"]["serving"]
    assert set(REALTIME_KEYS) <= set(defaults)
    assert parsed({**defaults, **SERVERLESS}).serverless


def test_an_unknown_mode_names_the_three() -> None:
    assert error({"mode": "lambda"}) == (
        "environments.dev.serving.mode = 'lambda' is not allowed: one of realtime, serverless, "
        "batch"
    )


def test_serverless_is_refused_in_a_vpc() -> None:
    assert error(SERVERLESS, network={"mode": "vpc", "create_vpc": True}) == (
        "environments.dev.serving.mode = 'serverless' is not allowed with network.mode = 'vpc': "
        "a serverless endpoint takes no VPC configuration (use realtime in a VPC)"
    )


def test_serverless_is_refused_with_model_monitor() -> None:
    assert error(SERVERLESS, monitoring={"engine": "model-monitor"}) == (
        "environments.dev.serving.mode = 'serverless' is not allowed with monitoring.engine = "
        "'model-monitor': a serverless endpoint has no data capture to monitor"
    )


def test_the_realtime_keys_are_every_setting_the_instance_endpoint_takes() -> None:
    """Derived from what the endpoint construct consumes, not from the config's own list: a
    realtime setting added to the construct but not refused in serverless mode fails here."""
    from dataclasses import fields

    from constructs.guarded_endpoint import InstanceCapacity, ServerlessCapacity

    renamed = {"canary_traffic_percent": "canary_percent"}
    assert {f.name for f in fields(InstanceCapacity)} == {renamed.get(k, k) for k in REALTIME_KEYS}
    assert {f.name for f in fields(ServerlessCapacity)} == set(SERVERLESS_KEYS)
