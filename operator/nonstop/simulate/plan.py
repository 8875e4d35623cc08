"""The plan of a Rollout: what each step of a release does, drawn from the real planner.

Nothing here computes a replica count, a weight or a wait: the Rollout is carried out by
the real reconcile pass (nonstop.reconcile, the planner and apply) over a simulated
cluster (world.py: an in-memory API server, the Deployment and EndpointSlice controllers,
a clock), and this module only watches and writes down what happens:

1. the Rollout is created with its template and rolled out until its first revision is
   Healthy (revision "stable");
2. the template changes (a new image: revision "new"), and passes run. Pods are ready as
   soon as they exist; each analysis measurement answers a value that passes (the first
   that the metric's own conditions call Successful); the clock jumps to the next pass
   the planner asks for when a pass changed nothing (a pause, a measurement interval, a
   scale-down delay) and stands still otherwise, so the time a step takes is the least
   it can take;
3. a pause without a duration, or a blue-green promotion without autoPromotion, is
   answered with a promote RolloutAction, and the step is marked as needing a person;
4. the release is followed until the new revision is stable and the old one has no pods;
5. for each step, a copy of the release as it stood at the end of that step (before the
   release was over) is aborted with an abort RolloutAction and followed until it settles:
   where traffic goes and when, and when the new revision's pods are gone.

A step is what status.currentStepIndex names (a canary step, a blue-green stage); a
rolling update is one step; what follows the last step (the new revision taking all
traffic, the old one scaled away) is the step "complete".
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from nonstop.analysis.verdict import judge
from nonstop.api import RolloutSpec
from nonstop.api.spec import (
    CANARY_SUFFIX,
    AnalysisTemplateSpec,
    BlueGreenStrategy,
    CanaryStep,
    Metric,
    ToggleStep,
)
from nonstop.plan.analysis import analyses_of, policy
from nonstop.plan.model import REVISION_LABEL, Measure, Plan, Reading
from nonstop.plan.outcome import AT_ONCE
from nonstop.simulate.world import T0, World
from nonstop.traffic import read_flag, read_mirror_percent, read_weights

STABLE, NEW = "stable", "new"
MAX_PASSES = 2000
MAX_SECONDS = 30 * 24 * 3600.0  # a release that has not ended in 30 simulated days never will
SETTLE_PASSES = 400
HEADER_RULE = "nonstop-header-"


class PlanError(Exception):
    """The Rollout cannot be planned (it is invalid, or it never ends by itself)."""


# --- what is written down ------------------------------------------------------------------


@dataclass
class Snapshot:
    """The cluster after one pass (and the controllers catching up)."""

    number: int  # the pass, from the template change on
    seconds: float  # since the template changed
    index: int | None  # status.currentStepIndex
    phase: str
    message: str
    pods: dict[str, int]  # role -> pods (Deployment replicas)
    traffic: dict[str, float]  # role -> share (%) of the Service's traffic
    header_routes: tuple[str, ...]  # header routes to the new revision
    mirror: float  # share (%) of requests mirrored to the new revision
    flag: float | None  # featureToggle: share (%) of users on the new variant
    stable_revision: str | None

    @property
    def total(self) -> int:
        return sum(self.pods.values())


@dataclass
class AbortPlan:
    """What an abort at the end of a step does, as the replayed release showed it."""

    answer: str  # the RolloutAction's answer: Applied/Rejected and its message
    traffic: dict[str, float]  # right after the abort's first pass
    traffic_to_stable_seconds: float | None  # until the new revision has no traffic
    pods_gone_seconds: float | None  # until the new revision has no pods
    pods: dict[str, int]  # once settled
    phase: str
    message: str
    peak_pods: int
    flag_off_seconds: float | None = None  # featureToggle: until the flag gives 0%

    def summary(self) -> str:
        if not self.answer.startswith("Applied"):
            return self.answer
        parts = []
        if self.flag_off_seconds is not None:
            parts.append(f"flag to 0% {_when(self.flag_off_seconds)}")
        elif self.traffic_to_stable_seconds is not None:
            parts.append(f"all traffic to stable {_when(self.traffic_to_stable_seconds)}")
        if self.pods_gone_seconds is not None:
            parts.append(f"new scaled to 0 {_when(self.pods_gone_seconds)}")
        parts.append(f"then {_pods_text(self.pods)} ({self.phase})")
        return "; ".join(parts)


@dataclass
class StepPlan:
    index: int | None  # status.currentStepIndex (None: rolling, or the end)
    name: str
    pods: dict[str, int]  # at the end of the step
    traffic: dict[str, float]
    header_routes: tuple[str, ...]
    mirror: float
    flag: float | None
    peak_pods: int
    peak_multiple: float
    min_seconds: float
    needs_person: str | None
    abort: AbortPlan | None
    first_pass: int = 0
    last_pass: int = 0


@dataclass
class RolloutPlan:
    name: str
    namespace: str
    strategy: str
    replicas: int
    revisions: dict[str, str]  # role -> revision hash
    steps: list[StepPlan] = field(default_factory=list)

    @property
    def min_seconds(self) -> float:
        return sum(s.min_seconds for s in self.steps)

    @property
    def peak_pods(self) -> int:
        return max((s.peak_pods for s in self.steps), default=0)

    @property
    def people(self) -> int:
        return sum(1 for s in self.steps if s.needs_person)

    def as_json(self) -> dict[str, Any]:
        return {
            "rollout": self.name,
            "namespace": self.namespace,
            "strategy": self.strategy,
            "replicas": self.replicas,
            "revisions": self.revisions,
            "minSeconds": round(self.min_seconds, 1),
            "peakPods": self.peak_pods,
            "peakMultiple": _multiple(self.peak_pods, self.replicas),
            "needsPerson": self.people,
            "steps": [
                {
                    "index": s.index,
                    "step": s.name,
                    "pods": s.pods,
                    "traffic": s.traffic,
                    "headerRoutes": list(s.header_routes),
                    "mirror": s.mirror,
                    **({"flag": s.flag} if s.flag is not None else {}),
                    "peakPods": s.peak_pods,
                    "peakMultiple": s.peak_multiple,
                    "minSeconds": round(s.min_seconds, 1),
                    "needsPerson": s.needs_person,
                    "abort": None
                    if s.abort is None
                    else {
                        "answer": s.abort.answer,
                        "traffic": s.abort.traffic,
                        "trafficToStableSeconds": _round(s.abort.traffic_to_stable_seconds),
                        "podsGoneSeconds": _round(s.abort.pods_gone_seconds),
                        "pods": s.abort.pods,
                        "phase": s.abort.phase,
                        "message": s.abort.message,
                        "peakPods": s.abort.peak_pods,
                        "summary": s.abort.summary(),
                    },
                }
                for s in self.steps
            ],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _multiple(pods: int, replicas: int) -> float:
    return round(pods / replicas, 2) if replicas else 0.0


def _when(seconds: float) -> str:
    return "at once" if seconds < 1 else f"after {duration_text(seconds)}"


def duration_text(seconds: float) -> str:
    """90 -> 1m30s; 0 -> 0s."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


