"""The canary strategy with a traffic router (spec.trafficRouting).

Two Services select by revision: spec.service (the stable Service, which the user's
HTTPRoute names) selects the stable revision, the canary Service (canaryService, default
`<service>-canary`) selects the revision being rolled out. The router splits traffic
between them. The stable revision stays at full size (spec.replicas) for the whole canary;
the canary revision has the step's share of pods (rounded up; setCanaryScale overrides it).

Traffic follows pods, never leads them: the canary gets the step's weight only once it has
all the pods the step asks for, ready behind the canary Service; while it has some, it keeps
at most the weight it already had; with none, it gets nothing (weight 0, no header routes).

After the last step:
  1. the canary is scaled to full size and, once all its pods are ready, gets weight 100;
  2. the stable Service's selector is switched to the new revision (one update), once the
     canary Service's EndpointSlices list all its pods as ready;
  3. once the stable Service's EndpointSlices show the new pods, every trace of nonstop
     leaves the route; the new revision is stable, and the old one keeps its pods for
     scaleDownDelaySeconds (the planner's drain) before it is scaled down.
An abort moves the canary's traffic to the stable Service only as far as the stable
revision has ready pods for it (all of it at once when stable is whole, as it normally is),
then takes every trace out of the route; the canary keeps its pods for
scaleDownDelaySeconds after it lost its traffic.
"""

from __future__ import annotations

import math
from dataclasses import replace

from nonstop.api import RolloutSpec
from nonstop.plan.context import PassContext
from nonstop.plan.kernel.fleet import Fleet, fleet, whole
from nonstop.plan.kernel.progress import deadline_abort, last_progress_time
from nonstop.plan.kernel.settle import rolling_back_first, settle
from nonstop.plan.kernel.stepped import (
    analysis_abort,
    canary_wanted,
    is_analysis,
    step_outcome,
    step_progress,
    waits,
)
from nonstop.plan.model import Action, StallError, UpdateRoute
from nonstop.plan.outcome import Outcome
from nonstop.plan.router import TrafficRouter, canary_service_name
from nonstop.plan.steps import StepProgress, StepTarget, canary_replicas, step_kind, target_at
from nonstop.traffic import HeaderRoute

SURGE, UNAVAILABLE = "25%", 0


def routed_canary_pods(replicas: int, target: StepTarget) -> int:
    """Pods of the canary for a step: the weight's share, or setCanaryScale; at least one
    while header routes send requests to it."""
    pods = canary_replicas(replicas, target)
    return max(pods, 1) if target.header_routes else pods


def _header_routes(target: StepTarget) -> tuple[HeaderRoute, ...]:
    try:
        return tuple(HeaderRoute.from_api(h) for h in target.header_routes)
    except ValueError as exc:
        raise StallError("InvalidSpec", f"setHeaderRoute: {exc}") from exc


def _router(ctx: PassContext) -> TrafficRouter:
    assert ctx.router is not None
    return ctx.router


def _current_weight(ctx: PassContext) -> float:
    shares = _router(ctx).shares
    return shares.canary if shares else 0.0


def _safe_weight(
    ctx: PassContext, canary_pods: int, wanted: float, current: float
) -> tuple[float, bool]:
    """(weight to give the canary, whether it may have header routes): the step's weight once
    all its pods are ready behind the canary Service, at most what it had while only some
    are, none without ready pods."""
    mine = ctx.deps.get(ctx.revision)
    service = ctx.observed.other_service(canary_service_name(ctx.spec))
    ready = min(
        mine.available if mine else 0,
        service.ready or 0 if service is not None and service.selects(ctx.revision) else 0,
        canary_pods,  # a canary asked to go to zero pods gets no traffic on its way there
    )
    if ready == 0:
        return 0.0, False
    if whole(mine, canary_pods) and ready >= canary_pods:
        return wanted, True
    return min(wanted, current), True


def _traffic(
    ctx: PassContext, pods: int, target: StepTarget, current: float, finishing: bool
) -> tuple[float, tuple[HeaderRoute, ...]]:
    """The canary's weight and header routes this pass."""
    weight, may_route = _safe_weight(ctx, pods, target.weight, current)
    if ctx.paused:
        weight = min(weight, current)  # a paused rollout moves no traffic towards the canary
    return weight, _header_routes(target) if may_route and not finishing else ()


def _selects(spec: RolloutSpec, stable: str, canary: str) -> dict[str, str | None]:
    return {spec.service.name: stable, canary_service_name(spec): canary}


def _settled_pass(pods: Fleet) -> Outcome:
    """First revision, stable revision or rollback: no canary; the route is the user's."""
    ctx = pods.ctx
    outcome = settle(pods)
    serving = ctx.stable if outcome.abort is not None and ctx.stable else ctx.revision
    clear, _ = _router(ctx).cleared()
    actions: list[Action] = [clear] if clear else []
    return replace(
        outcome,
        actions=[*actions, *outcome.actions],
        selects=_selects(ctx.spec, serving, serving),
    )


def _stable_ready(ctx: PassContext) -> int:
    """Ready pods of the stable revision: its Deployment's available pods, and while the
    stable Service selects it, no more than its EndpointSlices list (after the switch of a
    finishing canary the Service goes back to it in this pass's write)."""
    available = ctx.available(ctx.stable)
    service = ctx.observed.service
    if service is not None and ctx.stable and service.selects(ctx.stable):
        return min(available, service.ready or 0)
    return available


