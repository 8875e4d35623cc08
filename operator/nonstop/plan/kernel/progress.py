"""Progress, the deadline, and pods that are not ready: how every strategy tells moving from
stuck."""

from __future__ import annotations

from datetime import datetime, timedelta

from nonstop.api import Abort
from nonstop.plan.conditions import Verdict
from nonstop.plan.context import PassContext
from nonstop.plan.model import PodProblem

POD_LIST_LIMIT = 3


def unready_grace(progress_deadline_seconds: int) -> float:
    """How long a new pod may stay unready before the rollout says it is paused on it."""
    return max(5.0, min(30.0, progress_deadline_seconds / 4))


def pod_summary(problems: list[PodProblem]) -> str:
    shown = [
        f"{p.name} ({p.reason}: {p.message})" if p.message else f"{p.name} ({p.reason})"
        for p in problems[:POD_LIST_LIMIT]
    ]
    more = len(problems) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def last_progress_time(ctx: PassContext) -> datetime:
    """Progress is what the cluster shows, not what nonstop asked for: a new revision, more
    new pods, more of them available, or fewer old pods. A request that keeps failing is
    therefore no progress, and the deadline still applies. A paused rollout stops the clock;
    a retry or a resume starts it again."""
    prev, now = ctx.prev, ctx.now
    current = ctx.deps.get(ctx.revision)
    new_pods = current.replicas if current else 0
    old_pods = sum(d.replicas for d in ctx.deps.values() if d.revision != ctx.revision)
    prev_old_pods = (prev.replicas or 0) - (prev.updated_replicas or 0)
    progressed = (
        prev.current_revision != ctx.revision
        or prev.last_progress_time is None
        or ctx.reset_deadline
        or ctx.promotion is not None  # a person moved it on: the deadline counts from now
        or ctx.available(ctx.revision) > (prev.updated_ready_replicas or 0)
        or new_pods > (prev.updated_replicas or 0)
        or old_pods < prev_old_pods
        or ctx.paused
    )
    return now if progressed or prev.last_progress_time is None else prev.last_progress_time


def deadline_abort(ctx: PassContext, last_progress: datetime) -> Abort | None:
    deadline = timedelta(seconds=ctx.spec.progress_deadline_seconds)
    if ctx.now < last_progress + deadline:
        return None
    why = f"revision {ctx.revision} made no progress for {ctx.spec.progress_deadline_seconds}s"
    if problems := ctx.problems():
        why += f"; pods not ready: {pod_summary(problems)}"
    return Abort(revision=ctx.revision, at=ctx.now, reason="ProgressDeadlineExceeded", message=why)


def pods_not_ready(ctx: PassContext, last_progress: datetime) -> Verdict | None:
    """The rollout waits on pods of its revision that are not ready (for longer than a
    grace, and nothing moved meanwhile): it is paused on them until the deadline."""
    spec, now = ctx.spec, ctx.now
    grace = timedelta(seconds=unready_grace(spec.progress_deadline_seconds))
    problems = ctx.problems()
    if not (any(now - p.since >= grace for p in problems) and now - last_progress >= grace):
        return None
    fallback = f"rolls back to revision {ctx.stable}" if ctx.stable else "is marked Degraded"
    message = (
        f"waiting: {len(problems)} pod(s) of revision {ctx.revision} not ready:"
        f" {pod_summary(problems)}; the rollout {fallback} if nothing changes"
        f" within {spec.progress_deadline_seconds}s of the last progress"
    )
    return Verdict(False, True, False, "PodsNotReady", message, True, "PodsNotReady")


def seconds_to_next_verdict(ctx: PassContext, last_progress: datetime) -> float | None:
    """While a rollout waits on the cluster, the next moment its verdict changes by time
    alone (the progress deadline, the grace of an unready pod); None when no such moment
    is ahead. The operator wakes then: every other change arrives as a watch event."""
    deadline = timedelta(seconds=ctx.spec.progress_deadline_seconds)
    grace = timedelta(seconds=unready_grace(ctx.spec.progress_deadline_seconds))
    moments = [last_progress + deadline, last_progress + grace]
    moments += [p.since + grace for p in ctx.problems()]
    ahead = [(m - ctx.now).total_seconds() for m in moments if m > ctx.now]
    return min(ahead) if ahead else None


def stalled(reason: str, message: str, reconciling: bool = False) -> Verdict:
    return Verdict(
        ready=False, reconciling=reconciling, stalled=True, reason=reason, message=message
    )
