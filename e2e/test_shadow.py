"""Shadow end to end, on an HTTPRoute the API server validates (Gateway API CRDs, standard
channel): the mirror filter with its percent and method matches, the shadow's weight 0
throughout, then the `then` strategy; a shadow whose pods turn unready fails and leaves no
trace, while the stable Service keeps every ready endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from e2e.conftest import Cluster, record_figure
from e2e.kube import ReadyEndpointWatcher, eventually
from e2e.manifests import http_route, rollout
from e2e.test_rolling import deployments, events, set_image, status, wait_ready
from e2e.test_traffic import canary_weight, route_spec, watch_route


def shadow_rollout(duration: str) -> dict[str, Any]:
    manifest = rollout(replicas=4)
    manifest["spec"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
    manifest["spec"]["strategy"] = {
        "shadow": {
            "duration": duration,
            "replicas": 2,
            "mirror": {"percent": 40},
            "then": {"canary": {"steps": [{"setWeight": 50}]}},
        }
    }
    return manifest


def mirrors(route: dict[str, Any]) -> list[tuple[str, int]]:
    """(method, percent) of every RequestMirror filter to the shadow's Service."""
    found = []
    for rule in route["spec"]["rules"]:
        for f in rule.get("filters", []):
            mirror = f.get("requestMirror")
            if f["type"] == "RequestMirror" and mirror["backendRef"]["name"] == "web-canary":
                method = rule["matches"][0].get("method", "*")
                found.append((method, mirror["percent"]))
    return found


def test_shadow_mirrors_safe_methods_at_weight_zero_then_the_canary_completes(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    cluster.apply(http_route(), namespace)
    cluster.apply(shadow_rollout("8s"), namespace)
    first = wait_ready(cluster, namespace)["currentRevision"]
    original = route_spec(cluster, namespace)
    routes = watch_route(cluster, namespace)
    stable = watch_endpoints(4)

    set_image(cluster, namespace, "registry.example/web:2")
    route = eventually(
        lambda: (r := cluster.get("httproute", "web", "-n", namespace)) and mirrors(r) and r,
        60,
        "mirror in the route",
    )
    assert sorted(mirrors(route)) == [("GET", 40), ("HEAD", 40), ("OPTIONS", 40)]
    st = eventually(
        lambda: (s := status(cluster, namespace)).get("weights", {}).get("mirror") == 40 and s,
        30,
        "status shows the mirror",
    )
    assert st["shadow"]["startedAt"]
    assert deployments(cluster, namespace)[st["currentRevision"]] == 2

    done = wait_ready(cluster, namespace, timeout=240)
    versions = [v for _, v in routes.stop()]
    shadow_phase = [v for v in versions if mirrors(v)]
    assert shadow_phase and all(canary_weight(v) == 0 for v in shadow_phase)
    # the mirror went before the canary got live traffic
    first_live = next(i for i, v in enumerate(versions) if canary_weight(v) > 0)
    assert not any(mirrors(v) for v in versions[first_live:])
    assert done["stableRevision"] == done["currentRevision"] != first
    assert route_spec(cluster, namespace) == original
    reasons = events(cluster, namespace)
    assert "ShadowStarted" in reasons and "ShadowPassed" in reasons
    minimum = stable.stop()
    record_figure(f"shadow 8s then canary: {len(versions)} route versions, min ready {minimum}")
    assert minimum >= 4, "\n".join(stable.trace)


def test_a_shadow_whose_pods_turn_unready_fails_and_is_removed(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    cluster.apply(http_route(), namespace)
    cluster.apply(shadow_rollout("5m"), namespace)
    first = wait_ready(cluster, namespace)["currentRevision"]
    original = route_spec(cluster, namespace)
    stable = watch_endpoints(4)

    patch = shadow_rollout("5m")
    patch["spec"]["template"]["metadata"]["labels"]["test.kwok/readiness"] = "flaky"
    patch["spec"]["template"]["metadata"]["annotations"] = {"test.kwok/unready-after": "6s"}
    patch["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/web:crashy"
    cluster.apply(patch, namespace)

    eventually(lambda: mirrors(cluster.get("httproute", "web", "-n", namespace)), 60, "mirror on")
    st = eventually(
        lambda: (s := status(cluster, namespace)).get("abort") and s, 90, "shadow failed"
    )
    assert st["abort"]["reason"] == "ShadowFailed"
    assert "not ready" in st["abort"]["message"]
    shadow = st["currentRevision"]
    eventually(lambda: route_spec(cluster, namespace) == original, 30, "mirror removed")
    eventually(
        lambda: deployments(cluster, namespace) == {first: 4, shadow: 0}, 60, "shadow scaled down"
    )
    assert "ShadowFailed" in events(cluster, namespace)
    minimum = stable.stop()
    assert minimum >= 4, "\n".join(stable.trace)
