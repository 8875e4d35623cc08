"""The Helm chart installs the CRD and RBAC that the operator needs, with real helm."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.conftest import Cluster
from e2e.kube import REPO, Operator, eventually
from nonstop.kube.access import OPERATOR, Access

SA = "system:serviceaccount:nonstop-helm:nonstop"
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def _resource(access: Access) -> list[str]:
    """kubectl auth can-i's words for a resource: plural.group and --subresource."""
    resource, _, sub = access.resource.partition("/")
    name = f"{resource}.{access.group}" if access.group else resource
    return [name, f"--subresource={sub}"] if sub else [name]


# Every call the operator makes (operator/nonstop/kube/access.py, which tests/unit/test_rbac.py
# holds to the operator's code), and every other verb on the same resources, which it must
# not have.
USED = sorted(a for a in OPERATOR if a.where != "own")
UNUSED = sorted(
    {
        Access(a.group, a.resource, verb, a.where)
        for a in USED
        if not a.resource.endswith("/finalizers")
        for verb in VERBS
    }
    - OPERATOR
)


def helm(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cluster.bin_dir / "helm"), *args],
        capture_output=True,
        text=True,
        env=cluster.env(),
        timeout=300,
        check=False,
    )


def rendered(cluster: Cluster, *values: str) -> list[dict[str, Any]]:
    """The chart's objects as `helm template` renders them with these `--set` values."""
    sets = [arg for value in values for arg in ("--set", value)]
    result = helm(cluster, "template", "nonstop", str(REPO / "helm/nonstop"), *sets)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


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


def can(cluster: Cluster, who: str, verb: str, *what: str) -> str:
    """kubectl auth can-i's answer: "yes" or "no"."""
    answer = cluster.kubectl("auth", "can-i", verb, *what, "--as", who, check=False)
    return answer.stdout.strip()


def where(access: Access) -> list[str]:
    return ["-A"] if access.where == "served" else []  # cluster: no namespace at all


@pytest.mark.parametrize("access", USED, ids=lambda a: f"{a.verb}-{a.resource}.{a.group}")
def test_operator_service_account_may_do_what_the_operator_does(
    cluster: Cluster, release: str, access: Access
) -> None:
    assert can(cluster, SA, access.verb, *_resource(access), *where(access)) == "yes"


@pytest.mark.parametrize("access", UNUSED, ids=lambda a: f"{a.verb}-{a.resource}.{a.group}")
def test_operator_service_account_may_do_nothing_else_with_those_resources(
    cluster: Cluster, release: str, access: Access
) -> None:
    assert can(cluster, SA, access.verb, *_resource(access), *where(access)) == "no"


@pytest.mark.parametrize(
    ("verb", "lease", "allowed"),
    [
        ("create", "", "yes"),  # RBAC cannot limit a create to a name
        ("get", "/nonstop-leader", "yes"),
        ("update", "/nonstop-leader", "yes"),
        ("get", "/another-lease", "no"),
        ("update", "/another-lease", "no"),
        ("delete", "/nonstop-leader", "no"),
        ("list", "", "no"),
    ],
)
def test_the_leader_lease_is_the_only_lease_the_operator_may_touch(
    cluster: Cluster, release: str, verb: str, lease: str, allowed: str
) -> None:
    """Two replicas elect a leader with a Lease in the release namespace (a namespaced Role,
    the Lease by name: nothing on other leases, nothing on leases anywhere else)."""
    what = f"leases.coordination.k8s.io{lease}"
    assert can(cluster, SA, verb, what, "-n", "nonstop-helm") == allowed
    assert can(cluster, SA, verb, what, "-n", "default") == "no"


@pytest.mark.parametrize("verb", ["list", "watch", "create", "update", "delete"])
def test_operator_may_read_a_named_secret_but_not_list_or_change_secrets(
    cluster: Cluster, release: str, verb: str
) -> None:
    # get: the credentials an analysis metric names (valueFrom.secretKeyRef); no more
    answer = cluster.kubectl("auth", "can-i", verb, "secrets", "--as", SA, "-A", check=False)
    assert answer.stdout.strip() == "no"


