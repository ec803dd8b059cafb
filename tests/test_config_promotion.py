"""Config of `promotion`: the chain each environment sits in, and one-line errors for account
set-ups that cannot promote (same account twice, a missing target, a target without an
account, the source among the targets)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest

from mlops_config import ConfigError, parse_environment, read_cdk_json_context


def promote_context(**promotion: Any) -> dict[str, Any]:
    """cdk.json's context in promote mode, with the targets' retrain settings cleared (they
    train nothing)."""
    context = copy.deepcopy(read_cdk_json_context())
    context["promotion"] = {"mode": "promote", **promotion}
    context["environments"]["staging"]["trigger"] = {"retrain_schedule": None}
    context["environments"]["prod"]["monitoring"] = {"retrain_on_alarm": False}
    return context


def error_of(context: dict[str, Any], env: str) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_environment(context, env)
    return str(raised.value)


def test_without_a_promotion_block_every_environment_trains() -> None:
    context = read_cdk_json_context()
    for env in ("dev", "staging", "prod"):
        promotion = parse_environment(context, env).promotion
        assert promotion.mode == "retrain-per-env"
        assert promotion.trains and promotion.sends_to is None


def test_retrain_per_env_ignores_accounts_a_chain_would_refuse() -> None:
    context = copy.deepcopy(read_cdk_json_context())
    context["promotion"] = {"mode": "retrain-per-env"}
    context["environments"]["prod"]["account"] = context["environments"]["dev"]["account"]
    assert parse_environment(context, "prod").promotion.trains


def test_default_chain_is_the_other_environments_in_cdk_json_order() -> None:
    context = promote_context()
    dev, staging, prod = (
        parse_environment(context, e).promotion for e in ("dev", "staging", "prod")
    )
    assert dev.trains and dev.receives_from is None
    assert dev.sends_to is not None and dev.sends_to.name == "staging"
    assert staging.receives_from is not None and staging.receives_from.name == "dev"
    assert staging.sends_to is not None and staging.sends_to.name == "prod"
    assert prod.receives_from is not None and prod.receives_from.name == "staging"
    assert prod.sends_to is None and not prod.trains


def test_peers_carry_the_accounts_regions_and_contract_names_of_cdk_json() -> None:
    context = promote_context()
    for env in ("dev", "staging", "prod"):
        context["environments"][env]["region"] = "eu-central-1"
    staging = parse_environment(context, "staging").promotion
    assert staging.receives_from is not None and staging.sends_to is not None
    assert staging.receives_from.account == "111111111111"
    assert staging.receives_from.region == "eu-central-1"
    assert staging.receives_from.model_package_group_name == "mlops-loop-dev-models"
    assert (
        staging.receives_from.model_artifact_prefix == "pipelines/mlops-loop-dev-training/training/"
    )
    assert staging.sends_to.account == "333333333333"
    assert staging.sends_to.region == "eu-central-1"
    assert staging.sends_to.receiver_role_name == "mlops-loop-prod-promotion-receiver"
    # the names a peer derives are the ones that environment's own config derives
    dev = parse_environment(context, "dev")
    assert staging.receives_from.model_package_group_name == dev.model_package_group_name
    assert staging.receives_from.pipeline_name == dev.pipeline_name


def test_explicit_source_and_targets_set_the_chain() -> None:
    context = promote_context(source="staging", targets=["prod"])
    context["environments"]["staging"]["trigger"] = {}
    staging = parse_environment(context, "staging").promotion
    assert staging.trains and staging.sends_to is not None and staging.sends_to.name == "prod"
    # dev is outside the chain: it trains on its own, sends nothing
    dev = parse_environment(context, "dev").promotion
    assert dev.trains and dev.sends_to is None and dev.receives_from is None


@pytest.mark.parametrize(
    ("promotion", "env", "message"),
    [
        (
            {"targets": ["staging", "qa"]},
            "dev",
            "promotion.targets = ['staging', 'qa'] is not allowed: 'qa' is not an environment "
            "of cdk.json (one of dev, staging, prod)",
        ),
        (
            {"source": "build"},
            "dev",
            "promotion.source = 'build' is not allowed: not an environment of cdk.json "
            "(one of dev, staging, prod)",
        ),
        (
            {"targets": ["dev", "prod"]},
            "prod",
            "promotion.targets = ['dev', 'prod'] is not allowed: 'dev' is the source (it trains; "
            "it cannot also receive)",
        ),
        (
            {"targets": ["prod", "prod"]},
            "prod",
            "promotion.targets = ['prod', 'prod'] is not allowed: an environment twice",
        ),
        ({"targets": []}, "dev", "promotion.targets = [] is not allowed: promote mode needs"),
        ({"mode": "copy"}, "dev", "promotion.mode = 'copy' is not allowed: one of "),
        ({"targets": "prod"}, "dev", "promotion.targets = 'prod' is not allowed"),
        ({"sourc": "dev"}, "dev", "promotion.sourc is not a known key: did you mean source?"),
    ],
)
def test_an_inconsistent_chain_is_one_line_naming_the_key(
    promotion: dict[str, Any], env: str, message: str
) -> None:
    assert error_of(promote_context(**promotion), env).startswith(message)


def test_two_environments_of_the_chain_in_one_account_are_refused() -> None:
    context = promote_context()
    context["environments"]["prod"]["account"] = "222222222222"
    assert error_of(context, "dev") == (
        "environments.prod.account = '222222222222' is not allowed with promotion.mode = "
        "'promote': environments.staging has the same account; each environment of the chain "
        "needs its own account"
    )


def test_a_target_without_an_account_is_refused_in_every_environment() -> None:
    context = promote_context()
    del context["environments"]["prod"]["account"]
    expected = (
        "environments.prod.account is missing: promotion.mode = 'promote' makes prod the "
        "target, which needs its own account"
    )
    assert error_of(context, "dev") == expected  # dev's synth already names the broken target
    context = promote_context()
    context["environments"]["prod"]["account"] = 333333333333
    assert "environments.prod.account = 333333333333 is not allowed" in error_of(context, "dev")


@pytest.mark.parametrize(
    ("env", "key", "value", "message"),
    [
        (
            "staging",
            "trigger",
            {"retrain_schedule": "cron(0 3 ? * MON *)"},
            "environments.staging.trigger.retrain_schedule = 'cron(0 3 ? * MON *)' is not "
            "allowed with promotion.mode = 'promote': staging receives its models from dev "
            "and trains nothing (retrain in dev)",
        ),
        (
            "prod",
            "monitoring",
            {"retrain_on_alarm": True},
            "environments.prod.monitoring.retrain_on_alarm = True is not allowed with "
            "promotion.mode = 'promote': prod receives its models from dev",
        ),
    ],
)
def test_settings_a_chain_member_cannot_honour_are_refused(
    env: str, key: str, value: dict[str, Any], message: str
) -> None:
    context = promote_context()
    context["environments"][env][key] = value
    assert error_of(context, env).startswith(message)


def test_the_source_keeps_its_retrain_settings() -> None:
    context = promote_context()
    context["environments"]["dev"]["trigger"] = {"retrain_schedule": "cron(0 3 ? * MON *)"}
    dev = parse_environment(context, "dev")
    assert dev.monitoring.retrain_on_alarm and dev.trigger.retrain_schedule is not None


def test_the_cdk_app_reads_the_promotion_block_and_fails_before_synth_with_one_line() -> None:
    """app.py passes cdk.json's top-level `promotion` to the configuration (not only
    `defaults` and `environments`): a broken chain stops `cdk synth` with one line."""
    context = {**read_cdk_json_context(), "promotion": {"mode": "promote", "targets": ["qa"]}}
    result = subprocess.run(
        [sys.executable, "app.py"],
        env={"PATH": "/usr/bin:/bin", "CDK_CONTEXT_JSON": json.dumps({"env": "dev", **context})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "cdk.json configuration error: promotion.targets = ['qa'] is not allowed: 'qa' is not "
        "an environment of cdk.json (one of dev, staging, prod)"
    )


@pytest.mark.parametrize("network", [None, {"mode": "vpc", "create_vpc": True}])
def test_a_chain_across_regions_is_refused_in_every_network_mode(
    network: dict[str, Any] | None,
) -> None:
    """A copy keeps the source's inference image URI, which serves its own region only (#19 S1:
    only vpc mode was refused before)."""
    context = promote_context()
    if network:
        for env in ("dev", "staging"):
            context["environments"][env]["network"] = network
    assert parse_environment(context, "staging").promotion.receives_from is not None
    context["environments"]["prod"]["region"] = "eu-central-1"
    expected = (
        "environments.prod.region = 'eu-central-1' is not allowed with promotion.mode = "
        "'promote': staging, whose packages it receives, is in eu-west-1, and a copied package "
        "keeps its inference image URI, which serves its own region only (keep the chain in one "
        "region)"
    )
    for env in ("dev", "staging", "prod"):  # every environment of the chain says so
        assert error_of(context, env) == expected


@pytest.mark.parametrize(("key", "value"), [("source", "staging"), ("targets", ["prod"])])
def test_a_chain_in_retrain_per_env_mode_is_an_error_naming_the_key(key: str, value: Any) -> None:
    """#19 N4: it was silently ignored."""
    context = copy.deepcopy(read_cdk_json_context())
    context["promotion"] = {"mode": "retrain-per-env", key: value}
    assert error_of(context, "dev") == (
        f"promotion.{key} = {value!r} is not allowed with promotion.mode = 'retrain-per-env': "
        f"every environment trains (set mode to 'promote', or remove {key})"
    )
    del context["promotion"]["mode"]  # the default mode, too
    assert error_of(context, "dev").startswith(f"promotion.{key} = ")


