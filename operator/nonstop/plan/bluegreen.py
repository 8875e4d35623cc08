"""The blue-green strategy: the new revision comes up whole beside the old one, then one
selector switch moves all traffic.

Two Services select by revision: the active Service (spec.service) selects the stable
revision (blue), the preview Service (previewService) the new one (green). A new revision
goes through three stages, kept in status.currentStepIndex:

  0  green comes up at full size behind the preview Service; blue keeps serving;
  1  green is ready: every pod available and listed ready in the preview Service's
     EndpointSlices (status.stepStartedAt says since when). It waits here for a promote or
     for autoPromotion.afterSeconds;
  2  promoted: the active Service's selector is switched to green in one update, once more
     only if the EndpointSlices still list all of green's pods as ready. When the active
     Service's EndpointSlices show green, green is the stable revision.

Blue then stays at full size for scaleDownDelaySeconds after the switch (from
status.stepStartedAt), so that an undo in that window is one selector switch back: a
revision that is still whole when its rollout starts goes straight to stage 2 (as Argo
Rollouts' fast-track rollback does); then it is scaled to zero.
An abort before the switch scales green down; the active Service never stopped selecting
blue.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from nonstop.api import Abort, RolloutSpec
from nonstop.api.status import Phase
from nonstop.plan.analysis import Wanted, judgement
from nonstop.plan.conditions import Verdict
from nonstop.plan.model import DeploymentView, Observed, RolloutView
from nonstop.plan.rolling import (
    IDLE_REQUEUE,
    IN_PROGRESS_REQUEUE,
    Outcome,
    _Rolling,
    deadline_abort,
    last_progress_time,
    pods_not_ready,
    rolling_context,
    rolling_pass,
    side_by_side,
)
from nonstop.plan.steps import Promotion

SURGE, UNAVAILABLE = "25%", 0
PREVIEW, READY, PROMOTED = 0, 1, 2
STAGES = 2


def whole(d: DeploymentView | None, replicas: int) -> bool:
    """All the revision's pods exist and are available."""
    return d is not None and d.spec_replicas == d.replicas == replicas and d.available >= replicas


def _shows(service_ready: int | None, selects: bool, replicas: int) -> bool:
    return selects and (service_ready or 0) >= replicas


