"""flagd flag documents: read and set the share of users that get one flag's new variant.

Pure functions over the text of an OpenFeature flagd flag-definition document (the JSON
kept in a ConfigMap): no client, no I/O. The feature-toggle strategy calls `read_flag()` to
check the document and see where the rollout stands, and `set_weight()` to move it.

What nonstop owns
-----------------
The document belongs to the user. nonstop owns exactly one thing in it: the value of
``flags.<key>.targeting`` of the flag it rolls out. `set_weight()` replaces that value (or
adds the member when the flag has none) and returns the text with every other byte as the
user wrote it: other flags, the flag's other members, ``$schema``, ``$evaluators``,
``metadata``, whitespace, key order and escapes. The span of the targeting value is found
by a small scanner over the text (keys and values are read with the standard library's
JSON decoder at their offsets); the document is never re-serialised. When the member is
added, it goes after the flag's last member, indented like that member.

`FlagView.owned` says whether the current targeting is nonstop's (exactly the shape below,
for this variant and the flag's ``defaultVariant``, at any weights), or empty (absent,
``null`` or ``{}``, all of which serve ``defaultVariant`` to everyone). Anything else is
someone else's rule, and its weight reads as 0: deciding whether to overwrite it is the
caller's business, `set_weight()` overwrites whatever is there.

The targeting
-------------
::

    {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]},
                    ["<variant>", W], ["<defaultVariant>", 10000 - W]]}

flagd's ``fractional`` operation (https://flagd.dev/reference/custom-operations/fractional-operation/)
takes an optional first argument, the bucketing value, then ``[variant, weight]`` pairs.
The bucketing value here is the flag key followed by the OpenFeature targeting key,
spelled out (it is also what flagd uses when the argument is left out, but implementations
differ in how they encode the left-out form, see below). Salting with the flag key keeps
the users of two rollouts independent. A caller without a targeting key has one bucketing
value (the flag key alone), so all such callers get the same answer.

Weights are relative integers: each variant gets weight / total of the users (flagd since
PR #1313, 2024: https://github.com/open-feature/flagd/pull/1313; the sum is at most
2**31 - 1 and weights must be integers, per the ADR
https://github.com/open-feature/flagd/blob/main/docs/architecture-decisions/high-precision-fractional-bucketing.md).
nonstop writes weights that sum to `FLAG_WEIGHT_SCALE` (10000): basis points, so 0.01%
steps are exact (0.5% is ``["on", 50], ["off", 9950]``). The share asked for is rounded
*down* to 0.01% (the new variant never gets more than asked; 0.005% gives nobody), as the
Gateway router does (gateway.py). A float weight such as ``50.0`` is refused by the Python
provider, so the weights are written as JSON integers. Weight 0 is written as a
``fractional`` with weight 0 (nobody gets the variant), 100 as weight 10000 for it and 0
for the default (everybody does). `read_flag()` reads ``100 * W / total`` back, so it
returns exactly the weight that was written, at that resolution: `flag_weight()` says what
that is for a weight asked for (compare read weights with it, not with the asked weight).

Bucketing, and why raising the weight only adds users
-----------------------------------------------------
Every implementation hashes the bucketing value with MurmurHash3 (32 bit) and walks the
pairs in order, returning the first variant whose cumulative range holds the bucket:

- openfeature-provider-flagd 0.6.1 for Python (its evaluator is openfeature-flagd-core
  2.0.0, ``openfeature/contrib/tools/flagd/core/targeting/custom_ops.py``, ``fractional``):
  ``h = mmh3.hash(cbor2.dumps(value, canonical=True), signed=False)``, then
  ``bucket = (h * total) >> 32`` and the first pair whose running sum exceeds ``bucket``.
  It hashes the CBOR encoding of the bucketing value, per the ADR
  https://github.com/open-feature/flagd/blob/main/docs/architecture-decisions/fractional-non-string-rand-units.md
  (the left-out form hashes the CBOR array ``[flagKey, targetingKey]``, which is why the
  value is spelled out here).
- flagd itself (Go, ``core/pkg/evaluator/fractional.go``): the same
  ``(uint64(h) * total) >> 32`` with ``h = murmur3.StringSum32(value)`` of the string's
  bytes. Older versions mapped the hash to 100 buckets
  (``int(abs(int32(h)) / MaxInt32 * 100)``), see the spec
  https://flagd.dev/reference/specifications/custom-operations/fractional-operation-spec/:
  there the share is still W / total but in whole percents (0.5% acts as 1%), and
  evaluators from before relative weights (2024) want percentages summing to 100, so they
  answer null (defaultVariant, for everyone) to nonstop's 10000-sum weights.

So the same user may land differently under different evaluators (different bytes are
hashed), but within any one of them a key gets the first listed variant exactly when its
hash position p in [0, 1) is below ``W / total`` (``floor(h * T / 2**32) < W`` is
``h / 2**32 < W / T``). The new variant is listed first, so its range is [0, W): raising W
only adds users, and nobody who had the new variant at a lower weight loses it at a higher
one; going back down takes it away from the last ones added first. (With two pairs the
mirror order would also be monotone; first place anchors the new variant's range at 0, so
a key's fate is the one comparison above, whatever the total.) Only the ratio matters, so
a hand-written nonstop shape with another total (say ``["on", 1], ["off", 3]``: 25%) is
read as nonstop's, and rewriting it at the same share moves nobody.

Validation
----------
`read_flag()` checks what the official schema (https://flagd.dev/schema/v0/flags.json,
with https://flagd.dev/schema/v0/targeting.json; draft-07) and the Python provider's loader
(``model/flag.py``, ``model/flag_store.py`` in openfeature-flagd-core) require of the parts
it relies on, and says what to fix: the text is JSON; the top level is an object with a
``flags`` object (the map form; the array form is only for flagd's import command); the
flag exists and is an object; ``state`` is ENABLED or DISABLED; ``variants`` is a non-empty
object whose values are all booleans, all strings, all numbers or all objects;
``defaultVariant`` names one of them (nonstop serves it to everyone else); the variant to
roll out exists and is not the default; ``targeting``, when present, is an object (or
null); ``metadata`` (of the flag and of the document) maps names to strings, numbers or
booleans; ``$evaluators`` is an object. A document with two ``flags`` members, the flag
twice, or two ``targeting`` members in the flag is refused: which one counts would depend on
the reader. Other flags are the user's and are not checked.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

FLAG_WEIGHT_SCALE: Final = 10_000
"""The sum of the two weights nonstop writes: basis points (0.01% steps)."""

BUCKETING_VALUE: Final[dict[str, Any]] = {
    "cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]
}
"""The first argument of nonstop's ``fractional``: flag key + targeting key."""

