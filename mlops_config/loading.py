"""Reading cdk.json: merge `defaults` with one environment's block and validate the result.

`cdk.json` context holds `project`, the feature `schema`, a `defaults` block and one block per
environment (`dev`, `staging`, `prod`) that overrides `defaults` key by key (objects merge,
any other value replaces). Anything wrong fails here, before any synth work, with one message
naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from mlops_config.delivery import DeliveryConfig
from mlops_config.environment import EnvironmentConfig, EnvironmentSettings
from mlops_config.errors import ConfigError, Location, missing, not_an_object, translate
from mlops_config.monitoring import MODEL_MONITOR_MAX_FEATURES
from mlops_config.pipeline import LOWER_IS_BETTER, PROBLEM_METRICS, UNIT_INTERVAL, PipelineConfig
from mlops_config.promotion import (
    PROMOTE,
    Promotion,
    PromotionConfig,
    chain,
    check_chain_trainers,
    promotion_links,
)
from mlops_config.rules import PROJECT, Text
from mlops_config.schema import Schema
from mlops_config.tracking import network_refusal
from mlops_config.trainer import trainer_refusal
from mlops_config.tuning import tuning_refusal

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
ALL_ENVIRONMENTS = "all"
# `-c env=delivery`: the delivery pipeline of cdk.json `delivery` (stacks/delivery_stack.py).
DELIVERY = "delivery"
# cdk.json `promotion`: which environment trains and where its models go (mlops_config.promotion).
PROMOTION = "promotion"
DEFAULT_ENVIRONMENT = "dev"

Project = Annotated[str, Text(PROJECT, "lowercase letters, digits and '-', 2 to 21 chars")]
_PROJECT: TypeAdapter[str] = TypeAdapter(Project)
M = TypeVar("M", bound=BaseModel)


def _object(parent: Mapping[str, Any], name: str, key: str) -> Mapping[str, Any]:
    if name not in parent:
        raise missing(key)
    value = parent[name]
    if not isinstance(value, Mapping):
        raise not_an_object(key, value)
    return value


def _validate(model: type[M], value: Any, prefix: str | Callable[[ErrorDetails], str]) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise translate(error, model, prefix) from None


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _holds(block: Any, loc: Location) -> bool:
    """Whether `block` (raw cdk.json) has a value at `loc`."""
    for part in loc:
        if isinstance(part, int):
            if not isinstance(block, list) or part >= len(block):
                return False
        elif not isinstance(block, Mapping) or part not in block:
            return False
        block = block[part]
    return True


def environment_names(context: Mapping[str, Any]) -> list[str]:
    """The environments cdk.json defines, sorted."""
    return sorted(_object(context, "environments", "environments"))


def parse_environment(context: Mapping[str, Any], name: str) -> EnvironmentConfig:
    """Merge `defaults` with `environments.<name>` and validate the result."""
    environments = _object(context, "environments", "environments")
    if name not in environments:
        raise ConfigError(
            f"env = {name!r} is not a known environment: one of "
            f"{', '.join(sorted(environments))} (or '{ALL_ENVIRONMENTS}')"
        )
    if "project" not in context:
        raise missing("project")
    try:
        project = _PROJECT.validate_python(context["project"])
    except ValidationError as error:
        raise translate(error, None, "project") from None
    schema = _validate(Schema, _object(context, "schema", "schema"), "schema")
    block = _object(environments, name, f"environments.{name}")
    here = f"environments.{name}"

    def written_in(line: ErrorDetails) -> str:
        # A misspelt key is named where it is written: this environment's block or defaults.
        if line["type"] == "extra_forbidden" and not _holds(block, line["loc"]):
            return "defaults"
        return here

    merged = _merge(_object(context, "defaults", "defaults"), block)
    settings = _validate(EnvironmentSettings, merged, written_in)
    if settings.monitoring.engine == "model-monitor" and (
        len(schema.features) > MODEL_MONITOR_MAX_FEATURES
    ):
        raise ConfigError(
            f"{here}.monitoring.engine = 'model-monitor' is not allowed with "
            f"{len(schema.features)} features: its drift alarm reads one metric per feature "
            f"and CloudWatch alarms read at most {MODEL_MONITOR_MAX_FEATURES} (use evidently)"
        )
    if settings.serving.serverless:
        # AWS lists both among Serverless Inference's feature exclusions.
        if settings.network.in_vpc:
            raise ConfigError(
                f"{here}.serving.mode = 'serverless' is not allowed with network.mode = 'vpc': "
                "a serverless endpoint takes no VPC configuration (use realtime in a VPC)"
            )
        if settings.monitoring.engine == "model-monitor":
            raise ConfigError(
                f"{here}.serving.mode = 'serverless' is not allowed with monitoring.engine = "
                "'model-monitor': a serverless endpoint has no data capture to monitor"
            )
    _check_problem_type(settings, schema, here)
    refusal = trainer_refusal(settings, schema)
    if refusal is not None:
        raise ConfigError(f"{here}.{refusal}")
    if settings.serving.is_batch:
        _check_batch(settings, schema, here)
    refusal = network_refusal(settings.tracking, settings.network)
    if refusal is not None:
        raise ConfigError(f"{here}.{refusal}")
    _check_tracking_server(here, settings)
    categories = [f.name for f in schema.features if f.type == "category"]
    if categories and settings.pipeline.training_instance_count > 1:
        raise ConfigError(
            f"{here}.pipeline.training_instance_count = "
            f"{settings.pipeline.training_instance_count} is not allowed with category "
            f"features ({', '.join(categories)}): each host would encode its own shard's "
            "categories differently (train on 1 instance)"
        )
    split = settings.split
    for key, column in (("id_column", split.id_column), ("time_column", split.time_column)):
        if column is not None and (column == schema.target or column in schema.feature_names):
            raise ConfigError(
                f"{here}.split.{key} = {column!r} is not allowed: it is the target or a feature; "
                "the split key must be a column of its own"
            )
    promotion = _promotion(context, name, project)
    _check_promotion(here, name, settings, promotion)
    return EnvironmentConfig(
        project=project,
        name=name,
        account=settings.account,
        region=settings.region,
        retain=settings.stateful_removal == "retain",
        notification_emails=settings.notification_emails,
        schema=schema,
        data=settings.data,
        split=settings.split,
        pipeline=settings.pipeline,
        trigger=settings.trigger,
        serving=settings.serving,
        monitoring=settings.monitoring,
        security=settings.security,
        network=settings.network,
        promotion=promotion,
        tracking=settings.tracking,
    )


def _promotion(context: Mapping[str, Any], name: str, project: str) -> Promotion:
    if PROMOTION not in context:
        return Promotion()
    raw = _object(context, PROMOTION, PROMOTION)
    block = _validate(PromotionConfig, raw, PROMOTION)
    if block.mode != PROMOTE:
        for key in ("source", "targets"):
            if key in raw:
                raise ConfigError(
                    f"{PROMOTION}.{key} = {raw[key]!r} is not allowed with {PROMOTION}.mode = "
                    f"{block.mode!r}: every environment trains (set mode to 'promote', or "
                    f"remove {key})"
                )
    links = promotion_links(context, name, project, block)
    check_chain_trainers(chain(context, block), lambda each: _pipeline_of(context, each))
    return links


def _pipeline_of(context: Mapping[str, Any], name: str) -> PipelineConfig:
    """Another environment's `pipeline` block, merged with defaults and validated."""
    block = _object(context["environments"], name, f"environments.{name}")
    merged = _merge(_object(context, "defaults", "defaults"), block)
    here = f"environments.{name}.pipeline"
    return _validate(PipelineConfig, merged.get("pipeline", {}), here)