def plan_blue_green(
    rollout: RolloutView,
    spec: RolloutSpec,
    revision: str,
    observed: Observed,
    now: datetime,
    promotion: Promotion = None,
) -> Outcome:
    strategy = spec.strategy.blue_green
    assert strategy is not None
    # Each Service selects one revision: pods of the others are not behind the active one.
    ctx = rolling_context(
        rollout, spec, revision, replace(observed, ready_endpoints=None), SURGE, UNAVAILABLE
    )
    prev = rollout.status
    aborted = prev.abort is not None and prev.abort.revision == revision
    if ctx.stable is None or aborted:
        return _settled(ctx, now)
    if ctx.stable == revision:
        return _after_switch(ctx, now, strategy.scale_down_delay_seconds)

    stable = ctx.stable
    fresh = prev.current_revision != revision or prev.current_step_index is None
    stage = PREVIEW if fresh else prev.current_step_index or PREVIEW
    since = now if fresh else prev.step_started_at or now
    ready = _ready(ctx, observed, strategy.preview_service)
    if fresh and whole(ctx.deps.get(revision), spec.replicas) and not ctx.paused:
        # Back to a revision that is still whole (an undo, or a revert, inside the scale-down
        # window): it was serving moments ago, so there is nothing to preview.
        stage = PROMOTED
    if stage == PREVIEW and ready:
        stage, since = READY, now
    pre = strategy.pre_promotion_analysis
    wanted = (Wanted("prePromotion", pre),) if pre is not None and stage == READY else ()
    judged = judgement(prev, wanted, revision)
    if judged.abort is not None:  # never switched: green goes, blue never stopped serving
        why = Abort(revision=revision, at=now, reason="AnalysisFailed", message=judged.abort)
        return _aborted(ctx, why, now)
    analysed = pre is None or "prePromotion" in judged.passed
    if stage == READY and ready and not ctx.paused and analysed:
        auto = strategy.auto_promotion
        due = auto is not None and now >= since + timedelta(seconds=auto.after_seconds)
        if promotion is not None or due:
            stage, since = PROMOTED, now
    active = observed.service
    switched = (
        stage == PROMOTED
        and active is not None
        and _shows(active.ready, active.selects(revision), spec.replicas)
    )
    if switched:  # green serves: it is the stable revision from now on
        return _after_switch(replace(ctx, stable=revision), now, strategy.scale_down_delay_seconds)

    actions = [] if ctx.paused else side_by_side(ctx, spec.replicas)
    serving = revision if stage == PROMOTED and ready else stable
    selects: dict[str, str | None] = {
        spec.service.name: serving,
        strategy.preview_service: revision,
    }
    waiting = stage == READY and not ctx.paused
    last = now if waiting or fresh else last_progress_time(ctx, now)
    if not ctx.paused and not waiting:
        deadline = deadline_abort(ctx, last, now)
        if deadline is not None:
            return _aborted(ctx, deadline, now)

    analysis_wait = None if analysed else judged.hold or "the pre-promotion analysis to succeed"
    phase, verdict = _verdict(ctx, stage, since, waiting, analysis_wait)
    unready = None if waiting or ctx.paused else pods_not_ready(ctx, last, now)
    if unready is not None:
        phase, verdict = "Paused", unready
    requeue = IN_PROGRESS_REQUEUE
    if waiting and strategy.auto_promotion is not None:
        due_at = since + timedelta(seconds=strategy.auto_promotion.after_seconds)
        requeue = max(0.5, min(requeue, (due_at - now).total_seconds() + 0.2))
    return Outcome(
        actions,
        phase,
        verdict,
        stable,
        None,
        last,
        f"{stage}/{STAGES}",
        0.5 if stage != (prev.current_step_index or 0) else requeue,
        step_index=stage,
        step_started_at=since,
        selects=selects,
        wanted=wanted,
    )


def _verdict(
    ctx: _Rolling, stage: int, since: datetime, waiting: bool, analysis_wait: str | None
) -> tuple[Phase, Verdict]:
    spec, revision, stable = ctx.spec, ctx.revision, ctx.stable
    strategy = spec.strategy.blue_green
    assert strategy is not None
    mine = ctx.deps.get(revision)
    up = mine.available if mine else 0
    if ctx.paused:
        verdict = Verdict(
            False,
            False,
            False,
            "PausedByUser",
            f"paused; revision {revision}: {up}/{spec.replicas} pods available behind"
            f" {strategy.preview_service}",
            True,
            "PausedByUser",
        )
        return "Paused", verdict
    if waiting:
        auto = strategy.auto_promotion
        if analysis_wait is not None:
            when = analysis_wait
        elif auto is not None:
            due = since + timedelta(seconds=auto.after_seconds)
            when = f"automatic promotion at {due:%H:%M:%S}"
        else:
            when = "a promote (kubectl nonstop promote)"
        message = (
            f"revision {revision} is ready behind {strategy.preview_service}"
            f" ({spec.replicas} pods); {spec.service.name} still serves {stable}; waiting for"
            f" {when}"
        )
        verdict = Verdict(False, False, False, "AwaitingPromotion", message, True, "StepPaused")
        return "Paused", verdict
    what = (
        f"switching {spec.service.name} to revision {revision}"
        if stage == PROMOTED
        else f"bringing up revision {revision} behind {strategy.preview_service}"
    )
    message = f"{what}: {up}/{spec.replicas} pods available; {stable} serves"
    return "Progressing", Verdict(False, True, False, "RolloutInProgress", message)


def _ready(ctx: _Rolling, observed: Observed, preview_service: str) -> bool:
    """The new revision is whole, and the preview's EndpointSlices list all its pods ready."""
    preview = observed.other_service(preview_service)
    replicas = ctx.spec.replicas
    return whole(ctx.deps.get(ctx.revision), replicas) and _shows(
        preview.ready if preview else None,
        preview is not None and preview.selects(ctx.revision),
        replicas,
    )


