"""Fixtures of the real-traffic suite: a real worker node joined to the local control plane
(e2e/cluster/node.sh), nonstop installed by its Helm chart and running in a pod on that node
from the image e2e/images/build.sh made, Traefik as the Gateway API implementation on
127.0.0.1, and a namespace per test that only the in-pod operator serves."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from e2e.conftest import CACHE, CLUSTER_NAME
from e2e.gateway.traefik import Traefik, gateway_manifests
from e2e.kube import REAL_NAMESPACES, REPO, Cluster
from e2e.test_helm import helm

RELEASE = "nonstop-real"
RELEASE_NAMESPACE = "nonstop-real-system"
GATEWAY_NAMESPACE = "nonstop-gateway"
GATEWAY = "public"


@dataclass(frozen=True)
class Images:
    app: str
    operator: str
    operator_archive: str


def _run(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> str:
    """The node "real-node": kubelet, containerd and kube-proxy on this machine. A machine
    that cannot host one (not root, no cgroups) skips these tests with the reason, except
    in CI, where they must run."""
    check = _run("bash", str(REPO / "e2e/cluster/node.sh"), "check")
    if check.returncode != 0:
        reason = f"this machine cannot host a real node: {check.stdout.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    up = _run("bash", str(REPO / "e2e/cluster/node.sh"), "up", "--name", CLUSTER_NAME)
    if up.returncode != 0:
        pytest.fail(f"the real node did not come up:\n{up.stderr[-3000:]}", pytrace=False)
    return "real-node"


@pytest.fixture(scope="session")
def images(real_node: str) -> Images:
    """The image references node.sh imported (the build is cached, so this is quick)."""
    built = _run("bash", str(REPO / "e2e/images/build.sh"))
    assert built.returncode == 0, built.stderr[-3000:]
    refs: dict[str, str] = {}
    archives: dict[str, str] = {}
    for line in built.stdout.splitlines():
        ref, _, archive = line.partition(" ")
        name = ref.rsplit(":", 1)[0].rsplit("/", 1)[-1]
        refs[name], archives[name] = ref, archive
    return Images(
        app=refs["nonstop-test-app"],
        operator=refs["nonstop"],
        operator_archive=archives["nonstop"],
    )


def api_server(cluster: Cluster) -> tuple[str, str]:
    server = cluster.kubectl(
        "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"
    ).stdout
    host, _, port = server.removeprefix("https://").rpartition(":")
    return host, port


@dataclass
class InstalledOperator:
    cluster: Cluster
    namespace: str = RELEASE_NAMESPACE
    selector: str = f"app.kubernetes.io/instance={RELEASE}"

    def pods(self) -> list[str]:
        out = self.cluster.kubectl(
            "get", "pods", "-n", self.namespace, "-l", self.selector, "-o", "name"
        ).stdout
        return out.split()

    def wait_available(self) -> None:
        self.cluster.kubectl(
            "rollout",
            "status",
            f"deployment/{RELEASE}-operator",
            "-n",
            self.namespace,
            "--timeout=180s",
        )

    def logs(self) -> str:
        return self.cluster.kubectl(
            "logs", "-n", self.namespace, "-l", self.selector, "--tail=120", check=False
        ).stdout


@pytest.fixture(scope="session")
def nonstop_in_pod(cluster: Cluster, real_node: str, images: Images) -> InstalledOperator:
    """`helm install` of the chart as shipped, with the operator enabled: the image built
    here under the chart's default reference, its ServiceAccount, RBAC, probes and security
    context. It serves the real-* namespaces (the operator process of the other e2e tests
    serves all the others). The local control plane listens on 127.0.0.1 only, so the pod
    uses the node's network and is told the API server's address."""
    host, port = api_server(cluster)
    result = helm(
        cluster, "upgrade", "--install", RELEASE, str(REPO / "helm/nonstop"),
        "-n", RELEASE_NAMESPACE, "--create-namespace",
        "--set", f"operator.namespaces={{{REAL_NAMESPACES}}}",
        "--set", "operator.hostNetwork=true",
        "--set", "operator.healthPort=18480",
        "--set", "operator.env[0].name=KUBERNETES_SERVICE_HOST",
        "--set", f"operator.env[0].value={host}",
        "--set", "operator.env[1].name=KUBERNETES_SERVICE_PORT",
        "--set-string", f"operator.env[1].value={port}",
        "--set-string", "operator.nodeSelector.nonstop\\.test/real-node=true",
        "--set", "operator.tolerations[0].key=nonstop.test/real-node",
        "--set", "operator.tolerations[0].operator=Exists",
        "--set", "operator.tolerations[0].effect=NoSchedule",
        # a rebuilt image keeps its reference: restart the pod when the archive changed
        "--set-string", f"operator.podAnnotations.nonstop\\.test/image={Path(images.operator_archive).name}",
        "--wait", "--timeout=180s",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # the chart's default image reference is the one the build produced
    values = yaml.safe_load((REPO / "helm/nonstop/values.yaml").read_text())
    chart = yaml.safe_load((REPO / "helm/nonstop/Chart.yaml").read_text())
    image = values["operator"]["image"]
    assert f"{image['repository']}:{image['tag'] or chart['appVersion']}" == images.operator
    installed = InstalledOperator(cluster)
    installed.wait_available()
    return installed


@pytest.fixture(scope="session")
def gateway(
    cluster: Cluster, real_node: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Traefik]:
    """Traefik with its Gateway API provider on 127.0.0.1, a GatewayClass and a Gateway
    that routes of every namespace may attach to."""
    cluster.kubectl("create", "namespace", GATEWAY_NAMESPACE, check=False)
    with Traefik(
        cluster.kubeconfig, tmp_path_factory.mktemp("traefik"), binary=CACHE / "bin" / "traefik"
    ) as traefik:
        for manifest in gateway_manifests(GATEWAY_NAMESPACE, traefik.web_port, gateway=GATEWAY):
            cluster.apply(manifest, GATEWAY_NAMESPACE)
        yield traefik


@pytest.fixture
def real_namespace(
    cluster: Cluster, nonstop_in_pod: InstalledOperator, request: pytest.FixtureRequest
) -> Iterator[str]:
    name = cluster.create_namespace(f"{REAL_NAMESPACES.rstrip('*')}{uuid.uuid4().hex[:8]}")
    yield name
    call = getattr(request.node, "rep_call", None)
    if call is not None and call.failed:
        print("\n--- in-pod operator log ---\n" + nonstop_in_pod.logs())
        print(cluster.kubectl("describe", "rollouts", "-n", name, check=False).stdout)
        print(cluster.kubectl("get", "pods", "-n", name, "-o", "wide", check=False).stdout)
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
