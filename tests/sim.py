"""An in-memory world for planner tests: Deployments, pods that turn ready (or not),
Services and their ready endpoints, an HTTPRoute, and a clock. It plays the Deployment/ReplicaSet/EndpointSlice
controllers just enough to run many reconcile passes without a cluster.

Every pass round-trips the Rollout's status through JSON, as the API server does, so a
test also checks that all progress really lives in status.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from nonstop.api import RolloutStatus
from nonstop.plan import (
    ActionAnswer,
    ActionView,
    CreateDeployment,
    DeleteDeployment,
    DeploymentView,
    EnsureService,
    Observed,
    Plan,
    PodProblem,
    ScaleDeployment,
    ServiceView,
    plan,
)
from nonstop.plan.analysis import fold
from nonstop.plan.model import (
    REVISION_LABEL,
    TEMPLATE_ANNOTATION,
    Measure,
    Reading,
    SetTemplate,
    UpdateConfigMap,
    UpdateRoute,
)
from nonstop.plan.resources import revision_hash
from nonstop.plan.views import rollout_view, service_view

T0 = datetime(2026, 1, 1, tzinfo=UTC)


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
    """never_ready: revisions whose pods never turn ready."""

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

    def observed(self) -> Observed:
        deployments = tuple(
            DeploymentView(
                name=d.name,
                revision=d.revision,
                spec_replicas=d.spec,
                replicas=d.pods,
                ready_replicas=d.ready,
                available_replicas=d.ready,
                created_at=d.created,
                template=d.template,
            )
            for d in self.deps.values()
        )
        current = self.deps.get(
            next((n for n, d in self.deps.items() if d.revision == self.revision), "")
        )
        problems: tuple[PodProblem, ...] = ()
        if current and current.revision in self.never_ready:
            problems = tuple(
                PodProblem(
                    f"{current.name}-{i}",
                    current.revision,
                    "ContainersNotReady",
                    "containers with unready status: [web]",
                    born,
                )
                for i, born in enumerate(current.pod_birth)
            )
        views = {
            n: replace(v, ready=self.endpoints(v) if v.owned else None)
            for n, v in self.services.items()
        }
        main = views.get(self.raw["spec"]["service"]["name"])
        return Observed(
            deployments,
            problems,
            main,
            main.ready if main else None,
            tuple(self.actions),
            services=tuple(v for n, v in views.items() if v is not main),
            route=copy.deepcopy(self.route),
            route_error=None if self.route else "it does not exist",
            restarts=self.restarts,
            config_map=copy.deepcopy(self.config_map),
            config_map_error=None if self.config_map else "it does not exist",
            templates=dict(self.templates),
        )

    def step(self, settle: bool = True) -> Plan:
        """One reconcile pass, then (if settle) the controllers catch up."""
        view = rollout_view(self.raw)
        decision = plan(view, self.observed(), self.now)
        self.history.append(decision)
        self.apply(decision)
        for answer in decision.answers:  # answered actions are no longer pending
            self.answers.append(answer)
            self.actions = [a for a in self.actions if a.name != answer.name]
        readings = [(m, *self.read(m)) for m in decision.actions if isinstance(m, Measure)]
        self.measured.extend(m for m, _, _ in readings)
        folded = fold(decision.status, readings, self.now)
        status = RolloutStatus.model_validate(folded.model_dump(by_alias=True, mode="json"))
        self.raw["status"] = status.model_dump(by_alias=True, mode="json", exclude_none=True)
        self.record()
        if settle:
            self.settle()
        self.record()
        return decision

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

    def apply(self, decision: Plan) -> None:
        for action in decision.actions:
            if isinstance(action, EnsureService):
                self.services[action.body["metadata"]["name"]] = service_view(action.body, "uid-1")
            elif isinstance(action, UpdateRoute):
                assert self.route is not None
                version = int(action.body["metadata"]["resourceVersion"])
                assert version == int(self.route["metadata"]["resourceVersion"]), "stale write"
                self.route = copy.deepcopy(action.body)
                self.route["metadata"]["resourceVersion"] = str(version + 1)
            elif isinstance(action, UpdateConfigMap):
                assert self.config_map is not None
                version = int(action.body["metadata"]["resourceVersion"])
                assert version == int(self.config_map["metadata"]["resourceVersion"]), "stale"
                self.config_map = copy.deepcopy(action.body)
                self.config_map["metadata"]["resourceVersion"] = str(version + 1)
            elif isinstance(action, SetTemplate):
                self.raw["spec"]["template"] = copy.deepcopy(action.template)
                self.raw["metadata"]["generation"] += 1
                self.undone_to.append(action.revision)
            elif isinstance(action, CreateDeployment):
                labels = action.body["metadata"]["labels"]
                self.deps[action.name] = Dep(
                    action.name,
                    labels[REVISION_LABEL],
                    action.body["spec"]["replicas"],
                    created=self.now,
                    template=json.loads(
                        action.body["metadata"]["annotations"][TEMPLATE_ANNOTATION]
                    ),
                )
            elif isinstance(action, ScaleDeployment):
                dep = self.deps[action.name]
                dep.spec = action.replicas
                # the ReplicaSet controller deletes unready pods first
                if dep.pods > dep.spec:
                    dep.pods = dep.spec
                    dep.ready = min(dep.ready, dep.spec)
                    dep.pod_birth = dep.pod_birth[: dep.spec]
            elif isinstance(action, DeleteDeployment):
                del self.deps[action.name]

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
