"""The pipeline definition as the interpreter sees it: `${Placeholders}` filled in as the
pipeline custom resource fills them at deploy time, steps flattened (a Condition's branches
included), each step's dependencies, and the wiring checked before anything runs.

The checks name the step and the construct: a `Get` of a parameter, execution variable, step
or property that does not exist (property paths are checked against the step's Describe*
response in botocore's model, output names against the step's own outputs), a property file
that is not declared or whose output does not exist, unknown functions or condition types,
DependsOn on a missing step, cycles, and step types the local run cannot execute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline_code.local_pipeline import caching
from pipeline_code.local_pipeline.errors import DefinitionError
from pipeline_code.local_pipeline.properties import (
    PropertyPathError,
    check_against_shape,
    element_name,
    parse_path,
    render_path,
)

SUPPORTED_VERSION = "2020-12-01"
RUNNABLE_TYPES = ("Processing", "Training", "Condition", "Fail", "RegisterModel")
#: Why a step type cannot run here (any other type gets a generic reason).
UNSUPPORTED_REASONS = {
    "QualityCheck": "it runs AWS's Model Monitor analyzer image, which only SageMaker has",
    "ClarifyCheck": "it runs AWS's SageMaker Clarify image, which only SageMaker has",
    "Transform": "batch transform needs a SageMaker Model and its serving container",
    "Tuning": "hyperparameter tuning jobs are a SageMaker service",
    "AutoML": "Autopilot jobs are a SageMaker service",
    "Model": "creating a SageMaker Model (CreateModel) has no local stand-in",
    "Lambda": "it invokes an AWS Lambda function",
    "Callback": "it waits for an SQS callback",
    "EMR": "it runs an Amazon EMR step",
    "Emr": "it runs an Amazon EMR step",
}
EXECUTION_VARIABLES = (
    "PipelineExecutionId",
    "PipelineExecutionArn",
    "PipelineName",
    "PipelineArn",
    "StartDateTime",
    "CurrentDateTime",
)
PARAMETER_TYPES = ("String", "Integer", "Float", "Boolean")
CONDITION_TYPES = (
    "Equals",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "LessThan",
    "LessThanOrEqualTo",
    "In",
    "Not",
    "Or",
)
FUNCTIONS = ("Get", "Std:Join", "Std:JsonGet")
BRANCHES = ("IfSteps", "ElseSteps")
# `${Name}` is a placeholder; `${!Name}` a literal `${Name}` (the custom resource's rule).
_PLACEHOLDER = re.compile(r"\$\{(!?)([^}]*)\}")


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Fill every `${Name}` of `values` (JSON-escaped: placeholders sit inside JSON strings);
    DefinitionError naming every `${...}` that has no value."""
    missing: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        literal, name = match.group(1), match.group(2)
        if literal:
            return "${" + name + "}"
        if name in values:
            return json.dumps(values[name])[1:-1]
        missing.add(name)
        return match.group(0)

    rendered = _PLACEHOLDER.sub(replace, text)
    if missing:
        names = ", ".join("${" + name + "}" for name in sorted(missing))
        raise DefinitionError(
            [f"placeholders with no local value: {names} (known: {', '.join(sorted(values))})"]
        )
    return rendered


@dataclass(frozen=True)
class Step:
    """One step of the definition; `condition`/`branch` place a step inside a Condition."""

    name: str
    type: str
    body: dict[str, Any]
    condition: str | None = None
    branch: str | None = None

    @property
    def arguments(self) -> Any:
        return self.body.get("Arguments", {})

    @property
    def depends_on(self) -> list[str]:
        return list(self.body.get("DependsOn") or [])

    @property
    def property_files(self) -> list[dict[str, Any]]:
        return list(self.body.get("PropertyFiles") or [])

    @property
    def cache_config(self) -> dict[str, Any] | None:
        config = self.body.get("CacheConfig")
        return config if isinstance(config, dict) else None


