"""Zero downtime, counted in requests. nonstop runs in a pod on the real node, installed by its
Helm chart; the application is a real HTTP server in real pods on that node; a load generator
sends requests for the whole of each rollout, through Traefik (the Gateway API
implementation, on 127.0.0.1) for the canaries with a router, and through the Service's
ClusterIP via kube-proxy for the strategies without one (rolling, canary by pods,
blue-green), and records who answered each one.

What every test asserts: not one request failed (no connection error, no timeout, no 5xx
from the gateway or the app) from the first request to the last. Then what the strategy
promises: shares per step, no answer from a release that never got ready, none from an
aborted canary once the route is back, all-old before a blue-green switch and all-new
after. The figures go to the test log (and docs/figures.md)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client

from e2e.conftest import Cluster, record_figure
from e2e.gateway.traefik import Traefik
from e2e.kube import VersionWatcher, eventually
from e2e.real.conftest import GATEWAY, GATEWAY_NAMESPACE, Images, InstalledOperator
from e2e.test_rolling import condition, status, wait_ready
from e2e.test_traffic import canary_weight
from e2e.traffic.load import LoadGenerator, failures, first_seen, last_seen, shares, summary

RATE = 150.0
"""Requests per second, all workers together: enough for 1,000 requests per canary step in
under 10 s, little enough to leave the two cores to the cluster."""

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Straight to 127.0.0.1, whatever *_proxy variables say."""

SWITCH_LAG = 5.0
"""How long a change of route or Service may take to reach every new request: the API
server, the EndpointSlice controller, then Traefik's or kube-proxy's next sync. Measured
lags are printed; this only bounds them."""


def app_rollout(
    image: str,
    version: str = "v1",
    *,
    replicas: int = 4,
    strategy: dict[str, Any] | None = None,
    deadline: int = 600,
    ready: str = "always",
) -> dict[str, Any]:
    """The test application on the real node: it answers with its version, is ready when
    READY says, and drains on SIGTERM (stops being ready, keeps serving 3 s, then closes)."""
    return {
        "apiVersion": "nonstop.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "nodeSelector": {"nonstop.test/real-node": "true"},
                    "tolerations": [
                        {
                            "key": "nonstop.test/real-node",
                            "operator": "Exists",
                            "effect": "NoSchedule",
                        }
                    ],
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "dnsPolicy": "Default",
                    "terminationGracePeriodSeconds": 15,
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "env": app_env(version, ready),
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {
                                "httpGet": {"path": "/ready", "port": 8080},
                                "periodSeconds": 1,
                                "failureThreshold": 1,
                            },
                        }
                    ],
                },
            },
            "service": {"name": "web", "ports": [{"port": 80, "targetPort": 8080}]},
            "progressDeadlineSeconds": deadline,
            "strategy": strategy or {"rolling": {"maxSurge": 1, "maxUnavailable": 0}},
        },
    }


def app_env(version: str, ready: str = "always") -> list[dict[str, str]]:
    return [
        {"name": "VERSION", "value": version},
        {"name": "READY", "value": ready},
        {"name": "DRAIN_SECONDS", "value": "3"},
    ]


def release(cluster: Cluster, ns: str, version: str, ready: str = "always") -> None:
    """A new revision: the same image with another VERSION (as a new build would be)."""
    patch = [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/env",
            "value": app_env(version, ready),
        }
    ]
    cluster.kubectl("patch", "rollout", "web", "-n", ns, "--type=json", "-p", json.dumps(patch))


