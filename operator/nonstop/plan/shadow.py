"""The shadow strategy: the new revision gets a copy of live traffic that no user ever sees
answered, for `duration`; then live traffic moves by the `then` strategy.

The shadow revision comes up (shadow.replicas, default spec.replicas) beside the stable one,
behind the Service its `then` strategy uses next (the canary Service, or the preview
Service), so one Service serves the new revision from the first mirrored request to the
end. Once all its pods are ready behind that Service, nonstop adds a RequestMirror filter
(with `percent`) to the route's rules that go to the stable Service, only for the mirrored
methods (GET, HEAD, OPTIONS unless allowUnsafeMethods), and the shadow phase starts
(status.shadow.startedAt). The shadow's backendRef weight stays 0 throughout: users only
get stable's answers.

Verdict: a shadow pod that turns unready or restarts during the phase fails it at once
(status.abort, reason ShadowFailed): the mirror leaves the route in the first write, the
shadow revision goes to zero. `duration` without a failure passes it (status.shadow
.passedAt): the mirror goes and the `then` strategy takes over the same revision from its
first step. Metric analysis (spec.strategy.shadow.analysis, run `shadow`) judges beside
readiness: a failed run fails the phase, which passes only once the run has succeeded.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from nonstop.api import Abort, RolloutSpec
from nonstop.api.base import duration_seconds
from nonstop.api.spec import ShadowStrategy, Strategy
from nonstop.api.status import Phase, ShadowRecord
from nonstop.plan.analysis import Wanted, judgement
from nonstop.plan.bluegreen import plan_blue_green, whole
from nonstop.plan.conditions import Verdict
from nonstop.plan.model import Action, EventSpec, Observed, PodProblem, RolloutView
from nonstop.plan.rolling import (
    IN_PROGRESS_REQUEUE,
    Outcome,
    _pod_summary,
    deadline_abort,
    last_progress_time,
    pods_not_ready,
    rolling_context,
    side_by_side,
)
from nonstop.plan.routed import plan_routed_canary
from nonstop.plan.routing import canary_service_name, require_route, route_cleared, route_towards
from nonstop.plan.steps import Promotion
from nonstop.traffic import MirrorSpec

SURGE, UNAVAILABLE = "25%", 0


def then_spec(spec: RolloutSpec) -> RolloutSpec:
    """The Rollout as its `then` strategy sees it: the same, with that strategy."""
    shadow = spec.strategy.shadow
    assert shadow is not None
    then = Strategy.model_construct(canary=shadow.then.canary, blue_green=shadow.then.blue_green)
    return spec.model_copy(update={"strategy": then})


def _then(
    rollout: RolloutView,
    spec: RolloutSpec,
    revision: str,
    observed: Observed,
    now: datetime,
    promotion: Promotion,
) -> Outcome:
    """A pass of the `then` strategy; blue-green does not use the route, so nonstop's
    parts (the mirror) leave it first."""
    then = then_spec(spec)
    if then.strategy.canary is not None:
        return plan_routed_canary(rollout, then, revision, observed, now, promotion)
    outcome = plan_blue_green(rollout, then, revision, observed, now, promotion)
    clear, _ = route_cleared(spec, rollout.meta, observed)
    return replace(outcome, actions=[clear, *outcome.actions]) if clear else outcome


def plan_shadow(
    rollout: RolloutView,
    spec: RolloutSpec,
    revision: str,
    observed: Observed,
    now: datetime,
    promotion: Promotion = None,
) -> Outcome:
    shadow = spec.strategy.shadow
    assert shadow is not None
    meta, prev = rollout.meta, rollout.status
    require_route(spec, meta, observed)
    ctx = rolling_context(
        rollout, spec, revision, replace(observed, ready_endpoints=None), SURGE, UNAVAILABLE
    )
    record = prev.shadow if prev.shadow and prev.shadow.revision == revision else None
    aborted = prev.abort is not None and prev.abort.revision == revision
    if ctx.stable in (None, revision) or aborted or (record and record.passed_at):
        return _then(rollout, spec, revision, observed, now, promotion)
    assert ctx.stable is not None

    service = canary_service_name(spec)
    pods = shadow.replicas if shadow.replicas is not None else spec.replicas
    mine = ctx.deps.get(revision)
    behind = observed.other_service(service)
    ready = (
        whole(mine, pods)
        and behind is not None
        and behind.selects(revision)
        and (behind.ready or 0) >= pods
    )
    mirror = MirrorSpec.from_api(shadow.mirror)
    running = record is not None and record.started_at is not None
    update, _ = route_towards(
        spec, meta, observed, canary_weight=0, mirror=mirror if ready or running else None
    )
    events: list[EventSpec] = []
    if not running and ready and pods > 0:  # the mirror goes in with this pass's write
        record = ShadowRecord(revision=revision, started_at=now, restarts=observed.restarts)
        running = True
        events.append(EventSpec("Normal", "ShadowStarted", _mirroring(shadow, service, now)))
    if record is None:
        record = ShadowRecord(revision=revision)

    if running:
        ended = _running(rollout, spec, revision, observed, now, promotion, record, ready)
        if ended is not None:
            return replace(ended, events=(*events, *ended.events))

    actions: list[Action] = [] if ctx.paused else side_by_side(ctx, pods)
    if update is not None:
        actions.insert(0, update)
    last = now if running else last_progress_time(ctx, now)
    if not running and not ctx.paused:
        deadline = deadline_abort(ctx, last, now)
        if deadline is not None:
            aborted_view = replace(rollout, status=prev.model_copy(update={"abort": deadline}))
            outcome = _then(aborted_view, spec, revision, observed, now, promotion)
            return replace(outcome, shadow=record)
    verdict = _verdict(
        ctx.paused, running, shadow, service, record, mine.available if mine else 0, pods
    )
    unready = None if running or ctx.paused else pods_not_ready(ctx, last, now)
    phase: Phase = "Paused" if ctx.paused or unready else "Progressing"
    requeue = IN_PROGRESS_REQUEUE
    if running and record.started_at is not None:
        ends = record.started_at + timedelta(seconds=duration_seconds(shadow.duration))
        requeue = max(0.5, min(requeue, (ends - now).total_seconds() + 0.2))
    return Outcome(
        actions,
        phase,
        unready or verdict,
        ctx.stable,
        None,
        last,
        "shadow",
        requeue,
        selects={spec.service.name: ctx.stable, service: revision},
        shadow=record,
        events=tuple(events),
        wanted=shadow_wanted(spec) if running else (),
    )


def _running(
    rollout: RolloutView,
    spec: RolloutSpec,
    revision: str,
    observed: Observed,
    now: datetime,
    promotion: Promotion,
    record: ShadowRecord,
    ready: bool,
) -> Outcome | None:
    """The verdict of a running shadow phase: failed, passed, or (None) still running."""
    shadow, prev = spec.strategy.shadow, rollout.status
    assert shadow is not None and record.started_at is not None
    problems = [p for p in observed.unready_pods if p.revision == revision]
    failure = _failure(problems, observed.restarts - record.restarts, ready)
    wanted = shadow_wanted(spec)
    judged = judgement(prev, wanted, revision)
    failure = failure or judged.abort
    if failure is not None:
        message = f"shadow revision {revision} failed: {failure}"
        abort = Abort(revision=revision, at=now, reason="ShadowFailed", message=message)
        aborted_view = replace(rollout, status=prev.model_copy(update={"abort": abort}))
        outcome = _then(aborted_view, spec, revision, observed, now, promotion)
        return replace(
            outcome, shadow=record, events=(EventSpec("Warning", "ShadowFailed", message),)
        )
    ends = record.started_at + timedelta(seconds=duration_seconds(shadow.duration))
    analysed = not wanted or "shadow" in judged.passed
    if (now < ends or not analysed) and promotion is None:  # a promote ends the phase early
        return None
    passed = record.model_copy(update={"passed_at": now})
    status = prev.model_copy(update={"shadow": passed, "current_step_index": None})
    outcome = _then(replace(rollout, status=status), spec, revision, observed, now, None)
    message = (
        f"shadow revision {revision} passed {shadow.duration} of mirrored traffic with every"
        f" pod ready{' and its analysis passed' if wanted else ''}; live traffic moves by"
        f" {then_spec(spec).strategy.name}"
    )
    return replace(outcome, shadow=passed, events=(EventSpec("Normal", "ShadowPassed", message),))


def shadow_wanted(spec: RolloutSpec) -> tuple[Wanted, ...]:
    """The shadow phase's analysis run, judged with {{revision}} the shadow revision."""
    shadow = spec.strategy.shadow
    return (Wanted("shadow", shadow.analysis),) if shadow and shadow.analysis else ()


