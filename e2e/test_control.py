"""Manual control end to end: kubectl nonstop (the plugin) creates RolloutActions that the
operator applies once and answers."""

from __future__ import annotations

from collections.abc import Callable

from e2e.conftest import Cluster
from e2e.kube import ReadyEndpointWatcher, eventually
from e2e.manifests import rollout
from e2e.test_rolling import deployments, set_image, status, wait_ready


def test_abort_mid_rollout_then_retry(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    replicas = 4
    cluster.apply(rollout(replicas=replicas, min_ready_seconds=3), namespace)
    first = wait_ready(cluster, namespace)
    watcher = watch_endpoints(replicas)

    set_image(cluster, namespace, "registry.example/web:2")
    eventually(
        lambda: 1 <= status(cluster, namespace).get("updatedReplicas", 0) < replicas,
        120,
        "mid-rollout",
    )
    abort = cluster.kubectl("nonstop", "abort", "web", "-n", namespace, "--reason", "latency alert")
    assert "Applied" in abort.stdout, abort.stdout

    st = eventually(
        lambda: (
            (s := status(cluster, namespace)).get("abort")
            and s["conditions"][2]["reason"] == "RolledBack"
            and s
        ),
        120,
        "rolled back",
    )
    assert st["abort"]["reason"] == "AbortedByUser" and "latency alert" in st["abort"]["message"]
    assert deployments(cluster, namespace) == {
        first["currentRevision"]: 4,
        st["currentRevision"]: 0,
    }
    actions = cluster.get("rolloutactions", "-n", namespace)["items"]
    assert [a["status"]["phase"] for a in actions] == ["Applied"]

    retry = cluster.kubectl("nonstop", "retry", "web", "-n", namespace)
    assert "Applied" in retry.stdout
    done = wait_ready(cluster, namespace)
    assert done["stableRevision"] == st["currentRevision"] and done.get("abort") is None
    assert watcher.stop() >= replicas, "\n".join(watcher.trace)

    promote = cluster.kubectl("nonstop", "promote", "web", "-n", namespace, check=False)
    assert (
        promote.returncode == 1
        and "Rejected" in promote.stdout
        and "needs a canary or blue-green strategy" in promote.stdout
    )
    reasons = {e["reason"] for e in cluster.get("events", "-n", namespace)["items"]}
    assert {"ActionApplied", "ActionRejected", "RolledBack"} <= reasons
