"""The canary strategy without a traffic router: steps move a share of the pods.

Behind one Service, the share of traffic a revision gets is its share of ready pods, so a
step's weight becomes a number of canary pods (rounded up: the smallest canary is one pod)
and the stable revision keeps the rest. Canary pods come first; a stable pod goes only
while the available total (Deployments and EndpointSlices, the smaller) stays at or above
spec.replicas. The first revision, the last step (promotion to full size) and the rollback
after an abort are rolling replacements (maxSurge 25%, maxUnavailable 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from nonstop.api import Abort, RolloutSpec
from nonstop.api.spec import CanaryStep, CanaryStrategy
from nonstop.api.status import Phase
from nonstop.plan.analysis import Judgement, Wanted, judgement
from nonstop.plan.conditions import Verdict
from nonstop.plan.model import (
    Action,
    CreateDeployment,
    DeploymentView,
    Observed,
    RolloutView,
    ScaleDeployment,
)
from nonstop.plan.resources import render_deployment
from nonstop.plan.rolling import (
    IN_PROGRESS_REQUEUE,
    Outcome,
    _Rolling,
    deadline_abort,
    last_progress_time,
    pods_not_ready,
    rolling_context,
    rolling_pass,
)
from nonstop.plan.steps import (
    Promotion,
    StepProgress,
    StepTarget,
    advance,
    canary_replicas,
    step_kind,
    target_at,
)

SURGE, UNAVAILABLE = "25%", 0


def split(replicas: int, target: StepTarget) -> tuple[int, int]:
    """(canary, stable) pods for a step."""
    canary = canary_replicas(replicas, target)
    share = math.ceil(replicas * target.weight / 100)
    return canary, max(0, replicas - min(replicas, share if target.scale else canary))


def _shrink(d: DeploymentView, floor: int, budget: int) -> tuple[int, int]:
    """(new size, budget left) for a revision that should go down to `floor`: its unavailable
    pods go for free, available ones only as far as the budget allows."""
    keep = min(d.spec_replicas, d.available)
    new = max(floor, keep - budget)
    return min(new, d.spec_replicas), budget - max(0, keep - new)


def _actions(ctx: _Rolling, canary: int, stable_target: int) -> tuple[list[Action], bool]:
    """Actions towards (canary, stable_target) pods, and whether the cluster already shows them.
    Growing is immediate; shrinking never takes the available total below spec.replicas."""
    spec, deps = ctx.spec, ctx.deps
    actions: list[Action] = []
    mine = deps.get(ctx.revision)
    stable = deps.get(ctx.stable) if ctx.stable else None
    available = sum(d.available for d in deps.values())
    if ctx.observed.ready_endpoints is not None:
        available = min(available, ctx.observed.ready_endpoints)
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
        body = render_deployment(ctx.rollout.meta, spec, ctx.rollout.template, ctx.revision, canary)
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


def plan_canary(
    rollout: RolloutView,
    spec: RolloutSpec,
    revision: str,
    observed: Observed,
    now: datetime,
    promotion: Promotion = None,
) -> Outcome:
    assert spec.strategy.canary is not None
    steps = spec.strategy.canary.steps
    ctx = rolling_context(rollout, spec, revision, observed, SURGE, UNAVAILABLE)
    prev = rollout.status
    aborted = prev.abort is not None and prev.abort.revision == revision
    if ctx.stable in (None, revision) or aborted:
        return rolling_pass(ctx, now)  # first revision, a stable revision, or a rollback

    fresh = prev.current_revision != revision or prev.current_step_index is None
    index = 0 if fresh else prev.current_step_index or 0
    started = now if fresh else prev.step_started_at or now
    if index >= len(steps):  # all steps done: the canary becomes the whole
        outcome = rolling_pass(ctx, now)
        return replace(
            outcome,
            step=f"{len(steps)}/{len(steps)}",
            step_index=len(steps),
            step_started_at=started,
        )

    target = target_at(steps, index)
    canary, stable_pods = split(spec.replicas, target)
    actions, shown = _actions(ctx, canary, stable_pods)
    wanted = canary_wanted(spec.strategy.canary, index)
    judged = judgement(prev, wanted, revision)
    applied = f"step-{index}" in judged.passed if is_analysis(steps, index) else shown
    progress = advance(steps, index, started, now, applied=applied, promotion=promotion)
    waiting_at_pause = waits(steps, index, progress.index) or judged.hold is not None
    moved = progress.index != index or fresh

    # progress: a step done, a pause (waiting there is the plan), or what the cluster shows
    last = now if moved or waiting_at_pause else last_progress_time(ctx, now)
    abort = analysis_abort(judged, revision, now)
    if abort is None and not ctx.paused and not waiting_at_pause:
        abort = deadline_abort(ctx, last, now)
    if abort is not None:  # roll back as the rolling strategy does
        aborted_view = replace(rollout, status=prev.model_copy(update={"abort": abort}))
        return rolling_pass(replace(ctx, rollout=aborted_view), now)
    if ctx.paused:
        actions = []

    mine = ctx.deps.get(revision)
    canary_up = mine.available if mine else 0
    describe = (
        f"step {index + 1}/{len(steps)} ({step_kind(steps[index])}):"
        f" {canary_up}/{canary} canary pods available, stable {stable_pods}"
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
        at_pause=waiting_at_pause,
        hold=judged.hold,
    )
    return replace(outcome, wanted=wanted)


def canary_wanted(canary: CanaryStrategy, index: int) -> tuple[Wanted, ...]:
    """The analysis runs of a canary at step `index`: the background one for the whole
    canary, and the step's own when it is an analysis step."""
    wanted = []
    if canary.analysis is not None and index < len(canary.steps):
        wanted.append(Wanted("background", canary.analysis))
    if index < len(canary.steps) and canary.steps[index].analysis is not None:
        step_analysis = canary.steps[index].analysis
        assert step_analysis is not None
        wanted.append(Wanted(f"step-{index}", step_analysis))
    return tuple(wanted)


