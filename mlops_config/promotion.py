"""How models reach each environment: the optional `promotion` block of cdk.json.

`retrain-per-env` (the default): every environment trains on its own data and keeps its own
registry. `promote`: one environment (`source`, default dev) trains; the others (`targets`, in
this order; default the other environments in cdk.json's order) form a chain, each receiving
the packages its predecessor approves as copies in its own account (its own registry, bucket
and key: README, Promoting one model across accounts). A target runs no training on landing
data; its eval-only pipeline, monitoring and its own approval (prod: promotion) stay.

`promotion_links` validates the chain against the environments' blocks and returns what one
environment needs to know: whom it receives from and whom it sends to (`Promotion`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mlops_config.delivery import EnvironmentName, EnvironmentNames
from mlops_config.errors import ConfigError
from mlops_config.rules import ACCOUNT, OneOf, Section
from mlops_config.trainer import SklearnConfig

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlops_config.pipeline import PipelineConfig

RETRAIN_PER_ENV = "retrain-per-env"
PROMOTE = "promote"
DEFAULT_REGION = "eu-west-1"


class PromotionConfig(Section):
    """Which environment trains, and the chain of environments its models are promoted to."""

    mode: Annotated[Literal["retrain-per-env", "promote"], OneOf()] = "retrain-per-env"
    """`retrain-per-env`: every environment trains on its own data. `promote`: `source` trains
    and each target receives the packages its predecessor in the chain approves."""
    source: EnvironmentName = "dev"
    """`promote`: the environment that trains (a dev or a dedicated build environment)."""
    targets: EnvironmentNames | None = None
    """`promote`: the environments that receive models, in chain order (the first receives
    from `source`, each next one from the one before). Default: every other environment, in
    cdk.json's order."""


def sender_role_name(prefix: str) -> str:
    """The role EventBridge uses to forward approvals to the next environment's bus (named, so
    the receiving bus's policy can name it before it exists)."""
    return f"{prefix}-promotion-sender"


def receiver_role_name(prefix: str) -> str:
    """The role of the function that copies promoted packages in (named, so the sending
    environment's bucket, key and group policies can name it before it exists)."""
    return f"{prefix}-promotion-receiver"


def promotions_bus_name(prefix: str) -> str:
    """The event bus a receiving environment takes its predecessor's approvals on."""
    return f"{prefix}-promotions"


@dataclass(frozen=True)
class PromotionPeer:
    """Another environment of the chain, as this one needs to name it: its account, region
    and the contract names derived from `<project>-<name>`."""

    name: str
    account: str
    region: str
    prefix: str

    @property
    def model_package_group_name(self) -> str:
        return f"{self.prefix}-models"

    @property
    def pipeline_name(self) -> str:
        return f"{self.prefix}-training"

    @property
    def model_artifact_prefix(self) -> str:
        """Where its models live in its artifact bucket (trained or received)."""
        return f"pipelines/{self.pipeline_name}/training/"

    @property
    def sender_role_name(self) -> str:
        return sender_role_name(self.prefix)

    @property
    def receiver_role_name(self) -> str:
        return receiver_role_name(self.prefix)

    @property
    def bus_name(self) -> str:
        return promotions_bus_name(self.prefix)


@dataclass(frozen=True)
class Promotion:
    """One environment's place in the chain. `receives_from`: the environment whose approved
    packages it copies in (None: it trains). `sends_to`: the environment that copies its
    approved packages (None: the end of the chain, or retrain-per-env)."""

    mode: str = RETRAIN_PER_ENV
    source: str | None = None
    receives_from: PromotionPeer | None = None
    sends_to: PromotionPeer | None = None

    @property
    def trains(self) -> bool:
        """Whether landing data trains here (False for a promotion target)."""
        return self.receives_from is None


def _block(context: Mapping[str, Any], name: str) -> dict[str, Any]:
    defaults = context.get("defaults") if isinstance(context.get("defaults"), Mapping) else {}
    block = context["environments"][name]
    merged: dict[str, Any] = dict(defaults or {})
    if isinstance(block, Mapping):
        merged.update(block)
    return merged


def _peer(context: Mapping[str, Any], name: str, project: str, role: str) -> PromotionPeer:
    block = _block(context, name)
    account = block.get("account")
    if account is None:
        raise ConfigError(
            f"environments.{name}.account is missing: promotion.mode = 'promote' makes {name} "
            f"the {role}, which needs its own account"
        )
    if not isinstance(account, str) or not re.fullmatch(ACCOUNT, account):
        raise ConfigError(
            f"environments.{name}.account = {account!r} is not allowed: a 12-digit AWS account "
            "id (quoted)"
        )
    region = block.get("region", DEFAULT_REGION)
    return PromotionPeer(name=name, account=account, region=str(region), prefix=f"{project}-{name}")


