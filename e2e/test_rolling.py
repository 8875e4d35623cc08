"""The rolling strategy end to end: real API server and controllers, KWOK pods, the
operator as a process, kubectl as the client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from e2e.conftest import Cluster, record_figure
from e2e.kube import Operator, ReadyEndpointWatcher, eventually
from e2e.manifests import rollout


def status(cluster: Cluster, ns: str, name: str = "web") -> dict[str, Any]:
    return cluster.get("rollout", name, "-n", ns).get("status", {})  # type: ignore[no-any-return]


def condition(st: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in st.get("conditions", []) if c["type"] == type_), {})


def wait_ready(cluster: Cluster, ns: str, name: str = "web", timeout: int = 180) -> dict[str, Any]:
    """kubectl wait, as a user or a pipeline would, then the status it left."""

    def ready_for_generation() -> dict[str, Any] | None:
        obj = cluster.get("rollout", name, "-n", ns)
        st = obj.get("status", {})
        ok = (
            st.get("observedGeneration") == obj["metadata"]["generation"]
            and condition(st, "Ready").get("status") == "True"
        )
        return st if ok else None

    eventually(ready_for_generation, timeout, f"rollout {name} Ready for its generation")
    cluster.kubectl(
        "wait", "--for=condition=Ready", f"rollout/{name}", "-n", ns, f"--timeout={timeout}s"
    )
    return status(cluster, ns, name)


def set_image(
    cluster: Cluster, ns: str, image: str, name: str = "web", labels: dict[str, str] | None = None
) -> None:
    patch: dict[str, Any] = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
    }
    if labels:
        patch["spec"]["template"]["metadata"] = {"labels": labels}
    # a merge patch replaces the container list, as a GitOps apply of the new manifest would
    patch["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    cluster.kubectl("patch", "rollout", name, "-n", ns, "--type=merge", "-p", json.dumps(patch))


def events(cluster: Cluster, ns: str, name: str = "web") -> list[str]:
    items = cluster.get(
        "events",
        "-n",
        ns,
        "--field-selector",
        f"involvedObject.name={name},involvedObject.kind=Rollout",
    )["items"]
    items.sort(key=lambda e: e["metadata"]["name"])  # <rollout>.<unix nanos in hex>: chronological
    return [e["reason"] for e in items]


def deployments(cluster: Cluster, ns: str, name: str = "web") -> dict[str, int]:
    items = cluster.get("deployments", "-n", ns, "-l", f"nonstop.dev/rollout={name}")["items"]
    return {d["metadata"]["labels"]["nonstop.dev/revision"]: d["spec"]["replicas"] for d in items}


def test_apply_wait_get_and_scale(cluster: Cluster, namespace: str) -> None:
    manifest = rollout(replicas=3)
    # written as people do: a bare number for cpu; the API server takes it, so must nonstop
    manifest["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": 1}}
    cluster.apply(manifest, namespace)
    st = wait_ready(cluster, namespace)
    assert st["phase"] == "Healthy"
    assert st["readyReplicas"] == 3
    assert st["stableRevision"] == st["currentRevision"]
    assert st["selector"] == "app=web"

    table = cluster.kubectl("get", "rollouts", "-n", namespace).stdout.splitlines()
    header = ["NAME", "STRATEGY", "DESIRED", "READY", "STEP", "WEIGHT", "PHASE", "AGE"]
    assert table[0].split() == header
    assert table[1].split()[:7] == ["web", "rolling", "3", "3", "3/3", "0", "Healthy"]

    service = cluster.get("service", "web", "-n", namespace)
    assert service["spec"]["selector"] == {"app": "web"}
    assert service["metadata"]["ownerReferences"][0]["kind"] == "Rollout"

    cluster.kubectl("scale", "rollout", "web", "-n", namespace, "--replicas=5")
    st = wait_ready(cluster, namespace)
    assert st["readyReplicas"] == 5
    assert deployments(cluster, namespace) == {st["currentRevision"]: 5}
    scale = json.loads(
        cluster.kubectl(
            "get", "--raw", f"/apis/nonstop.dev/v1alpha1/namespaces/{namespace}/rollouts/web/scale"
        ).stdout
    )
    assert scale["spec"]["replicas"] == 5 and scale["status"]["selector"] == "app=web"

    # no finalizer: deleting the Rollout deletes what it owns, through the garbage collector
    assert not cluster.get("rollout", "web", "-n", namespace)["metadata"].get("finalizers")
    cluster.kubectl("delete", "rollout", "web", "-n", namespace, "--wait=true")
    eventually(lambda: deployments(cluster, namespace) == {}, 120, "owned Deployments deleted")
    eventually(
        lambda: cluster.get("services", "-n", namespace)["items"] == [],
        120,
        "owned Service deleted",
    )


def test_image_update_never_drops_below_the_minimum(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    replicas = 4
    cluster.apply(rollout(replicas=replicas, max_surge=1, max_unavailable=0), namespace)
    first = wait_ready(cluster, namespace)
    watcher = watch_endpoints(replicas)

    set_image(cluster, namespace, "registry.example/web:2")
    second = wait_ready(cluster, namespace)
    minimum = watcher.stop()
    record_figure(
        f"rolling update {replicas} replicas maxUnavailable=0: min ready endpoints {minimum}"
    )
    assert second["currentRevision"] != first["currentRevision"]
    assert second["stableRevision"] == second["currentRevision"]
    assert minimum >= replicas, "\n".join(watcher.trace)  # replicas - maxUnavailable
    assert deployments(cluster, namespace) == {
        second["currentRevision"]: 4,
        first["currentRevision"]: 0,
    }
    story = events(cluster, namespace)
    assert "RolloutStarted" in story and "Scaled" in story and story[-1] == "RolloutCompleted"


def test_bad_release_pauses_then_rolls_back(
    cluster: Cluster, namespace: str, watch_endpoints: Callable[[int], ReadyEndpointWatcher]
) -> None:
    replicas = 3
    cluster.apply(rollout(replicas=replicas, deadline=40), namespace)
    good = wait_ready(cluster, namespace)
    watcher = watch_endpoints(replicas)

    set_image(
        cluster, namespace, "registry.example/web:broken", labels={"test.kwok/readiness": "never"}
    )

    paused = eventually(
        lambda: (s := status(cluster, namespace)).get("phase") == "Paused" and s, 120, "Paused"
    )
    assert condition(paused, "Paused")["reason"] == "PodsNotReady"
    bad_pods = cluster.get(
        "pods", "-n", namespace, "-l", f"nonstop.dev/revision={paused['currentRevision']}"
    )["items"]
    assert bad_pods
    assert bad_pods[0]["metadata"]["name"] in paused["message"]
    assert "ContainersNotReady" in paused["message"]

    rolled_back = eventually(
        lambda: (
            condition(s := status(cluster, namespace), "Stalled").get("reason") == "RolledBack"
            and s
        ),
        180,
        "rolled back",
    )
    minimum = watcher.stop()
    record_figure(f"bad release {replicas} replicas: min ready endpoints {minimum}")
    assert minimum >= replicas, "\n".join(watcher.trace)
    assert rolled_back["phase"] == "Degraded"
    assert rolled_back["abort"]["reason"] == "ProgressDeadlineExceeded"
    assert rolled_back["stableRevision"] == good["currentRevision"]
    assert condition(rolled_back, "Ready")["status"] == "False"
    assert deployments(cluster, namespace) == {
        good["currentRevision"]: 3,
        rolled_back["currentRevision"]: 0,
    }

    story = events(cluster, namespace)
    assert story.index("PodsNotReady") < story.index("RolloutAborted") < story.index("RolledBack")
    page = cluster.kubectl("nonstop", "status", "web", "-n", namespace).stdout  # the plugin
    assert "phase Degraded" in page and "aborted" in page and "ProgressDeadlineExceeded" in page
    assert f"{good['currentRevision']}" in page and "stable" in page
    assert "RolledBack" in page
    described = cluster.kubectl("describe", "rollout", "web", "-n", namespace).stdout
    for reason in ("RolloutStarted", "PodsNotReady", "RolloutAborted", "RolledBack"):
        assert reason in described


def test_operator_killed_mid_rollout_resumes_within_limits(
    cluster: Cluster,
    operator: Operator,
    namespace: str,
    watch_endpoints: Callable[[int], ReadyEndpointWatcher],
) -> None:
    replicas, surge = 6, 1
    cluster.apply(rollout(replicas=replicas, max_surge=surge, min_ready_seconds=2), namespace)
    wait_ready(cluster, namespace)
    pods = PodCounter(cluster, namespace, "app=web").start()
    watcher = watch_endpoints(replicas)

    set_image(cluster, namespace, "registry.example/web:2")
    eventually(
        lambda: 1 <= status(cluster, namespace).get("updatedReplicas", 0) < replicas,
        120,
        "mid-rollout",
    )
    operator.kill()
    time.sleep(3)  # the cluster goes on without the operator for a while
    operator.start()
    st = wait_ready(cluster, namespace, timeout=300)
    minimum = watcher.stop()
    most = pods.stop()
    record_figure(f"SIGKILL mid-rollout: min ready endpoints {minimum}, max pods {most}")
    assert st["stableRevision"] == st["currentRevision"]
    assert minimum >= replicas, "\n".join(watcher.trace)
    assert most <= replicas + surge


class PodCounter:
    """Polls the rollout's pods and records the largest number not being deleted."""

    def __init__(self, cluster: Cluster, namespace: str, selector: str) -> None:
        self.cluster, self.namespace, self.selector = cluster, namespace, selector
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.cluster.api())
        while not self._stop.is_set():
            items = json.loads(
                core.list_namespaced_pod(
                    self.namespace, label_selector=self.selector, _preload_content=False
                ).data
            )["items"]
            self.most = max(
                self.most, sum(1 for p in items if not p["metadata"].get("deletionTimestamp"))
            )
            time.sleep(0.2)

    def start(self) -> PodCounter:
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.most
