"""Every constraint of an AWS operation's input shape, checked strictly.

botocore's own parameter validation checks only minimums (lengths, ranges): a request that is
too long for the service passes the client and the Stubber and fails only in AWS. This walks
the same service model and reports every min, max and pattern a request breaks.
"""

from __future__ import annotations

from typing import Any

import botocore.session
import regex  # AWS patterns are Java regular expressions (\p{L} and the like)
from botocore.model import ListShape, MapShape, Shape, StructureShape


def violations(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    """Each broken constraint of `params` as one line naming the member path and the limit."""
    model = botocore.session.get_session().get_service_model(service)
    found: list[str] = []
    _check(params, model.operation_model(operation).input_shape, operation, found)
    return found


def _check(value: Any, shape: Shape, path: str, found: list[str]) -> None:
    meta = shape.metadata
    if isinstance(shape, StructureShape):
        for name, member in value.items():
            if name not in shape.members:
                found.append(f"{path}.{name}: not a member of {shape.name}")
                continue
            _check(member, shape.members[name], f"{path}.{name}", found)
        found.extend(f"{path}.{n}: required" for n in shape.required_members if n not in value)
        return
    if isinstance(shape, ListShape):
        _bounds(len(value), meta, f"{path} (items)", found)
        for index, item in enumerate(value):
            _check(item, shape.member, f"{path}[{index}]", found)
        return
    if isinstance(shape, MapShape):
        _bounds(len(value), meta, f"{path} (entries)", found)
        for key, item in value.items():
            _check(key, shape.key, f"{path} key {key!r}", found)
            _check(item, shape.value, f"{path}[{key!r}]", found)
        return
    if shape.type_name == "string":
        _bounds(len(value), meta, f"{path} (characters)", found)
        pattern = meta.get("pattern")
        if pattern and not regex.fullmatch(pattern, value, regex.DOTALL):
            found.append(f"{path}: {value[:60]!r} does not match {pattern}")
    elif shape.type_name in ("integer", "long", "float", "double"):
        _bounds(value, meta, path, found)


def _bounds(size: float, meta: dict[str, Any], what: str, found: list[str]) -> None:
    if "min" in meta and size < meta["min"]:
        found.append(f"{what}: {size} is below the minimum {meta['min']}")
    if "max" in meta and size > meta["max"]:
        found.append(f"{what}: {size} is above the maximum {meta['max']}")