def test_operator_deployment_renders_for_a_real_cluster(cluster: Cluster) -> None:
    docs = rendered(cluster, "operator.namespaces={team-a,team-b}")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = operator_container(docs)
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
    docs = rendered(
        cluster,
        f"operator.metrics.serviceMonitor.enabled={str(monitor).lower()}",
        "operator.metrics.serviceMonitor.interval=15s",
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = operator_container(docs)
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
    docs = rendered(cluster, "operator.metrics.enabled=false")
    assert not [d for d in docs if d["kind"] in ("Service", "ServiceMonitor")]
    container = operator_container(docs)
    assert "--metrics-port=0" in container["args"]
    assert [p["name"] for p in container["ports"]] == ["health"]


# --- namespaced mode: Roles in the listed namespaces, nothing cluster-wide -------------------
NS_RELEASE, NS_HOME = "nonstop-ns", "nonstop-ns-system"
NS_SA = f"system:serviceaccount:{NS_HOME}:nonstop"
LISTED, UNLISTED = ("rbac-team-a", "rbac-team-b"), "rbac-team-c"
SERVED = sorted(a for a in OPERATOR if a.where == "served")


@pytest.fixture(scope="module")
def namespaced(cluster: Cluster) -> Iterator[str]:
    """The chart with operator.namespaces set to names: rbac.scope auto makes it namespaced."""
    for name in (*LISTED, UNLISTED):
        cluster.kubectl("create", "namespace", name, check=False)
    result = helm(
        cluster,
        "upgrade",
        "--install",
        NS_RELEASE,
        str(REPO / "helm" / "nonstop"),
        "-n",
        NS_HOME,
        "--create-namespace",
        "--set",
        "operator.enabled=false",  # run below as a local process with the chart's rights
        "--set",
        f"operator.namespaces={{{','.join(LISTED)}}}",
        "--wait",
    )
    assert result.returncode == 0, result.stderr
    assert "may act in namespaces" in result.stdout  # NOTES.txt says so
    yield NS_RELEASE
    helm(cluster, "uninstall", NS_RELEASE, "-n", NS_HOME, "--wait")


@pytest.mark.parametrize("access", SERVED, ids=lambda a: f"{a.verb}-{a.resource}.{a.group}")
def test_namespaced_operator_may_act_in_the_listed_namespaces_only(
    cluster: Cluster, namespaced: str, access: Access
) -> None:
    for namespace in LISTED:
        assert can(cluster, NS_SA, access.verb, *_resource(access), "-n", namespace) == "yes"
    assert can(cluster, NS_SA, access.verb, *_resource(access), "-n", UNLISTED) == "no"
    assert can(cluster, NS_SA, access.verb, *_resource(access), "-A") == "no"


def test_namespaced_operator_gets_no_secret_elsewhere(cluster: Cluster, namespaced: str) -> None:
    assert can(cluster, NS_SA, "get", "secrets", "-n", LISTED[0]) == "yes"
    assert can(cluster, NS_SA, "get", "secrets", "-n", UNLISTED) == "no"
    assert can(cluster, NS_SA, "get", "secrets", "-n", "kube-system") == "no"
    assert can(cluster, NS_SA, "get", "secrets", "-A") == "no"
    # no cluster-wide binding of its ServiceAccount at all
    bindings = cluster.get("clusterrolebindings")["items"]
    mine = [
        b["metadata"]["name"]
        for b in bindings
        if {"kind": "ServiceAccount", "name": "nonstop", "namespace": NS_HOME}
        in (b.get("subjects") or [])
    ]
    assert mine == []


def _token_kubeconfig(cluster: Cluster, path: Path) -> Path:
    """A kubeconfig that acts as the chart's ServiceAccount (a TokenRequest token)."""
    token = cluster.kubectl("create", "token", "nonstop", "-n", NS_HOME, "--duration=1h")
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "operator", "user": {"token": token.stdout.strip()}}],
        "contexts": [
            {
                "name": "operator",
                "context": {"cluster": context["context"]["cluster"], "user": "operator"},
            }
        ],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_operator_runs_with_only_the_namespaced_rights(
    cluster: Cluster, namespaced: str, tmp_path: Path
) -> None:
    """`nonstop run` as the chart's ServiceAccount, serving the listed namespaces with leader
    election: every watch lists, kopf starts, the Lease is taken, nothing is refused."""
    kubeconfig = _token_kubeconfig(cluster, tmp_path / "operator.kubeconfig")
    op = Operator(
        cluster,
        tmp_path,
        args=[
            *(f"--namespace={n}" for n in LISTED),
            "--leader-elect",
            f"--lease-namespace={NS_HOME}",
            "--lease-name=nonstop-leader",  # the one Lease the chart's Role names
        ],
        env={"KUBECONFIG": str(kubeconfig)},
        name="namespaced",
    )
    op.start()
    try:
        eventually(lambda: "cache listed" in op.logs(), 90, "the cache to list")
        eventually(lambda: "leading" in op.logs(), 60, "the Lease to be taken")
        log = op.logs()
        for refusal in ("cannot watch", "list/watch failed", "Forbidden", "forbidden", " 403"):
            assert refusal not in log, f"{refusal!r} in the operator's log:\n{log[-3000:]}"
        assert op.alive()
    finally:
        op.stop()