def is_analysis(steps: Sequence[CanaryStep], index: int) -> bool:
    return index < len(steps) and steps[index].analysis is not None


def waits(steps: Sequence[CanaryStep], index: int, now_at: int) -> bool:
    """Still at a pause or an analysis step: waiting there is the plan, not a stall."""
    return now_at == index and step_kind(steps[index]) in ("pause", "analysis")


def analysis_abort(judged: Judgement, revision: str, now: datetime) -> Abort | None:
    if judged.abort is None:
        return None
    return Abort(revision=revision, at=now, reason="AnalysisFailed", message=judged.abort)


def step_outcome(
    ctx: _Rolling,
    total: int,
    progress: StepProgress,
    describe: str,
    actions: list[Action],
    last: datetime,
    now: datetime,
    *,
    moved: bool,
    at_pause: bool,
    hold: str | None = None,
) -> Outcome:
    """Name the state of a step-based rollout in its steps, in kstatus terms and in words."""
    step_text = f"{progress.index}/{total}"
    phase: Phase
    unready = None if at_pause or ctx.paused else pods_not_ready(ctx, last, now)
    if unready is not None:
        verdict, phase = unready, "Paused"
    elif hold is not None and not ctx.paused:
        message = f"{describe}; {hold}; promote to go on, or abort to roll back"
        verdict = Verdict(
            False, False, False, "AnalysisInconclusive", message, True, "AnalysisInconclusive"
        )
        phase = "Paused"
    elif ctx.paused:
        verdict = Verdict(
            False, False, False, "PausedByUser", f"paused; {describe}", True, "PausedByUser"
        )
        phase = "Paused"
    elif at_pause:
        verdict = Verdict(
            False,
            False,
            False,
            "StepPaused",
            f"{describe}; waiting for {progress.waiting_for}",
            True,
            "StepPaused",
        )
        phase = "Paused"
    else:
        verdict = Verdict(
            False,
            True,
            False,
            "RolloutInProgress",
            f"{describe}"
            + (f"; waiting for {progress.waiting_for}" if progress.waiting_for else ""),
        )
        phase = "Progressing"
    requeue = IN_PROGRESS_REQUEUE
    if progress.seconds_left is not None:
        requeue = min(requeue, progress.seconds_left + 0.2)
    if moved:
        requeue = 0.5
    return Outcome(
        actions,
        phase,
        verdict,
        ctx.stable,
        None,
        last,
        step_text,
        requeue,
        step_index=progress.index,
        step_started_at=progress.started_at,
    )