def test_a_promotion_target_can_score_in_batch() -> None:
    """The received copies live under the training pipeline's models prefix (promoted/), which
    the scoring model role reads (tests/test_batch_scoring_models.py)."""
    context = promote_context()
    context["environments"]["staging"]["serving"] = {"mode": "batch"}
    staging = parse_environment(context, "staging")
    assert staging.serving.is_batch and not staging.promotion.trains
    context["environments"]["dev"]["serving"] = {"mode": "batch"}
    assert parse_environment(context, "dev").serving.is_batch  # the source trains: fine


def test_a_chain_whose_target_trains_with_another_trainer_is_refused_in_every_member() -> None:
    """dev trains sklearn, staging and prod inherit xgboost: the copied package would keep the
    scikit-learn image, whose model prod's eval-only Evaluate cannot load (README, Trainers)."""
    context = promote_context()
    context["environments"]["dev"]["pipeline"] = {"trainer": "sklearn"}
    for env in ("dev", "staging", "prod"):
        message = error_of(context, env)
        assert message.startswith(
            "environments.staging.pipeline.trainer = 'xgboost' is not allowed with "
            "promotion.mode = 'promote': dev, whose packages staging receives, trains with "
            "'sklearn'"
        ), message
        assert "\n" not in message


def test_the_trainer_of_a_later_target_is_compared_with_the_source() -> None:
    context = promote_context()
    context["environments"]["prod"]["pipeline"] = {"trainer": "sklearn"}
    assert error_of(context, "dev").startswith("environments.prod.pipeline.trainer = 'sklearn'")


