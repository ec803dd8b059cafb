"""Step properties: the paths a definition reads from a step (`Steps.Train.ModelArtifacts.
S3ModelArtifacts`, `Steps.Prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri`),
checked against the step's Describe* response shape in botocore's SageMaker model, and looked
up in what a step produced.

A property of a step is a member of the response of the API that describes its job:
DescribeProcessingJob (Processing), DescribeTrainingJob (Training), DescribeModelPackage
(RegisterModel); a Tuning step's are DescribeHyperParameterTuningJob's and
ListTrainingJobsForHyperParameterTuningJob's (its trials, best first). `['name']` picks the
element of a list whose name field (`OutputName`, `ChannelName`, `MetricName`, ...) is
`name`, or the key of a map; `[0]` indexes a list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

#: The API whose response holds each step type's properties.
DESCRIBE_OPERATIONS = {
    "Processing": "DescribeProcessingJob",
    "Training": "DescribeTrainingJob",
    "RegisterModel": "DescribeModelPackage",
}
#: Step types whose properties are the members of several responses (as the SDK declares them).
MERGED_OPERATIONS = {
    "Tuning": (
        "DescribeHyperParameterTuningJob",
        "ListTrainingJobsForHyperParameterTuningJob",
    ),
}
#: Properties of steps that run no job.
CONDITION_PROPERTIES = ("Outcome",)
# List elements are named by the first of these fields they have.
NAME_FIELDS = (
    "OutputName",
    "InputName",
    "ChannelName",
    "MetricName",
    "Name",
    "PropertyFileName",
)

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")


class PropertyPathError(ValueError):
    """A property path that cannot be parsed or does not exist; the message says which part."""


@dataclass(frozen=True)
class Named:
    """`['name']` in a path."""

    name: str

    def __str__(self) -> str:
        return f"['{self.name}']"


Token = str | int | Named


def parse_path(path: str) -> list[Token]:
    """`A.B['x'].C[0]` -> ["A", "B", Named("x"), "C", 0]."""
    tokens: list[Token] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None or (position == 0 and path.startswith(".")):
            raise PropertyPathError(f"cannot parse {path!r} at character {position + 1}")
        field, single, double, number = match.groups()
        if field is not None:
            tokens.append(field)
        elif number is not None:
            tokens.append(int(number))
        else:
            tokens.append(Named(single if single is not None else double))
        position = match.end()
    if not tokens:
        raise PropertyPathError("empty property path")
    return tokens


def render_path(tokens: list[Token]) -> str:
    text = ""
    for token in tokens:
        if isinstance(token, str):
            text += f".{token}" if text else token
        elif isinstance(token, int):
            text += f"[{token}]"
        else:
            text += str(token)
    return text


def element_name(element: Any) -> str | None:
    """The name of a list element (its first name field), if it has one."""
    if isinstance(element, dict):
        for field in NAME_FIELDS:
            if isinstance(element.get(field), str):
                return str(element[field])
    return None


def lookup(value: Any, tokens: list[Token]) -> Any:
    """Follow `tokens` into `value`; PropertyPathError names the first part that is missing."""
    for depth, token in enumerate(tokens):
        where = render_path(tokens[: depth + 1])
        if isinstance(token, str):
            if not isinstance(value, dict) or token not in value:
                raise PropertyPathError(f"{where} does not exist")
            value = value[token]
        elif isinstance(token, int):
            if not isinstance(value, list) or token >= len(value):
                raise PropertyPathError(f"{where} does not exist")
            value = value[token]
        elif isinstance(value, list):
            matches = [item for item in value if element_name(item) == token.name]
            if not matches:
                names = [element_name(item) for item in value]
                raise PropertyPathError(
                    f"{where} does not exist (names: {', '.join(str(n) for n in names)})"
                )
            value = matches[0]
        elif isinstance(value, dict) and token.name in value:
            value = value[token.name]
        else:
            raise PropertyPathError(f"{where} does not exist")
    return value


@cache
def _sagemaker_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def operation_model(operation: str) -> Any:
    """botocore's model of a SageMaker operation (its input_shape and output_shape)."""
    return _sagemaker_model().operation_model(operation)


def check_against_shape(step_type: str, tokens: list[Token]) -> None:
    """Raise PropertyPathError unless `tokens` is a path into `step_type`'s Describe* response."""
    if step_type in MERGED_OPERATIONS:
        found: list[PropertyPathError] = []
        for merged in MERGED_OPERATIONS[step_type]:
            try:
                return _check_response(merged, tokens)
            except PropertyPathError as error:
                found.append(error)
        raise found[0]
    operation = DESCRIBE_OPERATIONS.get(step_type)
    if operation is None:
        if step_type == "Condition" and len(tokens) == 1 and tokens[0] in CONDITION_PROPERTIES:
            return
        raise PropertyPathError(f"a {step_type} step has no property {render_path(tokens)}")
    _check_response(operation, tokens)


def _check_response(operation: str, tokens: list[Token]) -> None:
    shape = operation_model(operation).output_shape
    for depth, token in enumerate(tokens):
        where = render_path(tokens[: depth + 1])
        if isinstance(token, str):
            if shape.type_name != "structure" or token not in shape.members:
                raise PropertyPathError(f"{where} is not a property of {operation}'s response")
            shape = shape.members[token]
        elif shape.type_name == "list":
            shape = shape.member
        elif shape.type_name == "map" and isinstance(token, Named):
            shape = shape.value
        else:
            raise PropertyPathError(f"{where}: {render_path(tokens[:depth])} is not a list")
