"""An in-memory world: the real reconcile pass runs against an in-memory API server, and the
World plays the Deployment, ReplicaSet and EndpointSlice controllers and a clock, just enough
to run many passes without a cluster. The tests run the planner in it (tests/sim.py
re-exports it), and so does `kubectl nonstop plan` (nonstop/simulate/plan.py).

Each World.step() is one real `nonstop.reconcile.reconcile` pass over a MemoryKube
(nonstop/simulate/memory_kube.py): observe reads raw Deployments, Pods, Services, EndpointSlices,
RolloutActions, the HTTPRoute, the ConfigMap and AnalysisTemplates; apply writes them (with
its barriers); Events are posted; metrics are answered from World.metrics; the status is
merge-patched as JSON, as the API server stores it, so a test also checks that all progress
really lives in status.

The World's fields (raw, deps, services, route, config_map, actions, templates, restarts,
never_ready) are what a test reads and changes between passes. Before a pass, what a test
changed is written into the MemoryKube (`World.kube`, the cluster as nonstop sees it), with
the Deployments' status and the pods and EndpointSlices the controllers keep; after it, what
nonstop changed is read back. Objects a test puts into `World.kube` directly (a Deployment
someone else made, a Secret) are left alone, and failures can be injected there
(`world.kube.fail_next("replace_route", 409)`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from pydantic import BaseModel

from nonstop.api import RolloutStatus
from nonstop.kube.observe import observe
from nonstop.kube.port import KubePort
from nonstop.plan import (
    ActionAnswer,
    ActionView,
    EventSpec,
    Observed,
    Plan,
    ServiceView,
)
from nonstop.plan.model import (
    REVISION_LABEL,
    ROLLOUT_LABEL,
    TEMPLATE_ANNOTATION,
    Measure,
    Reading,
    SetTemplate,
)
from nonstop.plan.resources import owner_reference, revision_hash, service_ports
from nonstop.plan.views import owned_by, rollout_view, service_view
from nonstop.reconcile import reconcile
from nonstop.simulate.memory_kube import SERVICE_NAME_LABEL, MemoryKube, stamp

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PLAYED = "tests.nonstop.dev/played-by"  # an object the World's controllers keep
SLICE_MANAGER = {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}


def rollout_raw(
    image: str = "web:1",
    replicas: int = 4,
    max_surge: int | str = 1,
    max_unavailable: int | str = 0,
    deadline: int = 60,
    labels: dict[str, str] | None = None,
    paused: bool = False,
    strategy: dict[str, Any] | None = None,
    route: str | None = None,
) -> dict[str, Any]:
    pod_labels = {"app": "web", **(labels or {})}
    return {
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
            "service": {"name": "web", "ports": [{"port": 80}]},
            "progressDeadlineSeconds": deadline,
            "paused": paused,
            "strategy": strategy
            or {"rolling": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}},
            **({"trafficRouting": {"gatewayAPI": {"httpRoute": route}}} if route else {}),
        },
    }


def http_route(name: str = "web", service: str = "web", **extra: Any) -> dict[str, Any]:
    """A user's HTTPRoute to the stable Service, with a filter of the user's own."""
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "filters": [
            {
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": {"set": [{"name": "x-team", "value": "web"}]},
            }
        ],
        "backendRefs": [{"name": service, "port": 80}],
    }
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": "1"},
        "spec": {"parentRefs": [{"name": "gateway"}], "rules": [rule], **extra},
    }


@dataclass
class Dep:
    name: str
    revision: str
    spec: int
    pods: int = 0
    ready: int = 0
    created: datetime = T0
    pod_birth: list[datetime] = field(default_factory=list)
    template: dict[str, Any] | None = None


@dataclass
class World:
    """never_ready: revisions whose pods never turn ready. `kube` is the cluster as nonstop
    sees it; `requeue` what the last pass returned (seconds until the next one)."""

    raw: dict[str, Any]
    now: datetime = T0
    deps: dict[str, Dep] = field(default_factory=dict)
    services: dict[str, ServiceView] = field(default_factory=dict)
    route: dict[str, Any] | None = None
    never_ready: set[str] = field(default_factory=set)
    history: list[Plan] = field(default_factory=list)
    actions: list[ActionView] = field(default_factory=list)  # pending RolloutActions
    answers: list[ActionAnswer] = field(default_factory=list)
    min_ready_seen: int | None = None
    max_pods_seen: int = 0
    undone_to: list[str] = field(default_factory=list)
    restarts: int = 0  # container restarts of the current revision's pods
    config_map: dict[str, Any] | None = None  # the feature toggle's flag document
    # what the metric providers answer, by metric name: a value, samples (a comparison:
    # canary, stable), or an error message
    metrics: dict[str, float | str | tuple[tuple[float, ...], tuple[float, ...]]] = field(
        default_factory=dict
    )
    measured: list[Measure] = field(default_factory=list)
    templates: dict[str, Any] = field(default_factory=dict)
    kube: MemoryKube = field(default_factory=MemoryKube)
    requeue: float | None = None
    # what the World and the kube last agreed on: a test's changes since are written
    synced: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    # the objects the World's controllers keep in the kube (pods, EndpointSlices), as last put
    played: dict[tuple[str, str], dict[str, Any]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        # A new world is a new Rollout: reconcile forgets what it kept of one that is gone.
        reconcile(MemoryKube(), self.namespace, self.name)

    @property
    def name(self) -> str:
        name: str = self.raw["metadata"]["name"]
        return name

    @property
    def namespace(self) -> str:
        namespace: str = self.raw["metadata"].get("namespace", "default")
        return namespace

    @property
    def service(self) -> ServiceView | None:
        return self.services.get(self.raw["spec"]["service"]["name"])

    @service.setter
    def service(self, view: ServiceView) -> None:
        self.services[view.name] = view

    def endpoints(self, view: ServiceView) -> int:
        """Ready pods the Service's selector picks."""
        revision = view.selector.get(REVISION_LABEL)
        return sum(d.ready for d in self.deps.values() if revision in (None, d.revision))

    @property
    def revision(self) -> str:
        return revision_hash(self.raw["spec"]["template"])

    def set_image(self, image: str, **labels: str) -> None:
        template = self.raw["spec"]["template"]
        template["spec"]["containers"][0]["image"] = image
        if labels:
            template["metadata"]["labels"].update(labels)
        self.raw["metadata"]["generation"] += 1

    def ready_total(self) -> int:
        return sum(d.ready for d in self.deps.values())

    def available(self, name: str) -> int:
        """The Deployment's available pods, as its controller reports them."""
        return self.deps[name].ready

    def observed(self) -> Observed:
        """What the real observe() reads from the cluster now (the test's changes written)."""
        self.write()
        return observe(self.kube, rollout_view(self.raw))

    def step(self, settle: bool = True) -> Plan:
        """One real reconcile pass, then (if settle) the controllers catch up."""
        self.write()
        posted, done = len(self.kube.events), len(self.kube.writes)
        plans: list[Plan] = []
        try:
            self.requeue = reconcile(
                self.kube,
                self.namespace,
                self.name,
                now=self.now,
                read=self._reading,
                on_plan=plans.append,
            )
        finally:
            if plans:  # the Events as reconcile posted them, in order
                events = tuple(
                    EventSpec(
                        cast(Literal["Normal", "Warning"], e["type"]), e["reason"], e["message"]
                    )
                    for e in self.kube.events[posted:]
                )
                self.history.append(replace(plans[0], events=events))
                self.read_back(plans[0], self.kube.writes[done:])
        if not plans:
            raise AssertionError(f"Rollout {self.name} is gone: no pass was made")
        decision = self.history[-1]
        self.record()
        if settle:
            self.settle()
        self.record()
        return decision

    def _reading(
        self, kube: KubePort, namespace: str, measure: Measure
    ) -> tuple[Reading, Reading | None]:
        self.measured.append(measure)
        return self.read(measure)

    def read(self, measure: Measure) -> tuple[Reading, Reading | None]:
        answer = self.metrics.get(measure.metric.name, 0.0)
        if isinstance(answer, str):
            return Reading(error=answer), Reading(
                error=answer
            ) if measure.stable_variables else None
        if isinstance(answer, tuple):
            canary, stable = answer
            return Reading(canary[0], canary), Reading(stable[0], stable)
        return Reading(answer, (answer,)), None

    # --- the World <-> the cluster ---------------------------------------------------
    def write(self) -> None:
        """Write what a test changed since the last pass into the kube, and what the
        controllers keep (the Deployments' status, pods, EndpointSlices) from the World."""
        kube, ns, seen = self.kube, self.namespace, self.synced
        kube.now = self.now
        if self.raw != seen.get("raw"):
            kube.put("Rollout", self.raw)
        owner = owner_reference(rollout_view(self.raw).meta)
        spec_seen: dict[str, int] = seen.get("deps", {})
        pods: dict[tuple[str, str], dict[str, Any]] = {}
        for name, dep in self.deps.items():
            body = kube.objects["Deployment"].get((ns, name))
            if body is None:  # a Dep a test put into World.deps by hand
                kube.store("Deployment", self._deployment(dep, owner))
                body = kube.objects["Deployment"][(ns, name)]
            meta = body["metadata"]
            if spec_seen.get(name) != dep.spec and body["spec"].get("replicas") != dep.spec:
                body["spec"]["replicas"] = dep.spec
                meta["generation"] = meta.get("generation", 1) + 1
            status = {
                "observedGeneration": meta.get("generation", 1),
                "replicas": dep.pods,
                "updatedReplicas": dep.pods,
                "readyReplicas": dep.ready,
                "availableReplicas": self.available(name),
            }
            if body.get("status") != status:
                body["status"] = status
                meta["resourceVersion"] = kube.next_version()
            labels = (body["spec"].get("template") or {}).get("metadata", {}).get("labels")
            pods.update(self._pods(dep, labels or meta.get("labels") or {}))
        for name in spec_seen.keys() - self.deps.keys():
            kube.remove("Deployment", ns, name)
        self._play("Pod", pods)
        seen_services: dict[str, ServiceView] = seen.get("services", {})
        for name, view in self.services.items():
            if seen_services.get(name) != view:
                kube.put("Service", self._service(view, owner))
        for name in seen_services.keys() - self.services.keys():
            kube.remove("Service", ns, name)
        self._write_slices(pods)
        self._write_one("HTTPRoute", "route", self.route)
        self._write_one("ConfigMap", "config_map", self.config_map)
        self._write_actions()
        seen_templates: dict[str, Any] = seen.get("templates", {})
        templates = {name: _json(spec) for name, spec in self.templates.items()}
        for name, spec in templates.items():
            if seen_templates.get(name) != spec:
                kube.put(
                    "AnalysisTemplate", {"metadata": {"name": name, "namespace": ns}, "spec": spec}
                )
        for name in seen_templates.keys() - templates.keys():
            kube.remove("AnalysisTemplate", ns, name)
        self._agree()

    def _deployment(self, dep: Dep, owner: dict[str, Any]) -> dict[str, Any]:
        """A Deployment a test put into World.deps by hand, as nonstop would have made it."""
        own = {ROLLOUT_LABEL: self.name, REVISION_LABEL: dep.revision}
        annotations = {TEMPLATE_ANNOTATION: json.dumps(dep.template)} if dep.template else {}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": dep.name,
                "namespace": self.namespace,
                "labels": own,
                "annotations": annotations,
                "ownerReferences": [owner],
                "creationTimestamp": stamp(dep.created),
            },
            "spec": {
                "replicas": dep.spec,
                "selector": {"matchLabels": own},
                "template": {"metadata": {"labels": own}},
            },
        }

    def _pods(self, dep: Dep, labels: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
        """The pods of a Deployment as the World counts them: the first `ready` are ready."""
        pods = {}
        for i in range(dep.pods):
            name = f"{dep.name}-{i}"
            born = dep.pod_birth[i] if i < len(dep.pod_birth) else self.now
            restarts = self.restarts if i == 0 and dep.revision == self.revision else 0
            pods[("Pod", name)] = _pod(name, self.namespace, labels, born, i < dep.ready, restarts)
        return pods

    def _play(self, kind: str, bodies: dict[tuple[str, str], dict[str, Any]]) -> None:
        """Make the kube's objects of `kind` that the World's controllers keep these."""
        ns = self.namespace
        for key in [k for k in self.played if k[0] == kind and k not in bodies]:
            self.kube.remove(kind, ns, key[1])
            del self.played[key]
        for key, body in bodies.items():
            if self.played.get(key) != body or self.kube.objects[kind].get((ns, key[1])) is None:
                self.kube.put(kind, body)
                self.played[key] = body

    def _service(self, view: ServiceView, owner: dict[str, Any]) -> dict[str, Any]:
        """A Service as a test set it in World.services (kept as nonstop wrote it otherwise)."""
        body = self.kube.get("Service", self.namespace, view.name) or {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": view.name, "namespace": self.namespace},
        }
        if view.owned:
            body["metadata"]["ownerReferences"] = [owner]
        else:
            body["metadata"].pop("ownerReferences", None)
        body["spec"] = {
            **body.get("spec", {}),
            "type": view.type,
            "selector": dict(view.selector),
            "ports": service_ports(view),
        }
        return body

    def _write_slices(self, pods: dict[tuple[str, str], dict[str, Any]]) -> None:
        """The EndpointSlice controller: each Service lists the pods its selector picks."""
        ns = self.namespace
        slices = {}
        for service in self.kube.stored("Service", ns):
            selector = service.get("spec", {}).get("selector")
            if not selector:
                continue
            name = service["metadata"]["name"]
            endpoints = [
                {
                    "addresses": [f"10.0.0.{i}"],
                    "conditions": {"ready": _ready(pod)},
                    "targetRef": {
                        "kind": "Pod",
                        "name": pod["metadata"]["name"],
                        "uid": pod["metadata"]["uid"],
                    },
                }
                for i, pod in enumerate(pods.values())
                if selector.items() <= (pod["metadata"].get("labels") or {}).items()
            ]
            slices[("EndpointSlice", f"{name}-sim")] = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-sim",
                    "namespace": ns,
                    "labels": {SERVICE_NAME_LABEL: name, **SLICE_MANAGER},
                },
                "addressType": "IPv4",
                "endpoints": endpoints,
            }
        self._play("EndpointSlice", slices)

    def _write_one(self, kind: str, field_name: str, obj: dict[str, Any] | None) -> None:
        """The route or the flag ConfigMap, when a test changed it (or put it there)."""
        if obj == self.synced.get(field_name):
            return
        before = self.synced.get(f"{field_name}_key")
        if before is not None and (obj is None or self._key(obj) != before):
            self.kube.remove(kind, *before)
        if obj is not None:
            self.kube.put(kind, obj)

    def _key(self, obj: dict[str, Any]) -> tuple[str, str]:
        meta = obj["metadata"]
        return (meta.get("namespace") or self.namespace, meta["name"])

    def _route_key(self) -> tuple[str, str] | None:
        if self.route is not None:
            return self._key(self.route)
        gateway = (self.raw["spec"].get("trafficRouting") or {}).get("gatewayAPI") or {}
        if "httpRoute" not in gateway:
            return self.synced.get("route_key")
        return (gateway.get("namespace") or self.namespace, gateway["httpRoute"])

    def _config_map_key(self) -> tuple[str, str] | None:
        if self.config_map is not None:
            return self._key(self.config_map)
        toggle = (self.raw["spec"].get("strategy") or {}).get("featureToggle") or {}
        name = (toggle.get("flag") or {}).get("configMap")
        return (self.namespace, name) if name else self.synced.get("config_map_key")

    def _write_actions(self) -> None:
        """RolloutActions a test requested (again: an answer that was lost) or took back."""
        kube, ns = self.kube, self.namespace
        seen: list[ActionView] = self.synced.get("actions", [])
        for action in self.actions:
            if action not in seen:
                kube.remove("RolloutAction", ns, action.name)
                kube.put(
                    "RolloutAction",
                    {
                        "apiVersion": "nonstop.dev/v1alpha1",
                        "kind": "RolloutAction",
                        "metadata": {
                            "name": action.name,
                            "namespace": ns,
                            "uid": action.uid,
                            "creationTimestamp": stamp(action.created_at),
                        },
                        "spec": {
                            "rollout": self.name,
                            "action": action.action,
                            "reason": action.reason,
                        },
                    },
                )
        for action in seen:
            found = kube.get("RolloutAction", ns, action.name)
            if action not in self.actions and found and not found.get("status"):
                kube.remove("RolloutAction", ns, action.name)

    def read_back(self, decision: Plan, writes: list[tuple[str, str]]) -> None:
        """What the pass changed in the cluster, into the World's fields."""
        kube, ns = self.kube, self.namespace
        rollout = kube.get("Rollout", ns, self.name)
        assert rollout is not None
        if "status" in rollout:
            self.raw["status"] = rollout["status"]
        if rollout["spec"].get("template") != self.raw["spec"].get("template"):
            self.raw["spec"]["template"] = rollout["spec"]["template"]
        self.raw["metadata"]["generation"] = rollout["metadata"].get("generation", 1)
        if ("set_rollout_template", self.name) in writes:
            self.undone_to.extend(
                a.revision for a in decision.actions if isinstance(a, SetTemplate)
            )
        deps = {}
        uid = self.raw["metadata"].get("uid", "")
        for body in kube.items("Deployment", ns, f"{ROLLOUT_LABEL}={self.name}"):
            if not owned_by(body, uid):
                continue
            meta = body["metadata"]
            replicas = int(body["spec"].get("replicas", 1))
            dep = self.deps.get(meta["name"])
            if dep is None:
                template = (meta.get("annotations") or {}).get(TEMPLATE_ANNOTATION)
                dep = Dep(
                    meta["name"],
                    meta["labels"][REVISION_LABEL],
                    replicas,
                    created=self.now,
                    template=json.loads(template) if template else None,
                )
            dep.spec = replicas
            if dep.pods > dep.spec:  # the ReplicaSet controller deletes unready pods first
                dep.pods = dep.spec
                dep.ready = min(dep.ready, dep.spec)
                dep.pod_birth = dep.pod_birth[: dep.spec]
            deps[dep.name] = dep
        self.deps.clear()
        self.deps.update(deps)
        views = {s["metadata"]["name"]: service_view(s, uid) for s in kube.items("Service", ns)}
        self.services.clear()
        self.services.update(views)
        route_key, config_map_key = self._route_key(), self._config_map_key()
        self.route = kube.get("HTTPRoute", *route_key) if route_key else None
        self.config_map = kube.get("ConfigMap", *config_map_key) if config_map_key else None
        answered = {name for method, name in writes if method == "answer_action"}
        for answer in decision.answers:  # answered actions are no longer pending
            if answer.name in answered:
                self.answers.append(answer)
                self.actions = [a for a in self.actions if a.name != answer.name]
        self._agree()

    def _agree(self) -> None:
        """The World and the kube agree now: later changes of a test are written next."""
        self.synced = {
            "raw": copy.deepcopy(self.raw),
            "deps": {name: dep.spec for name, dep in self.deps.items()},
            "services": copy.deepcopy(self.services),
            "route": copy.deepcopy(self.route),
            "route_key": self._key(self.route) if self.route else self._route_key(),
            "config_map": copy.deepcopy(self.config_map),
            "config_map_key": (
                self._key(self.config_map) if self.config_map else self._config_map_key()
            ),
            "actions": list(self.actions),
            "templates": {name: _json(spec) for name, spec in self.templates.items()},
        }

    # --- the controllers -------------------------------------------------------------
    def settle(self) -> None:
        for dep in self.deps.values():
            while dep.pods < dep.spec:
                dep.pods += 1
                dep.pod_birth.append(self.now)
            dep.ready = 0 if dep.revision in self.never_ready else dep.pods

    def record(self) -> None:
        total = sum(d.pods for d in self.deps.values())
        self.max_pods_seen = max(self.max_pods_seen, total)
        if self.service is not None and self.history and any(d.ready for d in self.deps.values()):
            ready = self.ready_total()
            self.min_ready_seen = (
                ready if self.min_ready_seen is None else min(self.min_ready_seen, ready)
            )

    def request(self, action: str, reason: str = "") -> str:
        name = f"web-{action.lower()}-{len(self.answers) + len(self.actions)}"
        self.actions.append(ActionView(name, f"uid-{name}", action, reason, self.now))
        return name

    def answer(self, name: str) -> ActionAnswer:
        return next(a for a in self.answers if a.name == name)

    def run(self, passes: int, seconds: float = 2.0) -> None:
        for _ in range(passes):
            self.step()
            self.now += timedelta(seconds=seconds)

    def run_until(self, phase: str, limit: int = 200, seconds: float = 2.0) -> Plan:
        for _ in range(limit):
            decision = self.step()
            self.now += timedelta(seconds=seconds)
            if decision.status.phase == phase:
                return decision
        raise AssertionError(f"never reached {phase}; last: {self.history[-1].status.message}")

    @property
    def status(self) -> RolloutStatus:
        return RolloutStatus.model_validate(self.raw.get("status", {}))

    def replicas_by_revision(self) -> dict[str, int]:
        return {d.revision: d.spec for d in self.deps.values()}


def _json(spec: Any) -> Any:
    """An AnalysisTemplate's spec as JSON (a test may give the model or the dict)."""
    if isinstance(spec, BaseModel):
        return spec.model_dump(by_alias=True, mode="json", exclude_none=True)
    return copy.deepcopy(spec)


def _pod(
    name: str, namespace: str, labels: dict[str, str], born: datetime, ready: bool, restarts: int
) -> dict[str, Any]:
    """A running pod; one that is not ready says so as the kubelet does."""
    condition: dict[str, Any] = {"type": "Ready", "status": "True" if ready else "False"}
    if not ready:
        condition["reason"] = "ContainersNotReady"
        condition["message"] = "containers with unready status: [web]"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "labels": dict(labels),
            "annotations": {PLAYED: "World"},
            "creationTimestamp": stamp(born),
        },
        "status": {
            "phase": "Running",
            "conditions": [condition],
            "containerStatuses": [
                {
                    "name": "web",
                    "ready": ready,
                    "restartCount": restarts,
                    "state": {"running": {"startedAt": stamp(born)}},
                }
            ],
        },
    }


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )
