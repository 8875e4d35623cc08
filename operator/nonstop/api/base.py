"""Shared model configuration and field types of the Rollout API."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """A closed API object: camelCase on the wire, unknown fields are errors."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class OpenApiModel(ApiModel):
    """An object that embeds Kubernetes fields we pass through untouched (pod spec, container)."""

    model_config = ConfigDict(extra="allow")


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One x-kubernetes-validations entry (a CEL rule checked by the API server at admission)."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


def exactly_one_of(keys: list[str], what: str) -> dict[str, str]:
    flags = ", ".join(f"has(self.{k})" for k in keys)
    names = ", ".join(keys[:-1]) + f" or {keys[-1]}"
    return cel(f"[{flags}].filter(x, x).size() == 1", f"{what}: set exactly one of {names}")


DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
PERCENT_PATTERN = r"^(100|[1-9]?[0-9])%$"

Duration = Annotated[
    str,
    StringConstraints(pattern=DURATION_PATTERN, max_length=32),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": 32,
            "description": "A duration such as 30s, 5m or 1h30m (units ms, s, m, h).",
        }
    ),
]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(value: str) -> float:
    """Seconds in a Duration string ("1m30s" -> 90.0)."""
    return sum(
        float(n) * _UNITS[u] for n, _, u in re.findall(r"([0-9]+(\.[0-9]+)?)(ms|s|m|h)", value)
    )


def _check_int_or_percent(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if not re.fullmatch(PERCENT_PATTERN, value):
        raise ValueError("must be a non-negative integer or a percentage from 0% to 100%")
    return value


IntOrPercent = Annotated[
    int | str,
    AfterValidator(_check_int_or_percent),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "description": "A number of pods, or a percentage of spec.replicas such as 25%.",
            "x-kubernetes-validations": [
                cel(
                    f"type(self) == int ? self >= 0 : self.matches('{PERCENT_PATTERN}')",
                    "must be a non-negative integer or a percentage from 0% to 100%",
                )
            ],
        }
    ),
]

IntOrName = Annotated[
    int | str,
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        }
    ),
]

DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, StringConstraints(pattern=DNS_LABEL, min_length=1, max_length=63)]
LabelMap = Annotated[
    dict[str, str],
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {"type": "string", "maxLength": 63},
            "maxProperties": 64,
        }
    ),
]


def _one_of_rule(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    keys = [
        info.alias or name
        for name, info in cls.model_fields.items()
        if name in getattr(cls, "one_of", ()) or not getattr(cls, "one_of", ())
    ]
    what = getattr(cls, "one_of_what", cls.__name__)
    schema.setdefault("x-kubernetes-validations", []).append(exactly_one_of(keys, what))


class OneOfModel(ApiModel):
    """An object of which exactly one field (of `one_of`, default all) must be set.

    The same rule is checked twice from one definition: at admission by a CEL rule in the
    CRD, and in the operator by pydantic (for objects that were stored before a rule existed).
    """

    model_config = ConfigDict(json_schema_extra=_one_of_rule)
    one_of: ClassVar[tuple[str, ...]] = ()
    one_of_what: ClassVar[str] = "object"

    @model_validator(mode="after")
    def _exactly_one(self) -> OneOfModel:
        fields = self.one_of or tuple(type(self).model_fields)
        chosen = [f for f in fields if getattr(self, f) is not None]
        if len(chosen) != 1:
            names = [type(self).model_fields[f].alias or f for f in fields]
            raise ValueError(
                f"{self.one_of_what}: set exactly one of {', '.join(names[:-1])} or {names[-1]}"
            )
        return self
