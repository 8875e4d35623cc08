"""The chart grants the operator exactly what it uses, in the namespaces it serves.

Three sides, held equal:

- the calls the operator makes, found by running its real API code (every KubePort method
  of the cached client a pass uses, every informer the cache makes, the leader election)
  over an HTTP client that records each request and maps it to RBAC attributes as the API
  server does (kube/access.py `attributes`);
- the table of them, kube/access.py `OPERATOR`;
- the rules of the Helm chart, rendered by helm in each RBAC scope.

A new API call without its line in the table fails here, a line nothing calls fails here, a
rule the operator does not use and a use without a rule fail here. What people get from
the aggregated roles is checked on the rendered chart too (and against a real API server in
e2e/test_helm.py)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import kopf
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from nonstop import handlers, metrics
from nonstop.api import GROUP, KIND, PLURAL, VERSION
from nonstop.cli import main as cli
from nonstop.kube import cache as cache_module
from nonstop.kube.access import OPERATOR, Access
from nonstop.kube.cache import Cache, CachedKube, Scope
from nonstop.kube.client import ConflictError, Kube
from nonstop.kube.informer import Resource
from nonstop.kube.port import KubePort
from nonstop.leader import LeaderElector, LeaseSettings
from nonstop.plan.resources import render_deployment, render_service
from nonstop.plan.views import rollout_view

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "nonstop"
CACHE = Path(
    os.environ.get(
        "NONSTOP_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nonstop"
    )
)
SERVED = "shop"  # a namespace the operator serves
OWN = "nonstop-system"  # the operator's own (the Lease's)


# --- requests as RBAC sees them ------------------------------------------------------------
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def attributes(method: str, path: str, query: dict[str, str]) -> tuple[str, str, str, str]:
    """(group, resource[/subresource], verb, namespace) of a request, as the API server's
    RequestInfo resolves it: GET of a name is get, of a collection list (watch with
    ?watch); DELETE of a collection is deletecollection. Namespace "" is cluster-wide."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = parts[1], parts[3:]
    else:
        raise ValueError(f"not a resource path: {path}")
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    named = len(rest) >= 2
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    if method == "GET":
        watching = query.get("watch", "").lower() in ("1", "true")
        verb = "watch" if watching else "get" if named else "list"
    elif method == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = _VERBS[method]
    return group, resource, verb, namespace


# --- a recording API client ----------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any