def _pods_text(pods: Mapping[str, int]) -> str:
    return " + ".join(f"{n} {role}" for role, n in pods.items())


# --- the simulated release -----------------------------------------------------------------


@contextmanager
def quiet() -> Iterator[None]:
    """The reconcile pass logs every action; a plan is not a log. Restored after."""
    saved = structlog.get_config()

    def drop(*_: Any) -> Any:
        raise structlog.DropEvent

    structlog.configure(processors=[drop], cache_logger_on_first_use=False)
    try:
        yield
    finally:
        structlog.configure(**saved)


def passing_value(metric: Metric) -> float:
    """A result the metric's own conditions call Successful (the simulated provider)."""
    rules = policy(metric)
    numbers = [
        float(n)
        for n in re.findall(
            r"\d+(?:\.\d+)?", " ".join(filter(None, (rules.success, rules.failure)))
        )
    ]
    candidates = [0.0, 1.0, 0.5, 100.0, -1.0]
    for n in numbers:
        candidates += [n, n / 2, n * 2, n + 1, n - 1, n + 0.001, n - 0.001]
    for value in candidates:
        if judge(rules, value, T0).phase == "Successful":
            return value
    raise PlanError(
        f"metric {metric.name}: no result found that passes its conditions; the plan assumes"
        " every analysis passes"
    )