def _check_tracking_server(here: str, settings: EnvironmentSettings) -> None:
    """An external tracking server must be in the environment's account and region: SageMaker
    MLflow servers take no resource policy, so another account's cannot be granted."""
    arn = settings.tracking.server_arn
    if arn is None:
        return
    _, _, _, region, account = arn.split(":", 5)[:5]
    if (account, region) != (settings.account, settings.region):
        raise ConfigError(
            f"{here}.tracking.server_arn = {arn!r} is not allowed: the server is in account "
            f"{account}, region {region}, the environment in {settings.account}, "
            f"{settings.region} (a tracking server takes no resource policy: it must be in the "
            "environment's own account and region)"
        )


def _check_promotion(
    here: str, name: str, settings: EnvironmentSettings, promotion: Promotion
) -> None:
    """A promotion target trains nothing: settings that would retrain there are errors (the
    chain's regions are checked with the chain: mlops_config.promotion)."""
    sender = promotion.receives_from
    if sender is None:
        return
    source = promotion.source
    why = f"is not allowed with promotion.mode = 'promote': {name} receives its models from "
    why += f"{source} and trains nothing (retrain in {source})"
    if settings.trigger.retrain_schedule is not None:
        raise ConfigError(
            f"{here}.trigger.retrain_schedule = {settings.trigger.retrain_schedule!r} {why}"
        )
    if settings.monitoring.retrain_on_alarm:
        raise ConfigError(f"{here}.monitoring.retrain_on_alarm = True {why}")
    # tracking.mlflow is allowed: the eval-only pipeline's runs are logged (tracked_pipelines)


