"""The Gateway API HTTPRoute router (nonstop.traffic.gateway): table tests on a realistic
route, and checks against the real HTTPRoute CRD (schema, limits, defaults) without a cluster."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from nonstop.api.spec import HeaderMatch as ApiHeaderMatch
from nonstop.api.spec import Mirror, SetHeaderRoute
from nonstop.traffic import (
    ORIGINAL_WEIGHTS_ANNOTATION,
    HeaderMatch,
    HeaderRoute,
    MirrorSpec,
    RouteError,
    desired_route,
    gateway,
    read_mirror_percent,
    read_weights,
    route_drift,
    strip_route,
)

STABLE, CANARY = "web", "web-canary"

# --- the real schema, read from the CRD file the test cluster installs --------------------------

CRD_PATH = (
    Path(os.environ.get("NONSTOP_CACHE", Path.home() / ".cache" / "nonstop"))
    / "assets"
    / "gateway-api"
    / "gateway.networking.k8s.io_httproutes.yaml"
)


@functools.cache
def httproute_schema() -> dict[str, Any] | None:
    """The openAPIV3Schema of HTTPRoute v1, or None when the CRD file is not there."""
    if not CRD_PATH.exists():
        return None
    crd = yaml.safe_load(CRD_PATH.read_text())
    v1 = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return v1["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


needs_crd = pytest.mark.skipif(
    httproute_schema() is None,
    reason=f"Gateway API CRD not found at {CRD_PATH} (e2e/cluster/build.sh fetches it)",
)


def rules_schema() -> dict[str, Any]:
    schema = httproute_schema()
    assert schema is not None
    return schema["properties"]["spec"]["properties"]["rules"]  # type: ignore[no-any-return]


def schema_errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """What the API server's structural schema would reject or prune (no CEL)."""
    kind = schema.get("type")
    if kind == "object":
        return _object_errors(value, schema, path)
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not a list"]
        errors = []
        if len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{path}: {len(value)} items, at most {schema['maxItems']}")
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: {len(value)} items, at least {schema['minItems']}")
        for i, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), f"{path}[{i}]")
        return errors
    if kind in ("string", "integer"):
        return _scalar_errors(value, schema, path)
    return []


