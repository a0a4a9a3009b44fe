"""The vocabulary of the settings models: their base, the value types (each with the fix its
problem names and the JSON Schema editors check), secrets, and the problems a stack's config has.

A value type checks one value; a check that needs more than one value, or the stack around it
(dev stack, which keys are secret), is a `problems()` method of its model, so every problem is
reported at once with its key path, its value and its fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, GetCoreSchemaHandler, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GetJsonSchemaHandler, JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from infra.errors import UserError
from smoke_tests.secret import Secret as PlainSecret

PROJECT = "kubeflow-stacks"


def fail(fix: str, **ctx: Any) -> PydanticCustomError:
    """The error a value check raises: `fix` is the message; ctx may set `value` (what the problem
    shows), `hide` (a secret: shown as ****) and `at` (a key below the one checked)."""
    return PydanticCustomError("config", fix, ctx or None)


class Secret(PlainSecret):
    """The smoke suite's secret string, as a settings value: validated, and a JSON Schema for editors."""

    __slots__ = ()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(_secret)

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # A stack file holds secrets encrypted by `pulumi config set --secret` as {secure: ...}.
        return {"anyOf": [{"type": "string", "minLength": 1},
                          {"type": "object", "properties": {"secure": {"type": "string"}},
                           "required": ["secure"], "additionalProperties": False}]}


def _secret(value: Any) -> PlainSecret:
    if isinstance(value, PlainSecret):
        return value
    if not isinstance(value, str) or not value:
        raise fail("must be a non-empty string", hide=True)
    return Secret(value)


@dataclass(frozen=True)
class Problem:
    key: str
    value: Any
    fix: str

    def __str__(self) -> str:
        shown = "****" if isinstance(self.value, PlainSecret) or self.value == "****" else repr(self.value)
        return f"{PROJECT}:{self.key} = {shown}: {self.fix}"


class ConfigError(UserError, ValueError):
    """Every problem found in a stack's config, reported together before anything is created."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack configuration ({len(problems)} problem(s)):\n{lines}")


class Section(BaseModel):
    """A map of settings in the stack file: camelCase keys, unknown keys refused, null = not set."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              regex_engine="python-re")
    # The fix when the value is no map at all.
    not_a_map: ClassVar[str] = "must be a map of settings"

    @model_validator(mode="before")
    @classmethod
    def _as_map(cls, data: Any) -> Any:
        if isinstance(data, BaseModel):
            return data
        if not isinstance(data, Mapping):
            raise fail(cls.not_a_map)
        names = cls.keys()
        return {k: v for k, v in data.items() if not (v is None and k in names)}

    @classmethod
    def keys(cls) -> list[str]:
        """The keys this section takes, as written in a stack file."""
        return sorted(f.alias or n for n, f in cls.model_fields.items())


# ---------------------------------------------------------------------------------------------
# Value types


@dataclass(frozen=True, eq=False)  # hashed by identity: typing hashes Annotated metadata
class Check:
    """A check of a string that has the right type: `test` it, else the problem names `fix`."""

    test: Callable[[str], bool]
    fix: str
    schema: Mapping[str, Any]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), **self.schema}

    def _check(self, value: str) -> str:
        if not self.test(value):
            raise fail(self.fix)
        return value


def matches(pattern: re.Pattern[str], fix: str) -> Check:
    return Check(lambda v: bool(pattern.match(v)), fix, {"pattern": pattern.pattern})


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        raise fail("must be a string")
    return value


def _flag(value: Any) -> bool:
    """true/false, also as the strings `pulumi config set` stores without --path."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise fail("must be true or false")
    return value


def minimum(value: int) -> WithJsonSchema:
    """The JSON Schema of a whole number of at least `value` (checked by `_whole`)."""
    return WithJsonSchema({"type": "integer", "minimum": value})


def _whole(minimum: int) -> BeforeValidator:
    def check(value: Any) -> int:
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise fail(f"must be a whole number of at least {minimum}")
        return value
    return BeforeValidator(check)


def _quantity(value: Any) -> str:
    value = str(value)
    if not QUANTITY.match(value):
        raise fail("must be a Kubernetes quantity such as 10Gi, 500m or 4", value=value)
    return value


def listing(fix: str, item: Callable[[Any], bool] = lambda _: True) -> BeforeValidator:
    """A list or tuple (empty when unset; the field holds a tuple): `fix` when it is neither or `item`
    refuses one of its items."""
    def check(value: Any) -> Any:
        if not value:
            return []
        if not isinstance(value, (list, tuple)) or not all(item(v) for v in value):
            raise fail(fix)
        return value
    return BeforeValidator(check)


def mapping(fix: str) -> BeforeValidator:
    """A map (empty when unset); `fix` when it is no map."""
    def check(value: Any) -> Any:
        if not value:
            return {}
        if not isinstance(value, Mapping):
            raise fail(fix)
        return value
    return BeforeValidator(check)


QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P)?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
HOST = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$|^[0-9a-fA-F:]+$")

Text = Annotated[str, BeforeValidator(_text)]
Flag = Annotated[bool, BeforeValidator(_flag), WithJsonSchema({"anyOf": [
    {"type": "boolean"}, {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"}]})]
Whole = Annotated[int, _whole(0), minimum(0)]
Positive = Annotated[int, _whole(1), minimum(1)]
Quantity = Annotated[str, BeforeValidator(_quantity), WithJsonSchema({"anyOf": [
    {"type": "string", "pattern": QUANTITY.pattern}, {"type": "number", "minimum": 0}]})]
AbsolutePath = Annotated[str, BeforeValidator(_text),
                         Check(lambda v: v.startswith("/"), "must be an absolute path (starting with /)",
                               {"pattern": "^/"})]
DnsLabel = Annotated[str, BeforeValidator(_text),
                     matches(DNS_LABEL, "must be a DNS label: lower-case letters, digits and '-'")]