class PlanWorld(World):
    """A World whose metric providers answer a passing value (a comparison: the same
    samples for both revisions, so the canary is not worse)."""

    def read(self, measure: Measure) -> tuple[Reading, Reading | None]:
        metric = measure.metric
        if metric.compare is not None:
            samples = (1.0,) * metric.compare.min_samples
            return Reading(1.0, samples), Reading(1.0, samples)
        value = passing_value(metric)
        return Reading(value, (value,)), None

    def step(self, settle: bool = True) -> Plan:
        """A pass, forgetting what only tests read (the plans, Events, calls): a release of
        thousands of passes stays as small as its cluster."""
        decision = super().step(settle)
        del self.history[:-1]
        self.measured.clear()
        self.kube.calls.clear()
        self.kube.events.clear()
        self.kube.objects["Event"].clear()
        return decision


@dataclass(frozen=True)
class Inputs:
    """A Rollout and what it needs from the cluster (given in the files, or made up)."""

    rollout: dict[str, Any]
    templates: Mapping[str, Any] = field(default_factory=dict)  # name -> AnalysisTemplate spec
    route: dict[str, Any] | None = None
    config_map: dict[str, Any] | None = None
    image: str | None = None  # the new revision's image (first container); default: <image>-next


def _world(inputs: Inputs) -> tuple[PlanWorld, RolloutSpec]:
    meta = inputs.rollout.get("metadata") or {}
    raw = {
        "metadata": {
            "name": meta.get("name", "rollout"),
            "namespace": meta.get("namespace") or "default",
            "uid": "uid-plan",
            "generation": 1,
        },
        "spec": copy.deepcopy(inputs.rollout.get("spec") or {}),
    }
    spec = RolloutSpec.model_validate(raw["spec"])
    world = PlanWorld(raw)
    world.templates = {name: copy.deepcopy(t) for name, t in inputs.templates.items()}
    namespace = raw["metadata"]["namespace"]
    if spec.traffic_routing is not None:
        route = inputs.route or made_up_route(spec, namespace)
        world.route = copy.deepcopy(route)
        world.route.setdefault("metadata", {}).setdefault("resourceVersion", "1")
        world.route["metadata"].setdefault("namespace", namespace)
    toggle = spec.strategy.feature_toggle
    if toggle is not None:
        world.config_map = copy.deepcopy(inputs.config_map or made_up_flags(spec, namespace))
        world.config_map.setdefault("metadata", {}).setdefault("resourceVersion", "1")
        world.config_map["metadata"].setdefault("namespace", namespace)
    return world, spec


def made_up_route(spec: RolloutSpec, namespace: str) -> dict[str, Any]:
    """The HTTPRoute of spec.trafficRouting when the files do not give it: one rule to the
    stable Service."""
    assert spec.traffic_routing is not None
    gateway = spec.traffic_routing.gateway_api
    port = spec.service.ports[0].port
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": gateway.http_route, "namespace": gateway.namespace or namespace},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"name": spec.service.name, "port": port}],
                }
            ],
        },
    }


def made_up_flags(spec: RolloutSpec, namespace: str) -> dict[str, Any]:
    """The flagd document of a featureToggle when the files do not give it."""
    toggle = spec.strategy.feature_toggle
    assert toggle is not None
    flag = toggle.flag
    default = "off" if flag.variant != "off" else "default"
    document = {
        "flags": {
            flag.key: {
                "state": "ENABLED",
                "variants": {default: False, flag.variant: True},
                "defaultVariant": default,
            }
        }
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": flag.config_map, "namespace": namespace},
        "data": {flag.file: json.dumps(document, indent=2)},
    }


