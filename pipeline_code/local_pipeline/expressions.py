"""Resolve a step's arguments as SageMaker does when it starts the step: `Get` of parameters,
execution variables and step properties, `Std:Join`, and `Std:JsonGet` from property files.

Values keep their JSON types (a Float parameter stays a number); `Std:Join` spells every value
as text: strings as they are, everything else in its JSON spelling (`0.8`, `true`). A failure
names the step being resolved and the expression.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline_code.local_pipeline.errors import StepError
from pipeline_code.local_pipeline.properties import PropertyPathError, lookup, parse_path

_JSON_PATH_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


@dataclass
class Scope:
    """What expressions can read while a pipeline runs.

    Attributes:
        parameters: Parameter values of the execution, typed.
        execution: Execution variables (PipelineExecutionId, ...).
        properties: Properties of the steps that have run, by step name.
        read_property_file: (step, property file name) -> the file's parsed JSON.
    """

    parameters: dict[str, Any]
    execution: dict[str, Any]
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_property_file: Callable[[str, str], Any] = lambda step, name: None


def as_text(value: Any) -> str:
    """How `Std:Join` spells a value: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def resolve(value: Any, scope: Scope, step: str) -> Any:
    """`value` with every function call replaced by its result; StepError naming `step`."""
    if isinstance(value, list):
        return [resolve(item, scope, step) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, argument), *_ = value.items()
        if key == "Get":
            return get(argument, scope, step)
        if key == "Std:Join":
            return _join(argument, scope, step)
        if key == "Std:JsonGet":
            return json_get(argument, scope, step)
    return {key: resolve(item, scope, step) for key, item in value.items()}


def get(path: str, scope: Scope, step: str) -> Any:
    root, _, rest = path.partition(".")
    if root == "Parameters":
        if rest not in scope.parameters:
            raise StepError(step, f"Get {path}: the execution has no parameter {rest!r}")
        return scope.parameters[rest]
    if root == "Execution":
        if rest not in scope.execution:
            raise StepError(step, f"Get {path}: no execution variable {rest!r}")
        return scope.execution[rest]
    source, _, property_path = rest.partition(".")
    if source not in scope.properties:
        raise StepError(
            step, f"Get {path}: step {source} has not run (it failed, was skipped or is later)"
        )
    try:
        return lookup(scope.properties[source], parse_path(property_path))
    except PropertyPathError as error:
        raise StepError(step, f"Get {path}: {error}") from error


def _join(argument: Any, scope: Scope, step: str) -> str:
    if not isinstance(argument, dict) or not isinstance(argument.get("Values"), list):
        raise StepError(step, f"Std:Join needs On and Values, got {argument!r}")
    values = [as_text(resolve(item, scope, step)) for item in argument["Values"]]
    return str(argument.get("On", "")).join(values)


def json_get(argument: Mapping[str, Any], scope: Scope, step: str) -> Any:
    """The value at `Path` in the property file `PropertyFile` refers to."""
    reference = argument["PropertyFile"]["Get"]
    _, source, _, name = reference.split(".", 3)
    path = argument["Path"]
    document = scope.read_property_file(source, name)
    try:
        return json_path(document, path)
    except KeyError as error:
        raise StepError(
            step,
            f"Std:JsonGet {path!r} of property file {name} (step {source}): "
            f"{error.args[0]} is not in the file",
        ) from error


def json_path(document: Any, path: str) -> Any:
    """Follow a JsonPath such as `gate.challenger` or `$.metrics[0].value` (KeyError names the
    first missing part)."""
    text = path[2:] if path.startswith("$.") else path
    position, value, walked = 0, document, ""
    while position < len(text):
        match = _JSON_PATH_TOKEN.match(text, position)
        if match is None:
            raise KeyError(f"{path!r} (cannot parse at character {position + 1})")
        key, index, single, double = match.groups()
        position = match.end()
        if index is not None:
            walked += f"[{index}]"
            if not isinstance(value, list) or int(index) >= len(value):
                raise KeyError(walked)
            value = value[int(index)]
            continue
        name = key if key is not None else (single if single is not None else double)
        walked += f".{name}" if walked else name
        if not isinstance(value, dict) or name not in value:
            raise KeyError(walked)
        value = value[name]
    return value
