"""CloudFormation's Create, Update and Delete requests, each turned into the pipeline calls it
needs and the Provider framework's answer (see the package docstring for the contract)."""

from __future__ import annotations

from typing import Any

from .definition import build_definition
from .failures import AWS_ERRORS, Client, PipelineResourceError, aws_failure, is_pipeline_not_found
from .log import logger
from .pipeline_api import client_request_token, create_pipeline, sync_tags, update_pipeline
from .properties import PIPELINE_NAME, PipelineProperties, declared_tag_keys, parse_properties

# The Provider framework answers a failed Create with this physical ID and normally swallows
# the following Delete itself; handled here too so a direct invocation can't fail on it.
CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"


def _result(props: PipelineProperties, arn: str) -> dict[str, Any]:
    return {
        "PhysicalResourceId": props.pipeline_name,
        "Data": {"PipelineArn": arn, "PipelineName": props.pipeline_name},
    }


def on_create(sagemaker: Client, s3: Client, properties: Any, request_id: str) -> dict[str, Any]:
    """Create the pipeline. A pipeline of that name that already exists is an error (as for
    AWS::SageMaker::Pipeline): silently adopting it could hand another stack's pipeline to
    this one, whose Delete would then remove it."""
    props = parse_properties(properties)
    _log_request("Create", props)
    definition = build_definition(s3, props)
    return _result(props, create_pipeline(sagemaker, props, definition, request_id))


def on_update(
    sagemaker: Client,
    s3: Client,
    properties: Any,
    old_properties: Any,
    physical_resource_id: str | None,
    request_id: str,
) -> dict[str, Any]:
    """Update the pipeline named in the new properties, or create it if it does not exist.

    Creating covers a rename (new physical ID; CloudFormation then deletes the old pipeline)
    and a pipeline deleted out of band. Updating an existing pipeline of a *different* name
    covers the rollback of a rename: CloudFormation sends the old properties back while the
    old pipeline still exists, and failing there would leave UPDATE_ROLLBACK_FAILED.
    """
    props = parse_properties(properties)
    _log_request("Update", props, previous=physical_resource_id)
    definition = build_definition(s3, props)
    arn = update_pipeline(sagemaker, props, definition)
    if arn is None:
        if physical_resource_id == props.pipeline_name:
            logger.warning("Pipeline missing (deleted out of band?): creating it again")
        arn = create_pipeline(sagemaker, props, definition, request_id)
        return _result(props, arn)
    sync_tags(sagemaker, arn, props.tags, declared_tag_keys(old_properties))
    return _result(props, arn)


def on_delete(
    sagemaker: Client, physical_resource_id: str | None, request_id: str
) -> dict[str, Any]:
    """Delete the pipeline; one that does not exist (or was never created) is a success."""
    name = physical_resource_id or ""
    logger.info("Delete", extra={"pipeline_name": name})
    if not PIPELINE_NAME.fullmatch(name):
        # A failed Create leaves the framework's marker (or nothing) as physical ID.
        logger.info("Physical ID is not a pipeline name: nothing was created, nothing to delete")
        # The framework rejects a Delete answer that changes the physical ID: echo it back.
        return {"PhysicalResourceId": physical_resource_id} if physical_resource_id else {}
    try:
        sagemaker.delete_pipeline(
            PipelineName=name,
            ClientRequestToken=client_request_token(request_id, "DeletePipeline", name),
        )
    except AWS_ERRORS as error:
        if not is_pipeline_not_found(error, name):
            raise aws_failure("DeletePipeline", error, f"pipeline {name}") from error
        logger.info("Pipeline already gone")
    else:
        logger.info("Pipeline deleted")
    return {"PhysicalResourceId": name}


def handle_event(
    *,
    request_type: str,
    properties: Any,
    old_properties: Any,
    physical_resource_id: str | None,
    request_id: str,
    sagemaker: Client,
    s3: Client,
) -> dict[str, Any]:
    """Dispatch one CloudFormation request; return the Provider framework's onEvent result
    (`PhysicalResourceId` and, for Create/Update, `Data` with PipelineArn and PipelineName)."""
    if not isinstance(request_id, str) or not request_id:
        raise PipelineResourceError("malformed event: RequestId is missing")
    if request_type == "Create":
        return on_create(sagemaker, s3, properties, request_id)
    if request_type == "Update":
        return on_update(
            sagemaker, s3, properties, old_properties, physical_resource_id, request_id
        )
    if request_type == "Delete":
        return on_delete(sagemaker, physical_resource_id, request_id)
    raise PipelineResourceError(
        f"malformed event: RequestType {request_type!r} is not Create, Update or Delete"
    )


def _log_request(action: str, props: PipelineProperties, previous: str | None = None) -> None:
    logger.info(
        action,
        extra={
            "pipeline_name": props.pipeline_name,
            "previous_pipeline_name": previous,
            "definition": props.definition_uri,
            "definition_sha256": props.definition_sha256,
            "substitution_names": sorted(props.substitutions),
            "max_parallel_execution_steps": props.max_parallel_execution_steps,
        },
    )
