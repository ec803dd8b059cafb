"""The pipeline definition to send: downloaded from S3, checked against its SHA-256,
placeholders substituted and size-checked."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

from .failures import AWS_ERRORS, Client, PipelineResourceError, aws_failure
from .log import logger
from .properties import PipelineProperties

# botocore's model for CreatePipeline/UpdatePipeline.PipelineDefinition: 1..1,048,576 chars.
MAX_DEFINITION_CHARS = 1_048_576
# `${Name}` is a placeholder; `${!Name}` is a literal `${Name}`, as in Fn::Sub.
PLACEHOLDER = re.compile(r"\$\{(!?)([^}]*)\}")


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
