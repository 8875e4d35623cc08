"""The canary strategy without a traffic router: steps move a share of the pods.

Behind one Service, the share of traffic a revision gets is its share of ready pods, so a
step's weight becomes a number of canary pods (rounded up: the smallest canary is one pod)
and the stable revision keeps the rest. Canary pods come first; a stable pod goes only
while the available total (Deployments and EndpointSlices, the smaller) stays at or above
spec.replicas. The first revision, the last step (promotion to full size) and the rollback
after an abort are the kernel's rolling replacement (maxSurge 25%, maxUnavailable 0).
"""

from __future__ import annotations

from dataclasses import replace

from nonstop.plan.context import PassContext
from nonstop.plan.kernel.fleet import Fleet, fleet
from nonstop.plan.kernel.progress import deadline_abort, last_progress_time
from nonstop.plan.kernel.settle import settle
from nonstop.plan.kernel.stepped import (
    analysis_abort,
    canary_wanted,
    is_analysis,
    step_outcome,
    step_progress,
    waits,
)
from nonstop.plan.model import Action, CreateDeployment, DeploymentView, ScaleDeployment
from nonstop.plan.outcome import Outcome
from nonstop.plan.resources import render_deployment
from nonstop.plan.steps import StepTarget, canary_replicas, step_kind, target_at

SURGE, UNAVAILABLE = "25%", 0


def split(replicas: int, target: StepTarget) -> tuple[int, int]:
    """(canary, stable) pods for a step: the stable revision keeps what the canary does not
    serve (with setCanaryScale, the canary's own size), so that the two together never
    fall below spec.replicas, which is what the availability rule allows."""
    canary = canary_replicas(replicas, target)
    return canary, max(0, replicas - min(replicas, canary))


def _shrink(d: DeploymentView, floor: int, budget: int) -> tuple[int, int]:
    """(new size, budget left) for a revision that should go down to `floor`: its unavailable
    pods go for free, available ones only as far as the budget allows."""
    keep = min(d.spec_replicas, d.available)
    new = max(floor, keep - budget)
    return min(new, d.spec_replicas), budget - max(0, keep - new)


def _actions(pods: Fleet, canary: int, stable_target: int) -> tuple[list[Action], bool]:
    """Actions towards (canary, stable_target) pods, and whether the cluster already shows them.
    Growing is immediate; shrinking never takes the available total below spec.replicas."""
    ctx = pods.ctx
    spec, deps = ctx.spec, ctx.deps
    actions: list[Action] = []
    mine = deps.get(ctx.revision)
    stable = deps.get(ctx.stable) if ctx.stable else None
    available = sum(d.available for d in deps.values())
    if pods.ready_endpoints is not None:
        available = min(available, pods.ready_endpoints)
    budget = max(0, available - spec.replicas)
    sizes: dict[str, int] = {}
    others = sorted(
        (d for d in deps.values() if d.revision not in (ctx.revision, ctx.stable)),
        key=lambda d: d.name,
    )
    for other in others:  # superseded revisions go first
        sizes[other.name], budget = _shrink(other, 0, budget)
    for d, wanted in ((stable, stable_target), (mine, canary)):
        if d is None:
            continue
        if wanted >= d.spec_replicas:
            sizes[d.name] = wanted
        else:
            sizes[d.name], budget = _shrink(d, wanted, budget)
    if mine is None:
        body = render_deployment(ctx.meta, spec, ctx.template, ctx.revision, canary)
        actions.append(CreateDeployment(body))
    for d in [*others, *(x for x in (stable, mine) if x is not None)]:
        if sizes[d.name] != d.spec_replicas:
            actions.append(ScaleDeployment(d.name, sizes[d.name], d.spec_replicas))
    shown = (
        mine is not None
        and mine.spec_replicas == mine.replicas == canary
        and mine.available >= canary
        and stable is not None
        and stable.spec_replicas == stable.replicas == stable_target
        and stable.available >= stable_target
        and all(d.spec_replicas == d.replicas == 0 for d in others)
    )
    return actions, shown


def plan_canary(ctx: PassContext) -> Outcome:
    canary = ctx.spec.strategy.canary
    assert canary is not None
    steps = canary.steps
    pods = fleet(ctx, SURGE, UNAVAILABLE, one_service=True)
    if ctx.stable in (None, ctx.revision) or ctx.abort is not None:
        return settle(pods)  # first revision, a stable revision, or a rollback

    index, revision = ctx.step_index, ctx.revision
    if index >= len(steps):  # all steps done: the canary becomes the whole
        outcome = settle(pods)
        return replace(
            outcome,
            step=f"{len(steps)}/{len(steps)}",
            step_index=len(steps),
            step_started_at=ctx.step_started_at,
        )

    target = target_at(steps, index)
    canary_pods, stable_pods = split(ctx.replicas, target)
    actions, shown = _actions(pods, canary_pods, stable_pods)
    wanted = canary_wanted(canary, index)
    judged = ctx.judge(wanted)
    applied = f"step-{index}" in judged.passed if is_analysis(steps, index) else shown
    progress = step_progress(ctx, steps, applied=applied, judged=judged)
    waiting_at_pause = waits(steps, index, progress.index) or judged.hold is not None
    moved = progress.index != index or ctx.fresh

    # progress: a step done, a pause (waiting there is the plan), or what the cluster shows
    last = ctx.now if moved or waiting_at_pause else last_progress_time(ctx)
    abort = analysis_abort(judged, revision, ctx.now)
    if abort is None and not ctx.paused and not waiting_at_pause:
        abort = deadline_abort(ctx, last)
    if abort is not None:  # roll back as the rolling strategy does
        return settle(pods.at(ctx.aborted(abort)))
    if ctx.paused:
        actions = []

    describe = (
        f"step {index + 1}/{len(steps)} ({step_kind(steps[index])}):"
        f" {ctx.available(revision)}/{canary_pods} canary pods available, stable {stable_pods}"
    )
    outcome = step_outcome(
        ctx,
        len(steps),
        progress,
        describe,
        actions,
        last,
        moved=moved,
        at_pause=waiting_at_pause,
        hold=judged.hold,
    )
    return replace(outcome, wanted=wanted)
