"""The pass context: everything one reconcile pass of one Rollout knows, built once.

A strategy reads the context and returns what it wants (an Outcome); it never rewrites the
previous status to steer itself or another strategy. What a RolloutAction changes (an
abort, a hold, a retry's fresh start) is in the context from the start of the pass, and
the status builder writes it back. Compare Argo Rollouts' rolloutContext
(rollout/context.go): one object per reconcile with the Rollout, its ReplicaSets and the
analysis runs, handed to the strategy's reconcile function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from nonstop.api import Abort, RolloutSpec, RolloutStatus
from nonstop.api.status import AnalysisRunStatus
from nonstop.plan.analysis import Judgement, Wanted, judgement
from nonstop.plan.flags import FlagStore
from nonstop.plan.model import DeploymentView, Observed, PodProblem, RolloutMeta
from nonstop.plan.router import TrafficRouter
from nonstop.plan.steps import Promotion


@dataclass(frozen=True)
class ActionEffect:
    """What this pass's RolloutAction changes before the strategy plans (control.py)."""

    abort: Abort | None = None  # abort the current revision now
    clear_abort: bool = False  # retry: the revision is no longer aborted
    held: bool | None = None  # pause (True) or resume (False) by RolloutAction
    restart_steps: bool = False  # retry: the steps and their analysis start afresh
    reset_deadline: bool = False  # retry, resume: the progress deadline counts from now
    promotion: Promotion = None


@dataclass(frozen=True)
class PassContext:
    meta: RolloutMeta
    spec: RolloutSpec
    template: dict[str, Any]
    prev: RolloutStatus  # the status as read at the start of the pass, never rewritten
    observed: Observed
    now: datetime
    revision: str
    stable: str | None  # the recorded stable revision, or the one that serves most
    abort: Abort | None  # the current revision's abort (recorded, or by an action now)
    held: bool  # paused by a RolloutAction
    promotion: Promotion
    restart_steps: bool
    reset_deadline: bool
    router: TrafficRouter | None
    runs: tuple[AnalysisRunStatus, ...]  # analysis runs as this pass starts from them
    deps: Mapping[str, DeploymentView] = field(default_factory=dict)
    flags: FlagStore | None = None  # the feature toggle's flag store
    # revisions that lost their traffic and keep their pods for scaleDownDelaySeconds: the
    # rollout does not wait for them to go (drain.py removes them when the time comes)
    draining: frozenset[str] = frozenset()

    @property
    def paused(self) -> bool:
        """Paused by the spec (GitOps) or held by a RolloutAction."""
        return self.spec.paused or self.held

    @property
    def replicas(self) -> int:
        return self.spec.replicas

    @property
    def fresh(self) -> bool:
        """The steps of the current revision start this pass (a new revision, or a retry)."""
        return (
            self.prev.current_revision != self.revision
            or self.prev.current_step_index is None
            or self.restart_steps
        )

    @property
    def step_index(self) -> int:
        return 0 if self.fresh else self.prev.current_step_index or 0

    @property
    def step_started_at(self) -> datetime:
        return self.now if self.fresh else self.prev.step_started_at or self.now

    def available(self, revision: str | None) -> int:
        d = self.deps.get(revision) if revision else None
        return d.available if d else 0

    def problems(self) -> list[PodProblem]:
        """Pods of the current revision that are not ready."""
        return [p for p in self.observed.unready_pods if p.revision == self.revision]

    def judge(self, wanted: tuple[Wanted, ...]) -> Judgement:
        return judgement(self.runs, wanted, self.revision)

    def aborted(self, abort: Abort) -> PassContext:
        """The rest of this pass as a rollback: the strategy decided to abort now."""
        return replace(self, abort=abort)

    def with_stable(self, stable: str) -> PassContext:
        """The rest of this pass with `stable` serving (a switch the cluster already shows)."""
        return replace(self, stable=stable)

    def with_spec(self, spec: RolloutSpec, router: TrafficRouter | None) -> PassContext:
        """The same pass for a composed strategy (shadow's `then`)."""
        return replace(self, spec=spec, router=router)


def stable_revision(
    recorded: str | None, deployments: Mapping[str, DeploymentView], revision: str
) -> str | None:
    """The recorded stable revision, or (status lost, or its Deployment deleted) the other
    revision that serves the most pods."""
    if recorded and recorded in deployments:
        return recorded
    serving = [d for d in deployments.values() if d.revision != revision and d.available > 0]
    return max(serving, key=lambda d: d.available).revision if serving else None


def build_context(
    *,
    meta: RolloutMeta,
    spec: RolloutSpec,
    template: dict[str, Any],
    prev: RolloutStatus,
    observed: Observed,
    now: datetime,
    revision: str,
    effect: ActionEffect,
    router: TrafficRouter | None,
    flags: FlagStore | None,
) -> PassContext:
    deps = {d.revision: d for d in observed.deployments}
    recorded = prev.abort if prev.abort and prev.abort.revision == revision else None
    abort = effect.abort or (None if effect.clear_abort else recorded)
    held = bool(prev.held) if effect.held is None else effect.held
    runs = tuple(prev.analysis_runs)
    if effect.restart_steps:  # a retry starts fresh runs: the failed ones are history
        runs = tuple(r for r in runs if r.revision != revision)
    elif effect.promotion is not None:  # a promote past a held analysis starts it afresh
        runs = tuple(
            r for r in runs if r.revision != revision or r.phase not in ("Inconclusive", "Error")
        )
    # drained revisions: held for scaleDownDelaySeconds, then scaled down; either way the
    # rollout does not wait for their pods to go
    draining = frozenset(d.revision for d in prev.draining if d.revision != revision)
    return PassContext(
        meta=meta,
        spec=spec,
        template=template,
        prev=prev,
        observed=observed,
        now=now,
        revision=revision,
        stable=stable_revision(prev.stable_revision, deps, revision),
        abort=abort,
        held=held,
        promotion=effect.promotion,
        restart_steps=effect.restart_steps,
        reset_deadline=effect.reset_deadline,
        router=router,
        runs=runs,
        deps=deps,
        flags=flags,
        draining=draining,
    )