def _new_image(template: dict[str, Any], image: str | None) -> None:
    """The release: a new image in the first container (given, or the tag made -next)."""
    container = template["spec"]["containers"][0]
    old = str(container["image"])
    if image is None:
        image = f"{old}-next" if ":" in old.rsplit("/", 1)[-1] else f"{old}:next"
    if image == old:
        raise PlanError(f"the new image is the image of the template ({old}): no release")
    container["image"] = image


class Release:
    """One simulated release: the first revision made stable, the template changed, passes."""

    def __init__(self, inputs: Inputs) -> None:
        self.world, self.spec = _world(inputs)
        self.roles: dict[str, str] = {}
        self.started = self.world.now
        self.passes = 0
        self.snapshots: list[Snapshot] = []
        self.people: dict[int, str] = {}  # pass number -> why a person was needed
        self._first_revision()
        self.roles = {self.world.revision: STABLE}
        template = self.world.raw["spec"]["template"]
        _new_image(template, inputs.image)
        self.world.raw["metadata"]["generation"] += 1
        self.roles[self.world.revision] = NEW
        self.started = self.world.now
        self.passes = 0
        self.snapshots.clear()
        self.people.clear()

    def revision(self, role: str) -> str:
        return next(r for r, name in self.roles.items() if name == role)

    def _first_revision(self) -> None:
        """The Rollout created: its first revision as the strategy makes it stable (a
        feature toggle goes through its steps already)."""
        for _ in range(SETTLE_PASSES):
            snap, changed = self.step()
            status = self.world.status
            if status.phase == "Healthy" and status.stable_revision == self.world.revision:
                return
            self.next_pass(snap, changed)
        raise PlanError(f"the first revision never became Healthy: {self.world.status.message}")

    def _advance(self, changed: bool) -> None:
        requeue = self.world.requeue
        if not changed and requeue is not None and requeue > AT_ONCE:
            self.world.now += timedelta(seconds=requeue)

    def step(self) -> tuple[Snapshot, bool]:
        """One pass, and the controllers catching up: the snapshot, and whether anything
        changed (a write, a pod)."""
        world = self.world
        world.kube.writes.clear()
        pods = self._pods_state()
        world.step()
        self.passes += 1
        snap = self.snapshot()
        self.snapshots.append(snap)
        changed = bool(world.kube.writes) or self._pods_state() != pods
        if (world.now - self.started).total_seconds() > MAX_SECONDS or self.passes > MAX_PASSES:
            raise PlanError(f"the release does not end by itself: {snap.message}")
        return snap, changed

    def next_pass(self, snap: Snapshot, changed: bool) -> None:
        """Promote where only a person would go on; then the clock moves to the next pass."""
        person = self._needs_person(snap)
        if person is not None:
            self.people[snap.number] = person
            self.world.request("promote", "kubectl nonstop plan: a person promotes")
        self._advance(changed=changed or person is not None)

    def _pods_state(self) -> list[tuple[str, int, int]]:
        return sorted((d.name, d.pods, d.ready) for d in self.world.deps.values())

    def _needs_person(self, snap: Snapshot) -> str | None:
        """Paused where only a promote goes on: an indefinite pause, a blue-green switch
        without autoPromotion."""
        if snap.phase != "Paused" or snap.index is None:
            return None
        paused = self.world.status.condition("Paused")
        if paused is None or paused.reason != "StepPaused":
            return None
        strategy = self.spec.strategy
        shadow = strategy.shadow
        blue_green = strategy.blue_green or (shadow.then.blue_green if shadow else None)
        steps = _steps(self.spec)
        if steps is not None and snap.index < len(steps):
            step = steps[snap.index]
            if step.pause is not None and step.pause.duration is None:
                return "indefinite pause: kubectl nonstop promote"
        if blue_green is not None and blue_green.auto_promotion is None and snap.index == 1:
            return "switch: kubectl nonstop promote (no autoPromotion)"
        return None

    def done(self) -> bool:
        snap = self.snapshots[-1]
        return (
            snap.stable_revision == self.revision(NEW)
            and snap.phase == "Healthy"
            and snap.pods.get(STABLE, 0) == 0
        )

    def snapshot(self) -> Snapshot:
        world = self.world
        status = world.status
        pods = {role: 0 for role in (STABLE, NEW)}
        for dep in world.deps.values():
            role = self.roles.get(dep.revision)
            if role is not None:
                pods[role] += dep.pods
        traffic, headers, mirror = self._traffic()
        flag = None
        if self.spec.strategy.feature_toggle is not None and world.config_map is not None:
            toggle = self.spec.strategy.feature_toggle.flag
            document = world.config_map["data"][toggle.file]
            flag = read_flag(document, toggle.key, toggle.variant).weight
        return Snapshot(
            number=self.passes,
            seconds=(world.now - self.started).total_seconds(),
            index=status.current_step_index,
            phase=status.phase or "",
            message=status.message or "",
            pods=pods,
            traffic=traffic,
            header_routes=headers,
            mirror=mirror,
            flag=flag,
            stable_revision=status.stable_revision,
        )

    def _service_split(self, name: str) -> dict[str, float]:
        """Shares (0..1) of a Service's ready endpoints by role."""
        view = self.world.services.get(name)
        if view is None:
            return {}
        revision = view.selector.get(REVISION_LABEL)
        ready = {
            self.roles.get(d.revision, "other"): 0
            for d in self.world.deps.values()
            if revision in (None, d.revision)
        }
        for dep in self.world.deps.values():
            if revision in (None, dep.revision):
                ready[self.roles.get(dep.revision, "other")] += dep.ready
        total = sum(ready.values())
        return {role: n / total for role, n in ready.items() if n} if total else {}

    def _traffic(self) -> tuple[dict[str, float], tuple[str, ...], float]:
        """Where live requests go, from the route's weights and the Services' selectors."""
        spec, world = self.spec, self.world
        stable_service = spec.service.name
        canary = spec.strategy.canary or (
            spec.strategy.shadow.then.canary if spec.strategy.shadow else None
        )
        canary_service = (
            canary.canary_service
            if canary is not None and canary.canary_service
            else stable_service + CANARY_SUFFIX
        )
        slots: dict[str, float] = {stable_service: 100.0}
        headers: tuple[str, ...] = ()
        mirror = 0.0
        if world.route is not None:
            weights = read_weights(world.route, stable_service, canary_service)
            if weights is not None:
                slots = {stable_service: weights[0], canary_service: weights[1]}
            rules = (world.route.get("spec") or {}).get("rules") or []
            headers = tuple(
                sorted(
                    {
                        str(r.get("name"))[len(HEADER_RULE) :].rsplit("-", 1)[0]
                        for r in rules
                        if str(r.get("name") or "").startswith(HEADER_RULE)
                    }
                )
            )
            shadow = spec.strategy.shadow
            shadow_service = (
                shadow.then.blue_green.preview_service
                if shadow is not None and shadow.then.blue_green is not None
                else canary_service
            )
            mirror = read_mirror_percent(world.route, shadow_service)
        traffic = {STABLE: 0.0, NEW: 0.0}
        for service, percent in slots.items():
            for role, share in self._service_split(service).items():
                if role in traffic:
                    traffic[role] += percent * share
        return {role: round(v, 2) for role, v in traffic.items()}, headers, mirror