def _abort_pass(pods: Fleet) -> Outcome:
    """An aborted canary: its traffic goes back to the stable Service as far as stable has
    ready pods for it (per pod, never more than a full share), all of it once stable is whole;
    the canary keeps its pods and its Service until then."""
    ctx = pods.ctx
    assert ctx.abort is not None and ctx.stable is not None
    current = _current_weight(ctx)
    room = 100.0 * _stable_ready(ctx) / ctx.replicas if ctx.replicas else 100.0
    weight = min(current, max(0.0, math.floor((100.0 - room) * 100) / 100))
    if weight <= 0.0:
        return _settled_pass(pods)
    update, _ = _router(ctx).towards(canary_weight=weight)
    mine = ctx.deps.get(ctx.revision)
    actions: list[Action] = [
        *([update] if update else []),
        *pods.side_by_side(mine.spec_replicas if mine else 0),
    ]
    message = (
        f"aborted: {ctx.abort.message}; the canary keeps {weight:g}% of traffic until revision"
        f" {ctx.stable} has {ctx.replicas} ready pods behind {ctx.spec.service.name}"
        f" ({_stable_ready(ctx)} now), then the route goes back to it"
    )
    return rolling_back_first(ctx, actions, message, _selects(ctx.spec, ctx.stable, ctx.revision))


def plan_routed_canary(ctx: PassContext) -> Outcome:
    canary = ctx.spec.strategy.canary
    assert canary is not None
    router = _router(ctx)
    router.require()  # even at rest: say so now, not next release
    steps = canary.steps
    # The stable Service selects one revision, so pods of the others are not behind it:
    # taking them away costs it nothing (its own EndpointSlices gate the switch instead).
    pods = fleet(ctx, SURGE, UNAVAILABLE, one_service=False)
    if ctx.stable in (None, ctx.revision):
        return _settled_pass(pods)
    if ctx.abort is not None:
        return _abort_pass(pods)
    spec, revision, stable = ctx.spec, ctx.revision, ctx.stable
    assert stable is not None

    index = ctx.step_index
    current = _current_weight(ctx)
    finishing = index >= len(steps)
    target = target_at(steps, index)
    canary_pods = spec.replicas if finishing else routed_canary_pods(spec.replicas, target)
    actions = pods.side_by_side(canary_pods)
    weight, headers = _traffic(ctx, canary_pods, target, current, finishing)
    update, route_shown = router.towards(canary_weight=weight, header_routes=headers)
    applied = (
        route_shown
        and weight == target.weight
        and len(headers) == len(target.header_routes)
        and whole(ctx.deps.get(revision), canary_pods)
    )
    selects = _selects(spec, stable, revision)
    wanted = canary_wanted(canary, index)
    judged = ctx.judge(wanted)

    if finishing:
        done, selects = _finish(ctx, applied, selects)
        if done:  # the new revision is stable: from now on it is a settled rollout
            return _settled_pass(pods.at(ctx.with_stable(revision)))
        progress = StepProgress(index, ctx.step_started_at, "the canary to take all traffic", None)
        at_pause = moved = False
    else:
        if is_analysis(steps, index):
            applied = f"step-{index}" in judged.passed
        progress = step_progress(ctx, steps, applied=applied, judged=judged)
        at_pause = waits(steps, index, progress.index) or judged.hold is not None
        moved = progress.index != index or ctx.fresh

    last = ctx.now if moved or at_pause else last_progress_time(ctx)
    abort = analysis_abort(judged, revision, ctx.now)
    if abort is None and not ctx.paused and not at_pause:
        abort = deadline_abort(ctx, last)
    if abort is not None:  # traffic back to stable (as far as it can take it), then the canary goes
        return _abort_pass(pods.at(ctx.aborted(abort)))
    if ctx.paused:
        actions = []
    actions = [update, *actions] if update else actions

    at = "promotion" if finishing else f"step {index + 1}/{len(steps)} ({step_kind(steps[index])})"
    describe = (
        f"{at}: {ctx.available(revision)}/{canary_pods} canary pods available,"
        f" canary weight {current:g}%" + (f" -> {weight:g}%" if update else "")
    )
    outcome = step_outcome(
        ctx,
        len(steps),
        progress,
        describe,
        actions,
        last,
        moved=moved,
        at_pause=at_pause,
        hold=judged.hold,
    )
    return replace(outcome, selects=selects, wanted=wanted)


def _finish(
    ctx: PassContext, weight_applied: bool, selects: dict[str, str | None]
) -> tuple[bool, dict[str, str | None]]:
    """After the last step: (whether the new revision is stable now, Service selectors).
    Each stage starts only once the cluster shows the one before."""
    spec, revision, observed = ctx.spec, ctx.revision, ctx.observed
    canary = observed.other_service(canary_service_name(spec))
    canary_ready = canary is not None and canary.selects(revision) and (canary.ready or 0)
    if not (weight_applied and canary_ready and canary_ready >= spec.replicas):
        return False, selects
    stable = observed.service
    switched = selects | {spec.service.name: revision}
    if stable is None or not stable.selects(revision) or (stable.ready or 0) < spec.replicas:
        return False, switched
    return True, switched


__all__ = ["UpdateRoute", "plan_routed_canary", "routed_canary_pods"]
