"""The pods of every revision of one Rollout, and how one pass moves them.

Two ways to move pods, shared by every strategy:
  batch()        a rolling replacement towards one revision, bounded by maxSurge and
                 maxUnavailable (replicas.rolling_targets);
  side_by_side() the new revision at some size beside the stable one at full size, for
                 strategies whose Services select one revision each.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from nonstop.plan.context import PassContext
from nonstop.plan.model import (
    Action,
    CreateDeployment,
    DeleteDeployment,
    DeploymentView,
    ScaleDeployment,
)
from nonstop.plan.replicas import Pods, bounds, rolling_targets
from nonstop.plan.resources import deployment_name, render_deployment


def whole(d: DeploymentView | None, replicas: int) -> bool:
    """All the revision's pods exist and are available."""
    return d is not None and d.spec_replicas == d.replicas == replicas and d.available >= replicas


def _as_pods(d: DeploymentView) -> Pods:
    return Pods(name=d.name, spec=d.spec_replicas, pods=d.pods, available=d.available)


def _order_others(others: list[DeploymentView], stable: str | None) -> list[DeploymentView]:
    """Superseded revisions go first, oldest first; the stable revision goes last."""
    epoch = datetime.min.replace(tzinfo=None)

    def key(d: DeploymentView) -> tuple[bool, Any]:
        created = d.created_at.replace(tzinfo=None) if d.created_at else epoch
        return (d.revision == stable, created)

    return sorted(others, key=key)


@dataclass(frozen=True)
class Fleet:
    """The revisions' pods in one pass, with the bounds of a rolling replacement.

    `ready_endpoints` gates what may be taken away: with one Service over every revision
    (rolling, canary without a router) a pod goes only once the Service's EndpointSlices
    show its replacement. Strategies whose Services select one revision each pass None:
    pods of a revision no Service sends traffic to cost nothing to remove.
    """

    ctx: PassContext
    surge: int
    unavailable: int
    ready_endpoints: int | None

    @property
    def desired(self) -> int:
        return self.ctx.spec.replicas

    @property
    def stable(self) -> str | None:
        return self.ctx.stable

    def at(self, ctx: PassContext) -> Fleet:
        """The same fleet seen from a changed context (an abort, a new stable revision)."""
        return replace(self, ctx=ctx)

    def settled(self, target: str) -> bool:
        """The target serves at full size and no other revision has pods (but those that
        lost their traffic and wait out scaleDownDelaySeconds: they go by themselves)."""
        deps = self.ctx.deps
        t = deps.get(target)
        others_gone = all(
            d.spec_replicas == 0 and d.replicas == 0
            for d in deps.values()
            if d.revision != target and d.revision not in self.ctx.draining
        )
        return (
            t is not None
            and t.up_to_date
            and t.spec_replicas == t.replicas == self.desired
            and t.available >= self.desired
            and others_gone
        )

    def _create(self, revision: str, replicas: int) -> CreateDeployment:
        ctx = self.ctx
        return CreateDeployment(
            render_deployment(ctx.meta, ctx.spec, ctx.template, revision, replicas)
        )

    def batch(self, target: str) -> list[Action]:
        """The actions of the next batch of a rolling replacement towards `target`."""
        deps = self.ctx.deps
        current = deps.get(target)
        name = deployment_name(self.ctx.meta.name, target)
        mine = _as_pods(current) if current else Pods(name=name, spec=0, pods=0, available=0)
        others = _order_others([d for d in deps.values() if d.revision != target], self.stable)
        targets = rolling_targets(
            self.desired,
            self.surge,
            self.unavailable,
            mine,
            [_as_pods(o) for o in others],
            self.ready_endpoints,
        )
        actions: list[Action] = []
        if current is None:
            actions.append(self._create(target, targets[name]))
        for d in [*([current] if current else []), *others]:
            if targets[d.name] != d.spec_replicas:
                actions.append(ScaleDeployment(d.name, targets[d.name], d.spec_replicas))
        return actions

    def side_by_side(self, canary: int) -> list[Action]:
        """The current revision at `canary` pods beside the stable revision at full size
        (spec.replicas: it follows a scale of the Rollout, up or down); every other revision
        (superseded; no traffic goes to it) at zero."""
        ctx = self.ctx
        actions: list[Action] = []
        if ctx.revision not in ctx.deps:
            actions.append(self._create(ctx.revision, canary))
        for d in ctx.deps.values():
            wanted = (
                canary
                if d.revision == ctx.revision
                else self.desired
                if d.revision == ctx.stable
                else 0
            )
            if wanted != d.spec_replicas:
                actions.append(ScaleDeployment(d.name, wanted, d.spec_replicas))
        return actions

    def history_cleanup(self, keep: str) -> list[Action]:
        """Delete idle old revisions beyond revisionHistoryLimit, the oldest first."""
        epoch = datetime.min
        idle = sorted(
            (
                d
                for d in self.ctx.deps.values()
                if d.revision != keep and d.spec_replicas == 0 and d.replicas == 0
            ),
            key=lambda d: d.created_at.replace(tzinfo=None) if d.created_at else epoch,
            reverse=True,
        )
        return [DeleteDeployment(d.name) for d in idle[self.ctx.spec.revision_history_limit :]]


def fleet(
    ctx: PassContext, max_surge: int | str, max_unavailable: int | str, *, one_service: bool
) -> Fleet:
    """The fleet of this pass. `one_service`: spec.service selects every revision, so its
    ready endpoints gate every removal."""
    surge, unavailable = bounds(ctx.spec.replicas, max_surge, max_unavailable)
    endpoints = ctx.observed.ready_endpoints if one_service else None
    return Fleet(ctx, surge, unavailable, endpoints)