def chain(context: Mapping[str, Any], config: PromotionConfig) -> list[str]:
    """The environments in promotion order (source first); [] in retrain-per-env mode."""
    if config.mode != PROMOTE:
        return []
    known = list(context["environments"])
    if config.source not in known:
        raise ConfigError(
            f"promotion.source = {config.source!r} is not allowed: not an environment of "
            f"cdk.json (one of {', '.join(known)})"
        )
    targets = (
        list(config.targets)
        if config.targets is not None
        else [name for name in known if name != config.source]
    )
    if not targets:
        raise ConfigError(
            f"promotion.targets = [] is not allowed: promote mode needs at least one "
            f"environment besides {config.source!r}"
        )
    for name in targets:
        if name not in known:
            raise ConfigError(
                f"promotion.targets = {targets!r} is not allowed: {name!r} is not an "
                f"environment of cdk.json (one of {', '.join(known)})"
            )
    if config.source in targets:
        raise ConfigError(
            f"promotion.targets = {targets!r} is not allowed: {config.source!r} is the source "
            "(it trains; it cannot also receive)"
        )
    if len(set(targets)) != len(targets):
        raise ConfigError(f"promotion.targets = {targets!r} is not allowed: an environment twice")
    return [config.source, *targets]


def promotion_links(
    context: Mapping[str, Any], name: str, project: str, config: PromotionConfig
) -> Promotion:
    """Validate the chain and return `name`'s place in it.

    Raises:
        ConfigError: an unknown source or target, the source among the targets, an environment
            of the chain without an account, two of them in the same account, or in two
            regions.
    """
    order = chain(context, config)
    if not order:
        return Promotion()
    peers = [
        _peer(context, each, project, "source" if i == 0 else "target")
        for i, each in enumerate(order)
    ]
    owners: dict[str, str] = {}
    for peer in peers:
        if peer.account in owners:
            raise ConfigError(
                f"environments.{peer.name}.account = {peer.account!r} is not allowed with "
                f"promotion.mode = 'promote': environments.{owners[peer.account]} has the same "
                "account; each environment of the chain needs its own account"
            )
        owners[peer.account] = peer.name
    for sender, receiver in zip(peers, peers[1:], strict=False):
        if receiver.region != sender.region:
            raise ConfigError(
                f"environments.{receiver.name}.region = {receiver.region!r} is not allowed with "
                f"promotion.mode = 'promote': {sender.name}, whose packages it receives, is in "
                f"{sender.region}, and a copied package keeps its inference image URI, which "
                "serves its own region only (keep the chain in one region)"
            )
    if name not in order:
        return Promotion(mode=PROMOTE, source=config.source)
    index = order.index(name)
    return Promotion(
        mode=PROMOTE,
        source=config.source,
        receives_from=peers[index - 1] if index > 0 else None,
        sends_to=peers[index + 1] if index + 1 < len(peers) else None,
    )


def _trainer_image(pipeline: PipelineConfig) -> tuple[str, str, object]:
    """The pipeline key, and its value, that picks the inference image a package of this
    trainer keeps when copied: scikit-learn's for sklearn, else XGBoost's (a custom trainer's
    own image only trains, which a target does not: it may differ by account)."""
    if pipeline.trainer == "sklearn":
        version = (pipeline.sklearn or SklearnConfig()).framework_version
        return "pipeline.sklearn.framework_version", "the scikit-learn image", version
    return (
        "pipeline.xgboost_framework_version",
        "the XGBoost image",
        (pipeline.xgboost_framework_version),
    )


def check_chain_trainers(order: list[str], pipeline_of: Callable[[str], PipelineConfig]) -> None:
    """Every environment of the chain must train with the source's trainer and image: a copied
    package keeps the source's inference image, and a target's eval-only Evaluate loads only
    its own trainer's model (its endpoint role pulls both trainers' inference repositories).

    Raises:
        ConfigError: a member whose `pipeline.trainer` (or that trainer's image) differs from
            the source's.
    """
    if not order:
        return
    source = order[0]
    first = pipeline_of(source)
    key, what, image = _trainer_image(first)
    for name in order[1:]:
        pipeline = pipeline_of(name)
        fix = (
            f"a copied package keeps {source}'s image, which {name}'s eval-only Evaluate cannot "
            "load; set the same value in every environment of the chain"
        )
        if pipeline.trainer != first.trainer:
            raise ConfigError(
                f"environments.{name}.pipeline.trainer = {pipeline.trainer!r} is not allowed "
                f"with promotion.mode = 'promote': {source}, whose packages {name} receives, "
                f"trains with {first.trainer!r} ({fix})"
            )
        if _trainer_image(pipeline)[2] != image:
            raise ConfigError(
                f"environments.{name}.{key} = {_trainer_image(pipeline)[2]!r} is not allowed "
                f"with promotion.mode = 'promote': {source}, whose packages {name} receives, "
                f"uses {image!r} for {what} ({fix})"
            )
