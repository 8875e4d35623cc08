"""Blue-green end to end: green comes up whole behind the preview Service, the active
Service switches once (and only after the preview's EndpointSlices list all of green's pods
as ready), blue stays whole for scaleDownDelaySeconds, and an undo inside that window is
one switch back. Watchers independent of the operator record the times."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from e2e.conftest import Cluster, record_figure
from e2e.kube import ReadyEndpointWatcher, VersionWatcher, eventually
from e2e.manifests import rollout
from e2e.test_rolling import deployments, events, set_image, status, wait_ready

DELAY = 15


def selects(cluster: Cluster, namespace: str, service: str = "web") -> str:
    selector = cluster.get("service", service, "-n", namespace)["spec"]["selector"]
    return str(selector.get("nonstop.dev/revision"))


def awaiting_promotion(cluster: Cluster, namespace: str) -> dict[str, Any]:
    def waiting() -> dict[str, Any] | None:
        st = status(cluster, namespace)
        return st if st.get("phase") == "Paused" and st.get("currentStepIndex") == 1 else None

    return eventually(waiting, 120, "green ready, awaiting promotion", every=0.3)


def first_time(versions: list[tuple[float, dict[str, Any]]], revision: str) -> tuple[float, int]:
    """When the Service first selected `revision`, and how many selector changes there were."""
    at, changes, last = None, 0, None
    for when, service in versions:
        selected = service["spec"]["selector"].get("nonstop.dev/revision")
        if selected != last and last is not None:
            changes += 1
        if selected == revision and at is None:
            at = when
        last = selected
    assert at is not None, f"the Service never selected {revision}"
    return at, changes


def test_switch_after_green_is_ready_delay_then_undo_in_one_switch(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    manifest = rollout(replicas=4)
    manifest["spec"]["strategy"] = {
        "blueGreen": {"previewService": "web-preview", "scaleDownDelaySeconds": DELAY}
    }
    cluster.apply(manifest, namespace)
    blue = wait_ready(cluster, namespace)["currentRevision"]
    active = watch_endpoints(4)
    api = cluster.api()
    preview = ReadyEndpointWatcher(api, namespace, "web-preview").start()
    services = VersionWatcher(
        client.CoreV1Api(api).list_namespaced_service, (namespace,), "web"
    ).start()

    # green comes up whole behind the preview Service; blue keeps serving
    set_image(cluster, namespace, "registry.example/web:2")
    green = awaiting_promotion(cluster, namespace)["currentRevision"]
    assert deployments(cluster, namespace) == {blue: 4, green: 4}
    assert selects(cluster, namespace) == blue
    assert selects(cluster, namespace, "web-preview") == green
    time.sleep(2)  # without autoPromotion it waits for a person
    assert selects(cluster, namespace) == blue

    assert "Applied" in cluster.kubectl("nonstop", "promote", "web", "-n", namespace).stdout
    eventually(lambda: selects(cluster, namespace) == green, 60, "active switched to green")
    switched_at, _ = first_time(services.versions, green)
    green_pods = f"web-{green}-"
    green_ready_at = next(
        when
        for when, ready in preview.ready_sets
        if len(ready) == 4 and all(name.startswith(green_pods) for name in ready)
    )
    assert green_ready_at <= switched_at, "switched before the EndpointSlices showed green ready"
    record_figure(
        f"blue-green: active Service switched {switched_at - green_ready_at:.2f}s after the"
        " preview's EndpointSlices listed all 4 green pods ready"
    )

    # blue stays whole for the delay, then goes
    assert deployments(cluster, namespace)[blue] == 4
    eventually(lambda: deployments(cluster, namespace)[blue] == 0, DELAY + 60, "blue scaled down")
    kept = time.monotonic() - switched_at
    assert kept >= DELAY
    record_figure(
        f"blue-green: old revision kept whole {kept:.1f}s after the switch (delay {DELAY}s)"
    )

    # a third revision, promoted, then undone inside the window: one switch back to green
    set_image(cluster, namespace, "registry.example/web:3")
    third = awaiting_promotion(cluster, namespace)["currentRevision"]
    assert "Applied" in cluster.kubectl("nonstop", "promote", "web", "-n", namespace).stdout
    eventually(lambda: selects(cluster, namespace) == third, 60, "active switched to the third")
    undo = cluster.kubectl("nonstop", "undo", "web", "-n", namespace)
    assert "Applied" in undo.stdout
    eventually(lambda: selects(cluster, namespace) == green, 60, "undo: back to green")
    assert deployments(cluster, namespace)[green] == 4  # never went down
    back = wait_ready(cluster, namespace)
    assert back["currentRevision"] == back["stableRevision"] == green

    _, changes = first_time(services.stop(), green)
    assert changes == 3  # blue -> green, green -> third, third -> green: one update each
    assert "ServiceSwitched" in " ".join(events(cluster, namespace))
    preview.stop()
    minimum = active.stop()
    assert minimum >= 4, "\n".join(active.trace)
