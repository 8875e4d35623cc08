"""Benchmark on the real local control plane: how long a rolling update takes, from the
template change to Ready, for a few sizes and surges. Prints figures; asserts nothing.

    .venv/bin/python bench/rollout.py        (builds/starts the cluster "nonstop-bench")

Pods are KWOK's, so this measures nonstop and the Kubernetes controllers, not image pulls
or application start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e2e.conftest import CACHE
from e2e.kube import REPO, Cluster, Operator, eventually
from e2e.manifests import rollout

NAME = "nonstop-bench"
CASES = [(4, 1), (10, 1), (10, "25%"), (30, "25%")]


def ready(cluster: Cluster, namespace: str, generation: int) -> bool:
    obj = cluster.get("rollout", "web", "-n", namespace)
    status = obj.get("status", {})
    return status.get("observedGeneration") == generation and status.get("phase") == "Healthy"


def measure(cluster: Cluster, replicas: int, surge: int | str) -> tuple[float, float]:
    namespace = f"b-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    eventually(
        lambda: (
            cluster.kubectl("get", "sa", "default", "-n", namespace, check=False).returncode == 0
        ),
        60,
        "default ServiceAccount",
    )
    start = time.monotonic()
    cluster.apply(rollout(replicas=replicas, max_surge=surge), namespace)
    eventually(lambda: ready(cluster, namespace, 1), 600, "first revision", every=0.2)
    first = time.monotonic() - start
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}}
    start = time.monotonic()
    cluster.kubectl(
        "patch", "rollout", "web", "-n", namespace, "--type=merge", "-p", json.dumps(patch)
    )
    eventually(lambda: ready(cluster, namespace, 2), 900, "update", every=0.2)
    update = time.monotonic() - start
    cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    return first, update


def main() -> None:
    up = subprocess.run(
        ["bash", str(REPO / "e2e/cluster/up.sh"), "--name", NAME],
        capture_output=True,
        text=True,
        check=True,
    )
    cluster = Cluster(up.stdout.strip().splitlines()[-1], CACHE / "bin")
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"{NAME}-logs"
    log_dir.mkdir(exist_ok=True)
    operator = Operator(cluster, log_dir)
    operator.start()
    try:
        print(f"{'replicas':>8} {'maxSurge':>8} {'first revision':>15} {'update':>8}")
        for replicas, surge in CASES:
            first, update = measure(cluster, replicas, surge)
            print(f"{replicas:>8} {surge!s:>8} {first:>13.1f} s {update:>6.1f} s")
    finally:
        operator.stop()
        subprocess.run(
            ["bash", str(REPO / "e2e/cluster/down.sh"), "--name", NAME],
            check=False,
            capture_output=True,
        )


if __name__ == "__main__":
    main()
