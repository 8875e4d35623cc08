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

# --- names and labels, as the API server checks them in the objects nonstop writes ----------

# A Service name (DNS-1035 label: starts with a letter).
DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, StringConstraints(pattern=DNS_LABEL, min_length=1, max_length=63)]

# A Service port name, a container name (DNS-1123 label: may start with a digit).
DNS_1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

# An object name such as a Deployment's or a Rollout's (DNS-1123 subdomain).
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

# The longest label value Kubernetes accepts. nonstop labels what it creates with the
# Rollout's name (nonstop.dev/rollout), so that is also the longest Rollout name.
MAX_LABEL_VALUE = 63
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# A Rollout's name as another object refers to it (a RolloutAction's spec.rollout).
RolloutName = Annotated[
    str, StringConstraints(pattern=DNS_SUBDOMAIN, min_length=1, max_length=MAX_LABEL_VALUE)
]
# A label key: an optional DNS subdomain prefix (at most 253) and '/', then a
# name of at most 63 characters.
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
MAX_KEY_PREFIX = 253
KEY_MESSAGE = (
    "keys must be qualified names as Kubernetes requires: an optional DNS subdomain prefix"
    " (at most 253 characters) and '/', then at most 63 letters, digits, '-', '_' or '.',"
    " starting and ending with a letter or digit"
)
LABEL_VALUE_MESSAGE = (
    "label values are at most 63 letters, digits, '-', '_' or '.', starting and ending"
    " with a letter or digit"
)
_KEY_RULE = cel(
    f"self.all(k, k.matches('{QUALIFIED_NAME}')"
    f" && (!k.contains('/') || k.indexOf('/') <= {MAX_KEY_PREFIX}))",
    KEY_MESSAGE,
)


def qualified_name_ok(key: str) -> bool:
    return bool(re.fullmatch(QUALIFIED_NAME, key)) and key.find("/") <= MAX_KEY_PREFIX


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    bad_keys = [k for k in value if not qualified_name_ok(k)]
    if bad_keys:
        raise ValueError(f"{', '.join(map(repr, bad_keys))}: {KEY_MESSAGE}")
    bad = [
        k for k, v in value.items() if len(v) > MAX_LABEL_VALUE or not re.fullmatch(LABEL_VALUE, v)
    ]
    if bad:
        raise ValueError(f"{', '.join(f'{k}={value[k]!r}' for k in bad)}: {LABEL_VALUE_MESSAGE}")
    return value


LabelMap = Annotated[
    dict[str, str],
    AfterValidator(_check_labels),
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {
                "type": "string",
                "maxLength": MAX_LABEL_VALUE,
                "pattern": LABEL_VALUE,
            },
            "maxProperties": 64,
            "x-kubernetes-validations": [_KEY_RULE],
        }
    ),
]

# A port a Service sends to: a number, or the name of a container port (IANA_SVC_NAME).
PORT_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_PORT_NAME = 15
PORT_MESSAGE = (
    "must be a port number from 1 to 65535, or a container port name (IANA_SVC_NAME: at most"
    " 15 lowercase letters, digits and '-', with at least one letter, no '--', and no '-'"
    " at either end)"
)


def _check_port_number_or_name(value: int | str) -> int | str:
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            raise ValueError(PORT_MESSAGE)
        return value
    if (
        len(value) > MAX_PORT_NAME
        or not re.fullmatch(PORT_NAME, value)
        or not re.search("[a-z]", value)
        or "--" in value
    ):
        raise ValueError(PORT_MESSAGE)
    return value


PortNumberOrName = Annotated[
    int | str,
    AfterValidator(_check_port_number_or_name),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "maxLength": MAX_PORT_NAME,  # of a name; bounds the rule's cost too
            "description": "A port number (1 to 65535) or a container port name.",
            "x-kubernetes-validations": [
                cel(
                    "type(self) == int ? self >= 1 && self <= 65535"
                    f" : self.matches('{PORT_NAME}')"
                    " && self.matches('[a-z]') && !self.contains('--')",
                    PORT_MESSAGE,
                )
            ],
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