class Answer:
    """What the fake API server answers: a status and a JSON body; for a watch, no event."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.reason = {200: "OK", 201: "Created", 404: "Not Found", 409: "Conflict"}[status]
        self.data = json.dumps(body).encode() if body is not None else b""
        self.response = self  # a watch reads the urllib3 response behind the answer

    def read(self) -> bytes:
        return self.data

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        return iter(())

    def release_conn(self) -> None:
        pass


Policy = Callable[[str, str, dict[str, str], Any], tuple[int, Any]]


class Recorder(client.ApiClient):
    """The client's own request building (param_serialize), and no network: each request is
    recorded and answered by `policy`."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(client.Configuration(host="https://api.test"))
        self.policy = policy
        self.requests: list[Request] = []

    def call_api(  # type: ignore[override]
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Answer:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.requests.append(Request(method, parts.path, query, copy.deepcopy(body)))
        return Answer(*self.policy(method, parts.path, query, body))


def _object(path: str) -> dict[str, Any]:
    *_, namespace, _plural, name = path.split("/")
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"}}


def agreeable(method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
    """Every write succeeds, every object exists."""
    if method == "GET" and query.get("watch"):
        return 200, None
    if method == "GET" and attributes(method, path, query)[2] == "list":
        return 200, {"items": [], "metadata": {"resourceVersion": "7"}}
    if method == "GET":
        return 200, _object(path)
    if method == "POST":
        return 201, body
    return 200, _object(path)


def contrary(method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
    """Every create finds the name taken, every named read finds nothing."""
    if method == "POST":
        return 409, {"kind": "Status", "code": 409}
    if method == "GET" and attributes(method, path, query)[2] == "get":
        return 404, {"kind": "Status", "code": 404}
    return agreeable(method, path, query, body)


# --- what a pass calls, with what ------------------------------------------------------------
ROLLOUT: dict[str, Any] = {
    **yaml.safe_load((REPO / "examples" / "rolling.yaml").read_text()),
    "metadata": {"name": "web", "namespace": SERVED, "uid": "u-1", "generation": 1},
}
VIEW = rollout_view(ROLLOUT)
assert VIEW.spec is not None
TEMPLATE = ROLLOUT["spec"]["template"]
DEPLOYMENT = render_deployment(VIEW.meta, VIEW.spec, TEMPLATE, "abc", 1)
SERVICE = render_service(VIEW.meta, VIEW.spec)
ROUTE = {"metadata": {"name": "web", "namespace": SERVED, "resourceVersion": "1"}, "spec": {}}
FLAGS = {"metadata": {"name": "flags", "namespace": SERVED, "resourceVersion": "1"}, "data": {}}
SELECTOR = "nonstop.dev/rollout=web"

# Every KubePort method, with the arguments a pass gives it (several calls: several paths).
CALLS: dict[str, list[tuple[Any, ...]]] = {
    "get_rollout": [(SERVED, "web")],
    "list_deployments": [(SERVED, SELECTOR)],
    "list_pods": [(SERVED, SELECTOR)],
    "get_service": [(SERVED, "web")],
    "list_endpoint_slices": [(SERVED, "web")],
    "get_secret": [(SERVED, "slo-api")],
    "list_analysis_templates": [(SERVED,)],
    "get_route": [(SERVED, "web")],
    "get_config_map": [(SERVED, "flags")],
    "list_actions": [(SERVED,), (SERVED, "web")],
    "get_deployment": [(SERVED, "web-abc")],
    "replace_config_map": [(FLAGS,)],
    "delete_action": [(SERVED, "abort-1")],
    "answer_action": [(SERVED, "abort-1", {"phase": "Done"})],
    "create_deployment": [(DEPLOYMENT,)],
    "scale_deployment": [(SERVED, "web-abc", 2)],
    "delete_deployment": [(SERVED, "web-abc")],
    "ensure_service": [(SERVICE,), (SERVICE, {"app": "web"})],
    "replace_route": [(ROUTE,)],
    "set_rollout_template": [(SERVED, "web", TEMPLATE, 1)],
    "patch_rollout_status": [(SERVED, "web", {"phase": "Healthy"})],
    "post_event": [(ROLLOUT, "Normal", "Test", "once"), (ROLLOUT, "Normal", "Test", "once")],
}


def port_methods() -> set[str]:
    return {name for name, _ in inspect.getmembers(KubePort) if not name.startswith("_")}


def drive_the_operator(policy: Policy) -> list[Request]:
    """The operator's API code, run once through: what it sends."""
    api = Recorder(policy)
    kube = Kube(api, qps=0)
    kube._watch_api = api
    cache = Cache(kube, Scope.of([SERVED]), lambda key: None)
    done: set[int] = set()

    def list_and_watch() -> None:
        for informer in cache.informers():
            if id(informer) not in done:
                done.add(id(informer))
                informer._version = informer._list()
                informer._watch()

    list_and_watch()  # every informer lists, then watches (it is then readable)
    cached = CachedKube(kube, cache)
    for name, calls in CALLS.items():
        for args in calls:
            # an answer the caller handles: the request was made all the same
            with contextlib.suppress(ApiException, ConflictError):
                getattr(cached, name)(*args)
    # the late watches: a route and a flag ConfigMap that some Rollout names
    cache._watch_named({("HTTPRoute", SERVED, "web"), ("ConfigMap", SERVED, "flags")})
    list_and_watch()
    watched = {(i.resource.prefix, i.resource.plural) for i in cache.informers()}
    kinds = {(r.prefix, r.plural) for r in vars(cache_module).values() if isinstance(r, Resource)}
    assert kinds <= watched, f"kinds of kube/cache.py this test does not watch: {kinds - watched}"
    return api.requests


def drive_the_leader_election() -> list[Request]:
    leases: dict[str, Any] = {}

    def policy(method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if method == "GET":
            return (200, leases[path]) if path in leases else (404, {"code": 404})
        stored = {**body, "metadata": {**body["metadata"], "resourceVersion": str(len(leases))}}
        key = f"{path}/{body['metadata']['name']}" if method == "POST" else path
        leases[key] = stored
        return (201 if method == "POST" else 200), stored

    api = Recorder(policy)
    elector = LeaderElector(LeaseSettings("nonstop-leader", OWN, "me"), api=api)
    assert elector.try_acquire_or_renew()  # created
    assert elector.try_acquire_or_renew()  # renewed
    assert elector.release()
    return api.requests


def where(namespace: str) -> str:
    return {SERVED: "served", OWN: "own", "": "cluster"}[namespace]


def accesses(requests: list[Request]) -> set[Access]:
    """The RBAC permissions these requests need. A write whose object names its owner with
    blockOwnerDeletion also needs `update` of the owner's finalizers (the API server's
    OwnerReferencesPermissionEnforcement admission plugin)."""
    plurals = {(f"{GROUP}/{VERSION}", KIND): PLURAL}
    found: set[Access] = set()
    for request in requests:
        group, resource, verb, namespace = attributes(request.method, request.path, request.query)
        found.add(Access(group, resource, verb, where(namespace)))  # type: ignore[arg-type]
        body = request.body if isinstance(request.body, dict) else {}
        for owner in (body.get("metadata") or {}).get("ownerReferences") or []:
            if owner.get("blockOwnerDeletion"):
                plural = plurals[(owner["apiVersion"], owner["kind"])]
                owner_group = owner["apiVersion"].rpartition("/")[0]
                found.add(Access(owner_group, f"{plural}/finalizers", "update", where(namespace)))
    return found


def kopf_scans_crds(monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether kopf's resource observer will list and watch CRDs: so unless the operator's
    start-up handler turns kopf's scanning off. Runs that handler with nothing real behind
    it."""

    class Nothing:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def start(self) -> bool:
            return True

        def rollout_keys(self) -> list[Any]:
            return []

        def informers(self) -> list[Any]:
            return []

        def rollout_objects(self) -> list[Any]:
            return []

    for name in ("Cache", "CachedKube", "Kube", "Workers"):
        monkeypatch.setattr(handlers, name, Nothing)
    monkeypatch.setattr(handlers, "load_config", lambda: None)
    monkeypatch.setattr(metrics, "watch_rollouts", lambda source: None)
    monkeypatch.setattr(handlers, "_state", {"settings": handlers.Settings()})
    settings = kopf.OperatorSettings()
    asyncio.run(handlers.startup(settings=settings))
    return not settings.scanning.disabled


# --- the table is the truth ------------------------------------------------------------------
def test_every_kubeport_method_is_driven() -> None:
    missing, stale = port_methods() - set(CALLS), set(CALLS) - port_methods()
    assert not missing, f"KubePort gained {sorted(missing)}: add how a pass calls it to CALLS"
    assert not stale, f"KubePort has no {sorted(stale)} any more: drop it from CALLS"


def test_the_table_lists_every_call_the_operator_makes_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = accesses(
        drive_the_operator(agreeable) + drive_the_operator(contrary) + drive_the_leader_election()
    )
    kopf_made: set[Access] = set()
    if kopf_scans_crds(monkeypatch):
        kopf_made = {
            Access("apiextensions.k8s.io", "customresourcedefinitions", verb, "cluster")
            for verb in ("list", "watch")
        }
    made |= kopf_made
    unlisted, unused = made - OPERATOR, OPERATOR - made
    assert not unlisted, f"calls not in kube/access.py OPERATOR: {sorted(unlisted)}"
    assert not unused, f"kube/access.py OPERATOR lists what nothing calls: {sorted(unused)}"


def test_kopf_watches_no_namespace_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf runs the process cluster-wide with no resource handler: it lists no namespaces
    (with namespace patterns it would, and the operator would need `list namespaces`)."""
    seen: dict[str, Any] = {}

    async def operator(**kwargs: Any) -> None:
        seen.update(kwargs)

    monkeypatch.setattr(kopf, "operator", operator)
    monkeypatch.setattr(cli, "configure_logging", lambda *args: None)
    monkeypatch.setattr(handlers, "_state", {"settings": handlers.Settings()})
    assert cli.main(["run", "-n", "team-*", "-n", "!kube-*"]) == 0
    assert seen["clusterwide"] is True and not seen.get("namespaces")


def test_attributes_are_the_api_servers() -> None:
    cases = {
        ("GET", "/api/v1/namespaces/a/secrets/s", ()): ("", "secrets", "get", "a"),
        ("GET", "/api/v1/namespaces/a/pods", ()): ("", "pods", "list", "a"),
        ("GET", "/api/v1/pods", (("watch", "1"),)): ("", "pods", "watch", ""),
        ("GET", "/apis/apps/v1/namespaces/a/deployments", (("watch", "true"),)): (
            "apps",
            "deployments",
            "watch",
            "a",
        ),
        ("PATCH", "/apis/nonstop.dev/v1alpha1/namespaces/a/rollouts/w/status", ()): (
            "nonstop.dev",
            "rollouts/status",
            "patch",
            "a",
        ),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/n/leases/l", ()): (
            "coordination.k8s.io",
            "leases",
            "update",
            "n",
        ),
        ("POST", "/api/v1/namespaces/a/events", ()): ("", "events", "create", "a"),
        ("DELETE", "/apis/apps/v1/namespaces/a/deployments", ()): (
            "apps",
            "deployments",
            "deletecollection",
            "a",
        ),
        ("GET", "/api/v1/namespaces/a", ()): ("", "namespaces", "get", ""),
        ("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", ()): (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "list",
            "",
        ),
    }
    for (method, path, query), expected in cases.items():
        assert attributes(method, path, dict(query)) == expected, (method, path)


# --- the chart grants the table ----------------------------------------------------------------
def _helm() -> Path:
    helm = CACHE / "bin" / "helm"
    if not helm.exists():
        if os.environ.get("CI"):
            pytest.fail(f"no helm at {helm} (bash e2e/cluster/build.sh builds it)")
        pytest.skip(f"no helm at {helm} (bash e2e/cluster/build.sh builds it)")
    return helm


def render(*values: str) -> subprocess.CompletedProcess[str]:
    args = [a for v in values for a in ("--set", v)]
    return subprocess.run(
        [str(_helm()), "template", "nonstop", str(CHART), "-n", OWN, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def documents(*values: str) -> list[dict[str, Any]]:
    result = render(*values)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@dataclass(frozen=True, order=True)
class Grant:
    group: str
    resource: str
    verb: str
    namespace: str  # "*": every namespace (a ClusterRoleBinding)
    names: tuple[str, ...] = field(default=())


def granted(docs: list[dict[str, Any]], account: str = "nonstop") -> set[Grant]:
    """What the chart's bindings give the operator's ServiceAccount."""
    roles = {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d.get("rules") or []
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
    }
    grants: set[Grant] = set()
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = binding.get("subjects") or []
        if {"kind": "ServiceAccount", "name": account, "namespace": OWN} not in subjects:
            continue
        namespace = binding["metadata"].get("namespace", "*")
        ref = binding["roleRef"]
        role_namespace = namespace if ref["kind"] == "Role" else ""
        for rule in roles[(ref["kind"], role_namespace, ref["name"])]:
            names = tuple(rule.get("resourceNames") or ())
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        grants.add(Grant(group, resource, verb, namespace, names))
    return grants


def wanted(served: list[str], lease: str | None = "nonstop-leader") -> set[Grant]:
    """The table, as grants: served entries in each served namespace ("*": all)."""
    out: set[Grant] = set()
    for access in OPERATOR:
        if access.where == "served":
            namespaces = served
        elif access.where == "cluster":
            namespaces = ["*"]
        elif lease is None:
            continue
        else:
            namespaces = [OWN]
        # the Lease by name, but a create, which RBAC cannot limit to a name
        named = lease is not None and access.where == "own" and access.verb != "create"
        names: tuple[str, ...] = (str(lease),) if named else ()
        for namespace in namespaces:
            out.add(Grant(access.group, access.resource, access.verb, namespace, names))
    return out


@pytest.mark.parametrize(
    ("values", "served"),
    [
        ((), ["*"]),  # the whole cluster
        (("operator.namespaces={team-*,!team-x}",), ["*"]),  # patterns: a ClusterRole
        (("operator.namespaces={team-a}", "rbac.scope=cluster"), ["*"]),
        (("operator.namespaces={team-a,team-b}",), ["team-a", "team-b"]),  # auto: Roles
        # one value may hold several names, as `nonstop run -n a,b` takes them
        (("operator.namespaces={team-a\\,team-b,team-c}",), ["team-a", "team-b", "team-c"]),
        (("operator.namespaces={team-a}", "rbac.scope=namespaced"), ["team-a"]),
        (("operator.enabled=false", "operator.namespaces={team-a}"), ["team-a"]),
    ],
)
def test_the_chart_grants_exactly_what_the_operator_uses(
    values: tuple[str, ...], served: list[str]
) -> None:
    got, want = granted(documents(*values)), wanted(served)
    assert not got - want, f"granted and never used: {sorted(got - want)}"
    assert not want - got, f"used and not granted: {sorted(want - got)}"


def test_without_leader_election_no_lease_is_granted() -> None:
    got = granted(documents("operator.leaderElection.enabled=false"))
    assert got == wanted(["*"], lease=None)


def test_the_lease_granted_is_the_one_named() -> None:
    got = granted(documents("operator.leaderElection.leaseName=mine"))
    assert Grant("coordination.k8s.io", "leases", "update", OWN, ("mine",)) in got


def test_namespaced_mode_grants_nothing_cluster_wide() -> None:
    docs = documents("operator.namespaces={team-a,team-b}")
    assert {g for g in granted(docs) if g.namespace == "*"} == set()
    roles = {(d["kind"], d["metadata"].get("namespace")) for d in docs if "Role" in d["kind"]}
    assert ("Role", "team-a") in roles and ("RoleBinding", "team-b") in roles
    assert ("ClusterRoleBinding", None) not in roles


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (("operator.namespaces={team-*}", "rbac.scope=namespaced"), "names, not patterns (team-*)"),
        (("operator.namespaces={a,!kube-*}", "rbac.scope=namespaced"), "(!kube-*)"),
        (("rbac.scope=namespaced",), "list the namespaces to serve in operator.namespaces"),
        (("rbac.scope=everywhere",), "/rbac/scope"),
    ],
)
def test_namespaced_mode_refuses_what_cannot_be_a_role(values: tuple[str, ...], words: str) -> None:
    result = render(*values)
    assert result.returncode != 0 and words in result.stderr, result.stderr


# --- what people get -------------------------------------------------------------------------
def _cluster_role(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == name)


def _verbs(role: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rule in role["rules"]:
        assert rule["apiGroups"] == ["nonstop.dev"]
        for resource in rule["resources"]:
            out.setdefault(resource, set()).update(rule["verbs"])
    return out


AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
READ = {"get", "list", "watch"}
WRITE = {"create", "update", "patch", "delete", "deletecollection"}


def test_view_reads_nonstops_kinds_and_edit_and_admin_write_them() -> None:
    docs = documents()
    viewer = _cluster_role(docs, "nonstop-rollout-viewer")
    assert {k for k in viewer["metadata"]["labels"] if k.startswith(AGGREGATE)} == {
        f"{AGGREGATE}view"
    }
    reads = _verbs(viewer)
    assert all(verbs == READ for verbs in reads.values())
    assert {"rollouts", "rolloutactions", "analysistemplates"} <= set(reads)
    editor = _cluster_role(docs, "nonstop-rollout-editor")
    assert {k for k in editor["metadata"]["labels"] if k.startswith(AGGREGATE)} == {
        f"{AGGREGATE}edit",
        f"{AGGREGATE}admin",
    }
    writes = _verbs(editor)
    for kind in ("rollouts", "rolloutactions", "analysistemplates"):
        assert writes[kind] == READ | WRITE, kind
    assert writes["rollouts/scale"] == {"get", "update", "patch"}  # kubectl scale rollout
    assert not [r for r in writes if r.endswith("/status")]  # status is the operator's


def test_the_aggregated_roles_can_be_left_out() -> None:
    names = {d["metadata"]["name"] for d in documents("rbac.aggregateToDefaultRoles=false")}
    assert "nonstop-rollout-viewer" not in names and "nonstop-rollout-editor" not in names
    assert "nonstop-rollout-operator" in names