def _steps(spec: RolloutSpec) -> Sequence[CanaryStep | ToggleStep] | None:
    strategy = spec.strategy
    shadow = strategy.shadow
    canary = strategy.canary or (shadow.then.canary if shadow else None)
    if canary is not None:
        return canary.steps
    if strategy.feature_toggle is not None:
        return strategy.feature_toggle.steps
    return None


def step_name(spec: RolloutSpec, index: int | None, first: bool = False) -> str:
    """A step as a person reads it in the spec (`first`: the release's first step)."""
    strategy = spec.strategy
    if strategy.rolling is not None:
        rolling = strategy.rolling
        return (
            f"rolling update (maxSurge {rolling.max_surge},"
            f" maxUnavailable {rolling.max_unavailable})"
        )
    shadow = strategy.shadow
    blue_green = strategy.blue_green or (shadow.then.blue_green if shadow else None)
    steps = _steps(spec)
    if index is None and first and shadow is not None:
        methods = ", ".join(shadow.mirror.methods)
        return f"shadow: mirror {shadow.mirror.percent}% of {methods} to new for {shadow.duration}"
    if index is None and first and strategy.feature_toggle is not None:
        return "deploy new dark (flag unchanged)"
    if index is None:
        return "complete"
    if steps is not None:
        if index >= len(steps):
            return "complete: all traffic to new, stable scaled to 0"
        return _describe(steps[index])
    if blue_green is not None:
        return _stage(blue_green, spec.service.name, index)
    return f"step {index}"


