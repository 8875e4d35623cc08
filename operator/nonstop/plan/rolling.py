"""The rolling strategy: replace pods batch by batch, never below the available minimum.

One batch is decided by replicas.rolling_targets. This module adds what turns batches into
a rollout: which revision is the target (the new one, or the stable one while rolling
back), when the rollout is done, when it is stuck, and when the progress deadline aborts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nonstop.api import Abort, RolloutSpec
from nonstop.api.status import Phase
from nonstop.plan.conditions import Verdict
from nonstop.plan.model import (
    Action,
    CreateDeployment,
    DeleteDeployment,
    DeploymentView,
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
    scale_notes: list[str] = field(default_factory=list)


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
    shown = [f"{p.name} ({p.reason}: {p.message})" if p.message else f"{p.name} ({p.reason})"
             for p in problems[:POD_LIST_LIMIT]]
    more = len(problems) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def plan_rolling(
    rollout: RolloutView, spec: RolloutSpec, revision: str, observed: Observed, now: datetime
) -> Outcome:
    assert spec.strategy.rolling is not None
    prev = rollout.status
    desired = spec.replicas
    surge, unavailable = bounds(
        desired, spec.strategy.rolling.max_surge, spec.strategy.rolling.max_unavailable
    )
    deps = {d.revision: d for d in observed.deployments}
    stable = stable_revision(prev.stable_revision, deps, revision)
    abort = prev.abort if prev.abort and prev.abort.revision == revision else None
    deadline = timedelta(seconds=spec.progress_deadline_seconds)

    def settled(target: str) -> bool:
        t = deps.get(target)
        others_gone = all(
            d.spec_replicas == 0 and d.replicas == 0 for d in deps.values() if d.revision != target
        )
        return (
            t is not None
            and t.up_to_date
            and t.spec_replicas == desired
            and t.replicas == desired
            and t.available >= desired
            and others_gone
        )

    def batch(target: str) -> list[Action]:
        current = deps.get(target)
        name = deployment_name(rollout.meta.name, target)
        mine = _as_pods(current) if current else Pods(name=name, spec=0, pods=0, available=0)
        others = _order_others([d for d in deps.values() if d.revision != target], stable)
        targets = rolling_targets(
            desired, surge, unavailable, mine, [_as_pods(o) for o in others],
            observed.ready_endpoints,
        )
        actions: list[Action] = []
        if current is None:
            body = render_deployment(rollout.meta, spec, rollout.template, target, targets[name])
            actions.append(CreateDeployment(body))
        for d in [*([current] if current else []), *others]:
            if targets[d.name] != d.spec_replicas:
                actions.append(ScaleDeployment(d.name, targets[d.name], d.spec_replicas))
        return actions

    current = deps.get(revision)
    new_available = current.available if current else 0
    forward = batch(revision)
    complete = settled(revision)

    same_revision = prev.current_revision == revision
    progressed = (
        not same_revision
        or prev.last_progress_time is None
        or new_available > (prev.updated_ready_replicas or 0)
        or bool(forward)
        or spec.paused
    )
    last_progress = now if progressed else (prev.last_progress_time or now)
    deadline_at = last_progress + deadline
    new_problems = [p for p in observed.unready_pods if p.revision == revision]

    if (
        abort is None
        and not complete
        and not spec.paused
        and now >= deadline_at
    ):
        why = f"revision {revision} made no progress for {spec.progress_deadline_seconds}s"
        if new_problems:
            why += f"; pods not ready: {_pod_summary(new_problems)}"
        abort = Abort(revision=revision, at=now, reason="ProgressDeadlineExceeded", message=why)

    rolling_back = abort is not None and stable is not None and stable != revision
    target = stable if rolling_back and stable else revision
    actions = batch(target) if rolling_back else forward
    done = settled(target)
    if done:
        actions.extend(_history_cleanup(deps, target, spec.revision_history_limit))
    if spec.paused and not done:
        actions = []

    target_dep = deps.get(target)
    target_available = target_dep.available if target_dep else 0
    progress = f"{target_available}/{desired}"
    requeue = IDLE_REQUEUE if done else IN_PROGRESS_REQUEUE
    paused_pods = [p for p in new_problems if now - p.since >= timedelta(seconds=unready_grace(spec.progress_deadline_seconds))]

    if rolling_back and abort is not None:
        assert stable is not None
        if done:
            phase: Phase = "Degraded"
            verdict = Verdict(
                ready=False, reconciling=False, stalled=True, reason="RolledBack",
                message=f"rolled back to revision {stable}: {abort.message}",
            )
        else:
            phase = "Degraded"
            verdict = Verdict(
                ready=False, reconciling=True, stalled=True, reason="RollingBack",
                message=f"rolling back to revision {stable} ({progress} available): {abort.message}",
            )
        return Outcome(actions, phase, verdict, stable, abort, last_progress,
                       f"rollback {progress}", requeue)

    if done:
        verdict = Verdict(
            ready=True, reconciling=False, stalled=False, reason="RolloutCompleted",
            message=f"revision {revision} is stable: {target_available}/{desired} pods available",
        )
        return Outcome(actions, "Healthy", verdict, revision, None, last_progress, progress, requeue)

    if abort is not None:
        verdict = Verdict(
            ready=False, reconciling=False, stalled=True, reason="ProgressDeadlineExceeded",
            message=f"{abort.message}; there is no stable revision to roll back to:"
            " fix spec.template to start a new revision",
        )
        return Outcome(actions, "Degraded", verdict, stable, abort, last_progress, progress,
                       IDLE_REQUEUE)

    requeue = min(requeue, max(0.5, (deadline_at - now).total_seconds() + 0.5))
    if spec.paused:
        verdict = Verdict(
            ready=False, reconciling=False, stalled=False, reason="PausedByUser",
            message=f"paused by spec.paused at {progress} of revision {revision}",
            paused=True, paused_reason="PausedByUser",
        )
        return Outcome(actions, "Paused", verdict, stable, None, last_progress, progress,
                       IDLE_REQUEUE)

    if paused_pods and now - last_progress >= timedelta(seconds=unready_grace(spec.progress_deadline_seconds)):
        fallback = f"rolls back to revision {stable}" if stable else "is marked Degraded"
        verdict = Verdict(
            ready=False, reconciling=True, stalled=False, reason="PodsNotReady",
            message=f"waiting: {len(new_problems)} pod(s) of revision {revision} not ready:"
            f" {_pod_summary(new_problems)}; the rollout {fallback} if nothing changes"
            f" within {spec.progress_deadline_seconds}s of the last progress",
            paused=True, paused_reason="PodsNotReady",
        )
        return Outcome(actions, "Paused", verdict, stable, None, last_progress, progress, requeue)

    old = sum(d.replicas for d in deps.values() if d.revision != revision)
    verdict = Verdict(
        ready=False, reconciling=True, stalled=False, reason="RolloutInProgress",
        message=f"rolling out revision {revision}: {progress} new pods available,"
        f" {old} old pods left",
    )
    return Outcome(actions, "Progressing", verdict, stable, None, last_progress, progress, requeue)


def _history_cleanup(
    deps: dict[str, DeploymentView], keep: str, limit: int
) -> list[Action]:
    """Delete idle old revisions beyond revisionHistoryLimit, the oldest first."""
    epoch = datetime.min
    idle = sorted(
        (d for d in deps.values() if d.revision != keep and d.spec_replicas == 0 and d.replicas == 0),
        key=lambda d: d.created_at.replace(tzinfo=None) if d.created_at else epoch,
        reverse=True,
    )
    return [DeleteDeployment(d.name) for d in idle[limit:]]
