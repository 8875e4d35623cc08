"""The blue-green strategy: the new revision comes up whole beside the old one, then one
selector switch moves all traffic.

Two Services select by revision: the active Service (spec.service) selects the stable
revision (blue), the preview Service (previewService) the new one (green). A new revision
goes through three stages, kept in status.currentStepIndex:

  0  green comes up at full size behind the preview Service; blue keeps serving;
  1  green is ready: every pod available and listed ready in the preview Service's
     EndpointSlices (status.stepStartedAt says since when). It waits here for a promote or
     for autoPromotion.afterSeconds (and the pre-promotion analysis, if any);
  2  promoted: the active Service's selector is switched to green in one update, once more
     only if the EndpointSlices still list all of green's pods as ready. When the active
     Service's EndpointSlices show green, green is the stable revision.

After the switch the post-promotion analysis (if any) judges green while blue is kept at
full size: the Rollout is not Ready until it has passed; if it fails, the active Service
switches back to blue (once blue is whole again). Blue then stays for
scaleDownDelaySeconds after the switch (from status.stepStartedAt), so that an undo in that
window is one selector switch back: a revision that is still whole when its rollout starts
goes straight to stage 2 (as Argo Rollouts' fast-track rollback does); then it goes.
An abort before the switch scales green down; the active Service never stopped selecting
blue.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from nonstop.api import Abort, RolloutSpec
from nonstop.api.spec import BlueGreenStrategy
from nonstop.api.status import Phase
from nonstop.plan.analysis import Wanted
from nonstop.plan.conditions import Verdict
from nonstop.plan.context import PassContext
from nonstop.plan.kernel.fleet import Fleet, fleet, whole
from nonstop.plan.kernel.progress import deadline_abort, last_progress_time, pods_not_ready
from nonstop.plan.kernel.settle import rolling_back_first, settle
from nonstop.plan.model import DeploymentView
from nonstop.plan.outcome import AT_ONCE, IDLE_REQUEUE, IN_PROGRESS_REQUEUE, Outcome

SURGE, UNAVAILABLE = "25%", 0
PREVIEW, READY, PROMOTED = 0, 1, 2
STAGES = 2


def _shows(service_ready: int | None, selects: bool, replicas: int) -> bool:
    return selects and (service_ready or 0) >= replicas


def _strategy(ctx: PassContext) -> BlueGreenStrategy:
    strategy = ctx.spec.strategy.blue_green
    assert strategy is not None
    return strategy


def plan_blue_green(ctx: PassContext) -> Outcome:
    strategy = _strategy(ctx)
    spec, revision, now = ctx.spec, ctx.revision, ctx.now
    # Each Service selects one revision: pods of the others are not behind the active one.
    pods = fleet(ctx, SURGE, UNAVAILABLE, one_service=False)
    if ctx.stable is None:
        return _settled(pods)
    if ctx.abort is not None:
        return _aborted(pods)
    if ctx.stable == revision:
        return _after_switch(pods)

    stable = ctx.stable
    stage = PREVIEW if ctx.fresh else ctx.prev.current_step_index or PREVIEW
    since = ctx.step_started_at
    ready = _ready(ctx, strategy.preview_service)
    if ctx.fresh and whole(ctx.deps.get(revision), spec.replicas) and not ctx.paused:
        # Back to a revision that is still whole (an undo, or a revert, inside the scale-down
        # window): it was serving moments ago, so there is nothing to preview.
        stage = PROMOTED
    if stage == PREVIEW and ready:
        stage, since = READY, now
    pre = strategy.pre_promotion_analysis
    wanted = (Wanted("prePromotion", pre),) if pre is not None and stage == READY else ()
    judged = ctx.judge(wanted)
    if judged.abort is not None:  # never switched: green goes, blue never stopped serving
        why = Abort(revision=revision, at=now, reason="AnalysisFailed", message=judged.abort)
        return _settled(pods.at(ctx.aborted(why)))
    analysed = pre is None or "prePromotion" in judged.passed
    if stage in (PREVIEW, READY) and ctx.promotion is not None and not ctx.paused:
        # a person's promote is kept (stage 2 in status) and carried out as soon as green is
        # ready: it is not lost when it comes while green is still coming up, and it goes
        # past a pre-promotion analysis as a canary's promote goes past an analysis step
        stage, since = PROMOTED, now
    if stage == READY and ready and not ctx.paused and analysed:
        auto = strategy.auto_promotion
        due = auto is not None and now >= since + timedelta(seconds=auto.after_seconds)
        if due:
            stage, since = PROMOTED, now
    active = ctx.observed.service
    switched = (
        stage == PROMOTED
        and active is not None
        and _shows(active.ready, active.selects(revision), spec.replicas)
    )
    if switched:  # green serves: it is the stable revision from now on
        return _after_switch(pods.at(ctx.with_stable(revision)))

    actions = [] if ctx.paused else pods.side_by_side(spec.replicas)
    serving = revision if stage == PROMOTED and ready else stable
    selects: dict[str, str | None] = {
        spec.service.name: serving,
        strategy.preview_service: revision,
    }
    waiting = stage == READY and not ctx.paused
    last = now if waiting or ctx.fresh else last_progress_time(ctx)
    if not ctx.paused and not waiting:
        deadline = deadline_abort(ctx, last)
        if deadline is not None:
            return _settled(pods.at(ctx.aborted(deadline)))

    analysis_wait = None if analysed else judged.hold or "the pre-promotion analysis to succeed"
    phase, verdict = _verdict(ctx, stage, since, waiting, analysis_wait)
    unready = None if waiting or ctx.paused else pods_not_ready(ctx, last)
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
        AT_ONCE if stage != (ctx.prev.current_step_index or 0) else requeue,
        step_index=stage,
        step_started_at=since,
        selects=selects,
        wanted=wanted,
    )


def _verdict(
    ctx: PassContext, stage: int, since: datetime, waiting: bool, analysis_wait: str | None
) -> tuple[Phase, Verdict]:
    spec, revision, stable = ctx.spec, ctx.revision, ctx.stable
    strategy = _strategy(ctx)
    up = ctx.available(revision)
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


def _ready(ctx: PassContext, preview_service: str) -> bool:
    """The new revision is whole, and the preview's EndpointSlices list all its pods ready."""
    preview = ctx.observed.other_service(preview_service)
    replicas = ctx.spec.replicas
    return whole(ctx.deps.get(ctx.revision), replicas) and _shows(
        preview.ready if preview else None,
        preview is not None and preview.selects(ctx.revision),
        replicas,
    )