def test_a_chain_training_sklearn_everywhere_is_accepted() -> None:
    context = promote_context()
    context["defaults"]["pipeline"] = {
        **context["defaults"].get("pipeline", {}),
        "trainer": "sklearn",
    }
    for env in ("dev", "staging", "prod"):
        assert parse_environment(context, env).pipeline.trainer == "sklearn"


def test_retrain_per_env_allows_a_trainer_per_environment() -> None:
    context = copy.deepcopy(read_cdk_json_context())
    context["environments"]["dev"]["pipeline"] = {"trainer": "sklearn"}
    assert parse_environment(context, "prod").pipeline.trainer == "xgboost"


def test_a_custom_chain_may_train_with_each_accounts_own_image() -> None:
    """A custom trainer's image only trains (its package serves with XGBoost's image), and each
    environment's must be in its own account: a chain differing only there is accepted."""
    context = promote_context()
    for env, account in (("dev", "111111111111"), ("staging", "222222222222"),
                         ("prod", "333333333333")):  # fmt: skip
        image = f"{account}.dkr.ecr.eu-west-1.amazonaws.com/my-trainer@sha256:" + "ab" * 32
        context["environments"][env]["pipeline"] = {
            "trainer": "custom",
            "custom": {"image_uri": image, "source_dir": "examples/custom_trainer"},
        }
    assert parse_environment(context, "prod").pipeline.trainer == "custom"


def test_a_chain_of_xgboost_and_custom_is_refused() -> None:
    context = promote_context()
    context["environments"]["prod"]["pipeline"] = {
        "trainer": "custom",
        "custom": {
            "image_uri": "333333333333.dkr.ecr.eu-west-1.amazonaws.com/my-trainer@sha256:"
            + "ab" * 32,
            "source_dir": "examples/custom_trainer",
        },
    }
    assert error_of(context, "staging").startswith(
        "environments.prod.pipeline.trainer = 'custom' is not allowed with promotion.mode = "
        "'promote': dev, whose packages prod receives, trains with 'xgboost'"
    )
