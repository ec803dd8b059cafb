"""Evaluate the Deny statements of a synthesized resource policy (`denied`), or a principal's
identity statements (`decision`), against one request the way IAM does, so tests can state a
"must not" as a request and its verdict.

Intrinsics are resolved to placeholders: `{"Fn::GetAtt": ["ArtifactBucket", "Arn"]}` and
`{"Ref": "ArtifactBucket"}` become `<ArtifactBucket>`, `Fn::Join` joins, `Fn::ImportValue`
becomes `<import:NAME>`; a request names resources and principals the same way. Condition
operators: the String, Arn, Bool and Null families with `IfExists`, IAM's rules for a key the
request does not carry (negated operators match, others do not) and for lists (any value), and
`ForAllValues:` and `ForAnyValue:` for a single-valued key (the first holds when the request
lacks the key, the second does not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any


def resolve(value: Any) -> Any:
    """`value` with CloudFormation intrinsics replaced by placeholder strings."""
    if isinstance(value, list):
        return [resolve(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::GetAtt" in value:
        return f"<{value['Fn::GetAtt'][0]}>"
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::ImportValue" in value:
        return f"<import:{value['Fn::ImportValue']}>"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p)) for p in parts)
    return {k: resolve(v) for k, v in value.items()}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Request:
    """One API call: `action` on `resource` by `principal` (an ARN) with `tags` (principal
    tags) and further request `context` keys (e.g. `s3:if-none-match`)."""

    action: str
    resource: str
    principal: str
    tags: dict[str, str] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)

    def key(self, name: str) -> str | None:
        if name == "aws:PrincipalArn":
            return self.principal
        if name.startswith("aws:PrincipalTag/"):
            return self.tags.get(name.split("/", 1)[1])
        return self.context.get(name)


def _matches(operator: str, actual: str, expected: str) -> bool:
    family = operator.replace("Not", "").replace("IfExists", "")
    if family in ("StringEquals", "ArnEquals", "Bool"):
        return actual == expected
    if family in ("StringLike", "ArnLike"):
        return fnmatchcase(actual, expected)
    raise ValueError(f"condition operator {operator} is not modelled")


def condition_holds(operator: str, key: str, expected: Any, request: Request) -> bool:
    actual = request.key(key)
    if operator.startswith("ForAllValues:"):
        # every value the request carries (one here) matches; an absent key holds too
        inner = operator.removeprefix("ForAllValues:")
        return actual is None or condition_holds(inner, key, expected, request)
    if operator.startswith("ForAnyValue:"):
        # some value the request carries (one here) matches; an absent key never does
        inner = operator.removeprefix("ForAnyValue:")
        return actual is not None and condition_holds(inner, key, expected, request)
    if operator == "Null":
        return (actual is None) == (str(expected).lower() == "true")
    if actual is None:
        return operator.endswith("IfExists") or "Not" in operator
    hits = any(_matches(operator, actual, str(e)) for e in as_list(expected))
    return not hits if "Not" in operator else hits


def applies(statement: dict[str, Any], request: Request) -> bool:
    """Whether `statement` (resolved) covers `request`: action (or not one of NotAction),
    resource (or not one of NotResource), every condition."""
    if "NotAction" in statement:
        if any(fnmatchcase(request.action, a) for a in as_list(statement["NotAction"])):
            return False
    elif not any(fnmatchcase(request.action, a) for a in as_list(statement["Action"])):
        return False
    if "NotResource" in statement:
        if any(fnmatchcase(request.resource, r) for r in as_list(statement["NotResource"])):
            return False
    elif not any(fnmatchcase(request.resource, r) for r in as_list(statement["Resource"])):
        return False
    return all(
        condition_holds(operator, key, expected, request)
        for operator, keys in statement.get("Condition", {}).items()
        for key, expected in keys.items()
    )


def denied(policy: dict[str, Any], request: Request) -> bool:
    """Whether a Deny statement of the resource policy `policy` refuses `request` (whatever
    any Allow says)."""
    return any(
        applies(statement, request)
        for statement in resolve(policy)["Statement"]
        if statement["Effect"] == "Deny" and statement.get("Principal") in ("*", {"AWS": "*"})
    )


def decision(statements: list[dict[str, Any]], request: Request) -> str:
    """IAM's decision on `request` for one principal's identity `statements`: "explicit-deny"
    (a Deny applies, whatever allows it), "allow", or "implicit-deny" (nothing allows it)."""
    matching = [s for s in resolve(statements) if applies(s, request)]
    if any(s["Effect"] == "Deny" for s in matching):
        return "explicit-deny"
    return "allow" if any(s["Effect"] == "Allow" for s in matching) else "implicit-deny"