STATES: Final = ("ENABLED", "DISABLED")
MAX_WEIGHT_SUM: Final = 2**31 - 1  # flagd's limit on the sum of a fractional's weights
DEFAULT_SOURCE: Final = "flags.flagd.json"  # the default ConfigMap key (FlagRef.file)

_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's insignificant whitespace
_DECODER = json.JSONDecoder()
_LISTED = 20  # names listed in a message before "and N more"


class FlagError(ValueError):
    """The flag document cannot be read or changed; the message says what to fix."""


@dataclass(frozen=True)
class FlagView:
    """What nonstop needs to know of one flag, for one variant to roll out."""

    state: str
    """ENABLED or DISABLED."""
    default_variant: str
    variant: str
    weight: float
    """The share (%) of users that nonstop's targeting gives `variant`: 0.0 when the flag
    has no targeting, or a targeting that is not nonstop's."""
    owned: bool
    """The targeting is nonstop's shape (for this variant and default), or empty."""


@dataclass(frozen=True)
class _Member:
    """One ``"key": value`` of an object in the text: offsets of the key and the value."""

    key: str
    key_start: int
    value_start: int
    value_end: int


@dataclass(frozen=True)
class _Place:
    """Where the flag's targeting is in the text, or where a new one goes."""

    targeting: tuple[int, int] | None  # the value's span, when the flag has the member
    insert_at: int  # just after the flag's last member's value
    separator: str  # what goes before the new member: "," and the last member's indent


def read_flag(document: str, key: str, variant: str, *, source: str = DEFAULT_SOURCE) -> FlagView:
    """Check the document and the flag `key`, and read where the rollout of `variant` is.

    `source` names the document in messages (the ConfigMap data key). Raises `FlagError`.
    """
    view, _ = _read(document, key, variant, source)
    return view


def set_weight(
    document: str, key: str, variant: str, weight: float, *, source: str = DEFAULT_SOURCE
) -> str:
    """The document with flag `key`'s targeting giving `variant` to `weight` % of users.

    Only the value of ``flags.<key>.targeting`` changes (or the member is added); every
    other byte is kept. Idempotent. `weight` is rounded down to 0.01%. Raises `FlagError`.
    """
    view, place = _read(document, key, variant, source)
    value = _render(variant, view.default_variant, _basis_points(weight))
    if place.targeting is not None:
        start, end = place.targeting
        return document[:start] + value + document[end:]
    at = place.insert_at
    return f'{document[:at]}{place.separator}"targeting": {value}{document[at:]}'


def flag_weight(weight: float) -> float:
    """The weight `set_weight(..., weight)` writes, as `read_flag()` reads it back.

    `weight` rounded down to 0.01%: compare a `FlagView.weight` with this, not with the
    asked weight (0.333 is written and read back as 0.33). Raises `FlagError` outside 0..100.
    """
    return _basis_points(weight) * 100 / FLAG_WEIGHT_SCALE