def select_environments(context: Mapping[str, Any], env: str | None) -> list[EnvironmentConfig]:
    """`env` from `-c env=NAME`: one name, `all`, or None for the default (`dev`)."""
    name = env or DEFAULT_ENVIRONMENT
    if name == ALL_ENVIRONMENTS:
        return [parse_environment(context, n) for n in environment_names(context)]
    return [parse_environment(context, name)]


def parse_delivery(context: Mapping[str, Any]) -> tuple[DeliveryConfig, list[EnvironmentConfig]]:
    """The `delivery` block and the environments of its stages, in deploy order."""
    if DELIVERY not in context:
        raise ConfigError(
            "delivery is missing: env=delivery builds the delivery pipeline cdk.json's "
            "`delivery` block describes (see the README, Delivering the app)"
        )
    delivery = _validate(DeliveryConfig, _object(context, DELIVERY, DELIVERY), DELIVERY)
    known = environment_names(context)
    for name in delivery.stages:
        if name not in known:
            raise ConfigError(
                f"delivery.stages = {list(delivery.stages)!r} is not allowed: {name!r} is not "
                f"an environment of cdk.json (one of {', '.join(known)})"
            )
    return delivery, [parse_environment(context, name) for name in delivery.stages]


def account_owners(context: Mapping[str, Any]) -> dict[str, str]:
    """Account id -> environment name, as cdk.json writes them (other environments are not
    validated: a tool working on one environment only names the others)."""
    return {
        str(block["account"]): name
        for name, block in _object(context, "environments", "environments").items()
        if isinstance(block, Mapping) and block.get("account")
    }


