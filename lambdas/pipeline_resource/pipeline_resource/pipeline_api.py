"""The SageMaker calls that create a pipeline, update it and keep its tags in sync."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from .failures import AWS_ERRORS, Client, aws_failure, is_pipeline_not_found
from .log import logger
from .properties import PipelineProperties


def client_request_token(request_id: str, operation: str, pipeline_name: str) -> str:
    """Idempotency token for CreatePipeline/DeletePipeline: 64 hex characters (the API takes
    32-128), the same for every retry of one CloudFormation request, different per operation
    and pipeline so a rename's create never collides with another call's token."""
    return hashlib.sha256(f"{operation}\n{pipeline_name}\n{request_id}".encode()).hexdigest()


def create_pipeline(
    sagemaker: Client, props: PipelineProperties, definition: str, request_id: str
) -> str:
    """CreatePipeline with tags and parallelism; return the pipeline ARN."""
    arguments: dict[str, Any] = {
        "PipelineName": props.pipeline_name,
        "PipelineDefinition": definition,
        "RoleArn": props.role_arn,
        "ParallelismConfiguration": props.parallelism_configuration,
        "ClientRequestToken": client_request_token(
            request_id, "CreatePipeline", props.pipeline_name
        ),
    }
    if props.description:
        arguments["PipelineDescription"] = props.description
    if props.tags:
        arguments["Tags"] = props.tag_list
    try:
        arn: str = sagemaker.create_pipeline(**arguments)["PipelineArn"]
    except AWS_ERRORS as error:
        raise aws_failure("CreatePipeline", error, f"pipeline {props.pipeline_name}") from error
    logger.info("Pipeline created", extra={"pipeline_arn": arn})
    return arn


def update_pipeline(sagemaker: Client, props: PipelineProperties, definition: str) -> str | None:
    """UpdatePipeline with every setting, parallelism included (always sent, so removing it
    from the properties restores the default rather than keeping a stale value). Return the
    ARN, or None if the pipeline does not exist."""
    try:
        response = sagemaker.update_pipeline(
            PipelineName=props.pipeline_name,
            PipelineDefinition=definition,
            PipelineDescription=props.description,
            RoleArn=props.role_arn,
            ParallelismConfiguration=props.parallelism_configuration,
        )
    except AWS_ERRORS as error:
        if is_pipeline_not_found(error, props.pipeline_name):
            return None
        raise aws_failure("UpdatePipeline", error, f"pipeline {props.pipeline_name}") from error
    arn: str = response["PipelineArn"]
    logger.info("Pipeline updated", extra={"pipeline_arn": arn})
    return arn


def sync_tags(
    sagemaker: Client, arn: str, desired: Mapping[str, str], previously_declared: set[str]
) -> None:
    """Make the pipeline carry `desired`: add new and changed tags, delete the keys an earlier
    deployment declared and this one dropped. Tags nobody declared here (SageMaker project
    tags, other tooling) are left alone."""
    live: dict[str, str] = {}
    try:
        for page in sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn):
            live.update({tag["Key"]: tag.get("Value", "") for tag in page.get("Tags", [])})
    except AWS_ERRORS as error:
        raise aws_failure("ListTags", error, arn) from error
    removed = sorted(key for key in previously_declared - set(desired) if key in live)
    changed = [{"Key": k, "Value": v} for k, v in desired.items() if live.get(k) != v]
    try:
        if removed:
            sagemaker.delete_tags(ResourceArn=arn, TagKeys=removed)
    except AWS_ERRORS as error:
        raise aws_failure("DeleteTags", error, arn) from error
    try:
        if changed:
            sagemaker.add_tags(ResourceArn=arn, Tags=changed)
    except AWS_ERRORS as error:
        raise aws_failure("AddTags", error, arn) from error
    logger.info(
        "Pipeline tags synced",
        extra={"tags_removed": removed, "tags_set": [tag["Key"] for tag in changed]},
    )