def _mirroring(shadow: ShadowStrategy, service: str, now: datetime) -> str:
    methods = ", ".join(shadow.mirror.methods) if shadow.mirror.methods else "every method"
    ends = now + timedelta(seconds=duration_seconds(shadow.duration))
    return (
        f"mirroring {shadow.mirror.percent}% of {methods} requests to Service {service} until"
        f" {ends:%H:%M:%S} ({shadow.duration}); users only get the stable revision's answers"
    )


def _failure(problems: list[PodProblem], restarts: int, ready: bool) -> str | None:
    if problems:
        return f"pods not ready: {_pod_summary(problems)}"
    if restarts > 0:
        return f"{restarts} container restart(s) while mirrored traffic was running"
    if not ready:
        return "pods left the shadow Service's ready endpoints"
    return None


def _verdict(
    paused: bool,
    running: bool,
    shadow: ShadowStrategy,
    service: str,
    record: ShadowRecord,
    up: int,
    pods: int,
) -> Verdict:
    if paused:
        message = f"paused; shadow revision {record.revision}: {up}/{pods} pods available"
        return Verdict(False, False, False, "PausedByUser", message, True, "PausedByUser")
    if running and record.started_at is not None:
        message = f"shadow: {_mirroring(shadow, service, record.started_at)}"
        return Verdict(False, True, False, "Shadowing", message)
    message = (
        f"shadow: bringing up revision {record.revision} behind Service {service}:"
        f" {up}/{pods} pods available; mirroring starts when all are ready"
    )
    return Verdict(False, True, False, "RolloutInProgress", message)