def read_cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], json.loads(path.read_text())["context"])
    except (OSError, KeyError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read the context of {path}: {error}") from error


@cache
def load_config(env: str = DEFAULT_ENVIRONMENT) -> EnvironmentConfig:
    """For tools outside the CDK app (local run, CLI): the same parsing, straight from cdk.json."""
    return parse_environment(read_cdk_json_context(), env)


def _check_problem_type(settings: EnvironmentSettings, schema: Schema, here: str) -> None:
    """`pipeline.metric` must be one of the problem type's metrics; the binary-only settings
    are not set for another type."""
    pipeline, problem = settings.pipeline, schema.problem_type
    allowed_metrics = PROBLEM_METRICS[problem]
    if pipeline.metric not in allowed_metrics:
        raise ConfigError(
            f"{here}.pipeline.metric = {pipeline.metric!r} is not allowed with "
            f"schema.problem_type = {problem!r}: one of {', '.join(allowed_metrics)}"
        )
    if pipeline.tuning is not None:
        refusal = tuning_refusal(
            pipeline.metric,
            pipeline.training_instance_count,
            problem,
            pipeline.tuning.strategy,
            pipeline.tuning.early_stopping,
        )
        if refusal is not None:
            raise ConfigError(f"{here}.pipeline.tuning {refusal}")
    metric, floor = pipeline.metric, settings.monitoring.quality_metric_floor
    # The 0.8 floors are a binary model's (an AUC's): no default fits another type's metric. A
    # lower-is-better one is in the target's units (a 0.8 AUC floor must not pass as a ceiling
    # in grams); accuracy and macro F1 of K classes start at chance 1/K, and a useful R² depends
    # on the data. So a multiclass or regression config sets both floors (the local run's demo
    # gates, macro F1 0.5 and R² 0, are stand-ins on bundled data, not defaults).
    lower = metric in LOWER_IS_BETTER
    edge = "largest" if lower else "smallest"
    required = (
        (pipeline, "pipeline.metric_floor", f"the {edge} {{m}} the challenger may have ("
         + ("a ceiling, in the metric's units)" if lower else "no default: 0.8 is a binary "
            "AUC's)")),
        (pipeline, "pipeline.champion_tolerance", "how much worse than the champion the "
         "challenger may be, in {m}'s units (the default 0.01 is a probability's)"),
        (settings.monitoring, "monitoring.quality_metric_floor", f"the {edge} {{m}} of the "
         "production model before the quality alarm fires"),
    )  # fmt: skip
    for block, key, what in required if lower or problem != "binary" else ():
        if key == "pipeline.champion_tolerance" and not lower:
            continue  # unit-free metrics share the probability scale of the default 0.01
        if key.split(".")[1] not in block.model_fields_set:
            raise ConfigError(
                f"{here}.{key} is required with metric {metric}: {what.format(m=metric)}"
            )
    low, high = (
        (0.0, 1.0)
        if metric in UNIT_INTERVAL
        else (-1e12, 1.0)
        if metric == "r2"
        else (
            0.0,
            1e12,
        )
    )
    if not low <= floor <= high:
        verdict = (
            "a number from 0 to 1"
            if metric in UNIT_INTERVAL
            else f"a number at most 1 with metric {metric}"
            if metric == "r2"
            else f"a number at least 0 with metric {metric}"
        )
        raise ConfigError(
            f"{here}.monitoring.quality_metric_floor = {floor!r} is not allowed: {verdict}"
        )
    if problem != "binary":
        for key in ("decision_threshold", "scale_pos_weight"):
            # cdk.json may spell out the default; only a binary-specific choice is refused.
            if getattr(pipeline, key) != type(pipeline).model_fields[key].default:
                raise ConfigError(
                    f"{here}.pipeline.{key} = {getattr(pipeline, key)!r} is not allowed with "
                    f"schema.problem_type = {problem!r}: it applies to binary models only"
                )


def _check_batch(settings: EnvironmentSettings, schema: Schema, here: str) -> None:
    """Batch mode has no endpoint (nothing for Model Monitor to watch), and its id column is a
    column of its own."""
    if settings.monitoring.engine == "model-monitor":
        raise ConfigError(
            f"{here}.serving.mode = 'batch' is not allowed with monitoring.engine = "
            "'model-monitor': Model Monitor watches an endpoint and batch mode has none (use "
            "evidently, which checks each scored version)"
        )
    id_column = settings.serving.batch.id_column
    if id_column == schema.target or id_column in schema.feature_names:
        raise ConfigError(
            f"{here}.serving.batch.id_column = {id_column!r} is not allowed: it is the target "
            "or a feature; the row id must be a column of its own"
        )