def _previous(ctx: PassContext) -> DeploymentView | None:
    """The revision the switch replaced (the newest other revision that still has a
    Deployment with pods asked for)."""
    kept = [d for r, d in ctx.deps.items() if r != ctx.revision and d.spec_replicas > 0]
    epoch = datetime.min.replace(tzinfo=UTC)
    return max(kept, key=lambda d: d.created_at or epoch, default=None)


def _aborted(pods: Fleet) -> Outcome:
    """An aborted revision: back to the stable one. When the aborted one is serving (its
    post-promotion analysis failed) and the stable one is not whole any more, the stable one
    first comes back to full size; the active Service switches back only then."""
    ctx = pods.ctx
    active = ctx.observed.service
    previous = ctx.deps.get(ctx.stable) if ctx.stable else None
    serving_aborted = active is not None and active.selects(ctx.revision)
    if serving_aborted and previous is not None and not whole(previous, ctx.replicas):
        return _scaling_back(pods, previous)
    return _settled(pods)


def _settled(pods: Fleet) -> Outcome:
    """First revision, or a rollback: both Services select the revision that serves."""
    ctx = pods.ctx
    outcome = settle(pods)
    serving = ctx.stable if outcome.abort is not None and ctx.stable else ctx.revision
    return replace(outcome, selects=_both(ctx.spec, serving))


def _both(spec: RolloutSpec, revision: str) -> dict[str, str | None]:
    assert spec.strategy.blue_green is not None
    return {spec.service.name: revision, spec.strategy.blue_green.preview_service: revision}


