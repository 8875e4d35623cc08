"""What the API server checks when a nonstop object is created, done offline.

The same CustomResourceDefinitions the cluster has (generated from the pydantic models by
nonstop.api.crd) are applied the way kube-apiserver applies them, in the same order and
with the same words (recorded from a real v1.36 API server: tests/fixtures/admission/):

1. strict decoding: a field the schema does not declare is `unknown field "<path>"`
   (kubectl's default --validate=strict); nulls are dropped, as the API server does;
2. metadata.name: required, a lowercase RFC 1123 subdomain;
3. the structural schema (kube-openapi's validators): types, enums, required fields,
   bounds, lengths, patterns, item and property counts, list-type sets;
4. the scale subresource (Rollout): spec.replicas must not be negative;
5. the CEL rules (x-kubernetes-validations), evaluated by cel-python with the functions
   Kubernetes adds (trim, lowerAscii, indexOf, ...) and CEL's heterogeneous equality;
   as in the API server, they are not run when 3 found a "blocking" error (a wrong type,
   an unsupported value, a missing field, too long, too many), which is said instead.

Each problem is a FieldError whose `line` is the API server's own line
("spec.replicas: Invalid value: -2: spec.replicas in body should be greater than or equal
to 0"). Transition rules (oldSelf) only apply to updates and are not run here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from nonstop.api.action import ACTION_KIND
from nonstop.api.crd import action_crd, rollout_crd, template_crd
from nonstop.api.spec import GROUP, KIND, VERSION

API_VERSION = f"{GROUP}/{VERSION}"
TEMPLATE_KIND = "AnalysisTemplate"

Source = Literal["strict", "metadata", "schema", "scale", "cel"]
# field.ErrorType names of the API server; the blocking ones stop CEL (hasBlockingErr)
ErrorType = Literal[
    "FieldValueInvalid",
    "FieldValueRequired",
    "FieldValueTooLong",
    "FieldValueTooMany",
    "FieldValueNotSupported",
    "FieldValueDuplicate",
    "FieldValueTypeInvalid",
    "FieldValueUnknown",
    "InternalError",
]
BLOCKING: frozenset[ErrorType] = frozenset(
    {
        "FieldValueRequired",
        "FieldValueTooLong",
        "FieldValueTooMany",
        "FieldValueNotSupported",
        "FieldValueTypeInvalid",
    }
)
NOT_CHECKED = (
    "Invalid value: null: some validation rules were not checked because the object was"
    " invalid; correct the existing errors to complete validation"
)


@dataclass(frozen=True)
class FieldError:
    """One problem, as the API server words it: `path: text`."""

    path: str  # "spec.service.ports[0].name"; "" is the API server's <nil>
    text: str  # "Invalid value: ...", "Required value", "Too long: ..."
    type: ErrorType
    source: Source

    @property
    def line(self) -> str:
        return f"{self.path or '<nil>'}: {self.text}"


# --- the schemas ---------------------------------------------------------------------------


@cache
def schemas() -> dict[str, tuple[dict[str, Any], bool]]:
    """kind -> (openAPIV3Schema, has a scale subresource), from the generated CRDs."""
    out = {}
    for crd in (rollout_crd(), action_crd(), template_crd()):
        version = crd["spec"]["versions"][0]
        kind = crd["spec"]["names"]["kind"]
        out[kind] = (version["schema"]["openAPIV3Schema"], "scale" in version["subresources"])
    return out


KINDS = (KIND, ACTION_KIND, TEMPLATE_KIND)

# ObjectMeta's fields: strict decoding knows them even though the CRD only says `object`
OBJECT_META = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-'"
    " or '.', and must start and end with an alphanumeric character (e.g. 'example.com',"
    " regex used for validation is"
    " '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


# --- how Go prints values ------------------------------------------------------------------


def go_value(value: Any) -> str:
    """A value as field.Invalid prints it (%v of the Go value; strings quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return go_number(value)
    if value is None:
        return "null"
    return str(value)


def go_number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def json_type(value: Any) -> str:
    """The JSON type kube-openapi names for a value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null"


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- 1. strict decoding --------------------------------------------------------------------


def _allowed(schema: dict[str, Any]) -> frozenset[str] | None:
    """The keys an object may have, or None when any key is fine."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in schema:
        return None
    return frozenset(schema.get("properties") or {})


def strict(obj: Any, schema: dict[str, Any], path: str = "") -> tuple[Any, list[FieldError]]:
    """The object with nulls and unknown fields dropped, and an error per unknown field."""
    errors: list[FieldError] = []
    if isinstance(obj, list):
        items = schema.get("items") or {}
        out_list = []
        for i, item in enumerate(obj):
            kept, errs = strict(item, items, f"{path}[{i}]")
            out_list.append(kept)
            errors += errs
        return out_list, errors
    if not isinstance(obj, dict) or schema.get("type") != "object":
        return obj, errors
    allowed = _allowed(schema)
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        where = _child(path, key)
        if value is None:
            continue  # the API server drops nulls of non-nullable fields
        if allowed is not None and key not in allowed:
            errors.append(
                FieldError(where, f'unknown field "{where}"', "FieldValueUnknown", "strict")
            )
            continue
        sub = props.get(key) or (extra if isinstance(extra, dict) else None)
        if sub is None:  # a field the schema keeps as written (a pod spec's)
            out[key] = value
            continue
        out[key], errs = strict(value, sub, where)
        errors += errs
    return out, errors


def _strict_metadata(meta: Any) -> list[FieldError]:
    if not isinstance(meta, dict):
        return []
    return [
        FieldError(f"metadata.{k}", f'unknown field "metadata.{k}"', "FieldValueUnknown", "strict")
        for k in meta
        if k not in OBJECT_META
    ]


# --- 2. metadata ---------------------------------------------------------------------------


def metadata_errors(meta: Any) -> list[FieldError]:
    meta = meta if isinstance(meta, dict) else {}
    name = meta.get("name")
    if not name and not meta.get("generateName"):
        return [
            FieldError(
                "metadata.name",
                "Required value: name or generateName is required",
                "FieldValueRequired",
                "metadata",
            )
        ]
    if isinstance(name, str):
        problems = []
        if len(name) > 253:
            problems.append("must be no more than 253 characters")
        if not DNS_SUBDOMAIN.fullmatch(name):
            problems.append(DNS_SUBDOMAIN_MESSAGE)
        if problems:
            text = f"Invalid value: {go_value(name)}: {'; '.join(problems)}"
            return [FieldError("metadata.name", text, "FieldValueInvalid", "metadata")]
    return []


# --- 3. the structural schema --------------------------------------------------------------


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return json_type(value) in ("integer", "string")
    want = schema.get("type")
    got = json_type(value)
    return want is None or got == want or (want == "number" and got == "integer")


def _schema_errors(value: Any, schema: dict[str, Any], path: str) -> Iterator[FieldError]:
    if not _type_ok(value, schema):
        want = "integer,string" if schema.get("x-kubernetes-int-or-string") else schema["type"]
        got = json_type(value)
        yield FieldError(
            path,
            f'Invalid value: "{got}": {path} in body must be of type {want}: "{got}"',
            "FieldValueTypeInvalid",
            "schema",
        )
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(go_value(v) for v in schema["enum"])
        yield FieldError(
            path,
            f"Unsupported value: {go_value(value)}: supported values: {supported}",
            "FieldValueNotSupported",
            "schema",
        )
    if isinstance(value, str):
        yield from _string_errors(value, schema, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield from _number_errors(value, schema, path)
    elif isinstance(value, list):
        yield from _array_errors(value, schema, path)
    elif isinstance(value, dict):
        yield from _object_errors(value, schema, path)


def _string_errors(value: str, schema: dict[str, Any], path: str) -> Iterator[FieldError]:
    """kube-openapi's string validator: the first of maxLength, minLength, pattern."""
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        text = f"Too long: may not be more than {schema['maxLength']} bytes"
        yield FieldError(path, text, "FieldValueTooLong", "schema")
    elif "minLength" in schema and len(value) < schema["minLength"]:
        text = (
            f"Invalid value: {go_value(value)}: {path} in body should be at least"
            f" {schema['minLength']} chars long"
        )
        yield FieldError(path, text, "FieldValueInvalid", "schema")
    elif "pattern" in schema and not re.search(schema["pattern"], value):
        text = (
            f"Invalid value: {go_value(value)}: {path} in body should match '{schema['pattern']}'"
        )
        yield FieldError(path, text, "FieldValueInvalid", "schema")


def _number_errors(value: float, schema: dict[str, Any], path: str) -> Iterator[FieldError]:
    """kube-openapi's number validator: the first of maximum, minimum."""
    bound: str | None = None
    if "maximum" in schema and value > schema["maximum"]:
        bound = f"less than or equal to {go_number(float(schema['maximum']))}"
    elif "minimum" in schema and value < schema["minimum"]:
        bound = f"greater than or equal to {go_number(float(schema['minimum']))}"
    if bound is not None:
        text = f"Invalid value: {go_value(value)}: {path} in body should be {bound}"
        yield FieldError(path, text, "FieldValueInvalid", "schema")


def _array_errors(value: list[Any], schema: dict[str, Any], path: str) -> Iterator[FieldError]:
    if "minItems" in schema and len(value) < schema["minItems"]:
        text = (
            f"Invalid value: {len(value)}: {path} in body should have at least"
            f" {schema['minItems']} items"
        )
        yield FieldError(path, text, "FieldValueInvalid", "schema")
    elif "maxItems" in schema and len(value) > schema["maxItems"]:
        text = f"Too many: {len(value)}: must have at most {schema['maxItems']} items"
        yield FieldError(path, text, "FieldValueTooMany", "schema")
    items = schema.get("items") or {}
    for i, item in enumerate(value):
        yield from _schema_errors(item, items, f"{path}[{i}]")


def _object_errors(
    value: dict[str, Any], schema: dict[str, Any], path: str
) -> Iterator[FieldError]:
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        text = f"Too many: {len(value)}: must have at most {schema['maxProperties']} items"
        yield FieldError(path, text, "FieldValueTooMany", "schema")
    elif "minProperties" in schema and len(value) < schema["minProperties"]:
        text = (
            f"Invalid value: {len(value)}: {path} in body should have at least"
            f" {schema['minProperties']} properties"
        )
        yield FieldError(path, text, "FieldValueInvalid", "schema")
    for key in schema.get("required") or []:
        if key not in value:
            yield FieldError(_child(path, key), "Required value", "FieldValueRequired", "schema")
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, sub_value in value.items():
        sub = props.get(key) or (extra if isinstance(extra, dict) else None)
        if sub is not None:
            yield from _schema_errors(sub_value, sub, _child(path, key))


def list_set_errors(value: Any, schema: dict[str, Any], path: str = "") -> Iterator[FieldError]:
    """x-kubernetes-list-type: set: each item once (structurallisttype)."""
    if isinstance(value, list):
        items = schema.get("items") or {}
        if schema.get("x-kubernetes-list-type") == "set":
            seen: list[Any] = []
            for i, item in enumerate(value):
                if item in seen:
                    yield FieldError(
                        f"{path}[{i}]",
                        f"Duplicate value: {go_value(item)}",
                        "FieldValueDuplicate",
                        "schema",
                    )
                seen.append(item)
        for i, item in enumerate(value):
            yield from list_set_errors(item, items, f"{path}[{i}]")
    elif isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, sub_value in value.items():
            sub = props.get(key) or (extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from list_set_errors(sub_value, sub, _child(path, key))


# --- 5. CEL --------------------------------------------------------------------------------


def _numeric(value: Any) -> bool:
    return isinstance(value, celtypes.IntType | celtypes.UintType | celtypes.DoubleType)


def _equal(a: Any, b: Any) -> celtypes.BoolType:
    """CEL's heterogeneous equality (what Kubernetes' cel-go does): values of different
    types are unequal rather than an error (an int-or-string compared with 0 or '0%')."""
    if _numeric(a) and _numeric(b):
        return celtypes.BoolType(float(a) == float(b))
    if type(a) is not type(b) and not (
        isinstance(a, celtypes.MapType | celtypes.ListType | celtypes.StringType)
        and isinstance(b, type(a))
    ):
        return celtypes.BoolType(False)
    return celtypes.BoolType(bool(a == b))


def _not_equal(a: Any, b: Any) -> celtypes.BoolType:
    return celtypes.BoolType(not _equal(a, b))


def _index_of(text: Any, sub: Any) -> celtypes.IntType:
    return celtypes.IntType(str(text).find(str(sub)))


def _last_index_of(text: Any, sub: Any) -> celtypes.IntType:
    return celtypes.IntType(str(text).rfind(str(sub)))


# Kubernetes' CEL library (the strings extension) beside CEL's standard functions
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "_==_": _equal,
    "_!=_": _not_equal,
    "trim": lambda s: celtypes.StringType(str(s).strip()),
    "lowerAscii": lambda s: celtypes.StringType(
        "".join(c.lower() if c.isascii() else c for c in str(s))
    ),
    "upperAscii": lambda s: celtypes.StringType(
        "".join(c.upper() if c.isascii() else c for c in str(s))
    ),
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
}


@cache
def program(rule: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(rule), functions=FUNCTIONS)


def cel_rules(schema: dict[str, Any]) -> list[dict[str, str]]:
    rules: list[dict[str, str]] = schema.get("x-kubernetes-validations") or []
    return [r for r in rules if "oldSelf" not in r["rule"]]


def _scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def cel_errors(value: Any, schema: dict[str, Any], path: str = "") -> Iterator[FieldError]:
    """Each rule of each node, the node's own before its children's (as the API server)."""
    for rule in cel_rules(schema):
        where = path + rule["fieldPath"] if rule.get("fieldPath") else path
        where = where.removeprefix(".")
        try:
            result = program(rule["rule"]).evaluate({"self": json_to_cel(value)})
        except CELEvalError as exc:
            text = f"Internal error: {exc.args[0]} evaluating rule: {rule['rule']}"
            yield FieldError(where, text, "InternalError", "cel")
            continue
        if not bool(result):
            shown = f"{go_value(value)}: " if _scalar(value) else ""
            yield FieldError(
                where, f"Invalid value: {shown}{rule['message']}", "FieldValueInvalid", "cel"
            )
    if isinstance(value, list):
        items = schema.get("items") or {}
        for i, item in enumerate(value):
            yield from cel_errors(item, items, f"{path}[{i}]")
    elif isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, sub_value in value.items():
            sub = props.get(key) or (extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from cel_errors(sub_value, sub, _child(path, key))


# --- all of it -----------------------------------------------------------------------------


def admit(obj: dict[str, Any]) -> list[FieldError]:
    """Every problem the API server finds in a create of this nonstop object (its kind must
    be one of KINDS), in the API server's order and words."""
    root, scale = schemas()[str(obj.get("kind"))]
    body = {k: v for k, v in obj.items() if k != "status"}  # status is reset on create
    meta = body.get("metadata")
    body, errors = strict(
        {k: v for k, v in body.items() if k != "metadata"},
        {**root, "properties": {k: v for k, v in root["properties"].items() if k != "metadata"}},
    )
    errors += _strict_metadata(meta)
    body["metadata"] = meta if isinstance(meta, dict) else {}
    errors += metadata_errors(meta)
    checked = list(_schema_errors(body, root, ""))
    errors += checked
    replicas = (
        (body.get("spec") or {}).get("replicas") if isinstance(body.get("spec"), dict) else None
    )
    if scale and isinstance(replicas, int) and not isinstance(replicas, bool) and replicas < 0:
        text = f"Invalid value: {replicas}: should be a non-negative integer"
        errors.append(FieldError(".spec.replicas", text, "FieldValueInvalid", "scale"))
    errors += list_set_errors(body, root)
    if any(e.type in BLOCKING for e in checked):
        errors.append(FieldError("", NOT_CHECKED, "FieldValueInvalid", "cel"))
    else:
        errors += cel_errors(body, root)
    return errors
