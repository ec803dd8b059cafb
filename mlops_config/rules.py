"""The value rules every configuration field is declared with, and the errors they raise.

A field reads `Annotated[int, Integer(1, 20)]`: the rule validates strictly (no `true` for 1,
no `"5"` for 5), carries its bounds or pattern into the JSON Schema, and on a bad value raises
one error whose message is the verdict users read after `key = value`, e.g. `is not allowed:
an integer from 1 to 20`. `errors.py` turns those into the one-line ConfigError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, ValidationError
from pydantic_core import PydanticCustomError, core_schema

# The error type of every rule; its context holds the verdict (and, for rules checked on a
# whole section, the field and value the verdict is about).
RULE_ERROR = "config_rule"

ACCOUNT = r"^\d{12}$"
COLUMN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
INSTANCE_TYPE = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
ISO_DURATION = r"^P(\d+D|T\d+H|\d+DT\d+H)$"
PROJECT = r"^[a-z][a-z0-9-]{1,20}$"
SCHEDULE = r"^(cron\(\S+( \S+){5}\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$"
SCHEDULE_ALLOWED = "an EventBridge expression: cron(m h dom mon dow y) or rate(N unit)"


class Section(BaseModel):
    """A block of cdk.json: unknown keys are errors, values never change after parsing, and
    attribute docstrings become the descriptions editors show from the JSON Schema."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def allowed(what: str) -> str:
    return f"is not allowed: {what}"


def rule_error(verdict: str, **context: Any) -> PydanticCustomError:
    """The error of a rule: `verdict` follows `key = value` in the message."""
    return PydanticCustomError(RULE_ERROR, "{verdict}", {"verdict": verdict, **context})


def field_error(field: str, value: Any, verdict: str) -> PydanticCustomError:
    """A section-level check's verdict on one of its fields (`section.field = value ...`)."""
    return rule_error(verdict, field=field, value=value)


