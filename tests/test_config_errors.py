"""The one-line error a user sees for a wrong cdk.json: an unknown key names the nearest key of
its own block (however deep), and it is reported before a bad value beside it (a misspelt key
is why its neighbour seems wrong). Keys and their neighbours are the documented configuration
reference's (README), not read from the code under test."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_config import ConfigError, parse_environment, read_cdk_json_context


def error_for(block: str, values: dict[str, Any]) -> str:
    context = copy.deepcopy(read_cdk_json_context())
    node = context["environments"]["dev"]
    for part in block.split("."):
        node = node.setdefault(part, {})
    node.update(values)
    with pytest.raises(ConfigError) as raised:
        parse_environment(context, "dev")
    return str(raised.value)


@pytest.mark.parametrize(
    ("block", "values", "message"),
    [
        # one level down: the serving block's keys, not the environment's
        (
            "serving",
            {"instnace_type": "ml.m5.large"},
            "environments.dev.serving.instnace_type is not a known key: did you mean "
            "instance_type?",
        ),
        # two levels down
        (
            "pipeline.hyperparameters",
            {"max_dept": 3},
            "environments.dev.pipeline.hyperparameters.max_dept is not a known key: did you "
            "mean max_depth?",
        ),
    ],
)
def test_an_unknown_key_names_the_nearest_key_of_its_own_block(
    block: str, values: dict[str, Any], message: str
) -> None:
    assert error_for(block, values) == message


def test_an_unknown_key_is_reported_before_a_bad_value_beside_it() -> None:
    # pydantic reports the declared field (metric_floor) before the extra key (metirc)
    assert error_for("pipeline", {"metric_floor": "high", "metirc": "auc"}) == (
        "environments.dev.pipeline.metirc is not a known key: did you mean metric? (and 1 more)"
    )