def _describe(step: CanaryStep | ToggleStep) -> str:
    if step.set_weight is not None:
        return f"setWeight {step.set_weight:g}%"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause (until promoted)"
    assert isinstance(step, CanaryStep)
    if step.set_canary_scale is not None:
        scale = step.set_canary_scale
        if scale.replicas is not None:
            return f"setCanaryScale {scale.replicas} pods"
        if scale.percent is not None:
            return f"setCanaryScale {scale.percent}%"
        return "setCanaryScale matchTrafficWeight"
    if step.set_header_route is not None:
        return f"setHeaderRoute {step.set_header_route.name}"
    analysis = step.analysis
    assert analysis is not None
    names = [t.name for t in analysis.templates or []] + [m.name for m in analysis.metrics or []]
    return f"analysis ({', '.join(names)})"


def _stage(blue_green: BlueGreenStrategy, service: str, index: int) -> str:
    if index == 0:
        return f"bring up new behind {blue_green.preview_service}"
    if index == 1:
        auto = blue_green.auto_promotion
        when = f"autoPromotion after {auto.after_seconds}s" if auto else "promote"
        return f"new ready behind {blue_green.preview_service}; switch on {when}"
    return f"switch {service} to new; stable kept {blue_green.scale_down_delay_seconds}s"


# --- the plan ------------------------------------------------------------------------------


def _run(inputs: Inputs, keep: bool = False) -> tuple[Release, dict[int, Release]]:
    """The release to its end; with `keep`, a copy of it as it was after the last pass of
    each step before the release was over (by the step's first pass), to abort there."""
    release = Release(inputs)
    kept: dict[int, Release] = {}
    first = 0
    while True:
        snap, changed = release.step()
        previous = release.snapshots[-2] if len(release.snapshots) > 1 else None
        if previous is None or snap.index not in (None, previous.index):
            first = snap.number
        if keep and not _over(snap, release.revision(NEW)):
            kept[first] = _copy(release)  # the clock not moved on yet
        if release.done():
            return release, kept
        release.next_pass(snap, changed)


def _copy(release: Release) -> Release:
    """The release as it stands, to abort it; its past snapshots stay behind."""
    snapshots, release.snapshots = release.snapshots, release.snapshots[-1:]
    try:
        return copy.deepcopy(release)
    finally:
        release.snapshots = snapshots


def _segments(snapshots: Sequence[Snapshot]) -> list[list[Snapshot]]:
    """The passes by step; a pass without a step index (the release complete) stays in the
    step before it."""
    segments: list[list[Snapshot]] = []
    for snap in snapshots:
        if not segments or snap.index not in (None, segments[-1][0].index):
            segments.append([snap])
        else:
            segments[-1].append(snap)
    return segments


def _abort(release: Release) -> AbortPlan:
    """The release aborted where it stands, followed until the new revision has neither
    traffic nor pods (featureToggle: the flag gives 0%) and a pass changes nothing."""
    world = release.world
    name = world.request("abort", "kubectl nonstop plan: what an abort does here")
    start = release.snapshots[-1].seconds
    after: list[Snapshot] = []
    toggle = release.spec.strategy.feature_toggle is not None
    for _ in range(SETTLE_PASSES):
        snap, changed = release.step()
        after.append(snap)
        if not changed and (snap.flag == 0 if toggle else _settled(snap)):
            break
        release._advance(changed=changed)
    answer = next((a for a in world.answers if a.name == name), None)
    answered = f"{answer.phase}: {answer.message}" if answer else "not answered"
    last = after[-1]
    to_stable = next((s.seconds - start for s in after if s.traffic.get(NEW, 0) == 0), None)
    gone = next((s.seconds - start for s in after if s.pods.get(NEW, 0) == 0), None)
    return AbortPlan(
        answer=answered,
        traffic=after[0].traffic,
        traffic_to_stable_seconds=to_stable,
        pods_gone_seconds=gone,
        pods=last.pods,
        phase=last.phase,
        message=last.message,
        peak_pods=max(s.total for s in after),
        flag_off_seconds=next((s.seconds - start for s in after if s.flag == 0), None)
        if toggle
        else None,
    )