class Rule:
    """Validate with `inner` (a pydantic schema, so the JSON Schema keeps its constraints)
    and replace pydantic's wording for a bad value with `verdict`.

    Errors inside the value (an item of a list, a key of an object) keep their own message:
    only a verdict on the value as a whole is replaced.
    """

    @property
    def verdict(self) -> str:
        raise NotImplementedError

    def inner(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return handler(source)

    def keep(self, value: Any, validated: Any) -> Any:
        """What the field holds once `value` passed `inner` (default: pydantic's result)."""
        return validated

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def check(value: Any, validate: Callable[[Any], Any]) -> Any:
            try:
                return self.keep(value, validate(value))
            except ValidationError as error:
                if any(line["loc"] for line in error.errors()):
                    raise
                raise rule_error(self.verdict) from None

        return core_schema.no_info_wrap_validator_function(check, self.inner(source, handler))


@dataclass(frozen=True)
class Allowed(Rule):
    """The annotated type as pydantic validates it (a list, an object), with our verdict."""

    what: str

    @property
    def verdict(self) -> str:
        return allowed(self.what)


class OneOf:
    """A Literal, with its values (in their declared order) listed in the verdict."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        choices = ", ".join(str(choice) for choice in get_args(source))
        return Allowed(f"one of {choices}").__get_pydantic_core_schema__(source, handler)


class IntegerOneOf:
    """A Literal of integers: one of its values written as an integer (not `1024.0`, not
    `true`), its values (in their declared order) listed in the verdict, then `why` if given."""

    def __init__(self, why: str = "") -> None:
        self.why = why

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        rule = _IntegerChoice(get_args(source), self.why)
        return rule.__get_pydantic_core_schema__(source, handler)


@dataclass(frozen=True)
class _IntegerChoice(Rule):
    choices: tuple[int, ...]
    why: str = ""

    @property
    def verdict(self) -> str:
        listed = f"one of {', '.join(str(choice) for choice in self.choices)}"
        return allowed(f"{listed} ({self.why})" if self.why else listed)

    def keep(self, value: Any, validated: Any) -> Any:
        if type(value) is not int:
            raise rule_error(self.verdict)
        return validated


@dataclass(frozen=True)
class Integer(Rule):
    """An integer from `low` to `high` (both included); a bool is not an integer."""

    low: int
    high: int

    @property
    def verdict(self) -> str:
        return allowed(f"an integer from {self.low:g} to {self.high:g}")

    def inner(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.int_schema(ge=self.low, le=self.high, strict=True)


@dataclass(frozen=True)
class Number(Rule):
    """A number from `low` to `high` (both included); a bool is not a number. An integer
    stays an integer, so it reaches pipeline parameters as written."""

    low: float
    high: float

    @property
    def verdict(self) -> str:
        return allowed(f"a number from {self.low:g} to {self.high:g}")

    def inner(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.float_schema(ge=self.low, le=self.high, strict=True)

    def keep(self, value: Any, validated: Any) -> Any:
        return value if type(value) is int else validated


@dataclass(frozen=True)
class NumberSaying(Number):
    """A number from `low` to `high` whose verdict is `says` (a field whose range another
    field narrows: the section's check states the range that applies)."""

    says: str = ""

    @property
    def verdict(self) -> str:
        return allowed(self.says)


@dataclass(frozen=True)
class NumberOr(Rule):
    """A number strictly between `low` and `high`, or one of the words `choices`; a bool is
    neither. An integer stays an integer."""

    low: float
    high: float
    choices: tuple[str, ...]

    @property
    def verdict(self) -> str:
        words = ", ".join(self.choices)
        return allowed(f"a number above {self.low:g} and below {self.high:g}, or {words}")

    def inner(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.union_schema(
            [
                core_schema.float_schema(gt=self.low, lt=self.high, strict=True),
                core_schema.literal_schema(list(self.choices)),
            ],
            # One error for the value as a whole, so the verdict replaces it.
            custom_error_type="number_or_choice",
            custom_error_message=self.verdict,
            # Numbers and words serialise as they are (an int default is not a float member).
            serialization=core_schema.plain_serializer_function_ser_schema(lambda value: value),
        )

    def keep(self, value: Any, validated: Any) -> Any:
        return value if type(value) is int else validated


@dataclass(frozen=True)
class Boolean(Rule):
    """`true` or `false`, nothing that merely looks like one."""

    @property
    def verdict(self) -> str:
        return allowed("true or false")

    def inner(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.bool_schema(strict=True)


@dataclass(frozen=True)
class Text(Rule):
    """A string matching `pattern`; with `nullable`, also null (the CDK CLI drops nulls, so
    a missing key means the same). `what` describes what is allowed, `verdict_text`
    replaces the whole verdict."""

    pattern: str
    what: str
    nullable: bool = False
    verdict_text: str = ""

    @property
    def verdict(self) -> str:
        return self.verdict_text or allowed(self.what + (", or null" if self.nullable else ""))

    def inner(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        text = core_schema.str_schema(pattern=self.pattern, strict=True)
        return core_schema.nullable_schema(text) if self.nullable else text


@dataclass(frozen=True)
class Region(Rule):
    """A region name that botocore's bundled endpoint data lists for SageMaker."""

    @property
    def verdict(self) -> str:
        return allowed("an AWS region name")

    def inner(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.str_schema(strict=True)

    def keep(self, value: Any, validated: Any) -> Any:
        regions = known_regions()
        if validated not in regions:
            examples = ", ".join(sorted(regions)[:4])
            raise rule_error(allowed(f"a region where SageMaker exists, e.g. {examples}, ..."))
        return validated


@cache
def known_regions() -> frozenset[str]:
    import boto3  # botocore's bundled endpoint data: no network, no credentials

    return frozenset(boto3.session.Session().get_available_regions("sagemaker"))
