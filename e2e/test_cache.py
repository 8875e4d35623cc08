"""The watch-fed cache end to end: what changed while nobody watched is still acted on.

The operator reads the cluster only from its watches (operator/nonstop/kube/cache.py).
A change made while it was down reaches it through the list it makes when it starts; one
made while its watches were cut, through the watch it resumes from the last version seen.
"""

from __future__ import annotations

import os
import signal
import subprocess

from e2e.conftest import Cluster
from e2e.kube import Operator, eventually
from e2e.manifests import rollout
from e2e.test_rolling import deployments, set_image, wait_ready


def test_a_change_made_while_the_operator_was_down_is_acted_on(
    cluster: Cluster, operator: Operator, namespace: str
) -> None:
    cluster.apply(rollout(replicas=2), namespace)
    first = wait_ready(cluster, namespace)

    operator.stop()
    try:
        set_image(cluster, namespace, "registry.example/web:2")
        cluster.kubectl("scale", "rollout", "web", "-n", namespace, "--replicas=3")
    finally:
        operator.start()

    second = wait_ready(cluster, namespace)
    assert second["currentRevision"] != first["currentRevision"]
    assert second["stableRevision"] == second["currentRevision"]
    assert second["readyReplicas"] == 3
    assert deployments(cluster, namespace) == {
        second["currentRevision"]: 3,
        first["currentRevision"]: 0,
    }


def test_a_deployment_changed_behind_nonstops_back_is_put_right(
    cluster: Cluster, namespace: str
) -> None:
    """A change to what nonstop owns wakes its Rollout through the watch (no poll)."""
    cluster.apply(rollout(replicas=2), namespace)
    st = wait_ready(cluster, namespace)
    name = f"web-{st['currentRevision']}"
    cluster.kubectl("scale", "deployment", name, "-n", namespace, "--replicas=5")
    # the Rollout says 2: the next pass (woken by the Deployment's change) scales it back
    wait_ready(cluster, namespace)

    def back_to_two() -> bool | None:
        return deployments(cluster, namespace) == {st["currentRevision"]: 2} or None

    # well inside the resync (300 s): it is the watch that wakes the Rollout
    eventually(back_to_two, 60, "the Deployment scaled back to the Rollout's 2 replicas")


def _kill_connections(pid: int) -> int:
    """Abort every TCP connection of the process (ss -K, the kernel's socket destroy): its
    watches break as when a network path or the API server goes away."""
    listed = subprocess.run(
        ["ss", "-tnpH", "state", "established"], capture_output=True, text=True, check=True
    ).stdout
    ports = {
        line.split()[2].rsplit(":", 1)[1] for line in listed.splitlines() if f"pid={pid}," in line
    }
    for port in ports:
        subprocess.run(["ss", "-K", "sport", "=", f":{port}"], capture_output=True, check=False)
    return len(ports)


def test_a_change_made_during_a_watch_gap_is_acted_on(
    cluster: Cluster, operator: Operator, namespace: str
) -> None:
    """The operator is frozen (SIGSTOP) while the image changes, and its connections are
    cut meanwhile: when it runs again its watches fail, resume from the last version they
    saw, and bring the change that happened in the gap."""
    cluster.apply(rollout(replicas=2), namespace)
    first = wait_ready(cluster, namespace)
    assert operator.proc is not None
    pid = operator.proc.pid
    log_before = len(operator.logs())

    os.kill(pid, signal.SIGSTOP)
    try:
        set_image(cluster, namespace, "registry.example/web:2")
        cut = _kill_connections(pid)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert cut >= 1, "the operator had no connection to cut"

    second = wait_ready(cluster, namespace)
    assert second["currentRevision"] != first["currentRevision"]
    assert second["stableRevision"] == second["currentRevision"]
    # the gap was real: the watches broke and were resumed
    assert "watch interrupted" in operator.logs()[log_before:]
