"""Canary with a Gateway API HTTPRoute, end to end. The Gateway API CRDs (standard channel)
are installed, so the API server validates every HTTPRoute the operator writes; a watcher
records every version of the route the API server hands out, and another the stable
Service's ready endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from e2e.conftest import Cluster, record_figure
from e2e.kube import ReadyEndpointWatcher, VersionWatcher, eventually
from e2e.manifests import http_route, rollout
from e2e.test_rolling import deployments, events, set_image, status, wait_ready

USER_FILTER = http_route()["spec"]["rules"][0]["filters"][0]


def routed_rollout(steps: list[dict[str, Any]], deadline: int = 600) -> dict[str, Any]:
    manifest = rollout(replicas=4, deadline=deadline)
    manifest["spec"]["strategy"] = {"canary": {"steps": steps}}
    manifest["spec"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
    return manifest


def watch_route(cluster: Cluster, namespace: str) -> VersionWatcher:
    api = client.CustomObjectsApi(cluster.api())
    args = ("gateway.networking.k8s.io", "v1", namespace, "httproutes")
    return VersionWatcher(api.list_namespaced_custom_object, args, "web").start()


def canary_weight(route: dict[str, Any]) -> float:
    """The canary's share (%) in the user's rule, computed here from the route alone."""
    rules = [r for r in route["spec"]["rules"] if not r.get("name", "").startswith("nonstop-")]
    refs = rules[0]["backendRefs"]
    stable = sum(r.get("weight", 1) for r in refs if r["name"] == "web")
    canary = sum(r.get("weight", 1) for r in refs if r["name"] == "web-canary")
    return 100.0 * canary / (stable + canary)


def collapsed(values: list[float]) -> list[float]:
    out: list[float] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


def route_spec(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return cluster.get("httproute", "web", "-n", namespace)["spec"]  # type: ignore[no-any-return]


def setup(
    cluster: Cluster,
    namespace: str,
    watch_endpoints: Callable[[int], ReadyEndpointWatcher],
    steps: list[dict[str, Any]],
    deadline: int = 600,
) -> tuple[str, dict[str, Any], VersionWatcher, ReadyEndpointWatcher]:
    cluster.apply(http_route(), namespace)
    cluster.apply(routed_rollout(steps, deadline), namespace)
    first = wait_ready(cluster, namespace)["currentRevision"]
    original = route_spec(cluster, namespace)
    return first, original, watch_route(cluster, namespace), watch_endpoints(4)


def weight_is(cluster: Cluster, namespace: str, weight: float) -> None:
    def shown() -> bool:
        return canary_weight(cluster.get("httproute", "web", "-n", namespace)) == weight

    eventually(shown, 60, f"canary weight {weight}%")


def at_step(cluster: Cluster, namespace: str, index: int, revision: str | None = None) -> None:
    def there() -> bool:
        st = status(cluster, namespace)
        return st.get("currentStepIndex") == index and revision in (None, st["currentRevision"])

    eventually(there, 120, f"step index {index}", every=0.2)


def test_five_step_canary_writes_the_planned_weights_and_keeps_the_users_filter(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 10},
        {"pause": {"duration": "2s"}},
        {"setWeight": 30},
        {"pause": {"duration": "2s"}},
        {"setWeight": 60},
    ]
    first, original, routes, stable = setup(cluster, namespace, watch_endpoints, steps)
    started = time.monotonic()
    set_image(cluster, namespace, "registry.example/web:2")
    done = wait_ready(cluster, namespace)
    took = time.monotonic() - started
    versions = [v for _, v in routes.stop()]

    # every version the API server accepted, in order: the plan, and nothing else
    assert collapsed([canary_weight(v) for v in versions]) == [0, 10, 30, 60, 100, 0]
    for version in versions:  # the user's filter survived every write
        user_rules = [r for r in version["spec"]["rules"] if "name" not in r]
        assert user_rules[0]["filters"] == [USER_FILTER]
    assert route_spec(cluster, namespace) == original  # given back as written
    annotations = cluster.get("httproute", "web", "-n", namespace)["metadata"].get("annotations")
    assert "nonstop.dev/original-weights" not in (annotations or {})

    assert done["stableRevision"] == done["currentRevision"] != first
    assert done["weights"]["stable"] == 100
    # the old revision lost its traffic at the switch: it keeps its pods for
    # scaleDownDelaySeconds (30 s), so that the gateway has applied the route, then goes
    assert [d["revision"] for d in done["draining"]] == [first]
    eventually(
        lambda: deployments(cluster, namespace) == {first: 0, done["currentRevision"]: 4},
        90,
        "the old revision scaled down after its scale-down delay",
    )
    service = cluster.get("service", "web", "-n", namespace)
    assert service["spec"]["selector"]["nonstop.dev/revision"] == done["currentRevision"]
    assert "ApplyFailed" not in " ".join(events(cluster, namespace))
    minimum = stable.stop()
    record_figure(f"routed canary, 5 steps (two 2s pauses), 4 replicas: {took:.1f}s to Ready")
    assert minimum >= 4, "\n".join(stable.trace)


def test_indefinite_pause_waits_for_promote_and_abort_gives_stable_all_traffic_at_once(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 75}]
    first, original, routes, stable = setup(cluster, namespace, watch_endpoints, steps)

    set_image(cluster, namespace, "registry.example/web:2")
    at_step(cluster, namespace, 1)
    eventually(lambda: status(cluster, namespace).get("phase") == "Paused", 60, "Paused")
    time.sleep(3)  # an indefinite pause stays
    assert status(cluster, namespace)["currentStepIndex"] == 1
    assert canary_weight(cluster.get("httproute", "web", "-n", namespace)) == 25
    row = cluster.kubectl("get", "rollout", "web", "-n", namespace, "--no-headers").stdout.split()
    assert row[4:7] == ["1/3", "25", "Paused"]  # STEP, WEIGHT, PHASE

    assert "Applied" in cluster.kubectl("nonstop", "promote", "web", "-n", namespace).stdout
    second = wait_ready(cluster, namespace)["currentRevision"]

    # a third revision, aborted at the pause
    set_image(cluster, namespace, "registry.example/web:3")
    at_step(cluster, namespace, 1)
    weight_is(cluster, namespace, 25)
    asked = time.monotonic()
    assert "Applied" in cluster.kubectl("nonstop", "abort", "web", "-n", namespace).stdout
    answered = time.monotonic()
    assert route_spec(cluster, namespace) == original  # at once: before the answer
    third = status(cluster, namespace)["currentRevision"]
    eventually(
        lambda: deployments(cluster, namespace) == {first: 0, second: 4, third: 0},
        120,
        "canary scaled down",
    )
    st = status(cluster, namespace)
    assert st["abort"]["reason"] == "AbortedByUser"
    assert st["weights"]["canary"] == 0
    versions = routes.stop()
    # from the abort on, the first write of the route gives all traffic back
    weights = collapsed([canary_weight(v) for _, v in versions])
    assert weights[-2:] == [25, 0]
    cleared = next(t for t, v in versions if t > asked and canary_weight(v) == 0)
    assert cleared <= answered
    minimum = stable.stop()
    record_figure(
        f"routed canary abort: route back to 100% stable {cleared - asked:.2f}s after"
        " `kubectl nonstop abort` started (its own start-up included), before its answer"
    )
    assert minimum >= 4, "\n".join(stable.trace)


def test_a_canary_that_never_gets_ready_never_gets_weight_and_is_aborted_at_the_deadline(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}]
    first, original, routes, stable = setup(cluster, namespace, watch_endpoints, steps, 20)
    set_image(
        cluster, namespace, "registry.example/web:bad", labels={"test.kwok/readiness": "never"}
    )
    st = eventually(
        lambda: (s := status(cluster, namespace)).get("abort") and s, 120, "aborted", every=1
    )
    assert st["abort"]["reason"] == "ProgressDeadlineExceeded"
    assert "pods not ready" in st["abort"]["message"]
    new = st["currentRevision"]
    eventually(
        lambda: deployments(cluster, namespace) == {first: 4, new: 0}, 60, "canary scaled down"
    )
    versions = [v for _, v in routes.stop()]
    assert {canary_weight(v) for v in versions} == {0}
    assert route_spec(cluster, namespace) == original
    assert "RolloutAborted" in events(cluster, namespace)
    minimum = stable.stop()
    assert minimum >= 4, "\n".join(stable.trace)


def test_a_new_revision_mid_canary_supersedes_it(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 75}]
    first, original, routes, stable = setup(cluster, namespace, watch_endpoints, steps)
    set_image(cluster, namespace, "registry.example/web:2")
    at_step(cluster, namespace, 1)
    second = status(cluster, namespace)["currentRevision"]
    weight_is(cluster, namespace, 25)

    set_image(cluster, namespace, "registry.example/web:3")
    third = eventually(
        lambda: (r := status(cluster, namespace)["currentRevision"]) != second and r, 30, "third"
    )
    at_step(cluster, namespace, 1, third)  # started again at step 0, now at the pause
    eventually(  # the superseded canary keeps its pods scaleDownDelaySeconds (30 s)
        lambda: deployments(cluster, namespace) == {first: 4, second: 0, third: 1},
        90,
        "superseded canary gone",
    )
    assert "Superseded" in " ".join(events(cluster, namespace))
    promote = cluster.kubectl("nonstop", "promote-full", "web", "-n", namespace)
    assert "Applied" in promote.stdout
    wait_ready(cluster, namespace)
    eventually(  # after the old revision's scaleDownDelaySeconds (30 s)
        lambda: deployments(cluster, namespace) == {first: 0, second: 0, third: 4},
        90,
        "the old revisions scaled down after their scale-down delay",
    )
    weights = collapsed([canary_weight(v) for _, v in routes.stop()])
    # the superseded canary's weight went to 0 before the new one got any
    assert weights == [0, 25, 0, 25, 100, 0]
    assert route_spec(cluster, namespace) == original
    minimum = stable.stop()
    assert minimum >= 4, "\n".join(stable.trace)


def test_header_route_rule_is_accepted_and_put_back_after_someone_removes_it(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    steps: list[dict[str, Any]] = [
        {"setHeaderRoute": {"name": "testers", "match": [{"name": "x-canary", "prefix": "yes"}]}},
        {"pause": {}},
    ]
    _, original, routes, stable = setup(cluster, namespace, watch_endpoints, steps)
    set_image(cluster, namespace, "registry.example/web:2")
    at_step(cluster, namespace, 1)

    def header_rule() -> dict[str, Any] | None:
        rules = route_spec(cluster, namespace)["rules"]
        return next((r for r in rules if r.get("name") == "nonstop-header-testers-0"), None)

    rule = eventually(header_rule, 60, "header rule")
    assert rule["matches"][0]["headers"] == [
        {"type": "RegularExpression", "name": "x-canary", "value": "^yes.*"}
    ]
    assert [b["name"] for b in rule["backendRefs"]] == ["web-canary"]
    assert rule["filters"] == [USER_FILTER]  # the user's rule's filters apply to it too

    # someone removes nonstop's rule by hand: it is put back. (The route as the patch left
    # it is read from the patch's answer: nonstop may put the rule back before a later GET.)
    patched = cluster.kubectl(
        "patch",
        "httproute",
        "web",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/spec/rules/0"}]',
        "-o",
        "json",
    )
    names = [r.get("name") for r in json.loads(patched.stdout)["spec"]["rules"]]
    assert "nonstop-header-testers-0" not in names
    eventually(header_rule, 30, "header rule put back")

    assert "Applied" in cluster.kubectl("nonstop", "promote-full", "web", "-n", namespace).stdout
    wait_ready(cluster, namespace)
    assert route_spec(cluster, namespace) == original
    routes.stop()
    minimum = stable.stop()
    assert minimum >= 4, "\n".join(stable.trace)