@dataclass(frozen=True)
class Pipeline:
    """A checked definition: its parameters, steps (definition order) and the order to run."""

    name: str
    parameters: list[dict[str, Any]]
    steps: dict[str, Step]
    dependencies: dict[str, set[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


def expressions(value: Any, skip_branches: bool = False) -> Iterator[tuple[str, Any]]:
    """Every function call in `value` as (function name, its argument), outermost first;
    with `skip_branches` a Condition's IfSteps/ElseSteps are not entered."""
    if isinstance(value, list):
        for item in value:
            yield from expressions(item, skip_branches)
    elif isinstance(value, dict):
        calls = [key for key in value if key == "Get" or key.startswith("Std:")]
        if calls and len(value) == 1:
            name = calls[0]
            yield name, value[name]
            yield from expressions(value[name], skip_branches)
            return
        for key, item in value.items():
            if not (skip_branches and key in BRANCHES):
                yield from expressions(item, skip_branches)


def step_references(step: Step) -> set[str]:
    """Names of the steps whose properties `step` reads."""
    names: set[str] = set()
    for function, argument in expressions(step.arguments, skip_branches=True):
        if function == "Get" and isinstance(argument, str) and argument.startswith("Steps."):
            names.add(argument.split(".", 2)[1])
    return names


def flatten(document: dict[str, Any]) -> tuple[list[Step], list[str]]:
    """All steps, each Condition's branch steps after it; plus the problems found."""
    steps: list[Step] = []
    problems: list[str] = []

    def visit(items: Any, condition: str | None, branch: str | None) -> None:
        if not isinstance(items, list):
            problems.append(f"{condition or 'the definition'}: {branch or 'Steps'} is not a list")
            return
        for body in items:
            if not isinstance(body, dict) or not isinstance(body.get("Name"), str):
                problems.append(f"{condition or 'Steps'}: a step without a Name")
                continue
            step = Step(body["Name"], str(body.get("Type")), body, condition, branch)
            steps.append(step)
            if step.type == "Condition" and isinstance(step.arguments, dict):
                for key in BRANCHES:
                    visit(step.arguments.get(key, []), step.name, key)

    visit(document.get("Steps"), None, None)
    return steps, problems


def parse(document: Any, name: str) -> Pipeline:
    """Check `document` (placeholders filled) and return the pipeline; DefinitionError lists
    every problem, each naming its step."""
    if not isinstance(document, dict):
        raise DefinitionError(["the definition is not a JSON object"])
    problems: list[str] = []
    if document.get("Version") != SUPPORTED_VERSION:
        problems.append(
            f"definition Version {document.get('Version')!r}: the local run reads "
            f"{SUPPORTED_VERSION!r}"
        )
    parameters = document.get("Parameters") or []
    problems += _parameter_problems(parameters)
    steps, found = flatten(document)
    problems += found
    by_name: dict[str, Step] = {}
    for step in steps:
        if step.name in by_name:
            problems.append(f"{step.name}: two steps have this name")
        by_name[step.name] = step
    parameter_names = {p.get("Name") for p in parameters if isinstance(p, dict)}
    for step in steps:
        problems += _step_problems(step, by_name, parameter_names)
    dependencies = {
        step.name: (set(step.depends_on) | step_references(step) | _condition_of(step))
        & set(by_name)
        for step in steps
    }
    order, cycle = _order(list(by_name), dependencies)
    if cycle:
        problems.append(f"the steps {', '.join(cycle)} depend on each other (a cycle)")
    if problems:
        raise DefinitionError(problems)
    return Pipeline(name, list(parameters), by_name, dependencies, order)


def _condition_of(step: Step) -> set[str]:
    return {step.condition} if step.condition else set()


def _parameter_problems(parameters: Any) -> list[str]:
    if not isinstance(parameters, list):
        return ["Parameters is not a list"]
    problems = []
    seen: set[str] = set()
    for parameter in parameters:
        name = parameter.get("Name") if isinstance(parameter, dict) else None
        if not isinstance(name, str):
            problems.append("Parameters: a parameter without a Name")
            continue
        if name in seen:
            problems.append(f"parameter {name}: declared twice")
        seen.add(name)
        if parameter.get("Type") not in PARAMETER_TYPES:
            problems.append(
                f"parameter {name}: Type {parameter.get('Type')!r} is not one of "
                f"{', '.join(PARAMETER_TYPES)}"
            )
    return problems


def _step_problems(step: Step, steps: dict[str, Step], parameters: set[Any]) -> list[str]:
    problems: list[str] = []
    if step.type not in RUNNABLE_TYPES:
        reason = UNSUPPORTED_REASONS.get(step.type, "the local run has no runner for it")
        problems.append(
            f"{step.name}: step type {step.type} is not supported by the local run: {reason}"
        )
    if not isinstance(step.arguments, dict):
        problems.append(f"{step.name}: Arguments is not an object")
        return problems
    for dependency in step.depends_on:
        if dependency not in steps:
            problems.append(f"{step.name}: DependsOn names {dependency!r}, which is not a step")
    for function, argument in expressions(step.arguments, skip_branches=True):
        if function not in FUNCTIONS:
            problems.append(f"{step.name}: function {function} is not supported by the local run")
        elif function == "Get":
            problem = _get_problem(step, argument, steps, parameters)
            if problem:
                problems.append(f"{step.name}: {problem}")
        elif function == "Std:JsonGet":
            problems += _json_get_problems(step, argument, steps)
    for property_file in step.property_files:
        problems += _property_file_problems(step, property_file)
    cache_config = step.cache_config or {}
    if caching.enabled(cache_config) and cache_config.get("ExpireAfter"):
        try:
            caching.expire_after_seconds(cache_config["ExpireAfter"])
        except ValueError as error:
            problems.append(f"{step.name}: CacheConfig {error}")
    if step.type == "Condition":
        problems += _condition_problems(step, step.arguments.get("Conditions"))
    return problems


def _get_problem(step: Step, path: Any, steps: dict[str, Step], parameters: set[Any]) -> str:
    if not isinstance(path, str):
        return f"Get {path!r} is not a string"
    root, _, rest = path.partition(".")
    if root == "Parameters":
        return "" if rest in parameters else f"Get {path}: no parameter {rest!r}"
    if root == "Execution":
        return "" if rest in EXECUTION_VARIABLES else f"Get {path}: no execution variable {rest!r}"
    if root != "Steps":
        return f"Get {path}: only Parameters.*, Execution.* and Steps.* can be read"
    target_name, _, property_path = rest.partition(".")
    target = steps.get(target_name)
    if target is None:
        return f"Get {path}: there is no step {target_name!r}"
    if target.name == step.name:
        return f"Get {path}: a step cannot read its own properties"
    try:
        tokens = parse_path(property_path)
    except PropertyPathError as error:
        return f"Get {path}: {error}"
    if tokens[0] == "PropertyFiles":
        declared = [f.get("PropertyFileName") for f in target.property_files]
        if len(tokens) != 2 or tokens[1] not in declared:
            return (
                f"Get {path}: {target.name} declares no property file "
                f"{render_path(tokens[1:])!r} (declared: {', '.join(map(str, declared)) or 'none'})"
            )
        return ""
    try:
        check_against_shape(target.type, tokens)
        _check_names(target, tokens)
    except PropertyPathError as error:
        return f"Get {path}: {error}"
    return ""


def _check_names(target: Step, tokens: list[Any]) -> None:
    """`Outputs['x']` must name one of the target's own list elements where they are literal."""
    value: Any = target.arguments
    for depth, token in enumerate(tokens):
        if isinstance(token, str):
            if not isinstance(value, dict) or token not in value:
                return  # a property the job adds (ModelArtifacts, ...): checked at run time
            value = value[token]
        elif isinstance(value, list) and not isinstance(token, int):
            names = [element_name(item) for item in value]
            if token.name not in names:
                raise PropertyPathError(
                    f"{target.name} has no {render_path(tokens[: depth + 1])} (its "
                    f"{render_path(tokens[:depth])}: {', '.join(str(n) for n in names)})"
                )
            value = value[names.index(token.name)]
        else:
            return


def _json_get_problems(step: Step, argument: Any, steps: dict[str, Step]) -> list[str]:
    if not isinstance(argument, dict) or not isinstance(argument.get("Path"), str):
        return [f"{step.name}: Std:JsonGet needs a Path and a PropertyFile"]
    reference = argument.get("PropertyFile")
    if not (isinstance(reference, dict) and isinstance(reference.get("Get"), str)):
        return [
            f"{step.name}: Std:JsonGet {argument['Path']!r}: only a PropertyFile reference "
            "(Get Steps.<step>.PropertyFiles.<name>) is supported"
        ]
    if not reference["Get"].startswith("Steps.") or ".PropertyFiles." not in reference["Get"]:
        return [
            f"{step.name}: Std:JsonGet PropertyFile {reference['Get']!r} is not a property file"
        ]
    return []


def _property_file_problems(step: Step, property_file: Any) -> list[str]:
    if not isinstance(property_file, dict) or not all(
        isinstance(property_file.get(key), str)
        for key in ("PropertyFileName", "OutputName", "FilePath")
    ):
        return [f"{step.name}: a property file needs PropertyFileName, OutputName and FilePath"]
    outputs = step.arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
    names = [element_name(output) for output in outputs]
    if property_file["OutputName"] not in names:
        return [
            f"{step.name}: property file {property_file['PropertyFileName']} reads output "
            f"{property_file['OutputName']!r}, which the step does not have (outputs: "
            f"{', '.join(str(n) for n in names) or 'none'})"
        ]
    return []


def _condition_problems(step: Step, conditions: Any) -> list[str]:
    if not isinstance(conditions, list) or not conditions:
        return [f"{step.name}: Conditions must be a non-empty list"]
    problems = []
    for condition in conditions:
        kind = condition.get("Type") if isinstance(condition, dict) else None
        if kind not in CONDITION_TYPES:
            problems.append(
                f"{step.name}: condition type {kind!r} is not one of {', '.join(CONDITION_TYPES)}"
            )
        elif kind == "Or":
            problems += _condition_problems(step, condition.get("Conditions"))
        elif kind == "Not":
            problems += _condition_problems(step, [condition.get("Expression")])
    return problems


def _order(names: list[str], dependencies: dict[str, set[str]]) -> tuple[list[str], list[str]]:
    """Topological order, definition order among ready steps; (order, steps in a cycle)."""
    done: list[str] = []
    remaining = list(names)
    while remaining:
        ready = [n for n in remaining if dependencies[n] <= set(done)]
        if not ready:
            return done, remaining
        done.append(ready[0])
        remaining.remove(ready[0])
    return done, []
