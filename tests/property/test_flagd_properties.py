"""Invariants of the flagd document editor over arbitrary documents (hypothesis).

Documents have several flags, random whitespace (CR, LF, tabs, none), keys written plain or
\\u-escaped, members in any order, ``$schema``, ``metadata`` and ``$evaluators`` or not, and
the flag to roll out with no targeting, an empty one, someone else's, or nonstop's. Which
users get the variant is decided by the evaluator of the flagd in-process provider
(openfeature-flagd-core's FlagdCore: the engine the provider runs on the file's contents).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from nonstop.traffic import flag_weight, read_flag, set_weight
from nonstop.traffic.flagd import BUCKETING_VALUE
from tests.unit.test_flagd import changed_span

USERS = [f"user-{i}" for i in range(200)]

whitespace = st.sampled_from(["", "", " ", "  ", "\n", "\n  ", "\n\t\t", "\r\n    ", " \n "])
names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=6)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
metadata = st.dictionaries(names, st.text(max_size=5) | st.integers() | st.booleans(), max_size=2)
weights = st.one_of(
    st.floats(min_value=0, max_value=100),
    st.integers(min_value=0, max_value=100),
    st.sampled_from([0, 0.01, 0.5, 0.29, 99.5, 99.99, 100]),
)


@dataclass
class Text:
    """A JSON text built piece by piece, with the span of one value recorded."""

    parts: list[str] = field(default_factory=list)
    size: int = 0
    span: tuple[int, int] = (0, 0)

    def add(self, piece: str) -> None:
        self.parts.append(piece)
        self.size += len(piece)

    def __str__(self) -> str:
        return "".join(self.parts)


def render(draw: st.DrawFn, text: Text, value: Any, mark: Any = None) -> None:
    """Write `value` as JSON with random whitespace and escapes; record where `mark` goes."""
    start = text.size
    if isinstance(value, dict):
        text.add("{")
        for i, (key, member) in enumerate(value.items()):
            text.add(("," if i else "") + draw(whitespace))
            text.add(json.dumps(key, ensure_ascii=draw(st.booleans())))
            text.add(draw(whitespace) + ":" + draw(whitespace))
            render(draw, text, member, mark)
            text.add(draw(whitespace))
        text.add("}" if value else draw(whitespace) + "}")
    elif isinstance(value, list):
        text.add("[")
        for i, item in enumerate(value):
            text.add(("," if i else "") + draw(whitespace))
            render(draw, text, item, mark)
            text.add(draw(whitespace))
        text.add("]")
    else:
        text.add(json.dumps(value, ensure_ascii=draw(st.booleans())))
    if value is mark:
        text.span = (start, text.size)


@st.composite
def other_flags(draw: st.DrawFn) -> dict[str, Any]:
    variants = draw(st.dictionaries(names, st.booleans(), min_size=1, max_size=3))
    flag: dict[str, Any] = {
        "state": draw(st.sampled_from(["ENABLED", "DISABLED"])),
        "variants": variants,
        "defaultVariant": draw(st.sampled_from(sorted(variants))),
    }
    if draw(st.booleans()):
        flag["targeting"] = draw(st.dictionaries(st.text(max_size=4), json_values, max_size=2))
    if draw(st.booleans()):
        flag["metadata"] = draw(metadata)
    return flag


@dataclass
class Case:
    document: str
    key: str
    variant: str
    default: str
    span: tuple[int, int]  # the rolled-out flag's object in the document


@st.composite
def cases(draw: st.DrawFn) -> Case:
    keys = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    key = draw(st.sampled_from(keys))
    variant_names = draw(st.lists(names, min_size=2, max_size=4, unique=True))
    default, variant = variant_names[0], draw(st.sampled_from(variant_names[1:]))
    members: dict[str, Any] = {
        "state": "ENABLED",
        "variants": {name: draw(st.text(max_size=5)) for name in variant_names},
        "defaultVariant": default,
    }
    if draw(st.booleans()):
        members["metadata"] = draw(metadata)
    kind = draw(st.sampled_from(["none", "empty", "null", "other", "nonstop"]))
    if kind == "empty":
        members["targeting"] = {}
    elif kind == "null":
        members["targeting"] = None
    elif kind == "other":
        members["targeting"] = {"fractional": [[variant, 1], [default, 1]]}
    elif kind == "nonstop":
        new, old = draw(st.integers(0, 10_000)), draw(st.integers(0, 10_000))
        members["targeting"] = {"fractional": [BUCKETING_VALUE, [variant, new], [default, old + 1]]}
    order = draw(st.permutations(list(members)))
    target = {name: members[name] for name in order}
    flags = {name: target if name == key else draw(other_flags()) for name in keys}
    top: dict[str, Any] = {"flags": flags}
    if draw(st.booleans()):
        top["$schema"] = "https://flagd.dev/schema/v0/flags.json"
    if draw(st.booleans()):
        top["metadata"] = draw(metadata)
    if draw(st.booleans()):
        top["$evaluators"] = {"isStaff": {"ends_with": [{"var": "email"}, "@example.com"]}}
    top = {name: top[name] for name in draw(st.permutations(list(top)))}
    text = Text()
    text.add(draw(whitespace))
    render(draw, text, top, mark=target)
    text.add(draw(whitespace))
    return Case(str(text), key, variant, default, text.span)


def users_with_variant(document: str, case: Case) -> set[str]:
    """The users that flagd's evaluator gives the variant, for this document."""
    core = FlagdCore()
    core.set_flags(document)
    return {
        user
        for user in USERS
        if core.resolve_string_value(case.key, "", EvaluationContext(targeting_key=user)).variant
        == case.variant
    }


@given(cases(), st.lists(weights, min_size=1, max_size=5))
def test_set_weight_changes_only_the_targeting_and_only_adds_users(
    case: Case, sequence: list[float]
) -> None:
    document, (flag_start, flag_end) = case.document, case.span
    original = json.loads(document)
    assert read_flag(document, case.key, case.variant).default_variant == case.default
    seen: list[tuple[float, set[str]]] = []
    for weight in sequence:
        written = set_weight(document, case.key, case.variant, weight)
        if written != document:
            # one contiguous change, inside the flag's object: other flags, $schema,
            # metadata, $evaluators and the whitespace around them are the same bytes
            start, end, _ = changed_span(document, written)
            assert flag_start < start and end < flag_end
            flag_end += len(written) - len(document)
        parsed = json.loads(written)
        rule = parsed["flags"][case.key].pop("targeting")
        expected = json.loads(case.document)
        expected["flags"][case.key].pop("targeting", None)
        assert parsed == expected
        assert rule["fractional"][0] == BUCKETING_VALUE

        view = read_flag(written, case.key, case.variant)
        assert view.owned
        assert view.weight == flag_weight(weight) == math.floor(weight * 100 + 1e-9) / 100
        assert weight - 0.01 < view.weight <= weight + 1e-9
        assert set_weight(written, case.key, case.variant, weight) == written

        users = users_with_variant(written, case)
        if view.weight == 0:
            assert users == set()
        if view.weight == 100:
            assert users == set(USERS)
        for other_weight, other_users in seen:
            if other_weight <= view.weight:
                assert other_users <= users
            if other_weight >= view.weight:
                assert users <= other_users
        seen.append((view.weight, users))
        document = written
    assert json.loads(document).keys() == original.keys()
