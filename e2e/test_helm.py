"""The Helm chart installs the CRD and RBAC that the operator needs, with real helm."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from e2e.conftest import Cluster
from e2e.kube import REPO

SA = "system:serviceaccount:nonstop-helm:nonstop"

# Every call the operator makes (operator/nonstop/kube/client.py), plus kopf's watches.
NEEDED = [
    ("get", "rollouts.nonstop.dev"),
    ("list", "rollouts.nonstop.dev"),
    ("watch", "rollouts.nonstop.dev"),
    ("patch", "rollouts.nonstop.dev/status"),
    ("patch", "rollouts.nonstop.dev"),  # undo: spec.template back to a previous revision
    ("get", "deployments.apps"),  # a Deployment under nonstop's name: whose is it?
    ("list", "deployments.apps"),
    ("watch", "deployments.apps"),
    ("create", "deployments.apps"),
    ("patch", "deployments.apps"),
    ("delete", "deployments.apps"),
    ("get", "services"),
    ("create", "services"),
    ("patch", "services"),
    ("list", "pods"),
    ("list", "endpointslices.discovery.k8s.io"),
    ("get", "httproutes.gateway.networking.k8s.io"),
    ("update", "httproutes.gateway.networking.k8s.io"),
    ("get", "secrets"),  # an analysis metric's credentials, by name
    ("list", "analysistemplates.nonstop.dev"),
    ("get", "configmaps"),  # a feature toggle's flag document
    ("update", "configmaps"),
    ("create", "events"),
    ("list", "rolloutactions.nonstop.dev"),
    ("watch", "rolloutactions.nonstop.dev"),
    ("patch", "rolloutactions.nonstop.dev/status"),
    ("delete", "rolloutactions.nonstop.dev"),  # answered ones, after an hour
]


def helm(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cluster.bin_dir / "helm"), *args],
        capture_output=True,
        text=True,
        env=cluster.env(),
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> str:
    chart = str(REPO / "helm" / "nonstop")
    result = helm(
        cluster,
        "upgrade",
        "--install",
        "nonstop",
        chart,
        "-n",
        "nonstop-helm",
        "--create-namespace",
        "--set",
        "operator.enabled=false",
        "--wait",
    )
    assert result.returncode == 0, result.stderr
    return "nonstop"


def test_chart_crds_are_the_committed_crds() -> None:
    for crd in (
        "rollouts.nonstop.dev.yaml",
        "rolloutactions.nonstop.dev.yaml",
        "analysistemplates.nonstop.dev.yaml",
    ):
        chart_crd = (REPO / "helm/nonstop/crds" / crd).read_text()
        assert chart_crd == (REPO / "crds" / crd).read_text(), "run `make crd`"


@pytest.mark.parametrize(("verb", "resource"), NEEDED)
def test_operator_service_account_may_do_what_the_operator_does(
    cluster: Cluster, release: str, verb: str, resource: str
) -> None:
    name, _, sub = resource.partition("/")
    extra = [f"--subresource={sub}"] if sub else []
    answer = cluster.kubectl("auth", "can-i", verb, name, *extra, "--as", SA, "-A", check=False)
    assert answer.stdout.strip() == "yes", f"{SA} cannot {verb} {resource}"


@pytest.mark.parametrize(
    ("verb", "allowed"),
    [("get", "yes"), ("create", "yes"), ("update", "yes"), ("delete", "no"), ("list", "no")],
)
def test_the_leader_lease_is_the_only_lease_the_operator_may_touch(
    cluster: Cluster, release: str, verb: str, allowed: str
) -> None:
    """Two replicas elect a leader with a Lease in the release namespace (a namespaced Role:
    nothing on leases anywhere else)."""
    here = cluster.kubectl(
        "auth",
        "can-i",
        verb,
        "leases.coordination.k8s.io",
        "-n",
        "nonstop-helm",
        "--as",
        SA,
        check=False,
    )
    assert here.stdout.strip() == allowed
    elsewhere = cluster.kubectl(
        "auth",
        "can-i",
        verb,
        "leases.coordination.k8s.io",
        "-n",
        "default",
        "--as",
        SA,
        check=False,
    )
    assert elsewhere.stdout.strip() == "no"


@pytest.mark.parametrize("verb", ["list", "watch", "create", "update", "delete"])
def test_operator_may_read_a_named_secret_but_not_list_or_change_secrets(
    cluster: Cluster, release: str, verb: str
) -> None:
    # get: the credentials an analysis metric names (valueFrom.secretKeyRef); no more
    answer = cluster.kubectl("auth", "can-i", verb, "secrets", "--as", SA, "-A", check=False)
    assert answer.stdout.strip() == "no"


def test_operator_deployment_renders_for_a_real_cluster(cluster: Cluster) -> None:
    result = helm(
        cluster,
        "template",
        "nonstop",
        str(REPO / "helm/nonstop"),
        "--set",
        "operator.namespaces={team-a,team-b}",
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "run"
    assert "--namespace=team-a" in container["args"] and "--namespace=team-b" in container["args"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "nonstop"


def test_namespace_globs_and_negations_pass_the_values_schema(cluster: Cluster) -> None:
    """`nonstop run -n` takes globs and negations (the real-node tests install the chart
    with `real-*`); the schema refuses only what no namespace pattern can hold."""
    path = str(REPO / "helm/nonstop")
    for pattern in ("real-*", "!kube-*", "team-a"):
        good = helm(
            cluster, "template", "nonstop", path, "--set", f"operator.namespaces[0]={pattern}"
        )
        assert good.returncode == 0, good.stderr
        assert f"--namespace={pattern}" in good.stdout
    bad = helm(cluster, "template", "nonstop", path, "--set", "operator.namespaces[0]=Team A")
    assert bad.returncode != 0 and "namespaces" in bad.stderr


def test_rollout_operator_role_grants_actions_but_not_edits(cluster: Cluster, release: str) -> None:
    cluster.kubectl("create", "namespace", "team-a", check=False)
    cluster.kubectl(
        "create",
        "rolebinding",
        "alice-operates",
        "-n",
        "team-a",
        "--clusterrole=nonstop-rollout-operator",
        "--user=alice",
        check=False,
    )

    def can(verb: str, resource: str) -> str:
        return cluster.kubectl(
            "auth", "can-i", verb, resource, "-n", "team-a", "--as", "alice", check=False
        ).stdout.strip()

    assert can("create", "rolloutactions.nonstop.dev") == "yes"
    assert can("get", "rollouts.nonstop.dev") == "yes"
    assert can("patch", "rollouts.nonstop.dev") == "no"
    assert can("delete", "rollouts.nonstop.dev") == "no"


@pytest.mark.parametrize("monitor", [False, True])
def test_metrics_service_and_the_optional_service_monitor(cluster: Cluster, monitor: bool) -> None:
    """The metrics port (`--metrics-port`, a containerPort) behind a Service; a
    ServiceMonitor only when asked for (it needs the Prometheus Operator's CRDs)."""
    result = helm(
        cluster,
        "template",
        "nonstop",
        str(REPO / "helm/nonstop"),
        "--set",
        f"operator.metrics.serviceMonitor.enabled={str(monitor).lower()}",
        "--set",
        "operator.metrics.serviceMonitor.interval=15s",
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--metrics-port=8090" in container["args"]
    assert {"name": "metrics", "containerPort": 8090} in container["ports"]
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    if not monitor:
        assert monitors == []
        return
    [servicemonitor] = monitors
    assert servicemonitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s"}
    ]
    selected = servicemonitor["spec"]["selector"]["matchLabels"]
    assert selected.items() <= service["metadata"]["labels"].items()


def test_metrics_can_be_turned_off(cluster: Cluster) -> None:
    result = helm(
        cluster,
        "template",
        "nonstop",
        str(REPO / "helm/nonstop"),
        "--set",
        "operator.metrics.enabled=false",
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert not [d for d in docs if d["kind"] in ("Service", "ServiceMonitor")]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--metrics-port=0" in container["args"]
    assert [p["name"] for p in container["ports"]] == ["health"]
