"""Canary without a traffic router, end to end: each step moves its share of pods behind the
one Service; an indefinite pause waits for `kubectl nonstop promote`; abort restores stable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from e2e.conftest import Cluster, record_figure
from e2e.kube import ReadyEndpointWatcher, eventually
from e2e.manifests import rollout
from e2e.test_rolling import deployments, set_image, status, wait_ready

STEPS: list[dict[str, Any]] = [
    {"setWeight": 25},
    {"pause": {"duration": "5s"}},
    {"setWeight": 50},
    {"pause": {}},
    {"setWeight": 75},
]


def at_step(cluster: Cluster, namespace: str, index: int) -> dict[str, Any]:
    return eventually(
        lambda: (s := status(cluster, namespace)).get("currentStepIndex") == index and s,
        120,
        f"step index {index}",
        every=0.2,
    )


def test_canary_steps_promote_and_abort(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    manifest = rollout(replicas=4)
    manifest["spec"]["strategy"] = {"canary": {"steps": STEPS}}
    cluster.apply(manifest, namespace)
    first = wait_ready(cluster, namespace)
    watcher = watch_endpoints(4)

    set_image(cluster, namespace, "registry.example/web:2")
    at_step(cluster, namespace, 1)  # setWeight 25 done: one canary pod of four
    new = status(cluster, namespace)["currentRevision"]
    assert deployments(cluster, namespace) == {first["currentRevision"]: 3, new: 1}

    paused = at_step(cluster, namespace, 3)  # setWeight 50 done; waits for a promotion
    eventually(lambda: status(cluster, namespace).get("phase") == "Paused", 60, "Paused")
    assert deployments(cluster, namespace) == {first["currentRevision"]: 2, new: 2}
    row = cluster.kubectl("get", "rollout", "web", "-n", namespace, "--no-headers").stdout.split()
    assert row[4:7] == ["3/5", "50", "Paused"]  # STEP, WEIGHT, PHASE
    assert paused["stableRevision"] == first["currentRevision"]

    promote = cluster.kubectl("nonstop", "promote", "web", "-n", namespace)
    assert "Applied" in promote.stdout
    done = wait_ready(cluster, namespace)
    assert done["stableRevision"] == new
    assert deployments(cluster, namespace) == {first["currentRevision"]: 0, new: 4}

    # a third revision, aborted at the indefinite pause: all back to the stable one at once
    set_image(cluster, namespace, "registry.example/web:3")
    third = at_step(cluster, namespace, 3)["currentRevision"]
    abort = cluster.kubectl("nonstop", "abort", "web", "-n", namespace)
    assert "Applied" in abort.stdout
    eventually(
        lambda: deployments(cluster, namespace) == {first["currentRevision"]: 0, new: 4, third: 0},
        120,
        "back to stable",
    )
    minimum = watcher.stop()
    record_figure(f"canary 4 replicas, 5 steps, promote and abort: min ready endpoints {minimum}")
    assert minimum >= 4, "\n".join(watcher.trace)
