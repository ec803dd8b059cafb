"""Create, update and delete a SageMaker Pipeline from a definition stored as an S3 object.

The logic of the pipeline custom resource (CDK Provider framework, `onEvent` only). The
definition is generated offline with `${Placeholders}` (see AWS-FACTS) and shipped as a CDK
asset; every deploy downloads it, checks its SHA-256, substitutes the placeholders and calls
the SageMaker API directly (never `Pipeline.upsert`, which drops `ParallelismConfiguration`
on update: boto3#4384).

The physical resource ID is the pipeline **name**: it is unique per account and Region (the
scope of a stack), it is what DeletePipeline and StartPipelineExecution take (DeletePipeline
does not accept an ARN), and a rename changes it, which is exactly when CloudFormation must
replace the resource. The ARN is returned as the `PipelineArn` attribute.

Every failure raises `PipelineResourceError` whose message is the reason CloudFormation shows
(the Provider framework reports it), e.g. `CreatePipeline failed: ValidationException: ...`,
or for a call that got no answer after botocore's retries (timeouts, connection failures)
`CreatePipeline failed: ReadTimeoutError: Read timeout on endpoint URL: ...`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

SERVICE_NAME = "pipeline-resource"
logger = Logger(service=SERVICE_NAME, child=True)

Client = Any  # a boto3 client; the Lambda runtime ships no type stubs for it

# What a boto3 call raises once botocore's retries are spent: an error answer (ClientError) or
# no answer at all (BotoCoreError: read/connect timeouts, connection failures, ...).
AWS_ERRORS = (ClientError, BotoCoreError)

# botocore's model for CreatePipeline/UpdatePipeline.PipelineDefinition: 1..1,048,576 chars.
MAX_DEFINITION_CHARS = 1_048_576
# AWS docs: without a ParallelismConfiguration an execution runs at most 50 steps at once.
DEFAULT_MAX_PARALLEL_EXECUTION_STEPS = 50
# Standard retry mode backs off up to 20 s per attempt: 8 attempts stay well under a minute
# or two, far inside the custom resource's Lambda timeout.
MAX_ATTEMPTS = 8
MAX_TAGS = 50
MAX_DESCRIPTION_CHARS = 3072
# CloudFormation caps the whole custom resource response at 4 KB; keep the reason well under.
MAX_REASON_CHARS = 1500
# The Provider framework answers a failed Create with this physical ID and normally swallows
# the following Delete itself; handled here too so a direct invocation can't fail on it.
CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"

PIPELINE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}")
ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# `${Name}` is a placeholder; `${!Name}` is a literal `${Name}`, as in Fn::Sub.
PLACEHOLDER = re.compile(r"\$\{(!?)([^}]*)\}")

PROPERTY_NAMES = (
    "PipelineName",
    "PipelineDescription",
    "RoleArn",
    "DefinitionBucket",
    "DefinitionKey",
    "DefinitionSha256",
    "Substitutions",
    "MaxParallelExecutionSteps",
    "Tags",
)
# Added by CloudFormation/CDK to every custom resource's properties.
FRAMEWORK_PROPERTY_NAMES = ("ServiceToken",)


class PipelineResourceError(Exception):
    """A failure to report to CloudFormation; the message is the reason the user sees."""


class PropertiesError(PipelineResourceError):
    """The custom resource's ResourceProperties are missing or malformed."""


@dataclass(frozen=True)
class PipelineProperties:
    """The custom resource's ResourceProperties, validated.

    Defaults: no description, no substitutions, 50 parallel steps per execution, no tags.
    """

    pipeline_name: str
    role_arn: str
    definition_bucket: str
    definition_key: str
    definition_sha256: str
    description: str = ""
    substitutions: Mapping[str, str] = field(default_factory=dict)
    max_parallel_execution_steps: int = DEFAULT_MAX_PARALLEL_EXECUTION_STEPS
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def definition_uri(self) -> str:
        return f"s3://{self.definition_bucket}/{self.definition_key}"

    @property
    def parallelism_configuration(self) -> dict[str, int]:
        return {"MaxParallelExecutionSteps": self.max_parallel_execution_steps}

    @property
    def tag_list(self) -> list[dict[str, str]]:
        return [{"Key": key, "Value": value} for key, value in self.tags.items()]


