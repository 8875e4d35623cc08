"""The shared kernel of every strategy: a rolling replacement to one revision.

It carries out the first revision of a Rollout, the completion of a rollout, the rollback
after an abort, and a plain rolling update; it names the state in kstatus terms. Which
revision is the target: the current one, or the stable one once the current one is
aborted (by a person, an analysis, or the progress deadline).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from nonstop.api import Abort
from nonstop.api.status import Phase
from nonstop.plan.conditions import Verdict
from nonstop.plan.context import PassContext
from nonstop.plan.kernel.fleet import Fleet
from nonstop.plan.kernel.progress import (
    deadline_abort,
    last_progress_time,
    pod_summary,
    pods_not_ready,
    stalled,
)
from nonstop.plan.model import Action
from nonstop.plan.outcome import IDLE_REQUEUE, IN_PROGRESS_REQUEUE, Outcome


def settle(fleet: Fleet) -> Outcome:
    """One pass of a rolling replacement towards the current revision (or, aborted, back to
    the stable one)."""
    ctx = fleet.ctx
    revision, stable = ctx.revision, fleet.stable
    abort = ctx.abort
    last_progress = last_progress_time(ctx)
    # The deadline is for reaching a new revision; a stable one that lost pods is not aborted.
    if abort is None and not ctx.paused and stable != revision and not fleet.settled(revision):
        abort = deadline_abort(ctx, last_progress)

    rolling_back = abort is not None and stable not in (None, revision)
    target = stable if rolling_back and stable else revision
    actions = fleet.batch(target)
    done = fleet.settled(target)
    if done:
        actions.extend(fleet.history_cleanup(target))
    elif ctx.paused:
        actions = []
    return _outcome(fleet, actions, abort, target, done, last_progress)


def _outcome(
    fleet: Fleet,
    actions: list[Action],
    abort: Abort | None,
    target: str,
    done: bool,
    last_progress: datetime,
) -> Outcome:
    """Name the state the rollout is in, in kstatus terms and in words."""
    ctx = fleet.ctx
    spec, revision, stable, now = ctx.spec, ctx.revision, fleet.stable, ctx.now
    progress = f"{ctx.available(target)}/{fleet.desired}"
    requeue = IDLE_REQUEUE if done else IN_PROGRESS_REQUEUE

    def out(
        phase: Phase,
        verdict: Verdict,
        step: str = progress,
        requeue_after: float = requeue,
    ) -> Outcome:
        return Outcome(actions, phase, verdict, stable, abort, last_progress, step, requeue_after)

    if abort is not None and target != revision:
        if done:
            return out(
                "Degraded",
                stalled("RolledBack", f"rolled back to revision {target}: {abort.message}"),
                f"rollback {progress}",
            )
        return out(
            "Degraded",
            stalled(
                "RollingBack",
                f"rolling back to revision {target} ({progress} available): {abort.message}",
                reconciling=True,
            ),
            f"rollback {progress}",
        )
    if done:
        message = f"revision {revision} is stable: {progress} pods available"
        return Outcome(
            actions,
            "Healthy",
            Verdict(True, False, False, "RolloutCompleted", message),
            revision,
            None,
            last_progress,
            progress,
            requeue,
        )
    if abort is not None:
        message = (
            f"{abort.message}; there is no stable revision to roll back to:"
            " fix spec.template to start a new revision"
        )
        return out(
            "Degraded", stalled("ProgressDeadlineExceeded", message), requeue_after=IDLE_REQUEUE
        )
    if ctx.paused:
        by = "spec.paused" if spec.paused else "a RolloutAction (resume to go on)"
        message = f"paused by {by} at {progress} of revision {revision}"
        verdict = Verdict(False, False, False, "PausedByUser", message, True, "PausedByUser")
        return out("Paused", verdict, requeue_after=IDLE_REQUEUE)

    if stable == revision:  # completed once: only pods to replace, nothing to roll back to
        problems = ctx.problems()
        waiting = f"; not ready: {pod_summary(problems)}" if problems else ""
        message = f"revision {revision} is stable; {progress} pods available{waiting}"
        return out("Progressing", Verdict(False, True, False, "Scaling", message))

    deadline_at = last_progress + timedelta(seconds=spec.progress_deadline_seconds)
    requeue = min(requeue, max(0.5, (deadline_at - now).total_seconds() + 0.5))
    unready = pods_not_ready(ctx, last_progress)
    if unready is not None:
        return out("Paused", unready, requeue_after=requeue)

    old = sum(d.replicas for d in ctx.deps.values() if d.revision != revision)
    message = f"rolling out revision {revision}: {progress} new pods available, {old} old pods left"
    return out(
        "Progressing",
        Verdict(False, True, False, "RolloutInProgress", message),
        requeue_after=requeue,
    )


def rolling_back_first(
    ctx: PassContext,
    actions: list[Action],
    message: str,
    selects: dict[str, str | None],
) -> Outcome:
    """An aborted revision that keeps serving a while longer, because the stable revision
    cannot take its traffic yet (not ready enough, not whole): RollingBack, with the
    strategy's own actions and Service selectors for this pass."""
    assert ctx.abort is not None
    return Outcome(
        actions,
        "Degraded",
        stalled("RollingBack", message, reconciling=True),
        ctx.stable,
        ctx.abort,
        ctx.now,
        "rollback",
        IN_PROGRESS_REQUEUE,
        selects=selects,
    )