def _after_switch(pods: Fleet) -> Outcome:
    """The revision serves. Its post-promotion analysis (if any) judges it while the one it
    replaced stays whole; that one then stays `scaleDownDelaySeconds` after the switch (for
    an undo that is one selector switch), then goes."""
    ctx = pods.ctx
    strategy = _strategy(ctx)
    prev, now, revision = ctx.prev, ctx.now, ctx.revision
    switched_now = prev.stable_revision != revision
    switched_at = now if switched_now else prev.step_started_at
    keep_until = (
        switched_at + timedelta(seconds=strategy.scale_down_delay_seconds) if switched_at else None
    )
    selects = _both(ctx.spec, revision)
    post = strategy.post_promotion_analysis
    wanted = (Wanted("postPromotion", post),) if post and switched_at else ()
    judged = ctx.judge(wanted)
    previous = _previous(ctx)
    if judged.abort is not None and previous is not None:  # switch back, then green goes
        abort = Abort(revision=revision, at=now, reason="AnalysisFailed", message=judged.abort)
        back = pods.at(ctx.with_stable(previous.revision).aborted(abort))
        return _aborted(back)
    analysing = bool(wanted) and "postPromotion" not in judged.passed and judged.abort is None
    others_up = any(d.spec_replicas > 0 for r, d in ctx.deps.items() if r != revision)
    mine_up = ctx.available(revision)
    if analysing:  # blue stays whole (scaled back up if it lost pods) until the verdict
        actions = []
        if previous is not None and not ctx.paused:
            blue_kept = pods.at(ctx.with_stable(previous.revision))
            actions = blue_kept.side_by_side(ctx.spec.replicas)
        until = judged.hold or "it passes"
        message = (
            f"revision {revision} is active ({mine_up}/{ctx.spec.replicas} pods available);"
            f" the post-promotion analysis judges it ({until})"
            + (f"; {previous.name} stays at full size to switch back to" if previous else "")
        )
        return Outcome(
            actions,
            "Progressing",
            Verdict(False, True, False, "PostPromotionAnalysis", message),
            revision,
            None,
            now,
            f"{STAGES}/{STAGES}",
            IN_PROGRESS_REQUEUE,
            step_index=PROMOTED,
            step_started_at=switched_at,
            selects=selects,
            wanted=wanted,
        )
    if keep_until is not None and now < keep_until and others_up:
        kept = ", ".join(
            sorted(d.name for r, d in ctx.deps.items() if r != revision and d.spec_replicas)
        )
        message = (
            f"revision {revision} is active ({mine_up}/{ctx.spec.replicas} pods available);"
            f" {kept} stays at full size until {keep_until:%H:%M:%S} for an instant undo"
        )
        return Outcome(
            [],
            "Healthy",
            Verdict(True, False, False, "RolloutCompleted", message),
            revision,
            None,
            now,
            f"{STAGES}/{STAGES}",
            max(0.5, min(IDLE_REQUEUE, (keep_until - now).total_seconds() + 0.2)),
            step_index=PROMOTED,
            step_started_at=switched_at,
            selects=selects,
            wanted=wanted,
        )
    outcome = settle(pods)
    return replace(
        outcome,
        stable_revision=revision if outcome.abort is None else outcome.stable_revision,
        step_index=PROMOTED if switched_at else None,
        step_started_at=switched_at,
        selects=selects,
        wanted=wanted,
    )


def _scaling_back(pods: Fleet, previous: DeploymentView) -> Outcome:
    """The post-promotion analysis failed but blue lost pods meanwhile: blue comes back to
    full size while green keeps serving, then the active Service switches back."""
    ctx = pods.ctx
    assert ctx.abort is not None
    message = (
        f"rolling back: {ctx.abort.message}; {previous.name} comes back to {ctx.spec.replicas}"
        f" pods ({previous.available} available) before {ctx.spec.service.name} switches"
        f" back to it"
    )
    actions = [] if ctx.paused else pods.side_by_side(ctx.replicas)
    return rolling_back_first(ctx, actions, message, _both(ctx.spec, ctx.revision))