def _nonstop_weight(targeting: Any, variant: str, default_variant: str) -> float | None:
    """The share (%) that `targeting` gives `variant`, if it is nonstop's shape; else None."""
    if not isinstance(targeting, dict) or list(targeting) != ["fractional"]:
        return None
    args = targeting["fractional"]
    if not isinstance(args, list) or len(args) != 3 or args[0] != BUCKETING_VALUE:
        return None
    new, default = args[1], args[2]
    if not (_is_pair(new, variant) and _is_pair(default, default_variant)):
        return None
    total = new[1] + default[1]
    if total <= 0 or total > MAX_WEIGHT_SUM:
        return None
    return float(new[1] * 100 / total)


# --- reading --------------------------------------------------------------------------


def _read(document: str, key: str, variant: str, source: str) -> tuple[FlagView, _Place]:
    data = _parse(document, source)
    flags = data["flags"]
    if key not in flags:
        raise FlagError(f'flag "{key}" is not in {source} (flags: {_names(flags)})')
    flag = flags[key]
    if not isinstance(flag, dict):
        raise FlagError(
            f'flag "{key}" must be an object with state, variants and defaultVariant, not {_kind(flag)}'
        )
    state, default_variant = _check_flag(key, flag, variant)
    targeting = flag.get("targeting")
    if targeting is not None and not isinstance(targeting, dict):
        raise FlagError(
            f'flag "{key}": targeting must be a JSON object (a rule), not {_kind(targeting)}'
        )
    if not targeting:  # absent, null or {}: everyone gets defaultVariant
        weight: float | None = 0.0
    else:
        weight = _nonstop_weight(targeting, variant, default_variant)
    view = FlagView(
        state=state,
        default_variant=default_variant,
        variant=variant,
        weight=0.0 if weight is None else weight,
        owned=weight is not None,
    )
    return view, _locate(document, key, source)