# --- people: the built-in roles cover nonstop's kinds ------------------------------------------
@pytest.mark.parametrize(
    ("role", "verb", "what", "allowed"),
    [
        ("edit", "create", ["rollouts.nonstop.dev"], "yes"),
        ("edit", "patch", ["rollouts.nonstop.dev"], "yes"),
        ("edit", "delete", ["rollouts.nonstop.dev"], "yes"),
        ("edit", "create", ["rolloutactions.nonstop.dev"], "yes"),
        ("edit", "create", ["analysistemplates.nonstop.dev"], "yes"),
        ("edit", "update", ["rollouts.nonstop.dev", "--subresource=scale"], "yes"),
        ("edit", "patch", ["rollouts.nonstop.dev", "--subresource=status"], "no"),
        ("admin", "create", ["rollouts.nonstop.dev"], "yes"),
        ("admin", "create", ["rolloutactions.nonstop.dev"], "yes"),
        ("view", "get", ["rollouts.nonstop.dev"], "yes"),
        ("view", "list", ["rolloutactions.nonstop.dev"], "yes"),
        ("view", "list", ["analysistemplates.nonstop.dev"], "yes"),
        ("view", "create", ["rollouts.nonstop.dev"], "no"),
        ("view", "patch", ["rollouts.nonstop.dev"], "no"),
        ("view", "create", ["rolloutactions.nonstop.dev"], "no"),
    ],
)
def test_the_built_in_roles_cover_nonstops_kinds(
    cluster: Cluster, release: str, role: str, verb: str, what: list[str], allowed: str
) -> None:
    """A person bound to the built-in edit (or admin) role of a namespace may create and
    change Rollouts and RolloutActions there; one bound to view may only read them. The
    controller-manager aggregates the chart's ClusterRoles into those roles."""
    namespace = "rbac-people"
    cluster.kubectl("create", "namespace", namespace, check=False)
    user = f"{role}-person"
    cluster.kubectl(
        "create", "rolebinding", user, "-n", namespace, f"--clusterrole={role}", f"--user={user}",
        check=False,
    )  # fmt: skip
    # the controller-manager aggregates within moments: wait until it has for this role
    probe = "get" if role == "view" else "create"
    eventually(
        lambda: can(cluster, user, probe, "rollouts.nonstop.dev", "-n", namespace) == "yes",
        30,
        f"the {role} role to cover Rollouts",
    )
    assert can(cluster, user, verb, *what, "-n", namespace) == allowed
    assert can(cluster, user, verb, *what, "-n", "default") == "no"  # bound in one namespace
