"""The production model a run starts with, and the retrains that would register nothing new.

"Production", "the champion" and "the served package" mean one thing: the package the Serving
stack serves, by the deployer's rule (`served_package.py`, the one module in lambdas/shared/
that both functions' packages carry: one DescribeStacks of SERVING_STACK_NAME). While that
stack is changing (or waits for an operator after a failed rollback) nobody knows what
serves: the start is deferred like at the concurrency cap (`serving-unsettled`), never
guessed.

The training pipeline gets it as its champion (CHAMPION_PARAMETER; "none" when nothing is
served). The evaluation pipeline gets it as the model to score (MODEL_PACKAGE_PARAMETER, with
MODEL_ROLE_PARAMETER "production") unless the request named a package (role "candidate");
with nothing served there is nothing to evaluate (`no-production-model`).

No new data
    A retrain of the training pipeline (schedule, alarm, `retrain-latest`, `retrain-version`)
    is skipped, reason `no-new-data`, when the served package was trained on the same data,
    code and parameters: its `data_digest` metadata is the run's DataDigest; the definition of
    the execution that registered it (MetadataProperties.GeneratedBy, this pipeline's execution
    ARN) is the pipeline's definition now (step code is content-addressed in it, so the same
    definition means the same code, images, settings and parameter defaults); and that
    execution's parameter values are the new run's, apart from the ones that name the run
    (InputDataUri, DatasetVersion, ChampionModelPackageArn). Decided here, before anything is
    claimed or started, so no compute is paid for and the pipeline needs no branch of its own
    for it (a skip inside the run would still start Prepare and Train). Whatever cannot be
    proven (no execution ARN, another pipeline's or account's execution, one SageMaker no
    longer shows) starts the run: a duplicate package costs a review, a missed retrain costs
    a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError
from served_package import ServingState, read_served_package
from trigger_config import TriggerConfig
from trigger_outcomes import Deferral, Rejection, logger

NO_CHAMPION = "none"
ROLE_PRODUCTION = "production"
ROLE_CANDIDATE = "candidate"
# Parameters that name a run rather than decide its model: they may differ in a "no new
# data" retrain (the training definition declares the same names).
RUN_NAMING_PARAMETERS = frozenset({"InputDataUri", "DatasetVersion", "ChampionModelPackageArn"})
DATA_DIGEST_KEY = "data_digest"  # Register's CustomerMetadataProperties key
# What a missing or foreign execution or package answers: not provable, so the run starts.
_UNPROVABLE_CODES = frozenset(
    {"ResourceNotFound", "ValidationException", "AccessDeniedException", "AccessDenied"}
)


def served_model(cloudformation: Any, config: TriggerConfig) -> str | None:
    """The package the Serving stack serves (None: nothing). Raises Deferral while the stack
    is unsettled."""
    served = read_served_package(cloudformation, config.serving_stack_name)
    if served.state is ServingState.UNSETTLED:
        raise Deferral(
            "serving-unsettled",
            f"stack {config.serving_stack_name} is {served.stack_status}: what serves is not "
            "known until it settles",
        )
    return served.model_package_arn


def model_parameters(
    cloudformation: Any,
    config: TriggerConfig,
    *,
    claimed: Mapping[str, Any] | None,
    requested: str | None,
    attribute: str,
) -> dict[str, str]:
    """The pipeline parameters naming the production model of a run about to start.

    `claimed`: the STARTING item being taken over (its recorded production model is re-sent,
    so the same ClientRequestToken carries the same parameters); `requested`: a package the
    request named (evaluation trigger); `attribute`: the ledger attribute of the record.
    """
    recorded = str(claimed[attribute]) if claimed and claimed.get(attribute) else None
    if config.champion_parameter:
        if recorded is None:
            recorded = served_model(cloudformation, config) or NO_CHAMPION
        return {config.champion_parameter: recorded}
    if not config.model_package_parameter:
        return {}
    role = config.model_role_parameter
    if requested:
        return {config.model_package_parameter: requested} | (
            {role: ROLE_CANDIDATE} if role else {}
        )
    production = recorded or served_model(cloudformation, config)
    if not production or production == NO_CHAMPION:
        raise Rejection(
            "no-production-model",
            f"nothing is served (stack {config.serving_stack_name}): there is no production "
            "model to evaluate; once one serves, replay the version's marker (`mlops start -p "
            "evaluation DATASET/VERSION`) or name a package (`--model-package`)",
        )
    return {config.model_package_parameter: production} | ({role: ROLE_PRODUCTION} if role else {})


def _effective(definition: str, given: Mapping[str, str]) -> dict[str, str]:
    """Every parameter of a definition with the value a run gets: given, else the default."""
    declared = json.loads(definition).get("Parameters", [])
    values = {p["Name"]: str(p["DefaultValue"]) for p in declared if "DefaultValue" in p}
    values.update(given)
    return {k: v for k, v in values.items() if k not in RUN_NAMING_PARAMETERS}


def _without_parameters(definition: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(definition)
    document.pop("Parameters", None)
    return document


def _execution_parameters(sagemaker: Any, execution_arn: str) -> dict[str, str]:
    values: dict[str, str] = {}
    paginator = sagemaker.get_paginator("list_pipeline_parameters_for_execution")
    for page in paginator.paginate(PipelineExecutionArn=execution_arn):
        for parameter in page.get("PipelineParameters", []):
            values[parameter["Name"]] = parameter["Value"]
    return values


def no_new_data(
    sagemaker: Any, config: TriggerConfig, champion: str, parameters: Mapping[str, str]
) -> str | None:
    """Why a retrain with `parameters` would register nothing new over `champion` (module
    docstring), or None when it may. AWS errors other than "not there / not ours" raise."""
    if not champion or champion == NO_CHAMPION:
        return None
    try:
        package = sagemaker.describe_model_package(ModelPackageName=champion)
        digest = (package.get("CustomerMetadataProperties") or {}).get(DATA_DIGEST_KEY)
        if not digest or digest != parameters.get("DataDigest"):
            return None
        execution = (package.get("MetadataProperties") or {}).get("GeneratedBy", "")
        pipeline = f":pipeline/{config.pipeline_name.lower()}/execution/"
        if pipeline not in execution.lower():
            return None
        then = sagemaker.describe_pipeline_definition_for_execution(PipelineExecutionArn=execution)[
            "PipelineDefinition"
        ]
        now = sagemaker.describe_pipeline(PipelineName=config.pipeline_name)["PipelineDefinition"]
        if _without_parameters(then) != _without_parameters(now):
            return None
        if _effective(then, _execution_parameters(sagemaker, execution)) != _effective(
            now, parameters
        ):
            return None
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _UNPROVABLE_CODES:
            logger.info(
                "could not compare the retrain with the served package; starting it",
                extra={"champion": champion, "error": str(error)},
            )
            return None
        raise
    return (
        f"the served package {champion} was trained on this data (DataDigest "
        f"{digest[:12]}...) with this pipeline definition and these parameters "
        f"(execution {execution}): a retrain would register the same model again"
    )
