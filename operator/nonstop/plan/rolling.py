"""The rolling strategy: replace pods batch by batch, never below the available minimum.

One batch is decided by replicas.rolling_targets. This module adds what turns batches into
a rollout: which revision is the target (the new one, or the stable one while rolling
back), when the rollout is done, when it is stuck, and when the progress deadline aborts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nonstop.api import Abort, RolloutSpec
from nonstop.api.status import FlagStatus, Phase, ShadowRecord
from nonstop.plan.analysis import Wanted
from nonstop.plan.conditions import Verdict
from nonstop.plan.model import (
    Action,
    CreateDeployment,
    DeleteDeployment,
    DeploymentView,
    EventSpec,
    Observed,
    PodProblem,
    RolloutView,
    ScaleDeployment,
)
from nonstop.plan.replicas import Pods, bounds, rolling_targets
from nonstop.plan.resources import deployment_name, render_deployment

IN_PROGRESS_REQUEUE = 2.0
IDLE_REQUEUE = 30.0
POD_LIST_LIMIT = 3


def unready_grace(progress_deadline_seconds: int) -> float:
    """How long a new pod may stay unready before the rollout says it is paused on it."""
    return max(5.0, min(30.0, progress_deadline_seconds / 4))


@dataclass(frozen=True)
class Outcome:
    """What a strategy decided in one pass, before it becomes status and events."""

    actions: list[Action]
    phase: Phase
    verdict: Verdict
    stable_revision: str | None
    abort: Abort | None
    last_progress: datetime
    step: str
    requeue_after: float
    step_index: int | None = None  # step-based strategies: the current step
    step_started_at: datetime | None = None
    # Service name -> the revision it selects (None: every revision). None: only
    # spec.service, selecting every revision (rolling, canary without a router).
    selects: dict[str, str | None] | None = None
    shadow: ShadowRecord | None = None  # the shadow strategy's record for this revision
    flag: FlagStatus | None = None  # the feature toggle's flag, as read back
    wanted: tuple[Wanted, ...] = ()  # the analysis runs the strategy wants this pass
    events: tuple[EventSpec, ...] = ()  # strategy-specific Events of this pass


def stable_revision(
    recorded: str | None, deployments: dict[str, DeploymentView], revision: str
) -> str | None:
    """The recorded stable revision, or (status lost, or its Deployment deleted) the other
    revision that serves the most pods."""
    if recorded and recorded in deployments:
        return recorded
    serving = [d for d in deployments.values() if d.revision != revision and d.available > 0]
    return max(serving, key=lambda d: d.available).revision if serving else None


def _order_others(others: list[DeploymentView], stable: str | None) -> list[DeploymentView]:
    """Superseded revisions go first, oldest first; the stable revision goes last."""
    epoch = datetime.min.replace(tzinfo=None)

    def key(d: DeploymentView) -> tuple[bool, Any]:
        created = d.created_at.replace(tzinfo=None) if d.created_at else epoch
        return (d.revision == stable, created)

    return sorted(others, key=key)


def _as_pods(d: DeploymentView) -> Pods:
    return Pods(name=d.name, spec=d.spec_replicas, pods=d.pods, available=d.available)


def _pod_summary(problems: list[PodProblem]) -> str:
    shown = [
        f"{p.name} ({p.reason}: {p.message})" if p.message else f"{p.name} ({p.reason})"
        for p in problems[:POD_LIST_LIMIT]
    ]
    more = len(problems) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class _Rolling:
    """What every decision of one pass needs to know."""

    rollout: RolloutView
    spec: RolloutSpec
    revision: str
    observed: Observed
    deps: dict[str, DeploymentView]
    stable: str | None
    surge: int
    unavailable: int

    @property
    def desired(self) -> int:
        return self.spec.replicas

    def settled(self, target: str) -> bool:
        """The target serves at full size and no other revision has pods."""
        t = self.deps.get(target)
        others_gone = all(
            d.spec_replicas == 0 and d.replicas == 0
            for d in self.deps.values()
            if d.revision != target
        )
        return (
            t is not None
            and t.up_to_date
            and t.spec_replicas == t.replicas == self.desired
            and t.available >= self.desired
            and others_gone
        )

    def batch(self, target: str) -> list[Action]:
        """The actions of the next batch towards `target`."""
        current = self.deps.get(target)
        name = deployment_name(self.rollout.meta.name, target)
        mine = _as_pods(current) if current else Pods(name=name, spec=0, pods=0, available=0)
        others = _order_others([d for d in self.deps.values() if d.revision != target], self.stable)
        targets = rolling_targets(
            self.desired,
            self.surge,
            self.unavailable,
            mine,
            [_as_pods(o) for o in others],
            self.observed.ready_endpoints,
        )
        actions: list[Action] = []
        if current is None:
            body = render_deployment(
                self.rollout.meta, self.spec, self.rollout.template, target, targets[name]
            )
            actions.append(CreateDeployment(body))
        for d in [*([current] if current else []), *others]:
            if targets[d.name] != d.spec_replicas:
                actions.append(ScaleDeployment(d.name, targets[d.name], d.spec_replicas))
        return actions

    @property
    def paused(self) -> bool:
        """Paused by the spec (GitOps) or held by a RolloutAction."""
        return self.spec.paused or bool(self.rollout.status.held)

    def available(self, revision: str) -> int:
        d = self.deps.get(revision)
        return d.available if d else 0

    def problems(self) -> list[PodProblem]:
        return [p for p in self.observed.unready_pods if p.revision == self.revision]


def last_progress_time(ctx: _Rolling, now: datetime) -> datetime:
    """Progress is what the cluster shows, not what nonstop asked for: a new revision, more
    new pods, more of them available, or fewer old pods. A request that keeps failing is
    therefore no progress, and the deadline still applies. A paused rollout stops the clock."""
    prev = ctx.rollout.status
    current = ctx.deps.get(ctx.revision)
    new_pods = current.replicas if current else 0
    old_pods = sum(d.replicas for d in ctx.deps.values() if d.revision != ctx.revision)
    prev_old_pods = (prev.replicas or 0) - (prev.updated_replicas or 0)
    progressed = (
        prev.current_revision != ctx.revision
        or prev.last_progress_time is None
        or ctx.available(ctx.revision) > (prev.updated_ready_replicas or 0)
        or new_pods > (prev.updated_replicas or 0)
        or old_pods < prev_old_pods
        or ctx.paused
    )
    return now if progressed or prev.last_progress_time is None else prev.last_progress_time


def deadline_abort(ctx: _Rolling, last_progress: datetime, now: datetime) -> Abort | None:
    deadline = timedelta(seconds=ctx.spec.progress_deadline_seconds)
    if now < last_progress + deadline:
        return None
    why = f"revision {ctx.revision} made no progress for {ctx.spec.progress_deadline_seconds}s"
    if problems := ctx.problems():
        why += f"; pods not ready: {_pod_summary(problems)}"
    return Abort(revision=ctx.revision, at=now, reason="ProgressDeadlineExceeded", message=why)


def rolling_context(
    rollout: RolloutView,
    spec: RolloutSpec,
    revision: str,
    observed: Observed,
    max_surge: int | str,
    max_unavailable: int | str,
) -> _Rolling:
    deps = {d.revision: d for d in observed.deployments}
    surge, unavailable = bounds(spec.replicas, max_surge, max_unavailable)
    return _Rolling(
        rollout=rollout,
        spec=spec,
        revision=revision,
        observed=observed,
        deps=deps,
        stable=stable_revision(rollout.status.stable_revision, deps, revision),
        surge=surge,
        unavailable=unavailable,
    )


def plan_rolling(
    rollout: RolloutView, spec: RolloutSpec, revision: str, observed: Observed, now: datetime
) -> Outcome:
    assert spec.strategy.rolling is not None
    rolling = spec.strategy.rolling
    ctx = rolling_context(
        rollout, spec, revision, observed, rolling.max_surge, rolling.max_unavailable
    )
    return rolling_pass(ctx, now)


def side_by_side(ctx: _Rolling, canary: int) -> list[Action]:
    """The new revision at `canary` pods beside the stable revision at full size (it never
    shrinks here); every other revision (superseded; no traffic goes to it) at zero. For
    strategies whose Services select one revision each (routed canary, blue-green)."""
    actions: list[Action] = []
    mine = ctx.deps.get(ctx.revision)
    if mine is None:
        meta, template = ctx.rollout.meta, ctx.rollout.template
        body = render_deployment(meta, ctx.spec, template, ctx.revision, canary)
        actions.append(CreateDeployment(body))
    for d in ctx.deps.values():
        wanted = (
            canary
            if d.revision == ctx.revision
            else ctx.spec.replicas
            if d.revision == ctx.stable
            else 0
        )
        if d.revision == ctx.stable:
            wanted = max(wanted, d.spec_replicas)  # the stable revision never shrinks here
        if wanted != d.spec_replicas:
            actions.append(ScaleDeployment(d.name, wanted, d.spec_replicas))
    return actions


def rolling_pass(ctx: _Rolling, now: datetime) -> Outcome:
    """One pass of a rolling replacement towards the current revision (or, aborted, back to
    the stable one). The canary strategy uses it too, for its first revision, its last step
    and its rollback."""
    rollout, spec, revision, deps = ctx.rollout, ctx.spec, ctx.revision, ctx.deps
    prev_abort = rollout.status.abort
    abort = prev_abort if prev_abort and prev_abort.revision == revision else None
    forward = ctx.batch(revision)
    last_progress = last_progress_time(ctx, now)
    # The deadline is for reaching a new revision; a stable one that lost pods is not aborted.
    if abort is None and not ctx.paused and ctx.stable != revision and not ctx.settled(revision):
        abort = deadline_abort(ctx, last_progress, now)

    rolling_back = abort is not None and ctx.stable not in (None, revision)
    target = ctx.stable if rolling_back and ctx.stable else revision
    actions = ctx.batch(target) if rolling_back else forward
    done = ctx.settled(target)
    if done:
        actions.extend(_history_cleanup(deps, target, spec.revision_history_limit))
    elif ctx.paused:
        actions = []
    return _outcome(ctx, actions, abort, target, done, last_progress, now)


def _outcome(
    ctx: _Rolling,
    actions: list[Action],
    abort: Abort | None,
    target: str,
    done: bool,
    last_progress: datetime,
    now: datetime,
) -> Outcome:
    """Name the state the rollout is in, in kstatus terms and in words."""
    spec, revision, stable = ctx.spec, ctx.revision, ctx.stable
    progress = f"{ctx.available(target)}/{ctx.desired}"
    requeue = IDLE_REQUEUE if done else IN_PROGRESS_REQUEUE

    def out(
        phase: Phase,
        verdict: Verdict,
        stable_: str | None,
        step: str = progress,
        requeue_after: float = requeue,
    ) -> Outcome:
        return Outcome(actions, phase, verdict, stable_, abort, last_progress, step, requeue_after)

    if abort is not None and target != revision:
        if done:
            return out(
                "Degraded",
                _stalled("RolledBack", f"rolled back to revision {target}: {abort.message}"),
                stable,
                f"rollback {progress}",
            )
        return out(
            "Degraded",
            _stalled(
                "RollingBack",
                f"rolling back to revision {target} ({progress} available): {abort.message}",
                reconciling=True,
            ),
            stable,
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
            "Degraded",
            _stalled("ProgressDeadlineExceeded", message),
            stable,
            requeue_after=IDLE_REQUEUE,
        )
    if ctx.paused:
        by = "spec.paused" if spec.paused else "a RolloutAction (resume to go on)"
        message = f"paused by {by} at {progress} of revision {revision}"
        verdict = Verdict(False, False, False, "PausedByUser", message, True, "PausedByUser")
        return out("Paused", verdict, stable, requeue_after=IDLE_REQUEUE)

    if stable == revision:  # completed once: only pods to replace, nothing to roll back to
        problems = ctx.problems()
        waiting = f"; not ready: {_pod_summary(problems)}" if problems else ""
        message = f"revision {revision} is stable; {progress} pods available{waiting}"
        return out("Progressing", Verdict(False, True, False, "Scaling", message), stable)

    deadline_at = last_progress + timedelta(seconds=spec.progress_deadline_seconds)
    requeue = min(requeue, max(0.5, (deadline_at - now).total_seconds() + 0.5))
    unready = pods_not_ready(ctx, last_progress, now)
    if unready is not None:
        return out("Paused", unready, stable, requeue_after=requeue)

    old = sum(d.replicas for d in ctx.deps.values() if d.revision != revision)
    message = f"rolling out revision {revision}: {progress} new pods available, {old} old pods left"
    return out(
        "Progressing",
        Verdict(False, True, False, "RolloutInProgress", message),
        stable,
        requeue_after=requeue,
    )


def pods_not_ready(ctx: _Rolling, last_progress: datetime, now: datetime) -> Verdict | None:
    """The rollout waits on pods of its revision that are not ready (for longer than a
    grace, and nothing moved meanwhile): it is paused on them until the deadline."""
    spec, revision, stable = ctx.spec, ctx.revision, ctx.stable
    grace = timedelta(seconds=unready_grace(spec.progress_deadline_seconds))
    problems = ctx.problems()
    if not (any(now - p.since >= grace for p in problems) and now - last_progress >= grace):
        return None
    fallback = f"rolls back to revision {stable}" if stable else "is marked Degraded"
    message = (
        f"waiting: {len(problems)} pod(s) of revision {revision} not ready:"
        f" {_pod_summary(problems)}; the rollout {fallback} if nothing changes"
        f" within {spec.progress_deadline_seconds}s of the last progress"
    )
    return Verdict(False, True, False, "PodsNotReady", message, True, "PodsNotReady")


def _stalled(reason: str, message: str, reconciling: bool = False) -> Verdict:
    return Verdict(
        ready=False, reconciling=reconciling, stalled=True, reason=reason, message=message
    )


def _history_cleanup(deps: dict[str, DeploymentView], keep: str, limit: int) -> list[Action]:
    """Delete idle old revisions beyond revisionHistoryLimit, the oldest first."""
    epoch = datetime.min
    idle = sorted(
        (
            d
            for d in deps.values()
            if d.revision != keep and d.spec_replicas == 0 and d.replicas == 0
        ),
        key=lambda d: d.created_at.replace(tzinfo=None) if d.created_at else epoch,
        reverse=True,
    )
    return [DeleteDeployment(d.name) for d in idle[limit:]]