def _settled(snap: Snapshot) -> bool:
    return snap.pods.get(NEW, 0) == 0 and snap.traffic.get(NEW, 0) == 0


def _over(snap: Snapshot, new: str) -> bool:
    return snap.phase == "Healthy" and snap.stable_revision == new


def plan_rollout(inputs: Inputs, *, aborts: bool = True) -> RolloutPlan:
    """The plan of one Rollout (see the module's docstring)."""
    with quiet():
        release, kept = _run(inputs, keep=aborts)
        spec = release.spec
        meta = release.world.raw["metadata"]
        result = RolloutPlan(
            name=meta["name"],
            namespace=meta["namespace"],
            strategy=spec.strategy.name,
            replicas=spec.replicas,
            revisions={STABLE: release.revision(STABLE), NEW: release.revision(NEW)},
        )
        segments = _segments(release.snapshots)
        for i, segment in enumerate(segments):
            end = segments[i + 1][0] if i + 1 < len(segments) else segment[-1]
            last = segment[-1]
            index = segment[0].index
            person = next(
                (release.people[s.number] for s in segment if s.number in release.people), None
            )
            peak = max(s.total for s in segment)
            # an abort at the end of the step, while the release is not over
            at_end = kept.get(segment[0].number)
            result.steps.append(
                StepPlan(
                    index=index,
                    name=step_name(spec, index, first=i == 0),
                    pods=last.pods,
                    traffic=last.traffic,
                    header_routes=last.header_routes,
                    mirror=last.mirror,
                    flag=last.flag,
                    peak_pods=peak,
                    peak_multiple=_multiple(peak, spec.replicas),
                    min_seconds=end.seconds - segment[0].seconds,
                    needs_person=person,
                    abort=_abort(at_end) if at_end is not None else None,
                    first_pass=segment[0].number,
                    last_pass=last.number,
                )
            )
        return result


def rollout_inputs(
    rollout: dict[str, Any], documents: Sequence[dict[str, Any]], image: str | None = None
) -> Inputs:
    """A Rollout and, from the same files, the AnalysisTemplates, HTTPRoute and flag
    ConfigMap it names. A template it names that is not there cannot be planned."""
    spec = RolloutSpec.model_validate(rollout.get("spec") or {})
    templates: dict[str, Any] = {}
    for doc in documents:
        if doc.get("kind") == "AnalysisTemplate":
            name = (doc.get("metadata") or {}).get("name")
            templates[str(name)] = AnalysisTemplateSpec.model_validate(
                doc.get("spec") or {}
            ).model_dump(by_alias=True, mode="json", exclude_none=True)
    for analysis in analyses_of(spec):
        for ref in analysis.templates or []:
            if ref.name not in templates:
                raise PlanError(
                    f"AnalysisTemplate {ref.name} is named but not in the files: give its"
                    " file too (the plan runs its metrics)"
                )
    route = None
    if spec.traffic_routing is not None:
        wanted = spec.traffic_routing.gateway_api.http_route
        route = next(
            (
                d
                for d in documents
                if d.get("kind") == "HTTPRoute" and (d.get("metadata") or {}).get("name") == wanted
            ),
            None,
        )
    config_map = None
    toggle = spec.strategy.feature_toggle
    if toggle is not None:
        config_map = next(
            (
                d
                for d in documents
                if d.get("kind") == "ConfigMap"
                and (d.get("metadata") or {}).get("name") == toggle.flag.config_map
            ),
            None,
        )
    return Inputs(rollout, templates, route, config_map, image)