def _parse(document: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(document)
    except json.JSONDecodeError as err:
        raise FlagError(
            f"{source} is not JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except RecursionError:
        raise FlagError(f"{source} is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise FlagError(f'{source} must be a JSON object with a "flags" object, not {_kind(data)}')
    if "flags" not in data:
        raise FlagError(
            f'{source} has no "flags": a flagd document is {{"flags": {{"<flag key>": {{...}}}}}}'
        )
    flags = data["flags"]
    if isinstance(flags, list):
        raise FlagError(
            f'{source}: "flags" is a list (the form of flagd\'s import command); flagd and its providers read the map form {{"flags": {{"<flag key>": {{...}}}}}}'
        )
    if not isinstance(flags, dict):
        raise FlagError(f'{source}: "flags" must be an object of flags, not {_kind(flags)}')
    evaluators = data.get("$evaluators")
    if evaluators is not None and not isinstance(evaluators, dict):
        raise FlagError(
            f'{source}: "$evaluators" must be an object of named rules, not {_kind(evaluators)}'
        )
    _check_metadata(f"{source}: metadata", data.get("metadata"))
    return data


def _check_flag(key: str, flag: dict[str, Any], variant: str) -> tuple[str, str]:
    """Check the flag's state, variants and defaultVariant; return state and default."""
    if "state" not in flag:
        raise FlagError(f'flag "{key}" has no state: add "state": "ENABLED" (or "DISABLED")')
    state = flag["state"]
    if state not in STATES:
        raise FlagError(f'flag "{key}": state {_show(state)} is not "ENABLED" or "DISABLED"')
    variants = flag.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise FlagError(
            f'flag "{key}" needs a non-empty "variants" object (variant name -> value), not {_kind(variants)}'
        )
    _check_variant_types(key, variants)
    names = _names(variants)
    default = flag.get("defaultVariant")
    if default is None:
        raise FlagError(
            f'flag "{key}" has no defaultVariant: nonstop serves it to the users who do not get "{variant}" (variants: {names})'
        )
    if not isinstance(default, str) or default not in variants:
        raise FlagError(
            f'flag "{key}": defaultVariant {_show(default)} is not one of its variants (variants: {names})'
        )
    if variant not in variants:
        raise FlagError(f'flag "{key}" has no variant "{variant}" (variants: {names})')
    if variant == default:
        raise FlagError(
            f'flag "{key}": "{variant}" is its defaultVariant, which everyone gets already; name the new variant to roll out instead (variants: {names})'
        )
    _check_metadata(f'flag "{key}": metadata', flag.get("metadata"))
    return state, default


def _check_variant_types(key: str, variants: dict[str, Any]) -> None:
    kinds: dict[str, str] = {}
    for name, value in variants.items():
        kind = _variant_kind(value)
        if kind is None:
            raise FlagError(
                f'flag "{key}": variant "{name}" is {_kind(value)}; variant values are booleans, strings, numbers or objects'
            )
        kinds.setdefault(kind, name)
    if len(kinds) > 1:
        found = ", ".join(f'"{name}" is {kind}' for kind, name in kinds.items())
        raise FlagError(
            f'flag "{key}": its variants must all have one type (all booleans, strings, numbers or objects), but {found}'
        )


def _check_metadata(where: str, metadata: Any) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise FlagError(f"{where} must be an object, not {_kind(metadata)}")
    for name, value in metadata.items():
        if not name:
            raise FlagError(f"{where} has an empty name")
        if isinstance(value, dict | list) or value is None:
            raise FlagError(
                f'{where}: "{name}" is {_kind(value)}; metadata values are strings, numbers or booleans'
            )


def _is_pair(pair: Any, variant: str) -> bool:
    return (
        isinstance(pair, list)
        and len(pair) == 2
        and pair[0] == variant
        and type(pair[1]) is int
        and pair[1] >= 0
    )


# --- writing --------------------------------------------------------------------------


def _basis_points(weight: float) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise FlagError(f"the weight must be a number from 0 to 100, not {weight!r}")
    if not math.isfinite(weight) or not 0 <= weight <= 100:
        raise FlagError(f"the weight must be from 0 to 100 (%), not {weight}")
    # Down to 0.01%; the epsilon keeps 0.29 (28.999...96 bp in binary) at 29 bp.
    points = math.floor(weight * (FLAG_WEIGHT_SCALE // 100) + 1e-9)
    return min(points, FLAG_WEIGHT_SCALE)


def _render(variant: str, default_variant: str, points: int) -> str:
    targeting = {
        "fractional": [
            BUCKETING_VALUE,
            [variant, points],
            [default_variant, FLAG_WEIGHT_SCALE - points],
        ]
    }
    text = json.dumps(targeting, ensure_ascii=False)
    if any("\ud800" <= char <= "\udfff" for char in text):  # a lone surrogate from \ud8xx
        text = json.dumps(targeting)  # keep it escaped, so the text still encodes to UTF-8
    return text


# --- the scanner ----------------------------------------------------------------------


def _locate(document: str, key: str, source: str) -> _Place:
    """Find flags.<key> in the text (which json.loads has accepted) and its targeting."""
    flags = _only(_members(document, _skip(document, 0)), "flags", f"{source} has")
    flag = _only(_members(document, flags.value_start), key, f"{source}: flags has")
    members = _members(document, flag.value_start)
    targeting = [m for m in members if m.key == "targeting"]
    if len(targeting) > 1:
        raise FlagError(
            f'flag "{key}" has {len(targeting)} "targeting" members; keep one (readers differ on which counts)'
        )
    last = members[-1]  # the flag has at least state and variants
    indent = _indent_before(document, last.key_start)
    separator = "," + indent if "\n" in indent or "\r" in indent else ", "
    return _Place(
        targeting=(targeting[0].value_start, targeting[0].value_end) if targeting else None,
        insert_at=last.value_end,
        separator=separator,
    )


def _members(text: str, start: int) -> list[_Member]:
    """The members of the JSON object whose ``{`` is at ``text[start]``, in order."""
    members: list[_Member] = []
    at = _skip(text, start + 1)
    if text[at] == "}":
        return members
    while True:
        key, after_key = _DECODER.raw_decode(text, at)
        colon = _skip(text, after_key)
        value_start = _skip(text, colon + 1)
        _, value_end = _DECODER.raw_decode(text, value_start)
        members.append(_Member(key, at, value_start, value_end))
        at = _skip(text, value_end)
        if text[at] == "}":
            return members
        at = _skip(text, at + 1)  # past the comma


def _only(members: Iterable[_Member], key: str, what: str) -> _Member:
    found = [m for m in members if m.key == key]
    if len(found) != 1:  # json.loads found it, so there is at least one
        raise FlagError(
            f'{what} "{key}" {len(found)} times; keep one (readers differ on which counts)'
        )
    return found[0]


def _skip(text: str, at: int) -> int:
    match = _WHITESPACE.match(text, at)
    assert match is not None  # "*" matches the empty string
    return match.end()


def _indent_before(text: str, at: int) -> str:
    start = at
    while start > 0 and text[start - 1] in " \t\n\r":
        start -= 1
    return text[start:at]


# --- messages -------------------------------------------------------------------------


def _names(mapping: dict[str, Any]) -> str:
    names = list(mapping)
    if not names:
        return "none"
    shown = ", ".join(names[:_LISTED])
    return shown if len(names) <= _LISTED else f"{shown} and {len(names) - _LISTED} more"


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if value is not None else "null"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _variant_kind(value: Any) -> str | None:
    if isinstance(value, list) or value is None:
        return None
    return _kind(value)
