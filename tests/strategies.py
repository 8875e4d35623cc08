"""All hypothesis strategies of the test suite, in one place."""

from __future__ import annotations

from hypothesis import strategies as st

from nonstop.plan.replicas import Pods

replicas = st.integers(min_value=0, max_value=30)
int_or_percent = st.one_of(
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=0, max_value=100).map(lambda p: f"{p}%"),
)


@st.composite
def revision_pods(draw: st.DrawFn, name: str) -> Pods:
    spec = draw(st.integers(min_value=0, max_value=20))
    extra = draw(st.integers(min_value=0, max_value=3))  # terminating or not yet gone
    available = draw(st.integers(min_value=0, max_value=spec))  # as DeploymentView caps it
    return Pods(name=name, spec=spec, pods=spec + extra, available=available)


@st.composite
def rolling_state(draw: st.DrawFn) -> tuple[int, int, int, Pods, list[Pods], int | None]:
    desired = draw(replicas)
    surge = draw(st.integers(min_value=0, max_value=5))
    unavailable = draw(st.integers(min_value=0, max_value=desired))
    if surge == 0 and unavailable == 0:
        surge = 1
    target = draw(revision_pods("new"))
    others = [draw(revision_pods(f"old{i}")) for i in range(draw(st.integers(0, 3)))]
    total_available = target.available + sum(o.available for o in others)
    endpoints = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=total_available + 2)))
    return desired, surge, unavailable, target, others, endpoints


images = st.sampled_from(["web:1", "web:2", "web:3", "web:4"])


# --- Gateway API HTTPRoutes (nonstop.traffic.gateway) ------------------------------------------
# Routes as a user writes them, before nonstop has touched them: the stable Service "web" in
# at least one rule, other backends, user filters, names, matches, hostnames and parentRefs.
# The canary Service is "web-canary"; header routes use headers the routes never match on.

STABLE_SERVICE = "web"
CANARY_SERVICE = "web-canary"

canary_weights = st.one_of(
    st.integers(min_value=0, max_value=100),
    st.decimals(min_value=0, max_value=100, places=2).map(float),
    st.floats(min_value=0, max_value=100, allow_nan=False),
)

_paths = st.sampled_from(
    [
        {"type": "PathPrefix", "value": "/"},
        {"type": "PathPrefix", "value": "/api"},
        {"type": "Exact", "value": "/checkout"},
        {"type": "RegularExpression", "value": "/v[0-9]+/.*"},
    ]
)


@st.composite
def _route_match(draw: st.DrawFn) -> dict[str, object]:
    match: dict[str, object] = {}
    if draw(st.booleans()):
        match["path"] = dict(draw(_paths))
    if draw(st.integers(0, 3)) == 0:
        match["method"] = draw(st.sampled_from(["GET", "POST", "PUT"]))
    if draw(st.integers(0, 3)) == 0:
        match["headers"] = [{"name": "X-Tenant", "value": draw(st.sampled_from(["a", "b"]))}]
    if draw(st.integers(0, 4)) == 0:
        match["queryParams"] = [{"type": "Exact", "name": "debug", "value": "1"}]
    return match


_weights = st.sampled_from([None, 0, 1, 3, 100, 9000])


@st.composite
def _backend_ref(draw: st.DrawFn, name: str) -> dict[str, object]:
    ref: dict[str, object] = {"name": name, "port": 80 if name == STABLE_SERVICE else 8080}
    if draw(st.booleans()):
        ref["kind"] = "Service"
    if draw(st.integers(0, 3)) == 0:
        ref["group"] = ""
    weight = draw(_weights)
    if weight is not None:
        ref["weight"] = weight
    return ref


@st.composite
def _route_rule(draw: st.DrawFn, index: int, stable: bool) -> dict[str, object]:
    rule: dict[str, object] = {}
    if draw(st.booleans()):
        rule["name"] = f"rule-{index}"
    if draw(st.integers(0, 3)) > 0:
        rule["matches"] = draw(st.lists(_route_match(), min_size=1, max_size=3))
    if draw(st.booleans()):
        rule["filters"] = [
            {
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": {"set": [{"name": "X-Env", "value": "prod"}]},
            }
        ]
    others = draw(st.lists(st.sampled_from(["legacy", "files"]), unique=True, max_size=2))
    refs = [draw(_backend_ref(name)) for name in others]
    if stable:
        refs.insert(draw(st.integers(0, len(refs))), draw(_backend_ref(STABLE_SERVICE)))
    if refs:
        rule["backendRefs"] = refs
    if draw(st.integers(0, 3)) == 0:
        rule["timeouts"] = {"request": "10s"}
    return rule


@st.composite
def http_routes(draw: st.DrawFn, max_rules: int = 4) -> dict[str, object]:
    """An HTTPRoute nonstop has not touched: no canary backendRef, filter, rule or annotation."""
    count = draw(st.integers(1, max_rules))
    with_stable = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    with_stable[draw(st.integers(0, count - 1))] = True
    metadata: dict[str, object] = {"name": "web", "namespace": "shop"}
    if draw(st.booleans()):
        metadata["labels"] = {"app": "web"}
    if draw(st.booleans()):
        metadata["annotations"] = {"team": "checkout"}
    spec: dict[str, object] = {
        "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
        "rules": [draw(_route_rule(i, s)) for i, s in enumerate(with_stable)],
    }
    if draw(st.booleans()):
        spec["hostnames"] = ["shop.example.com"]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata,
        "spec": spec,
    }


@st.composite
def header_route_lists(draw: st.DrawFn) -> list[object]:
    from nonstop.traffic import HeaderMatch, HeaderRoute

    conditions = st.one_of(
        st.builds(HeaderMatch, name=st.just("X-Canary"), exact=st.sampled_from(["yes", "1"])),
        st.builds(HeaderMatch, name=st.just("X-Canary"), prefix=st.sampled_from(["beta.", "a+b"])),
        st.builds(HeaderMatch, name=st.just("X-Canary"), regex=st.just("^(qa|dev)$")),
    )
    names = draw(st.lists(st.sampled_from(["beta", "qa", "staff"]), unique=True, max_size=2))
    routes: list[object] = []
    for name in names:
        first = draw(conditions)
        more = [HeaderMatch("X-Beta-User", exact="1")] if draw(st.booleans()) else []
        routes.append(HeaderRoute(name, (first, *more)))
    return routes


@st.composite
def mirror_specs(draw: st.DrawFn) -> object:
    from nonstop.traffic import MirrorSpec
    from nonstop.traffic.gateway import HTTP_METHODS, SAFE_METHODS

    methods = draw(
        st.one_of(
            st.just(SAFE_METHODS),
            st.none(),
            st.lists(st.sampled_from(HTTP_METHODS), min_size=1, max_size=3, unique=True).map(tuple),
        )
    )
    return MirrorSpec(percent=draw(st.integers(1, 100)), methods=methods)
