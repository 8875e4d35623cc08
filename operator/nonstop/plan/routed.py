"""The canary strategy with a traffic router (spec.trafficRouting.gatewayAPI).

Two Services select by revision: spec.service (the stable Service, which the user's
HTTPRoute names) selects the stable revision, the canary Service (canaryService, default
`<service>-canary`) selects the revision being rolled out. The HTTPRoute splits traffic
between them. The stable revision stays at full size for the whole canary; the canary
revision has the step's share of pods (rounded up; setCanaryScale overrides it).

Traffic follows pods, never leads them: the canary gets the step's weight only once it has
all the pods the step asks for, ready behind the canary Service; while it has some, it keeps
at most the weight it already had; with none, it gets nothing (weight 0, no header routes).

After the last step:
  1. the canary is scaled to full size and, once all its pods are ready, gets weight 100;
  2. the stable Service's selector is switched to the new revision (one update), once the
     canary Service's EndpointSlices list all its pods as ready;
  3. once the stable Service's EndpointSlices show the new pods, every trace of nonstop
     leaves the route; the new revision is stable and the old one is scaled down.
An abort takes every trace out of the route at once (all traffic to the stable Service,
which never stopped selecting the stable revision), then scales the canary down.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from nonstop.api import RolloutSpec
from nonstop.plan.analysis import judgement
from nonstop.plan.canary import analysis_abort, canary_wanted, is_analysis, step_outcome, waits
from nonstop.plan.model import (
    Action,
    DeploymentView,
    Observed,
    RolloutMeta,
    RolloutView,
    StallError,
    UpdateRoute,
)
from nonstop.plan.rolling import (
    Outcome,
    _Rolling,
    deadline_abort,
    last_progress_time,
    rolling_context,
    rolling_pass,
    side_by_side,
)
from nonstop.plan.routing import (
    canary_service_name,
    require_route,
    route_cleared,
    route_shares,
    route_towards,
)
from nonstop.plan.steps import Promotion, StepTarget, advance, canary_replicas, step_kind, target_at
from nonstop.traffic import HeaderRoute

SURGE, UNAVAILABLE = "25%", 0


def routed_canary_pods(replicas: int, target: StepTarget) -> int:
    """Pods of the canary for a step: the weight's share, or setCanaryScale; at least one
    while header routes send requests to it."""
    pods = canary_replicas(replicas, target)
    return max(pods, 1) if target.header_routes else pods


def _full(d: DeploymentView | None, pods: int) -> bool:
    return d is not None and d.spec_replicas == d.replicas == pods and d.available >= pods


def _header_routes(target: StepTarget) -> tuple[HeaderRoute, ...]:
    try:
        return tuple(HeaderRoute.from_api(h) for h in target.header_routes)
    except ValueError as exc:
        raise StallError("InvalidSpec", f"setHeaderRoute: {exc}") from exc


def _safe_weight(
    ctx: _Rolling, observed: Observed, canary_pods: int, wanted: float, current: float
) -> tuple[float, bool]:
    """(weight to give the canary, whether it may have header routes): the step's weight once
    all its pods are ready behind the canary Service, at most what it had while only some
    are, none without ready pods."""
    mine = ctx.deps.get(ctx.revision)
    service = observed.other_service(canary_service_name(ctx.spec))
    ready = min(
        mine.available if mine else 0,
        service.ready or 0 if service is not None and service.selects(ctx.revision) else 0,
        canary_pods,  # a canary asked to go to zero pods gets no traffic on its way there
    )
    if ready == 0:
        return 0.0, False
    if _full(mine, canary_pods) and ready >= canary_pods:
        return wanted, True
    return min(wanted, current), True


def _current_weight(spec: RolloutSpec, meta: RolloutMeta, observed: Observed) -> float:
    shares = route_shares(spec, meta, observed)
    return shares[1] if shares else 0.0


def _traffic(
    ctx: _Rolling,
    observed: Observed,
    pods: int,
    target: StepTarget,
    current: float,
    finishing: bool,
) -> tuple[float, tuple[HeaderRoute, ...]]:
    """The canary's weight and header routes this pass."""
    weight, may_route = _safe_weight(ctx, observed, pods, target.weight, current)
    if ctx.paused:
        weight = min(weight, current)  # a paused rollout moves no traffic towards the canary
    return weight, _header_routes(target) if may_route and not finishing else ()


def _selects(spec: RolloutSpec, stable: str, canary: str) -> dict[str, str | None]:
    return {spec.service.name: stable, canary_service_name(spec): canary}


