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

The `then` strategy is not imported: the planner's strategy table hands it in, so shadow
composes with canary and blue-green as any strategy is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from nonstop.api import Abort, RolloutSpec
from nonstop.api.base import duration_seconds
from nonstop.api.spec import ShadowStrategy, Strategy
from nonstop.api.status import Phase, ShadowRecord
from nonstop.plan.analysis import Wanted
from nonstop.plan.conditions import Verdict
from nonstop.plan.context import PassContext
from nonstop.plan.kernel.fleet import fleet, whole
from nonstop.plan.kernel.progress import (
    deadline_abort,
    last_progress_time,
    pod_summary,
    pods_not_ready,
)
from nonstop.plan.model import Action, EventSpec, PodProblem
from nonstop.plan.outcome import IN_PROGRESS_REQUEUE, Outcome
from nonstop.plan.router import TrafficRouter, canary_service_name
from nonstop.traffic import MirrorSpec

SURGE, UNAVAILABLE = "25%", 0

StrategyPass = Callable[[PassContext], Outcome]


def then_spec(spec: RolloutSpec) -> RolloutSpec:
    """The Rollout as its `then` strategy sees it: the same, with that strategy."""
    shadow = spec.strategy.shadow
    assert shadow is not None
    then = Strategy.model_construct(canary=shadow.then.canary, blue_green=shadow.then.blue_green)
    return spec.model_copy(update={"strategy": then})


def _router(ctx: PassContext) -> TrafficRouter:
    assert ctx.router is not None
    return ctx.router


def _then(ctx: PassContext, then: StrategyPass) -> Outcome:
    """A pass of the `then` strategy; one that does not use the route (blue-green) gets
    nonstop's parts (the mirror) taken out of it first."""
    spec = then_spec(ctx.spec)
    outcome = then(ctx.with_spec(spec, ctx.router))
    if spec.traffic_routing is not None and spec.strategy.canary is not None:
        return outcome
    clear, _ = _router(ctx).cleared()
    return replace(outcome, actions=[clear, *outcome.actions]) if clear else outcome


def plan_shadow(ctx: PassContext, then: StrategyPass) -> Outcome:
    shadow = ctx.spec.strategy.shadow
    assert shadow is not None
    spec, prev, revision, now = ctx.spec, ctx.prev, ctx.revision, ctx.now
    router = _router(ctx)
    router.require()
    pods = fleet(ctx, SURGE, UNAVAILABLE, one_service=False)
    record = prev.shadow if prev.shadow and prev.shadow.revision == revision else None
    if ctx.stable in (None, revision) or ctx.abort is not None or (record and record.passed_at):
        return _then(ctx, then)
    assert ctx.stable is not None

    service = canary_service_name(spec)
    size = shadow.replicas if shadow.replicas is not None else spec.replicas
    mine = ctx.deps.get(revision)
    behind = ctx.observed.other_service(service)
    ready = (
        whole(mine, size)
        and behind is not None
        and behind.selects(revision)
        and (behind.ready or 0) >= size
    )
    mirror = MirrorSpec.from_api(shadow.mirror)
    running = record is not None and record.started_at is not None
    update, _ = router.towards(canary_weight=0, mirror=mirror if ready or running else None)
    events: list[EventSpec] = []
    if not running and ready and size > 0:  # the mirror goes in with this pass's write
        record = ShadowRecord(revision=revision, started_at=now, restarts=ctx.observed.restarts)
        running = True
        events.append(EventSpec("Normal", "ShadowStarted", _mirroring(shadow, service, now)))
    if record is None:
        record = ShadowRecord(revision=revision)

    if running:
        ended = _running(ctx, then, record, ready)
        if ended is not None:
            return replace(ended, events=(*events, *ended.events))

    actions: list[Action] = [] if ctx.paused else pods.side_by_side(size)
    if update is not None:
        actions.insert(0, update)
    last = now if running else last_progress_time(ctx)
    if not running and not ctx.paused:
        deadline = deadline_abort(ctx, last)
        if deadline is not None:
            return replace(_then(ctx.aborted(deadline), then), shadow=record)
    verdict = _verdict(ctx.paused, running, shadow, service, record, ctx.available(revision), size)
    unready = None if running or ctx.paused else pods_not_ready(ctx, last)
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
    ctx: PassContext, then: StrategyPass, record: ShadowRecord, ready: bool
) -> Outcome | None:
    """The verdict of a running shadow phase: failed, passed, or (None) still running."""
    shadow, revision, now = ctx.spec.strategy.shadow, ctx.revision, ctx.now
    assert shadow is not None and record.started_at is not None
    failure = _failure(ctx.problems(), ctx.observed.restarts - record.restarts, ready)
    wanted = shadow_wanted(ctx.spec)
    judged = ctx.judge(wanted)
    failure = failure or judged.abort
    if failure is not None:
        message = f"shadow revision {revision} failed: {failure}"
        abort = Abort(revision=revision, at=now, reason="ShadowFailed", message=message)
        outcome = _then(ctx.aborted(abort), then)
        return replace(
            outcome, shadow=record, events=(EventSpec("Warning", "ShadowFailed", message),)
        )
    ends = record.started_at + timedelta(seconds=duration_seconds(shadow.duration))
    analysed = not wanted or "shadow" in judged.passed
    if (now < ends or not analysed) and ctx.promotion is None:  # a promote ends it early
        return None
    passed = record.model_copy(update={"passed_at": now})
    # the `then` strategy starts its steps now, without the promote that ended the shadow
    outcome = _then(replace(ctx, restart_steps=True, promotion=None), then)
    message = (
        f"shadow revision {revision} passed {shadow.duration} of mirrored traffic with every"
        f" pod ready{' and its analysis passed' if wanted else ''}; live traffic moves by"
        f" {then_spec(ctx.spec).strategy.name}"
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
        return f"pods not ready: {pod_summary(problems)}"
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
