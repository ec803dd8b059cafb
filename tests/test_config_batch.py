"""serving.mode = batch: no endpoint, so the endpoint keys (realtime, serverless, bake) keep their
defaults; `serving.batch` sizes the transform job within CreateTransformJob's bounds and names
the row id column, which is neither the target nor a feature; Model Monitor (it watches an
endpoint) is refused; the batch keys are refused in the endpoint modes."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from mlops_config import parse_environment, read_cdk_json_context
from mlops_config.serving import (
    ENDPOINT_KEYS,
    MAX_PAYLOAD_MB,
    REALTIME_KEYS,
    SERVERLESS_KEYS,
    BatchScoringConfig,
    ServingConfig,
)
from tests.test_config_serving import error, parsed, serving_context

BATCH = {"mode": "batch"}


def transform_member(member: str) -> Any:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model("CreateTransformJob").input_shape.members[member]


def test_batch_alone_changes_only_the_mode() -> None:
    realtime = parsed({})
    batch = parsed(BATCH)
    assert batch.is_batch and not batch.serverless and not realtime.is_batch
    assert batch.model_dump() == {**realtime.model_dump(), "mode": "batch"}
    assert batch.batch == BatchScoringConfig(
        instance_type="ml.m5.large",
        instance_count=1,
        id_column="id",
        max_payload_mb=6,
        max_concurrent_transforms=1,
    )


def test_batch_keys_land_in_their_settings() -> None:
    scoring = parsed(
        {
            **BATCH,
            "deploy_on": "promotion",
            "batch": {
                "instance_type": "ml.c5.2xlarge",
                "instance_count": 3,
                "id_column": "txn_id",
                "max_payload_mb": 25,
                "max_concurrent_transforms": 4,
            },
        }
    )
    assert scoring.deploy_on == "promotion"
    assert scoring.batch.model_dump() == {
        "instance_type": "ml.c5.2xlarge",
        "instance_count": 3,
        "id_column": "txn_id",
        "max_payload_mb": 25,
        "max_concurrent_transforms": 4,
    }


def test_the_payload_bound_is_the_one_sagemaker_accepts() -> None:
    payload = transform_member("MaxPayloadInMB")
    assert payload.metadata == {"min": 0}
    assert f"cannot be greater than {MAX_PAYLOAD_MB} MB" in payload.documentation
    assert (
        f"(MaxConcurrentTransforms * MaxPayloadInMB)</code> also cannot exceed {MAX_PAYLOAD_MB}"
        in (payload.documentation)
    )
    # 0 (no limit) is for streamed payloads only: a CSV mini-batch needs a limit.
    assert error({**BATCH, "batch": {"max_payload_mb": 0}}) == (
        "environments.dev.serving.batch.max_payload_mb = 0 is not allowed: an integer from 1 to 100"
    )


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("instance_type", "m5.large", "a SageMaker instance type such as ml.m5.xlarge"),
        ("instance_count", 0, "an integer from 1 to 20"),
        ("instance_count", True, "an integer from 1 to 20"),
        ("id_column", "row id", "a column name (letters, digits, _)"),
        ("id_column", None, "a column name (letters, digits, _)"),
        ("max_payload_mb", 101, "an integer from 1 to 100"),
        ("max_payload_mb", "6", "an integer from 1 to 100"),
        ("max_concurrent_transforms", 0, "an integer from 1 to 64"),
        ("max_concurrent_transforms", 65, "an integer from 1 to 64"),
    ],
)
def test_a_bad_batch_value_is_refused(key: str, value: Any, allowed: str) -> None:
    assert error({**BATCH, "batch": {key: value}}) == (
        f"environments.dev.serving.batch.{key} = {value!r} is not allowed: {allowed}"
    )


def test_concurrent_transforms_times_payload_is_at_most_100_mb() -> None:
    assert error({**BATCH, "batch": {"max_payload_mb": 26, "max_concurrent_transforms": 4}}) == (
        "environments.dev.serving.batch.max_concurrent_transforms = 4 is not allowed: at most "
        "3 with max_payload_mb 26 (SageMaker refuses more than 100 MB in flight per instance)"
    )
    assert parsed({**BATCH, "batch": {"max_payload_mb": 25, "max_concurrent_transforms": 4}})


def test_an_unknown_batch_key_names_the_nearest() -> None:
    assert error({**BATCH, "batch": {"instance_typ": "ml.m5.large"}}) == (
        "environments.dev.serving.batch.instance_typ is not a known key: did you mean "
        "instance_type?"
    )


ENDPOINT_VALUES = {
    "instance_type": ("ml.c5.large", "realtime mode"),
    "initial_instance_count": (2, "realtime mode"),
    "min_capacity": (2, "realtime mode"),
    "max_capacity": (3, "realtime mode"),
    "target_invocations_per_instance": (100, "realtime mode"),
    "capture_sampling_percent": (20, "realtime mode"),
    "canary_traffic_percent": (20, "realtime mode"),
    "memory_size_mb": (4096, "serverless mode"),
    "max_concurrency": (10, "serverless mode"),
    "provisioned_concurrency": (1, "serverless mode"),
    "bake_minutes": (0, "realtime and serverless modes"),
}


def test_every_endpoint_key_is_refused_in_batch_mode_and_only_those() -> None:
    assert set(ENDPOINT_VALUES) == {*REALTIME_KEYS, *SERVERLESS_KEYS, *ENDPOINT_KEYS}
    assert set(ServingConfig.model_fields) - set(ENDPOINT_VALUES) == {"mode", "deploy_on", "batch"}


@pytest.mark.parametrize("key", sorted(ENDPOINT_VALUES))
def test_an_endpoint_key_is_refused_in_batch_mode(key: str) -> None:
    value, modes = ENDPOINT_VALUES[key]
    assert error({**BATCH, key: value}) == (
        f"environments.dev.serving.{key} = {value!r} is not allowed: mode is batch (it applies "
        f"to {modes} only: remove it or leave its default)"
    )


@pytest.mark.parametrize("mode", ["realtime", "serverless"])
@pytest.mark.parametrize(
    ("key", "value"),
    [("instance_type", "ml.c5.large"), ("instance_count", 2), ("id_column", "txn_id")],
)
def test_a_batch_key_is_refused_in_an_endpoint_mode(mode: str, key: str, value: Any) -> None:
    assert error({"mode": mode, "batch": {key: value}}) == (
        f"environments.dev.serving.batch.{key} = {value!r} is not allowed: mode is {mode} (it "
        "applies to batch mode only: remove it or leave its default)"
    )


def test_the_defaults_written_out_do_not_block_batch() -> None:
    """cdk.json's defaults block writes every key with its default: an environment switching
    to batch must not have to remove them."""
    defaults = read_cdk_json_context()["defaults"]["serving"]
    assert set(ServingConfig.model_fields) == set(defaults)
    assert parsed({**defaults, **BATCH}).is_batch


def test_batch_is_refused_with_model_monitor() -> None:
    assert error(BATCH, monitoring={"engine": "model-monitor"}) == (
        "environments.dev.serving.mode = 'batch' is not allowed with monitoring.engine = "
        "'model-monitor': Model Monitor watches an endpoint and batch mode has none (use "
        "evidently, which checks each scored version)"
    )


def test_batch_runs_in_a_vpc() -> None:
    assert parsed(BATCH, network={"mode": "vpc", "create_vpc": True}).is_batch


@pytest.mark.parametrize("column", ["is_fraud", "amount"])
def test_the_id_column_is_neither_the_target_nor_a_feature(column: str) -> None:
    assert error({**BATCH, "batch": {"id_column": column}}) == (
        f"environments.dev.serving.batch.id_column = {column!r} is not allowed: it is the "
        "target or a feature; the row id must be a column of its own"
    )


def test_batch_takes_category_features() -> None:
    """The Check step writes category values as text and the model's inference script (script
    mode) maps them with its training encoding, one prediction line per row
    (tests/steps/test_local_score.py scores through it)."""
    context = serving_context(BATCH)
    context["schema"]["features"][1]["type"] = "category"
    config = parse_environment(context, "dev")
    assert config.serving.is_batch
    assert config.schema.features[1].type == "category"