def _previous(ctx: _Rolling) -> DeploymentView | None:
    """The revision the switch replaced, while it is still whole (so that going back is one
    selector switch): the newest other revision at full size."""
    whole_ones = [
        d for r, d in ctx.deps.items() if r != ctx.revision and whole(d, ctx.spec.replicas)
    ]
    epoch = datetime.min.replace(tzinfo=UTC)
    return max(whole_ones, key=lambda d: d.created_at or epoch, default=None)


def _aborted(ctx: _Rolling, abort: Abort, now: datetime) -> Outcome:
    status = ctx.rollout.status.model_copy(update={"abort": abort})
    return _settled(replace(ctx, rollout=replace(ctx.rollout, status=status)), now)


def _settled(ctx: _Rolling, now: datetime) -> Outcome:
    """First revision, or a rollback: both Services select the revision that serves."""
    outcome = rolling_pass(ctx, now)
    serving = ctx.stable if outcome.abort is not None and ctx.stable else ctx.revision
    return replace(outcome, selects=_both(ctx.spec, serving))


def _both(spec: RolloutSpec, revision: str) -> dict[str, str | None]:
    assert spec.strategy.blue_green is not None
    return {spec.service.name: revision, spec.strategy.blue_green.preview_service: revision}


def _after_switch(ctx: _Rolling, now: datetime, delay: int) -> Outcome:
    """The revision serves. The one it replaced stays whole for `delay` seconds after the
    switch (for an undo that is one selector switch), then goes."""
    prev = ctx.rollout.status
    switched_now = prev.stable_revision != ctx.revision
    switched_at = now if switched_now else prev.step_started_at
    keep_until = switched_at + timedelta(seconds=delay) if switched_at else None
    selects = _both(ctx.spec, ctx.revision)
    others_up = any(d.spec_replicas > 0 for r, d in ctx.deps.items() if r != ctx.revision)
    assert ctx.spec.strategy.blue_green is not None
    post = ctx.spec.strategy.blue_green.post_promotion_analysis
    previous = _previous(ctx)
    wanted = (
        (Wanted("postPromotion", post),) if post and switched_at and previous is not None else ()
    )
    judged = judgement(prev, wanted, ctx.revision)
    if judged.abort is not None and previous is not None:  # one switch back, then green goes
        abort = Abort(revision=ctx.revision, at=now, reason="AnalysisFailed", message=judged.abort)
        return _aborted(replace(ctx, stable=previous.revision), abort, now)
    analysing = bool(wanted) and "postPromotion" not in judged.passed
    if ((keep_until is not None and now < keep_until) or analysing) and others_up:
        kept = ", ".join(
            sorted(d.name for r, d in ctx.deps.items() if r != ctx.revision and d.spec_replicas)
        )
        mine = ctx.deps.get(ctx.revision)
        until = (
            f"the post-promotion analysis ends ({judged.hold})"
            if judged.hold
            else "the post-promotion analysis ends"
            if analysing
            else f"{keep_until:%H:%M:%S}"
        )
        message = (
            f"revision {ctx.revision} is active ({mine.available if mine else 0}/"
            f"{ctx.spec.replicas} pods available); {kept} stays at full size until"
            f" {until} for an instant undo"
        )
        return Outcome(
            [],
            "Healthy",
            Verdict(True, False, False, "RolloutCompleted", message),
            ctx.revision,
            None,
            now,
            f"{STAGES}/{STAGES}",
            max(0.5, min(IDLE_REQUEUE, ((keep_until or now) - now).total_seconds() + 0.2)),
            step_index=PROMOTED,
            step_started_at=switched_at,
            selects=selects,
            wanted=wanted,
        )
    outcome = rolling_pass(ctx, now)
    return replace(
        outcome,
        stable_revision=ctx.revision if outcome.abort is None else outcome.stable_revision,
        step_index=PROMOTED if switched_at else None,
        step_started_at=switched_at,
        selects=selects,
    )
