"""The execution's parameter values: the definition's defaults, then what the start of a run
passes (the data-landing trigger's values, see `trigger`), then the user's `--param Name=value`
(`make local-run PARAM_Name=value`), each converted to the parameter's type."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pipeline_code.local_pipeline.errors import LocalPipelineError

_BOOLEANS = {"true": True, "false": False}


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`["Name=value", ...]` -> {Name: value}; the value may contain `=` and be empty."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise LocalPipelineError(f"--param {item!r}: write Name=value")
        values[name.strip()] = value
    return values


def convert(parameter: Mapping[str, Any], value: Any) -> Any:
    """`value` (text from the command line, or a JSON default) as the parameter's type."""
    name, kind = parameter["Name"], parameter["Type"]
    try:
        if kind == "Integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            converted: Any = int(value)
        elif kind == "Float":
            if isinstance(value, bool):
                raise ValueError
            converted = float(value)
        elif kind == "Boolean":
            converted = value if isinstance(value, bool) else _BOOLEANS[str(value).lower()]
        else:
            converted = str(value)
    except (ValueError, KeyError, TypeError) as error:
        raise LocalPipelineError(
            f"parameter {name} = {value!r} is not allowed: a {kind} value"
        ) from error
    allowed = parameter.get("EnumValues")
    if allowed and converted not in allowed:
        raise LocalPipelineError(
            f"parameter {name} = {value!r} is not allowed: one of {', '.join(map(str, allowed))}"
        )
    return converted


def parameter_values(
    declared: list[dict[str, Any]], start: Mapping[str, str], given: Mapping[str, str]
) -> dict[str, Any]:
    """Typed values of every declared parameter.

    Args:
        declared: The definition's Parameters.
        start: Values the start of the run passes (used for declared parameters only).
        given: The user's values; a name the definition does not declare is an error.
    """
    names = [p["Name"] for p in declared]
    for name in given:
        if name not in names:
            nearest = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {nearest[0]}?)" if nearest else ""
            raise LocalPipelineError(
                f"--param {name}: the definition has no such parameter{hint}; "
                f"its parameters: {', '.join(names)}"
            )
    values: dict[str, Any] = {}
    for parameter in declared:
        name = parameter["Name"]
        if name in given:
            values[name] = convert(parameter, given[name])
        elif name in start:
            values[name] = convert(parameter, start[name])
        elif "DefaultValue" in parameter:
            values[name] = convert(parameter, parameter["DefaultValue"])
        else:
            raise LocalPipelineError(
                f"parameter {name} has no default value and the run has none for it: pass "
                f"PARAM_{name}=value (make) or --param {name}=value"
            )
    return values
