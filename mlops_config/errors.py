"""ConfigError, and the one line a user reads for each way a value can be wrong.

Every message names the dotted key, the value and what is allowed, e.g.
`environments.prod.account = '1234' is not allowed: a 12-digit AWS account id (quoted)`;
an unknown key names the nearest known one (`... is not a known key: did you mean
instance_type?`). pydantic's errors are translated here, so its wording never reaches a user.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mlops_config.rules import RULE_ERROR

Location = tuple[str | int, ...]
_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type"})


class ConfigError(ValueError):
    """A configuration value is missing or not allowed. The message names key, value and rule."""


def dotted(prefix: str, loc: Sequence[str | int]) -> str:
    """`prefix.a.b[0].c` for the location ("a", "b", 0, "c")."""
    key = prefix
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key = f"{key}.{part}" if key else part
    return key


def missing(key: str) -> ConfigError:
    return ConfigError(f"{key} is missing (set it in cdk.json context)")


def not_an_object(key: str, value: Any) -> ConfigError:
    return ConfigError(f"{key}: expected an object, got {value!r}")


def nearest_key(unknown: str, known: Sequence[str]) -> str:
    """`did you mean X?` for a near miss, else the keys that are allowed there."""
    close = difflib.get_close_matches(unknown, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return f"the keys here are {', '.join(known)}"


def section_at(model: type[BaseModel] | None, path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model that validates the object at `path` below `model` (None: not an object)."""
    keyed = False  # the part after an object of named sections (a dict) is its key
    for part in path:
        if model is None:
            return None
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field else None
        keyed = field is not None and get_origin(field.annotation) is dict
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found:
            return found
    return None


def describe(line: ErrorDetails, key: str, model: type[BaseModel] | None) -> str:
    """The message of one pydantic error at `key` (its dotted location)."""
    kind, value = line["type"], line["input"]
    context = line.get("ctx") or {}
    if kind == "extra_forbidden":
        unknown = str(line["loc"][-1])
        section = section_at(model, line["loc"][:-1])
        known = list(section.model_fields) if section else []
        return f"{key} is not a known key: {nearest_key(unknown, known)}"
    if kind == "missing":
        return str(missing(key))
    if kind in _NOT_AN_OBJECT:
        return str(not_an_object(key, value))
    if kind == RULE_ERROR:
        if "field" in context:
            key = f"{key}.{context['field']}" if key else context["field"]
            if "value" not in context:
                return f"{key} {context['verdict']}"
            value = context["value"]
        return f"{key} = {value!r} {context['verdict']}"
    return f"{key} = {value!r} is not allowed: {line['msg']}"


def translate(
    error: ValidationError,
    model: type[BaseModel] | None,
    prefix: str | Callable[[ErrorDetails], str],
) -> ConfigError:
    """One ConfigError for a failed validation: the first problem, unknown keys first (a
    misspelt key is why its neighbour seems wrong), with a count of the others.

    Args:
        model: what was validated, to list the known keys next to an unknown one.
        prefix: the dotted key of what was validated, or a function giving it for an error
            (an unknown key may sit in another block of cdk.json than a bad value).
    """
    lines = error.errors()
    # A list whose items failed also reports that fewer items are left: only the cause counts.
    causes = [
        line
        for line in lines
        if not any(
            other["loc"][: len(line["loc"])] == line["loc"] and other["loc"] != line["loc"]
            for other in lines
        )
    ]
    causes.sort(key=lambda line: line["type"] != "extra_forbidden")
    first = causes[0]
    where = prefix if isinstance(prefix, str) else prefix(first)
    message = describe(first, dotted(where, first["loc"]), model)
    others = len(causes) - 1
    return ConfigError(message + (f" (and {others} more)" if others else ""))