def client_config() -> Config:
    """botocore config for both clients: standard retry mode (throttling and transient errors
    retried with exponential backoff and jitter), `MAX_ATTEMPTS` attempts in total."""
    # Config's `max_attempts` counts retries only (botocore adds one); `total_max_attempts`
    # says what it means.
    return Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS})


def parse_properties(raw: Any) -> PipelineProperties:
    """Validate ResourceProperties; raise one `PropertiesError` listing every problem.

    CloudFormation passes every scalar as a string, so `MaxParallelExecutionSteps` arrives as
    e.g. "4"; an int is accepted too (direct invocations).
    """
    if not isinstance(raw, Mapping):
        raise PropertiesError(f"ResourceProperties must be an object, got {type(raw).__name__}")
    problems: list[str] = []

    unknown = sorted(set(raw) - set(PROPERTY_NAMES) - set(FRAMEWORK_PROPERTY_NAMES))
    if unknown:
        problems.append(
            f"unknown properties {', '.join(unknown)} (allowed: {', '.join(PROPERTY_NAMES)})"
        )

    def required_string(name: str, what: str) -> str:
        value = raw.get(name)
        if not isinstance(value, str) or not value:
            problems.append(f"{name} is required: {what} (got {value!r})")
            return ""
        return value

    name = required_string("PipelineName", "the SageMaker pipeline name")
    if name and not PIPELINE_NAME.fullmatch(name):
        problems.append(
            f"PipelineName {name!r} is invalid: 1-256 letters, digits and hyphens, "
            "starting and ending with a letter or digit"
        )
    role_arn = required_string("RoleArn", "the ARN of the pipeline execution role")
    if role_arn and not ROLE_ARN.fullmatch(role_arn):
        problems.append(
            f"RoleArn {role_arn!r} is not an IAM role ARN "
            "(arn:<partition>:iam::<account>:role/<name>)"
        )
    bucket = required_string("DefinitionBucket", "the bucket holding the definition JSON")
    key = required_string("DefinitionKey", "the object key of the definition JSON")
    sha = required_string("DefinitionSha256", "the SHA-256 (hex) of the definition file")
    if sha and not SHA256_HEX.fullmatch(sha.lower()):
        problems.append(f"DefinitionSha256 {sha!r} is not a SHA-256 hex digest (64 hex digits)")

    description = raw.get("PipelineDescription", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
        problems.append(
            f"PipelineDescription must be a string of at most {MAX_DESCRIPTION_CHARS} "
            f"characters (got {type(description).__name__} of length {_length(description)})"
        )
        description = ""

    substitutions = _parse_substitutions(raw.get("Substitutions"), problems)
    parallelism = _parse_parallelism(raw.get("MaxParallelExecutionSteps"), problems)
    tags = _parse_tags(raw.get("Tags"), problems)

    if problems:
        raise PropertiesError(
            "Invalid ResourceProperties for the SageMaker pipeline custom resource: "
            + "; ".join(problems)
        )
    return PipelineProperties(
        pipeline_name=name,
        role_arn=role_arn,
        definition_bucket=bucket,
        definition_key=key,
        definition_sha256=sha.lower(),
        description=description,
        substitutions=substitutions,
        max_parallel_execution_steps=parallelism,
        tags=tags,
    )


def _length(value: Any) -> int | str:
    return len(value) if isinstance(value, str | list | dict) else "n/a"


def _parse_substitutions(value: Any, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(
            f"Substitutions must be an object of placeholder name -> string value "
            f"(got {type(value).__name__})"
        )
        return {}
    substitutions: dict[str, str] = {}
    for name, replacement in value.items():
        if not isinstance(name, str) or not name or "}" in name or name.startswith("!"):
            problems.append(
                f"Substitutions key {name!r} is not a placeholder name (non-empty, no '}}', "
                "not starting with '!')"
            )
        elif not isinstance(replacement, str):
            problems.append(
                f"Substitutions.{name} must be a string (got {type(replacement).__name__})"
            )
        else:
            substitutions[name] = replacement
    return substitutions


def _parse_parallelism(value: Any, problems: list[str]) -> int:
    if value is None:
        return DEFAULT_MAX_PARALLEL_EXECUTION_STEPS
    steps: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        steps = value
    elif isinstance(value, str) and value.strip().isdigit():
        steps = int(value.strip())
    if steps is None or steps < 1:
        problems.append(
            f"MaxParallelExecutionSteps must be a whole number >= 1 (got {value!r}); "
            f"omit it for the default of {DEFAULT_MAX_PARALLEL_EXECUTION_STEPS}"
        )
        return DEFAULT_MAX_PARALLEL_EXECUTION_STEPS
    return steps


def _parse_tags(value: Any, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, list):
        problems.append(f'Tags must be a list of {{"Key", "Value"}} (got {type(value).__name__})')
        return {}
    if len(value) > MAX_TAGS:
        problems.append(f"Tags has {len(value)} entries; SageMaker allows at most {MAX_TAGS}")
    tags: dict[str, str] = {}
    for index, tag in enumerate(value):
        key = tag.get("Key") if isinstance(tag, Mapping) else None
        tag_value = tag.get("Value") if isinstance(tag, Mapping) else None
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            problems.append(f"Tags[{index}].Key must be a string of 1-128 characters (got {key!r})")
        elif key.lower().startswith("aws:"):
            problems.append(f"Tags[{index}].Key {key!r} uses the reserved prefix 'aws:'")
        elif not isinstance(tag_value, str) or len(tag_value) > 256:
            problems.append(
                f"Tags[{index}].Value must be a string of at most 256 characters "
                f"(got {tag_value!r})"
            )
        elif key in tags:
            problems.append(f"Tags[{index}].Key {key!r} is repeated; tag keys must be unique")
        else:
            tags[key] = tag_value
    return tags


def declared_tag_keys(raw: Any) -> set[str]:
    """Tag keys a previous deployment declared (from OldResourceProperties); lenient, because
    old properties were valid when they were applied and only their keys matter here."""
    tags = raw.get("Tags") if isinstance(raw, Mapping) else None
    if not isinstance(tags, list):
        return set()
    return {
        tag["Key"] for tag in tags if isinstance(tag, Mapping) and isinstance(tag.get("Key"), str)
    }


def client_request_token(request_id: str, operation: str, pipeline_name: str) -> str:
    """Idempotency token for CreatePipeline/DeletePipeline: 64 hex characters (the API takes
    32-128), the same for every retry of one CloudFormation request, different per operation
    and pipeline so a rename's create never collides with another call's token."""
    return hashlib.sha256(f"{operation}\n{pipeline_name}\n{request_id}".encode()).hexdigest()


def aws_failure(
    operation: str, error: ClientError | BotoCoreError, subject: str
) -> PipelineResourceError:
    """The CloudFormation reason for a failed AWS call: operation, AWS error code and message.

    A call that got no answer (BotoCoreError) names the botocore exception in place of the
    code, e.g. `UpdatePipeline failed: ReadTimeoutError: Read timeout on endpoint URL: ...`.
    """
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code") or "UnknownError"
        message = details.get("Message") or str(error)
    else:
        code, message = type(error).__name__, str(error)
    reason = f"{operation} failed: {code}: {message} [{subject}]"
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 15] + " ...(truncated)"
    return PipelineResourceError(reason)


def is_pipeline_not_found(error: ClientError | BotoCoreError, pipeline_name: str) -> bool:
    """True if SageMaker says the pipeline does not exist.

    botocore's model lists `ResourceNotFound` for DeletePipeline/UpdatePipeline/DescribePipeline
    (the service's message: "Pipeline '<arn>' does not exist"). Some endpoints and moto answer
    `ValidationException` instead ("Could not find pipeline with PipelineName <name>"), so that
    code counts only when the message says the pipeline itself is missing: a role or
    parameter that "does not exist" must not be mistaken for it.
    """
    if not isinstance(error, ClientError):
        return False  # no answer says nothing about the pipeline
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    if code in ("ResourceNotFound", "ResourceNotFoundException"):
        return True
    message = (details.get("Message") or "").lower()
    return (
        code == "ValidationException"
        and pipeline_name.lower() in message
        and ("does not exist" in message or "could not find" in message)
    )


def load_definition(s3: Client, props: PipelineProperties) -> str:
    """Download the definition object, verify its SHA-256 and return it as text."""
    try:
        body: bytes = s3.get_object(Bucket=props.definition_bucket, Key=props.definition_key)[
            "Body"
        ].read()
    except AWS_ERRORS as error:
        raise aws_failure("GetObject", error, props.definition_uri) from error
    actual = hashlib.sha256(body).hexdigest()
    if actual != props.definition_sha256:
        raise PipelineResourceError(
            f"pipeline definition {props.definition_uri} has SHA-256 {actual}, but "
            f"DefinitionSha256 is {props.definition_sha256}: the object is not the file this "
            "deployment was synthesized from (overwritten or a different asset); re-run cdk deploy"
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PipelineResourceError(
            f"pipeline definition {props.definition_uri} is not UTF-8 text: {error}"
        ) from error


def render_definition(template: str, substitutions: Mapping[str, str]) -> str:
    """Replace every `${Name}` whose Name is in `substitutions`; `${!Name}` becomes a literal
    `${Name}`. Values are JSON-escaped, since placeholders only ever sit inside JSON strings.
    Raise if any other `${...}` is left, naming all of them."""
    missing: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        literal, name = match.group(1), match.group(2)
        if literal:
            return "${" + name + "}"
        if name in substitutions:
            return json.dumps(substitutions[name])[1:-1]
        missing.add(name)
        return match.group(0)

    rendered = PLACEHOLDER.sub(replace, template)
    if missing:
        names = ", ".join("${" + name + "}" for name in sorted(missing))
        provided = ", ".join(sorted(substitutions)) or "none"
        raise PipelineResourceError(
            f"pipeline definition has placeholders with no value in Substitutions: {names} "
            f"(provided: {provided}); add them to Substitutions, or write ${{!Name}} for a "
            "literal ${Name}"
        )
    return rendered


def build_definition(s3: Client, props: PipelineProperties) -> str:
    """Download, verify, substitute and size-check the definition; return what to send."""
    template = load_definition(s3, props)
    try:
        parsed = json.loads(template)
    except json.JSONDecodeError as error:
        raise PipelineResourceError(
            f"pipeline definition {props.definition_uri} is not valid JSON: {error}"
        ) from error
    if not isinstance(parsed, dict):
        raise PipelineResourceError(
            f"pipeline definition {props.definition_uri} must be a JSON object, "
            f"got {type(parsed).__name__}"
        )
    definition = render_definition(template, props.substitutions)
    if len(definition) > MAX_DEFINITION_CHARS:
        raise PipelineResourceError(
            f"pipeline definition {props.definition_uri} is {len(definition):,} characters after "
            f"substitution; SageMaker accepts at most {MAX_DEFINITION_CHARS:,} "
            "(CreatePipeline/UpdatePipeline PipelineDefinition): split the pipeline or shorten "
            "step arguments"
        )
    used = {name for literal, name in PLACEHOLDER.findall(template) if not literal}
    unused = sorted(set(props.substitutions) - used)
    if unused:
        logger.info("Substitutions not used by the definition", extra={"unused": unused})
    return definition


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
