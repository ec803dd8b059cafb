"""The custom resource's ResourceProperties: what they may hold and their validation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .failures import PipelineResourceError

# AWS docs: without a ParallelismConfiguration an execution runs at most 50 steps at once.
DEFAULT_MAX_PARALLEL_EXECUTION_STEPS = 50
MAX_TAGS = 50
MAX_DESCRIPTION_CHARS = 3072

PIPELINE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}")
ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")

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
