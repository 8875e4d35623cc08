"""Invariants of the Gateway API HTTPRoute router over arbitrary routes (hypothesis)."""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

from hypothesis import given, reject
from hypothesis import strategies as st

from nonstop.traffic import (
    ORIGINAL_WEIGHTS_ANNOTATION,
    WEIGHT_SCALE,
    HeaderRoute,
    MirrorSpec,
    RouteError,
    desired_route,
    read_mirror_percent,
    read_weights,
    route_drift,
    strip_route,
)
from tests.strategies import (
    CANARY_SERVICE,
    STABLE_SERVICE,
    canary_weights,
    header_route_lists,
    http_routes,
    mirror_specs,
)
from tests.unit.test_gateway_route import httproute_schema, round_trip, valid


def desired(
    route: dict[str, Any],
    weight: float,
    header_routes: list[HeaderRoute] | None = None,
    mirror: MirrorSpec | None = None,
) -> dict[str, Any]:
    try:
        return desired_route(
            route,
            stable_service=STABLE_SERVICE,
            canary_service=CANARY_SERVICE,
            canary_weight=weight,
            header_routes=header_routes or (),
            mirror=mirror,
        )
    except RouteError as error:
        # Only the limits of the schema, a method split that would take another rule's
        # requests and a mirror of methods no rule serves are refused.
        message = str(error)
        assert any(
            reason in message
            for reason in ("Gateway API allows", "method match", "nothing would be mirrored")
        ), message
        reject()


def strip(route: dict[str, Any]) -> dict[str, Any]:
    return strip_route(route, canary_service=CANARY_SERVICE)


def is_ref(ref: dict[str, Any], name: str) -> bool:
    return bool(ref.get("name") == name)


def owned(rule: dict[str, Any]) -> bool:
    return str(rule.get("name", "")).startswith("nonstop-")


def requests(draw: st.DrawFn) -> tuple[float, list[HeaderRoute], MirrorSpec | None]:
    """What a pass may ask of the route: a weight and header routes, or a mirror at weight 0."""
    if draw(st.integers(0, 3)) == 0:
        return 0, [], draw(mirror_specs())  # type: ignore[return-value]
    return draw(canary_weights), draw(header_route_lists()), None  # type: ignore[return-value]


asks = st.composite(requests)


@given(http_routes(), canary_weights)
def test_weights_sum_to_100_and_never_exceed_the_request(
    route: dict[str, Any], weight: float
) -> None:
    result = desired(route, weight)
    read = read_weights(result, STABLE_SERVICE, CANARY_SERVICE)
    assert read is not None
    stable, canary = read
    assert stable + canary == 100
    assert 0 <= stable <= 100 and 0 <= canary <= 100
    asked = Fraction(str(weight))
    for rule in result["spec"]["rules"]:
        refs = rule.get("backendRefs", [])
        stable_w = sum(r.get("weight", 1) for r in refs if is_ref(r, STABLE_SERVICE))
        canary_w = sum(r.get("weight", 1) for r in refs if is_ref(r, CANARY_SERVICE))
        if canary_w == 0:
            continue
        total = stable_w + canary_w
        share = Fraction(100 * canary_w, total)
        assert share <= asked  # rounded down: never more than asked
        assert share > asked - Fraction(100, total)  # and by less than one step
        others = any(
            r.get("weight", 1) > 0
            for r in refs
            if r["name"] not in (STABLE_SERVICE, CANARY_SERVICE)
        )
        if not others:
            assert total == WEIGHT_SCALE  # the common scale: exact to 0.01%


@given(http_routes(), st.data())
def test_strip_undoes_desired(route: dict[str, Any], data: st.DataObject) -> None:
    weight, header_routes, mirror = data.draw(asks())
    assert strip(desired(route, weight, header_routes, mirror)) == route


@given(http_routes(), st.data())
def test_desired_is_idempotent(route: dict[str, Any], data: st.DataObject) -> None:
    weight, header_routes, mirror = data.draw(asks())
    once = desired(route, weight, header_routes, mirror)
    twice = desired(once, weight, header_routes, mirror)
    assert twice == once
    assert not route_drift(once, twice)


@given(http_routes(), st.data())
def test_desired_converges_from_any_earlier_pass(
    route: dict[str, Any], data: st.DataObject
) -> None:
    before = desired(route, *data.draw(asks()))
    now = data.draw(asks())
    assert desired(before, *now) == desired(route, *now)
    assert desired(before, 0) == route  # and at 0 with nothing else, the route as written


@given(http_routes(), st.data())
def test_user_parts_untouched(route: dict[str, Any], data: st.DataObject) -> None:
    weight, header_routes, mirror = data.draw(asks())
    original = copy.deepcopy(route)
    result = desired(route, weight, header_routes, mirror)
    assert route == original  # the input is not changed
    meta = copy.deepcopy(result["metadata"])
    meta.get("annotations", {}).pop(ORIGINAL_WEIGHTS_ANNOTATION, None)
    if meta.get("annotations") == {}:
        del meta["annotations"]
    assert meta == route["metadata"]
    assert {k: v for k, v in result["spec"].items() if k != "rules"} == {
        k: v for k, v in route["spec"].items() if k != "rules"
    }
    users = [r for r in result["spec"]["rules"] if not owned(r)]
    assert len(users) == len(route["spec"]["rules"])
    for mine, theirs in zip(users, route["spec"]["rules"], strict=True):
        routes_to_stable = any(is_ref(r, STABLE_SERVICE) for r in theirs.get("backendRefs", []))
        if not routes_to_stable:
            assert mine == theirs
            continue
        for key in theirs.keys() - {"backendRefs", "filters"}:
            assert mine[key] == theirs[key]
        assert mine.keys() - {"filters"} == theirs.keys() - {"filters"}
        user_filters = [f for f in mine.get("filters", []) if f["type"] != "RequestMirror"]
        assert user_filters == theirs.get("filters", [])
        others = [
            r for r in mine["backendRefs"] if r["name"] not in (STABLE_SERVICE, CANARY_SERVICE)
        ]
        assert others == [r for r in theirs["backendRefs"] if r["name"] != STABLE_SERVICE]


@given(http_routes(), mirror_specs())
def test_a_shadow_gets_no_live_traffic(route: dict[str, Any], mirror: MirrorSpec) -> None:
    result = desired(route, 0, mirror=mirror)
    for rule in result["spec"]["rules"]:
        for ref in rule.get("backendRefs", []):
            assert not is_ref(ref, CANARY_SERVICE) or ref.get("weight", 1) == 0
    assert read_weights(result, STABLE_SERVICE, CANARY_SERVICE) == (100.0, 0.0)
    assert read_mirror_percent(result, CANARY_SERVICE) == mirror.percent
    for rule in result["spec"]["rules"]:
        mirrored = any(f["type"] == "RequestMirror" for f in rule.get("filters", []))
        if mirror.splits and mirrored:  # only the owned per-method rules mirror
            assert owned(rule)
            assert all(m["method"] in (mirror.methods or ()) for m in rule["matches"])


@given(http_routes(max_rules=3), st.data())
def test_results_pass_the_crds_schema_and_survive_a_round_trip(
    route: dict[str, Any], data: st.DataObject
) -> None:
    if httproute_schema() is None:
        return  # tests/unit/test_gateway_route.py reports the skip
    observed = round_trip(route)
    ask = data.draw(asks())
    result = desired(observed, *ask)
    assert valid(result) == []
    stored = round_trip(result)
    assert not route_drift(stored, result)
    assert desired(stored, *ask) == stored