def _settled_pass(ctx: _Rolling, now: datetime) -> Outcome:
    """First revision, stable revision or rollback: no canary; the route is the user's."""
    outcome = rolling_pass(ctx, now)
    serving = ctx.stable if outcome.abort is not None and ctx.stable else ctx.revision
    clear, _ = route_cleared(ctx.spec, ctx.rollout.meta, ctx.observed)
    actions: list[Action] = [clear] if clear else []
    return replace(
        outcome,
        actions=[*actions, *outcome.actions],
        selects=_selects(ctx.spec, serving, serving),
    )


def plan_routed_canary(
    rollout: RolloutView,
    spec: RolloutSpec,
    revision: str,
    observed: Observed,
    now: datetime,
    promotion: Promotion = None,
) -> Outcome:
    assert spec.strategy.canary is not None
    require_route(spec, rollout.meta, observed)  # even at rest: say so now, not next release
    steps = spec.strategy.canary.steps
    # The stable Service selects one revision, so pods of the others are not behind it:
    # taking them away costs it nothing (its own EndpointSlices gate the switch instead).
    unselected = replace(observed, ready_endpoints=None)
    ctx = rolling_context(rollout, spec, revision, unselected, SURGE, UNAVAILABLE)
    prev = rollout.status
    aborted = prev.abort is not None and prev.abort.revision == revision
    if ctx.stable in (None, revision) or aborted:
        return _settled_pass(ctx, now)
    assert ctx.stable is not None
    meta = rollout.meta

    fresh = prev.current_revision != revision or prev.current_step_index is None
    index = 0 if fresh else prev.current_step_index or 0
    started = now if fresh else prev.step_started_at or now
    current = _current_weight(spec, meta, observed)
    finishing = index >= len(steps)
    target = target_at(steps, index)
    pods = spec.replicas if finishing else routed_canary_pods(spec.replicas, target)
    actions = side_by_side(ctx, pods)
    weight, headers = _traffic(ctx, observed, pods, target, current, finishing)
    update, route_shown = route_towards(
        spec, meta, observed, canary_weight=weight, header_routes=headers
    )
    applied = (
        route_shown
        and weight == target.weight
        and len(headers) == len(target.header_routes)
        and _full(ctx.deps.get(revision), pods)
    )
    selects = _selects(spec, ctx.stable, revision)
    wanted = canary_wanted(spec.strategy.canary, index)
    judged = judgement(prev, wanted, revision)

    if finishing:
        done, selects, update = _finish(ctx, observed, applied, update, selects)
        if done:  # the new revision is stable: from now on it is a settled rollout
            return _settled_pass(replace(ctx, stable=revision), now)
        progress = advance(steps, index, started, now, applied=False)
        progress = replace(progress, waiting_for="the canary to take all traffic")
        at_pause = moved = False
    else:
        if is_analysis(steps, index):
            applied = f"step-{index}" in judged.passed
        progress = advance(steps, index, started, now, applied=applied, promotion=promotion)
        at_pause = waits(steps, index, progress.index) or judged.hold is not None
        moved = progress.index != index or fresh

    last = now if moved or at_pause else last_progress_time(ctx, now)
    abort = analysis_abort(judged, revision, now)
    if abort is None and not ctx.paused and not at_pause:
        abort = deadline_abort(ctx, last, now)
    if abort is not None:  # all traffic to stable at once, then the canary goes
        aborted_view = replace(rollout, status=prev.model_copy(update={"abort": abort}))
        return _settled_pass(replace(ctx, rollout=aborted_view), now)
    if ctx.paused:
        actions = []
    actions = [update, *actions] if update else actions

    mine = ctx.deps.get(revision)
    at = "promotion" if finishing else f"step {index + 1}/{len(steps)} ({step_kind(steps[index])})"
    describe = (
        f"{at}: {mine.available if mine else 0}/{pods} canary pods available,"
        f" canary weight {current:g}%" + (f" -> {weight:g}%" if update else "")
    )
    outcome = step_outcome(
        ctx,
        len(steps),
        progress,
        describe,
        actions,
        last,
        now,
        moved=moved,
        at_pause=at_pause,
        hold=judged.hold,
    )
    return replace(outcome, selects=selects, wanted=wanted)


def _finish(
    ctx: _Rolling,
    observed: Observed,
    weight_applied: bool,
    update: UpdateRoute | None,
    selects: dict[str, str | None],
) -> tuple[bool, dict[str, str | None], UpdateRoute | None]:
    """After the last step: (whether the new revision is stable now, Service selectors, route
    update). Each stage starts only once the cluster shows the one before."""
    spec, revision = ctx.spec, ctx.revision
    canary = observed.other_service(canary_service_name(spec))
    canary_ready = canary is not None and canary.selects(revision) and (canary.ready or 0)
    if not (weight_applied and canary_ready and canary_ready >= spec.replicas):
        return False, selects, update
    stable = observed.service
    switched = selects | {spec.service.name: revision}
    if stable is None or not stable.selects(revision) or (stable.ready or 0) < spec.replicas:
        return False, switched, update
    return True, switched, update