def _object_errors(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: not an object"]
    props = schema.get("properties")
    errors = [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]
    if props is None:
        return errors  # metadata and other free-form objects
    for key, item in value.items():
        if key not in props:
            errors.append(f"{path}.{key}: unknown field, the API server would prune it")
        else:
            errors += schema_errors(item, props[key], f"{path}.{key}")
    return errors


def _scalar_errors(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    python = str if schema["type"] == "string" else int
    if not isinstance(value, python) or isinstance(value, bool):
        return [f"{path}: not of type {schema['type']}"]
    errors = []
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        errors.append(f"{path}: longer than {schema['maxLength']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, int) and not schema.get("minimum", value) <= value <= schema.get(
        "maximum", value
    ):
        errors.append(f"{path}: {value} out of range")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    return errors


def cel_errors(route: dict[str, Any]) -> list[str]:
    """The CEL rules of the HTTPRoute CRD that nonstop's additions could break, by hand."""
    errors = []
    rules = route["spec"].get("rules", [])
    if sum(len(r.get("matches") or [{}]) for r in rules) > 128:
        errors.append("more than 128 matches in the route")
    names = [r["name"] for r in rules if "name" in r]
    if len(set(names)) != len(names):
        errors.append(f"rule names not unique: {names}")
    for i, rule in enumerate(rules):
        refs = rule.get("backendRefs", [])
        mirrors = [
            f["requestMirror"]["backendRef"]
            for f in rule.get("filters", [])
            if f["type"] == "RequestMirror"
        ]
        for ref in [*refs, *mirrors]:
            if (
                ref.get("group", "") == ""
                and ref.get("kind", "Service") == "Service"
                and "port" not in ref
            ):
                errors.append(f"rules[{i}]: Service reference {ref['name']} without a port")
        for f in rule.get("filters", []):
            field = {
                "RequestMirror": "requestMirror",
                "RequestHeaderModifier": "requestHeaderModifier",
            }.get(f["type"])
            if field is not None and field not in f:
                errors.append(f"rules[{i}]: filter {f['type']} without {field}")
            if f["type"] == "RequestMirror" and {"percent", "fraction"} <= set(f["requestMirror"]):
                errors.append(f"rules[{i}]: mirror with both percent and fraction")
        types = [f["type"] for f in rule.get("filters", [])]
        if types.count("RequestHeaderModifier") > 1:
            errors.append(f"rules[{i}]: RequestHeaderModifier repeated")
        for match in rule.get("matches", []):
            headers = [h["name"] for h in match.get("headers", [])]
            if len(set(headers)) != len(headers):
                errors.append(f"rules[{i}]: header match names not unique: {headers}")
    return errors


def valid(route: dict[str, Any]) -> list[str]:
    schema = httproute_schema()
    assert schema is not None
    return schema_errors(route["spec"], schema["properties"]["spec"], "spec") + cel_errors(route)


def server_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Fill in the schema's defaults the way the API server does on write and read."""
    if isinstance(value, dict) and schema.get("type") == "object":
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                server_defaults(value[key], sub)
    elif isinstance(value, list):
        for item in value:
            server_defaults(item, schema.get("items", {}))
    return value


def round_trip(route: dict[str, Any]) -> dict[str, Any]:
    """The route as a read after writing it returns it: JSON, defaults filled in."""
    schema = httproute_schema()
    assert schema is not None
    copied = json.loads(json.dumps(route))
    server_defaults(copied["spec"], schema["properties"]["spec"])
    return copied  # type: ignore[no-any-return]


# --- a realistic route -------------------------------------------------------------------------


def shop_route(**stable_ref: Any) -> dict[str, Any]:
    """Two rules: the app's API (to the stable Service, with a user filter and a timeout) and
    static files (another Service), hostnames and a parentRef to a shared Gateway."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {"app": "web"},
            "annotations": {"team": "checkout"},
        },
        "spec": {
            "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
            "hostnames": ["shop.example.com", "www.shop.example.com"],
            "rules": [
                {
                    "name": "api",
                    "matches": [
                        {"path": {"type": "PathPrefix", "value": "/api"}},
                        {"path": {"type": "Exact", "value": "/checkout"}, "method": "POST"},
                    ],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"set": [{"name": "X-Env", "value": "prod"}]},
                        }
                    ],
                    "backendRefs": [{"name": STABLE, "port": 80, **stable_ref}],
                    "timeouts": {"request": "10s"},
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    "backendRefs": [{"name": "files", "port": 8080}],
                },
            ],
        },
    }


def desired(route: dict[str, Any], weight: float = 0, **kwargs: Any) -> dict[str, Any]:
    return desired_route(
        route, stable_service=STABLE, canary_service=CANARY, canary_weight=weight, **kwargs
    )


def strip(route: dict[str, Any]) -> dict[str, Any]:
    return strip_route(route, canary_service=CANARY)


def rule_named(route: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in route["spec"]["rules"] if r.get("name") == name)


def rule_names(route: dict[str, Any]) -> list[str | None]:
    return [r.get("name") for r in route["spec"]["rules"]]


BETA = HeaderRoute("beta", (HeaderMatch("X-Beta", exact="yes"),))
QA = HeaderRoute(
    "qa", (HeaderMatch("X-Canary", prefix="qa."), HeaderMatch("X-Team", regex="^(a|b)$"))
)


# --- weights -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "stable", "canary", "read"),
    [
        (0.01, 9999, 1, 0.01),
        (0.5, 9950, 50, 0.5),
        (1, 9900, 100, 1.0),
        (5, 9500, 500, 5.0),
        (33.333, 6667, 3333, 33.33),  # rounded down: never more canary than asked
        (99.99, 1, 9999, 99.99),
        (100, 0, 10000, 100.0),
    ],
)
def test_weights_on_a_common_scale(weight: float, stable: int, canary: int, read: float) -> None:
    result = desired(shop_route(), weight)
    refs = rule_named(result, "api")["backendRefs"]
    assert refs == [
        {"name": STABLE, "port": 80, "weight": stable},
        {"name": CANARY, "port": 80, "weight": canary},
    ]
    assert stable + canary == gateway.WEIGHT_SCALE
    assert read_weights(result, STABLE, CANARY) == (100 - read, read)


@pytest.mark.parametrize("weight", [0, 0.00999])
def test_no_canary_backend_below_the_smallest_step(weight: float) -> None:
    route = shop_route()
    assert desired(route, weight) == route  # byte for byte: no weight, no canary, no annotation
    assert read_weights(route, STABLE, CANARY) == (100.0, 0.0)


def test_back_to_zero_gives_the_route_as_written() -> None:
    route = shop_route(weight=3)
    assert desired(desired(route, 25, header_routes=[BETA]), 0) == route


@pytest.mark.parametrize(
    ("weight", "stable", "canary"),
    [(5, 86, 4), (50, 45, 45), (100, 0, 90), (1, 90, None)],
)
def test_rule_with_other_backends_keeps_their_share(
    weight: float, stable: int, canary: int | None
) -> None:
    route = shop_route(weight=90)
    route["spec"]["rules"][0]["backendRefs"].append({"name": "legacy", "port": 80, "weight": 10})
    refs = rule_named(desired(route, weight), "api")["backendRefs"]
    expected = [{"name": STABLE, "port": 80, "weight": stable}]
    if canary is not None:
        expected.append({"name": CANARY, "port": 80, "weight": canary})
    assert refs == [*expected, {"name": "legacy", "port": 80, "weight": 10}]


@pytest.mark.parametrize(
    ("stable_ref", "recorded"),
    [({}, None), ({"weight": 1}, 1), ({"weight": 37}, 37)],
)
def test_original_weight_recorded_and_restored(
    stable_ref: dict[str, Any], recorded: int | None
) -> None:
    route = shop_route(**stable_ref)
    result = desired(route, 5)
    record = json.loads(result["metadata"]["annotations"][ORIGINAL_WEIGHTS_ANNOTATION])
    assert record == {"service": STABLE, "rules": {"0": {"port": 80, "weight": recorded}}}
    assert result["metadata"]["annotations"]["team"] == "checkout"
    assert strip(result) == route
    if httproute_schema() is not None:  # what is stored after the API server's defaulting
        assert round_trip(strip(round_trip(result))) == round_trip(route)


def test_strip_without_the_annotation_still_removes_the_canary() -> None:
    route = shop_route(weight=37)
    preview = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/preview"}}],
        "backendRefs": [{"name": CANARY, "port": 80}],  # the user's own rule to the canary
    }
    route["spec"]["rules"].append(preview)
    result = desired(route, 5)
    del result["metadata"]["annotations"][ORIGINAL_WEIGHTS_ANNOTATION]
    stripped = strip(result)
    # The weight cannot be known any more; with the stable Service alone in the rule the
    # traffic is the same without it.
    assert rule_named(stripped, "api")["backendRefs"] == [{"name": STABLE, "port": 80}]
    assert stripped["spec"]["rules"][2] == preview
    # and desired_route recovers the same way, then records again
    again = desired(result, 5)
    assert rule_named(again, "api")["backendRefs"][1] == {"name": CANARY, "port": 80, "weight": 500}


def test_a_canary_ref_the_user_wrote_at_weight_0_is_adopted() -> None:
    route = shop_route(weight=100)
    route["spec"]["rules"][0]["backendRefs"].append({"name": CANARY, "port": 80, "weight": 0})
    result = desired(route, 10)
    assert rule_named(result, "api")["backendRefs"] == [
        {"name": STABLE, "port": 80, "weight": 9000},
        {"name": CANARY, "port": 80, "weight": 1000},
    ]
    assert desired(result, 0)["spec"]["rules"][0]["backendRefs"] == [
        {"name": STABLE, "port": 80, "weight": 100}
    ]


def test_input_is_never_changed() -> None:
    route = shop_route()
    before = copy.deepcopy(route)
    desired(route, 5, header_routes=[BETA, QA])
    desired(route, 0, mirror=MirrorSpec(percent=20))
    strip(route)
    read_weights(route, STABLE, CANARY)
    assert route == before


def test_everything_the_user_wrote_stays() -> None:
    route = shop_route()
    for result in (
        desired(route, 5, header_routes=[BETA, QA]),
        desired(route, 0, mirror=MirrorSpec(percent=20)),
    ):
        meta = dict(result["metadata"])
        meta["annotations"] = {
            k: v for k, v in meta["annotations"].items() if k != ORIGINAL_WEIGHTS_ANNOTATION
        }
        assert meta == route["metadata"]
        assert {k: v for k, v in result["spec"].items() if k != "rules"} == {
            k: v for k, v in route["spec"].items() if k != "rules"
        }
        users = [
            r for r in result["spec"]["rules"] if not str(r.get("name")).startswith("nonstop-")
        ]
        assert len(users) == 2
        api, static = users
        assert static == route["spec"]["rules"][1]
        original = route["spec"]["rules"][0]
        for key in ("name", "matches", "filters", "timeouts"):
            assert api[key] == original[key]


def test_empty_lists_the_user_wrote_stay() -> None:
    route = shop_route()
    route["spec"]["rules"][1]["filters"] = []
    route["spec"]["rules"][0]["filters"] = []
    result = desired(route, 5, header_routes=[BETA])
    assert result["spec"]["rules"][2]["filters"] == []
    assert strip(result) == route
    assert strip(desired(route, 0, mirror=MirrorSpec())) == route


# --- header routes -----------------------------------------------------------------------------


def test_header_route_rule() -> None:
    result = desired(shop_route(), 5, header_routes=[QA])
    assert rule_names(result) == ["nonstop-header-qa-0", "api", None]
    rule = result["spec"]["rules"][0]
    qa_headers = [
        {"type": "RegularExpression", "name": "X-Canary", "value": r"^qa\..*"},
        {"type": "RegularExpression", "name": "X-Team", "value": "^(a|b)$"},
    ]
    assert rule == {
        "name": "nonstop-header-qa-0",
        "matches": [
            {"path": {"type": "PathPrefix", "value": "/api"}, "headers": qa_headers},
            {
                "path": {"type": "Exact", "value": "/checkout"},
                "method": "POST",
                "headers": qa_headers,
            },
        ],
        "filters": shop_route()["spec"]["rules"][0]["filters"],  # the user's filter applies too
        "backendRefs": [{"name": CANARY, "port": 80, "weight": 1}],
        "timeouts": {"request": "10s"},
    }


def test_header_routes_come_and_go() -> None:
    route = shop_route()
    both = desired(route, 0, header_routes=[BETA, QA])
    assert rule_names(both) == ["nonstop-header-beta-0", "nonstop-header-qa-0", "api", None]
    only_qa = desired(both, 0, header_routes=[QA])
    assert rule_names(only_qa) == ["nonstop-header-qa-0", "api", None]
    assert desired(only_qa, 0) == route


@pytest.mark.parametrize(
    ("match", "type_", "value", "matching", "not_matching"),
    [
        (HeaderMatch("X-V", exact="v1.2"), "Exact", "v1.2", None, None),
        (
            HeaderMatch("X-V", prefix="v1.2+b"),
            "RegularExpression",
            r"^v1\.2\+b.*",
            "v1.2+beta",
            "v1x2+beta",
        ),
        (HeaderMatch("X-V", prefix="(a)"), "RegularExpression", r"^\(a\).*", "(a)b", "ab"),
        (HeaderMatch("X-V", regex="^v[0-9]$"), "RegularExpression", "^v[0-9]$", "v1", "v10"),
    ],
)
def test_header_match_values(
    match: HeaderMatch, type_: str, value: str, matching: str | None, not_matching: str | None
) -> None:
    assert match.to_gateway() == {"type": type_, "name": "X-V", "value": value}
    if matching is not None:  # the same whether the implementation searches or full-matches
        assert re.fullmatch(value, matching) and re.search(value, matching)
        assert not re.fullmatch(value, str(not_matching)) and not re.search(
            value, str(not_matching)
        )


def test_header_route_on_a_header_the_rule_already_matches() -> None:
    route = shop_route()
    route["spec"]["rules"][0]["matches"][0]["headers"] = [{"name": "x-beta", "value": "no"}]
    with pytest.raises(RouteError, match=r"X-Beta.*already matches differently"):
        desired(route, 0, header_routes=[BETA])
    route["spec"]["rules"][0]["matches"][0]["headers"] = [{"name": "X-Beta", "value": "yes"}]
    rule = desired(route, 0, header_routes=[BETA])["spec"]["rules"][0]
    assert rule["matches"][0]["headers"] == [{"name": "X-Beta", "value": "yes"}]  # already there


# --- mirroring ---------------------------------------------------------------------------------


def test_mirror_split_by_method() -> None:
    route = shop_route()
    result = desired(route, 0, mirror=MirrorSpec(percent=20))
    assert rule_names(result) == [
        "nonstop-mirror-get-0",
        "nonstop-mirror-head-0",
        "nonstop-mirror-options-0",
        "api",
        None,
    ]
    user_filter = route["spec"]["rules"][0]["filters"][0]
    mirror_filter = {
        "type": "RequestMirror",
        "requestMirror": {
            "backendRef": {"group": "", "kind": "Service", "name": CANARY, "port": 80},
            "percent": 20,
        },
    }
    for method, rule in zip(["GET", "HEAD", "OPTIONS"], result["spec"]["rules"], strict=False):
        # only /api: the /checkout match is for POST
        assert rule["matches"] == [
            {"path": {"type": "PathPrefix", "value": "/api"}, "method": method}
        ]
        assert rule["filters"] == [user_filter, mirror_filter]
        assert rule["backendRefs"] == [{"name": STABLE, "port": 80}]
        assert rule["timeouts"] == {"request": "10s"}
    assert result["spec"]["rules"][3:] == route["spec"]["rules"]  # the rest, unmirrored
    assert read_mirror_percent(result, CANARY) == 20.0
    assert read_weights(result, STABLE, CANARY) == (100.0, 0.0)
    assert strip(result) == route


def test_mirror_every_method_needs_no_split() -> None:
    route = shop_route()
    result = desired(route, 0, mirror=MirrorSpec(percent=100, methods=None))
    api = result["spec"]["rules"][0]
    assert rule_names(result) == ["api", None]
    assert [f["type"] for f in api["filters"]] == ["RequestHeaderModifier", "RequestMirror"]
    assert read_mirror_percent(result, CANARY) == 100.0
    assert strip(result) == route
    assert desired(result, 0) == route


@pytest.mark.parametrize(
    ("weight", "header_routes", "message"),
    [(5, [], "must not get live traffic"), (0, [BETA], "header routes send live requests")],
)
def test_a_shadow_never_gets_live_traffic(
    weight: float, header_routes: list[HeaderRoute], message: str
) -> None:
    with pytest.raises(RouteError, match=message):
        desired(shop_route(), weight, header_routes=header_routes, mirror=MirrorSpec())


def test_mirror_of_methods_no_rule_serves() -> None:
    route = shop_route()
    route["spec"]["rules"][0]["matches"][0]["method"] = "GET"  # now GET /api and POST /checkout
    with pytest.raises(RouteError, match="serves PUT, so nothing would be mirrored"):
        desired(route, 0, mirror=MirrorSpec(methods=("PUT",)))
    posts = desired(shop_route(), 0, mirror=MirrorSpec(methods=("POST",)))
    assert rule_names(posts) == ["nonstop-mirror-post-0", "api", None]
    assert posts["spec"]["rules"][0]["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/api"}, "method": "POST"},
        {"path": {"type": "Exact", "value": "/checkout"}, "method": "POST"},
    ]


def test_mirror_of_0_percent_is_no_mirror() -> None:
    route = shop_route()
    assert desired(route, 5, mirror=MirrorSpec(percent=0)) == desired(route, 5)


def test_method_split_that_would_take_requests_from_another_rule() -> None:
    route = shop_route()
    route["spec"]["rules"].insert(
        0,
        {
            "matches": [
                {
                    "path": {"type": "PathPrefix", "value": "/api"},
                    "headers": [{"name": "X-Tenant", "value": "b"}],
                }
            ],
            "backendRefs": [{"name": "tenant-b", "port": 80}],
        },
    )
    with pytest.raises(
        RouteError, match=r"GET PathPrefix /api .* from spec.rules\[0\].*method match"
    ):
        desired(route, 0, mirror=MirrorSpec())


# --- limits and errors -------------------------------------------------------------------------


def many_rules(count: int) -> dict[str, Any]:
    route = shop_route()
    route["spec"]["rules"] = [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": f"/p{i}"}}],
            "backendRefs": [{"name": STABLE, "port": 80}],
        }
        for i in range(count)
    ]
    return route


def test_too_many_rules() -> None:
    assert len(desired(many_rules(8), 0, header_routes=[BETA])["spec"]["rules"]) == 16
    with pytest.raises(RouteError, match="18 rules; the Gateway API allows 16"):
        desired(many_rules(6), 0, header_routes=[BETA, QA])
    with pytest.raises(RouteError, match="each mirrored method one rule"):
        desired(many_rules(5), 0, mirror=MirrorSpec())


def test_too_many_filters_and_backends() -> None:
    route = shop_route()
    route["spec"]["rules"][0]["filters"] = [
        {
            "type": "ExtensionRef",
            "extensionRef": {"group": "x.example", "kind": "F", "name": f"f{i}"},
        }
        for i in range(16)
    ]
    with pytest.raises(RouteError, match="17 filters; the Gateway API allows 16"):
        desired(route, 0, mirror=MirrorSpec(methods=None))
    route = shop_route()
    route["spec"]["rules"][0]["backendRefs"] += [
        {"name": f"b{i}", "port": 80, "weight": 0} for i in range(15)
    ]
    with pytest.raises(RouteError, match="17 backendRefs"):
        desired(route, 5)


def test_too_many_matches_in_the_route() -> None:
    route = shop_route()
    route["spec"]["rules"][0]["matches"] = [
        {"path": {"type": "Exact", "value": f"/p{i}"}} for i in range(60)
    ]
    with pytest.raises(RouteError, match="181 matches in all; the Gateway API allows 128"):
        desired(route, 0, header_routes=[BETA, QA])


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (
            lambda r: r["spec"]["rules"].pop(0),
            {"canary_weight": 5},
            "no rule with a backendRef to Service web",
        ),
        (
            lambda r: r["spec"]["rules"][0]["backendRefs"].append({"name": STABLE, "port": 8080}),
            {"canary_weight": 5},
            "2 backendRefs to Service web",
        ),
        (lambda r: None, {"canary_weight": 101}, "outside 0..100"),
        (lambda r: None, {"canary_weight": float("nan")}, "not a number"),
        (lambda r: None, {"canary_weight": 5, "canary_service": STABLE}, "must differ"),
        (lambda r: None, {"canary_weight": 5, "header_routes": [BETA, BETA]}, "distinct names"),
        (
            lambda r: r["spec"]["rules"][0]["backendRefs"][0].pop("port"),
            {"canary_weight": 0, "mirror": MirrorSpec()},
            "needs one: add the port",
        ),
    ],
)
def test_errors_say_what_to_change(change: Any, kwargs: dict[str, Any], message: str) -> None:
    route = shop_route()
    change(route)
    arguments: dict[str, Any] = {"stable_service": STABLE, "canary_service": CANARY, **kwargs}
    with pytest.raises(RouteError, match=message):
        desired_route(route, **arguments)


def test_nothing_asked_of_a_route_without_the_stable_service_is_fine() -> None:
    route = shop_route()
    route["spec"]["rules"].pop(0)
    assert desired(route, 0) == route


def test_port_picks_the_backends() -> None:
    route = shop_route()
    route["spec"]["rules"][1]["backendRefs"] = [{"name": STABLE, "port": 9090}]  # its admin port
    result = desired(route, 5, port=80)
    assert rule_named(result, "api")["backendRefs"] == [
        {"name": STABLE, "port": 80, "weight": 9500},
        {"name": CANARY, "port": 80, "weight": 500},
    ]
    assert result["spec"]["rules"][1] == route["spec"]["rules"][1]
    assert read_weights(result, STABLE, CANARY, port=80) == (95.0, 5.0)
    assert read_weights(result, STABLE, CANARY, port=9090) == (100.0, 0.0)
    assert strip(result) == route
    both = desired(route, 5)
    assert both["spec"]["rules"][1]["backendRefs"][1] == {
        "name": CANARY,
        "port": 9090,
        "weight": 500,
    }


def test_services_in_another_namespace() -> None:
    route = shop_route(namespace="shop")
    route["metadata"]["namespace"] = "gateways"
    route["spec"]["rules"][1]["backendRefs"] = [{"name": STABLE, "port": 80}]  # gateways/web
    result = desired(route, 5, service_namespace="shop")
    assert rule_named(result, "api")["backendRefs"][1] == {
        "name": CANARY,
        "port": 80,
        "namespace": "shop",
        "weight": 500,
    }
    assert result["spec"]["rules"][1] == route["spec"]["rules"][1]
    assert strip_route(result, canary_service=CANARY, service_namespace="shop") == route


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: HeaderMatch("X Bad", exact="1"), "not a valid HTTP header name"),
        (lambda: HeaderMatch("X-A", exact="1", prefix="2"), "exactly one"),
        (lambda: HeaderMatch("X-A", prefix="." * 2048), "would be 4099 characters"),
        (lambda: HeaderRoute("Beta", (HeaderMatch("X-A", exact="1"),)), "DNS label"),
        (lambda: HeaderRoute("beta", ()), "at least one"),
        (
            lambda: HeaderRoute(
                "beta", (HeaderMatch("X-A", exact="1"), HeaderMatch("x-a", exact="2"))
            ),
            "once",
        ),
        (lambda: MirrorSpec(percent=101), "outside 0..100"),
        (lambda: MirrorSpec(methods=("GET", "FETCH")), "FETCH"),
        (lambda: MirrorSpec(methods=()), "at least one"),
    ],
)
def test_input_types_check_themselves(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_from_the_rollout_api() -> None:
    step = SetHeaderRoute(
        name="beta",
        match=[ApiHeaderMatch(name="X-Beta", exact="yes"), ApiHeaderMatch(name="X-V", prefix="2.")],
    )
    assert HeaderRoute.from_api(step) == HeaderRoute(
        "beta", (HeaderMatch("X-Beta", exact="yes"), HeaderMatch("X-V", prefix="2."))
    )
    assert MirrorSpec.from_api(Mirror()) == MirrorSpec(100, ("GET", "HEAD", "OPTIONS"))
    assert MirrorSpec.from_api(Mirror(percent=5, methods=["GET"])) == MirrorSpec(5, ("GET",))


# --- drift -------------------------------------------------------------------------------------


def test_drift_only_in_nonstop_parts() -> None:
    route = shop_route()
    wanted = desired(route, 5, header_routes=[BETA])
    assert route_drift(route, wanted)
    assert not route_drift(wanted, wanted)
    assert not route_drift(wanted, desired(wanted, 5, header_routes=[BETA]))

    moved = copy.deepcopy(wanted)
    rule_named(moved, "api")["backendRefs"][1]["weight"] = 700  # someone else's edit
    assert route_drift(moved, desired(moved, 5, header_routes=[BETA]))
    assert desired(moved, 5, header_routes=[BETA]) == wanted

    lost = copy.deepcopy(wanted)
    lost["spec"]["rules"].pop(0)  # the header rule
    assert route_drift(lost, desired(lost, 5, header_routes=[BETA]))

    unrecorded = copy.deepcopy(wanted)
    del unrecorded["metadata"]["annotations"][ORIGINAL_WEIGHTS_ANNOTATION]
    assert route_drift(unrecorded, desired(unrecorded, 5, header_routes=[BETA]))

    relabelled = copy.deepcopy(wanted)
    relabelled["metadata"]["labels"]["tier"] = "front"
    relabelled["metadata"]["resourceVersion"] = "42"
    relabelled["status"] = {"parents": []}
    assert not route_drift(relabelled, wanted)


@needs_crd
@pytest.mark.parametrize(
    "kwargs",
    [
        {"canary_weight": 0},
        {"canary_weight": 5, "header_routes": [BETA, QA]},
        {"canary_weight": 100},
        {"canary_weight": 0, "mirror": MirrorSpec(percent=20)},
        {"canary_weight": 0, "mirror": MirrorSpec(methods=None)},
    ],
)
def test_no_drift_after_the_api_server_fills_in_defaults(kwargs: dict[str, Any]) -> None:
    observed = round_trip(shop_route())
    wanted = desired_route(observed, stable_service=STABLE, canary_service=CANARY, **kwargs)
    stored = round_trip(wanted)
    assert not route_drift(stored, wanted)
    again = desired_route(stored, stable_service=STABLE, canary_service=CANARY, **kwargs)
    assert again == stored  # nothing to write on the next pass
    assert strip(stored) == observed


# --- against the real CRD ----------------------------------------------------------------------


@needs_crd
def test_limits_are_the_crds() -> None:
    rules = rules_schema()
    rule = rules["items"]["properties"]
    match = rule["matches"]["items"]["properties"]
    header = match["headers"]["items"]["properties"]
    assert rules["maxItems"] == gateway.MAX_RULES
    assert rule["matches"]["maxItems"] == gateway.MAX_MATCHES_PER_RULE
    assert rule["backendRefs"]["maxItems"] == gateway.MAX_BACKEND_REFS_PER_RULE
    assert rule["filters"]["maxItems"] == gateway.MAX_FILTERS_PER_RULE
    assert match["headers"]["maxItems"] == gateway.MAX_HEADERS_PER_MATCH
    assert header["name"]["maxLength"] == gateway.MAX_HEADER_NAME_LENGTH
    assert header["value"]["maxLength"] == gateway.MAX_HEADER_VALUE_LENGTH
    assert rule["backendRefs"]["items"]["properties"]["weight"]["maximum"] == gateway.MAX_WEIGHT
    assert gateway.WEIGHT_SCALE <= gateway.MAX_WEIGHT
    assert list(gateway.HTTP_METHODS) == match["method"]["enum"]
    [total] = [
        v["rule"] for v in rules["x-kubernetes-validations"] if "matches.size()" in v["rule"]
    ]
    assert total.endswith(f"<= {gateway.MAX_MATCHES_PER_ROUTE}")
    assert "name" in rule  # GEP-995: the mark of nonstop's rules is an ordinary field


@needs_crd
def test_defaults_are_the_crds() -> None:
    found: dict[tuple[str, ...], Any] = {}

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> None:
        if "default" in node and path:
            found[path] = node["default"]
        for key, sub in node.get("properties", {}).items():
            walk(sub, (*path, key))
        if "items" in node:
            walk(node["items"], (*path, "[]"))

    walk(rules_schema()["items"], ())
    assert found == dict(gateway.RULE_DEFAULTS)
    assert rules_schema()["default"] == [{"matches": [gateway.DEFAULT_MATCH]}]


@needs_crd
@pytest.mark.parametrize(
    "kwargs",
    [
        {"canary_weight": 0.5},
        {"canary_weight": 100, "header_routes": [BETA, QA]},
        {"canary_weight": 0, "mirror": MirrorSpec(percent=20)},
        {"canary_weight": 0, "mirror": MirrorSpec(methods=None)},
    ],
)
def test_results_pass_the_crds_schema(kwargs: dict[str, Any]) -> None:
    route = shop_route()
    assert valid(route) == []
    result = desired_route(route, stable_service=STABLE, canary_service=CANARY, **kwargs)
    assert valid(result) == []
    assert valid(round_trip(result)) == []
    name = rules_schema()["items"]["properties"]["name"]
    for rule_name in rule_names(result):
        if rule_name is not None:
            assert re.search(name["pattern"], rule_name) and len(rule_name) <= name["maxLength"]


@needs_crd
def test_the_checker_sees_what_the_api_server_refuses() -> None:
    route = shop_route()
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1_000_001
    route["spec"]["rules"][0]["bogus"] = 1
    route["spec"]["rules"][0]["name"] = "Not_A_Name"
    route["spec"]["rules"][1]["backendRefs"][0].pop("port")
    errors = valid(route)
    assert any("weight: 1000001 out of range" in e for e in errors)
    assert any("bogus: unknown field" in e for e in errors)
    assert any("name: 'Not_A_Name' does not match" in e for e in errors)
    assert any("Service reference files without a port" in e for e in errors)