def gateway_route(ns: str, service: str = "web") -> dict[str, Any]:
    """The user's HTTPRoute: host <ns>.test on the shared Gateway, to the stable Service."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {
            "parentRefs": [{"name": GATEWAY, "namespace": GATEWAY_NAMESPACE}],
            "hostnames": [f"{ns}.test"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"name": service, "port": 80}],
                }
            ],
        },
    }


def start_routed_canary(
    cluster: Cluster, ns: str, images: Images, gateway: Traefik, steps: list[dict[str, Any]]
) -> None:
    """The user's HTTPRoute, then a canary Rollout that routes with it, serving v1."""
    manifest = app_rollout(images.app, strategy={"canary": {"steps": steps}})
    manifest["spec"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
    cluster.apply(gateway_route(ns), ns)
    cluster.apply(manifest, ns)
    wait_serving(cluster, ns, gateway)


def through_gateway(traefik: Traefik, ns: str, **kwargs: Any) -> LoadGenerator:
    headers = {"Host": f"{ns}.test", **kwargs.pop("headers", {})}
    return LoadGenerator(traefik.url, headers=headers, rate=RATE, **kwargs)


def through_service(cluster: Cluster, ns: str) -> LoadGenerator:
    """Via kube-proxy: the Service's ClusterIP from this host (routed into the node's bridge
    and DNATed by kube-proxy's rules). A new connection per request, as kube-proxy balances
    connections, not requests: a kept-alive connection would stay on one pod."""
    ip = cluster.get("service", "web", "-n", ns)["spec"]["clusterIP"]
    return LoadGenerator(f"http://{ip}:80/", rate=RATE, keep_alive=False)


def wait_serving(cluster: Cluster, ns: str, traefik: Traefik | None = None) -> None:
    """The first revision is Ready and answers where the load will be sent, 20 times in a
    row: through the gateway (Traefik shows a router as soon as it has the route, but when
    the route came before its Service it answers 503 until it has loaded the Service's
    endpoints too), or through the Service's ClusterIP (kube-proxy programs a new Service a
    moment after its endpoints are ready, and refuses connections until then). This is
    before the load starts: every request of the test is counted."""
    wait_ready(cluster, ns)
    if traefik is not None:
        traefik.wait_route(ns, "web")
        url, headers = traefik.url + "/", {"Host": f"{ns}.test"}
    else:
        url, headers = f"http://{cluster.get('service', 'web', '-n', ns)['spec']['clusterIP']}/", {}
    in_a_row = 0

    def answering() -> bool:
        nonlocal in_a_row
        request = urllib.request.Request(url, headers=headers)
        try:
            with DIRECT.open(request, timeout=2) as response:
                in_a_row = in_a_row + 1 if response.status == 200 else 0
        except OSError:  # HTTPError (a 503) and a refused connection included
            in_a_row = 0
        return in_a_row >= 20

    where = "through the gateway" if traefik is not None else "through the Service"
    eventually(answering, 60, f"20 answers in a row {where}", every=0.05)


def at_pause(cluster: Cluster, ns: str, index: int) -> dict[str, Any]:
    def paused() -> dict[str, Any] | None:
        st = status(cluster, ns)
        ok = st.get("currentStepIndex") == index and st.get("phase") == "Paused"
        return st if ok else None

    return eventually(paused, 180, f"paused at step {index}", every=0.3)


def plugin(cluster: Cluster, *args: str) -> None:
    result = subprocess.run(
        ["kubectl", "nonstop", *args],
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def route_watch(cluster: Cluster, ns: str) -> VersionWatcher:
    api = client.CustomObjectsApi(cluster.api())
    args = ("gateway.networking.k8s.io", "v1", ns, "httproutes")
    return VersionWatcher(api.list_namespaced_custom_object, args, "web").start()


def service_watch(cluster: Cluster, ns: str) -> VersionWatcher:
    api = client.CoreV1Api(cluster.api())
    return VersionWatcher(api.list_namespaced_service, (ns,), "web").start()


def settle(load: LoadGenerator, label: str, requests: int = 300) -> list[Any]:
    """Mark `label` once a change has had SWITCH_LAG to reach every path, and return the
    next `requests` answers."""
    time.sleep(SWITCH_LAG)
    mark = load.mark(label)
    return load.wait_for_requests(requests, since=mark, timeout=120)


def report(name: str, load: LoadGenerator, extra: str = "") -> None:
    text = summary(load.samples(), load.marks())
    record_figure(f"real traffic, {name}:{(' ' + extra) if extra else ''}\n{text}")
    print(f"\n{name}\n{text}")


@contextmanager
def no_failures(load: LoadGenerator) -> Iterator[LoadGenerator]:
    """Run the load for the block; then not one request may have failed."""
    with load:
        load.wait_for_requests(100, timeout=60)
        yield load
    failed = failures(load.samples())
    if failed:
        print(summary(load.samples(), load.marks()))
    assert not failed, (
        f"{len(failed)} of {len(load.samples())} requests failed, first: {failed[:5]}"
    )


def share_of(samples: list[Any], version: str) -> float:
    return shares(samples).get(version, 0.0)


def test_rolling_update_through_kube_proxy(
    cluster: Cluster, real_namespace: str, images: Images
) -> None:
    ns = real_namespace
    cluster.apply(app_rollout(images.app), ns)
    wait_serving(cluster, ns)
    with no_failures(through_service(cluster, ns)) as load:
        load.mark("v2 applied")
        release(cluster, ns, "v2")
        wait_ready(cluster, ns)
        load.mark("Healthy")
        after = settle(load, "settled")
    report("rolling update (4 replicas, maxSurge 1), via kube-proxy", load)
    assert share_of(after, "v2") == 1.0


def measure_then_promote(cluster: Cluster, ns: str, load: LoadGenerator, step: str) -> float:
    """The new version's share of the next 1,000 requests, then `kubectl nonstop promote`."""
    mark = load.mark(step)
    share = share_of(load.wait_for_requests(1000, since=mark, timeout=120), "v2")
    load.mark(f"promote ({step})")
    plugin(cluster, "promote", "web", "-n", ns)
    return share


def test_canary_by_replica_ratio_through_kube_proxy(
    cluster: Cluster, real_namespace: str, images: Images
) -> None:
    ns = real_namespace
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    cluster.apply(app_rollout(images.app, strategy={"canary": {"steps": steps}}), ns)
    wait_serving(cluster, ns)
    measured = {}
    with no_failures(through_service(cluster, ns)) as load:
        load.mark("v2 applied")
        release(cluster, ns, "v2")
        for index, weight in ((1, 25), (3, 50)):
            at_pause(cluster, ns, index)
            measured[weight] = measure_then_promote(
                cluster, ns, load, f"step {index}: {weight}% of the pods"
            )
        wait_ready(cluster, ns)
        after = settle(load, "Healthy")
    report(
        "canary by replica ratio (25%, 50% of 4 pods), via kube-proxy",
        load,
        ", ".join(f"{w}% of the pods: {s:.1%} of 1,000 requests" for w, s in measured.items()),
    )
    # The step's weight is the canary's share of the pods (stable shrinks to make room), and
    # kube-proxy picks a pod at random per connection: over 1,000 connections the share is
    # the weight within 5 points (about 3 standard deviations of that draw).
    for weight, share in measured.items():
        assert abs(share * 100 - weight) <= 5, f"{weight}% of the pods answered {share:.1%}"
    assert share_of(after, "v2") == 1.0


def test_canary_by_gateway_weights_with_pauses(
    cluster: Cluster, real_namespace: str, images: Images, gateway: Traefik
) -> None:
    ns = real_namespace
    steps = [
        {"setWeight": 10}, {"pause": {}},
        {"setWeight": 30}, {"pause": {}},
        {"setWeight": 60}, {"pause": {}},
    ]  # fmt: skip
    start_routed_canary(cluster, ns, images, gateway, steps)
    measured: dict[int, float] = {}
    with no_failures(through_gateway(gateway, ns)) as load:
        load.mark("v2 applied")
        release(cluster, ns, "v2")
        for index, weight in ((1, 10), (3, 30), (5, 60)):
            at_pause(cluster, ns, index)
            eventually(
                lambda w=weight: canary_weight(cluster.get("httproute", "web", "-n", ns)) == w,
                60,
                f"route weight {weight}",
            )
            # Traefik's own API says when it routes with the new weights (basis points)
            gateway.wait_weights(
                ns, "web", {"web": 10000 - 100 * weight, "web-canary": 100 * weight}
            )
            measured[weight] = measure_then_promote(
                cluster, ns, load, f"step {index}: weight {weight}"
            )
        wait_ready(cluster, ns)
        load.mark("Healthy")
        after = settle(load, "settled")
    report(
        "canary by Gateway API weights (10/30/60, paused), via Traefik",
        load,
        ", ".join(f"weight {w}: {s:.1%} of 1,000 requests" for w, s in measured.items()),
    )
    for weight, share in measured.items():
        assert abs(share * 100 - weight) <= 2, f"weight {weight}: new version answered {share:.1%}"
    assert share_of(after, "v2") == 1.0


def test_header_route_sends_testers_to_the_canary(
    cluster: Cluster, real_namespace: str, images: Images, gateway: Traefik
) -> None:
    ns = real_namespace
    steps = [
        {"setHeaderRoute": {"name": "testers", "match": [{"name": "x-canary", "exact": "yes"}]}},
        {"pause": {}},
    ]
    start_routed_canary(cluster, ns, images, gateway, steps)
    testers = through_gateway(gateway, ns, headers={"x-canary": "yes"}, workers=2)
    with no_failures(through_gateway(gateway, ns, workers=2)) as users, no_failures(testers):
        users.mark("v2 applied")
        testers.mark("v2 applied")
        release(cluster, ns, "v2")
        at_pause(cluster, ns, 1)
        # Traefik has a router for the user's rule and one for nonstop's header rule
        gateway.wait_route(ns, "web", routers=2, timeout=60)
        seen_by_users = users.wait_for_requests(500, since=users.mark("header route"), timeout=120)
        seen_by_testers = testers.wait_for_requests(
            500, since=testers.mark("header route"), timeout=120
        )
        users.mark("promote")
        testers.mark("promote")
        plugin(cluster, "promote", "web", "-n", ns)
        wait_ready(cluster, ns)
        users.mark("Healthy")
        testers.mark("Healthy")
    report("header route x-canary: yes, users", users)
    report("header route x-canary: yes, testers", testers)
    assert share_of(seen_by_testers, "v2") == 1.0
    assert share_of(seen_by_users, "v2") == 0.0


def test_blue_green_switches_all_at_once(
    cluster: Cluster, real_namespace: str, images: Images
) -> None:
    ns = real_namespace
    strategy = {"blueGreen": {"previewService": "web-preview", "scaleDownDelaySeconds": 10}}
    cluster.apply(app_rollout(images.app, strategy=strategy), ns)
    wait_serving(cluster, ns)
    blue = status(cluster, ns)["currentRevision"]
    services = service_watch(cluster, ns)
    with no_failures(through_service(cluster, ns)) as load:
        load.mark("v2 applied")
        release(cluster, ns, "v2")
        green = at_pause(cluster, ns, 1)["currentRevision"]
        load.mark("green ready, awaiting promotion")
        load.wait_for_requests(300, since=load.marks()[-1], timeout=120)
        load.mark("promote")
        plugin(cluster, "promote", "web", "-n", ns)
        wait_ready(cluster, ns)
        after = settle(load, "switched")
    switched = switch_time(services.stop(), blue, green)
    samples = load.samples()
    early_green = [s for s in samples if s.version == "v2" and s.sent < switched]
    late_blue = [s for s in samples if s.version == "v1" and s.sent > switched + SWITCH_LAG]
    lag = (last_seen(samples, "v1").sent - switched) if last_seen(samples, "v1") else 0.0
    report(
        "blue-green with promotion, via kube-proxy",
        load,
        f"last v1 answer {lag:+.2f} s from the switch",
    )
    assert early_green == [], "green answered before the active Service switched"
    assert late_blue == [], "blue answered after the switch had reached the gateway"
    assert share_of(after, "v2") == 1.0


def switch_time(versions: list[tuple[float, dict[str, Any]]], old: str, new: str) -> float:
    """When the watched Service's selector went from revision `old` to `new`."""
    for when, service in versions:
        if service["spec"].get("selector", {}).get("nonstop.dev/revision") == new:
            return when
    raise AssertionError(f"the Service never switched from {old} to {new}")


def test_aborted_canary_answers_nothing_once_the_route_is_back(
    cluster: Cluster, real_namespace: str, images: Images, gateway: Traefik
) -> None:
    ns = real_namespace
    steps = [{"setWeight": 40}, {"pause": {}}]
    start_routed_canary(cluster, ns, images, gateway, steps)
    with no_failures(through_gateway(gateway, ns)) as load:
        load.mark("v2 applied")
        release(cluster, ns, "v2")
        at_pause(cluster, ns, 1)
        eventually(
            lambda: canary_weight(cluster.get("httproute", "web", "-n", ns)) == 40, 60, "weight 40"
        )
        routes = route_watch(cluster, ns)
        time.sleep(SWITCH_LAG)
        load.mark("canary at 40%")
        load.wait_for_requests(500, since=load.marks()[-1], timeout=120)
        abort = load.mark("abort")
        plugin(cluster, "abort", "web", "-n", ns)
        applied = gateway_drops_canary(gateway, ns)
        load.mark("the gateway routes to stable only", at=applied)
        eventually(lambda: status(cluster, ns).get("abort"), 60, "the abort in status")
        after = settle(load, "aborted")
    written = next(when for when, route in routes.stop() if canary_weight_or_zero(route) == 0)
    samples = load.samples()
    last_canary = last_seen(samples, "v2")
    assert last_canary is not None, "the canary never answered at 40%"
    report(
        "canary aborted at 40%, via Traefik",
        load,
        f"route written back {written - abort.at:.2f} s after the abort began, applied"
        f" by Traefik {applied - written:.2f} s later; last v2 answer sent"
        f" {last_canary.sent - written:+.2f} s from the write",
    )
    # Once the gateway has applied the route that nonstop wrote back, no request reaches
    # the canary; before that, the gateway still had the old weights.
    late = [s for s in samples if s.version == "v2" and s.sent > applied]
    assert late == [], f"the aborted canary answered {len(late)} requests after the route was back"
    assert share_of(after, "v1") == 1.0


def gateway_drops_canary(gateway: Traefik, ns: str, timeout: float = 30.0) -> float:
    """When Traefik's own API first showed rule 0 of the route without the canary."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        weights = gateway.weights(ns, "web")
        if weights and "web-canary" not in weights:
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"Traefik still routes to the canary after {timeout}s: {weights}")


def canary_weight_or_zero(route: dict[str, Any]) -> float:
    names = {b["name"] for r in route["spec"]["rules"] for b in r.get("backendRefs", [])}
    return canary_weight(route) if "web-canary" in names else 0.0


def test_release_that_never_gets_ready_answers_no_request(
    cluster: Cluster, real_namespace: str, images: Images
) -> None:
    ns = real_namespace
    cluster.apply(app_rollout(images.app, deadline=25), ns)
    wait_serving(cluster, ns)
    with no_failures(through_service(cluster, ns)) as load:
        load.mark("never-ready v2 applied")
        release(cluster, ns, "v2", ready="never")
        eventually(
            lambda: condition(status(cluster, ns), "Stalled").get("status") == "True",
            120,
            "aborted at the progress deadline",
        )
        load.mark("rolled back")
        after = settle(load, "settled")
    report("release never ready, rolled back at the deadline (25 s), via kube-proxy", load)
    assert first_seen(load.samples(), "v2") is None, "a never-ready pod answered a user"
    assert share_of(after, "v1") == 1.0
    assert status(cluster, ns)["abort"]


def test_blue_green_undo_inside_the_window_is_one_switch_back(
    cluster: Cluster, real_namespace: str, images: Images
) -> None:
    ns = real_namespace
    strategy = {"blueGreen": {"previewService": "web-preview", "scaleDownDelaySeconds": 120}}
    cluster.apply(app_rollout(images.app, strategy=strategy), ns)
    wait_serving(cluster, ns)
    blue = status(cluster, ns)["currentRevision"]
    with no_failures(through_service(cluster, ns)) as load:
        load.mark("v2 applied")
        release(cluster, ns, "v2")
        at_pause(cluster, ns, 1)
        plugin(cluster, "promote", "web", "-n", ns)
        wait_ready(cluster, ns)
        on_green = settle(load, "green active")
        load.mark("undo")
        generation = generation_of(cluster, ns)
        plugin(cluster, "undo", "web", "-n", ns)
        # the action is answered before nonstop writes blue's template back into the spec
        eventually(lambda: generation_of(cluster, ns) > generation, 60, "the undo's template")
        assert wait_ready(cluster, ns)["currentRevision"] == blue
        back = settle(load, "blue active again")
    report("blue-green undo inside scaleDownDelaySeconds, via kube-proxy", load)
    assert share_of(on_green, "v2") == 1.0
    assert share_of(back, "v1") == 1.0


def generation_of(cluster: Cluster, ns: str) -> int:
    return int(cluster.get("rollout", "web", "-n", ns)["metadata"]["generation"])


def test_operator_pod_deleted_mid_rollout(
    cluster: Cluster,
    real_namespace: str,
    images: Images,
    gateway: Traefik,
    nonstop_in_pod: InstalledOperator,
) -> None:
    ns = real_namespace
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 75}, {"pause": {"duration": "5s"}}]
    start_routed_canary(cluster, ns, images, gateway, steps)
    with no_failures(through_gateway(gateway, ns)) as load:
        load.mark("v2 applied")
        release(cluster, ns, "v2")
        at_pause(cluster, ns, 1)
        before = nonstop_in_pod.pods()
        load.mark("operator pod deleted")
        cluster.kubectl("delete", "-n", nonstop_in_pod.namespace, *before, "--wait=false")
        eventually(
            lambda: (p := nonstop_in_pod.pods()) and not set(p) & set(before),
            120,
            "a new operator pod",
        )
        nonstop_in_pod.wait_available()
        load.mark("new operator pod available")
        plugin(cluster, "promote", "web", "-n", ns)
        wait_ready(cluster, ns)
        after = settle(load, "Healthy")
    report("operator pod deleted at a canary pause, via Traefik", load)
    assert share_of(after, "v2") == 1.0
    assert status(cluster, ns)["phase"] == "Healthy"
