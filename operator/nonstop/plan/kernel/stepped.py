"""What the step-based strategies (canary, routed canary, feature toggle) share: the analysis
runs a step wants, when waiting is the plan, and how a pass in the steps is named."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from nonstop.api import Abort
from nonstop.api.spec import CanaryStep, CanaryStrategy
from nonstop.api.status import Phase
from nonstop.plan.analysis import Judgement, Wanted
from nonstop.plan.conditions import Verdict
from nonstop.plan.context import PassContext
from nonstop.plan.kernel.progress import pods_not_ready
from nonstop.plan.model import Action
from nonstop.plan.outcome import AT_ONCE, IN_PROGRESS_REQUEUE, Outcome
from nonstop.plan.steps import Step, StepProgress, advance, step_kind


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


def waits(steps: Sequence[Step], index: int, now_at: int) -> bool:
    """Still at a pause or an analysis step: waiting there is the plan, not a stall."""
    return now_at == index and step_kind(steps[index]) in ("pause", "analysis")


def analysis_abort(judged: Judgement, revision: str, now: datetime) -> Abort | None:
    if judged.abort is None:
        return None
    return Abort(revision=revision, at=now, reason="AnalysisFailed", message=judged.abort)


def step_progress(
    ctx: PassContext, steps: Sequence[Step], *, applied: bool, judged: Judgement
) -> StepProgress:
    """The step machine's move this pass. An analysis that waits for a person (Inconclusive,
    or an Error under onError: Pause) holds the steps where they are: nothing moves on until
    a promote (which skips the held step) or an abort."""
    index, started = ctx.step_index, ctx.step_started_at
    if judged.hold is not None and ctx.promotion is None:
        return StepProgress(index, started, judged.hold, None)
    return advance(steps, index, started, ctx.now, applied=applied, promotion=ctx.promotion)


def step_outcome(
    ctx: PassContext,
    total: int,
    progress: StepProgress,
    describe: str,
    actions: list[Action],
    last: datetime,
    *,
    moved: bool,
    at_pause: bool,
    hold: str | None = None,
) -> Outcome:
    """Name the state of a step-based rollout in its steps, in kstatus terms and in words."""
    step_text = f"{progress.index}/{total}"
    phase: Phase
    unready = None if at_pause or ctx.paused else pods_not_ready(ctx, last)
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
        requeue = AT_ONCE
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
