"""scaleDownDelaySeconds: a revision that lost its traffic keeps its pods a while.

A proxy applies a route or an EndpointSlice change some time after the API server has it
(Traefik's provider throttle, kube-proxy's sync period, a mesh's xDS push). Pods removed at
once would get requests in that window. So when a Service moves away from a revision (the
stable Service on completion, the canary Service on abort or when superseded, blue-green's
active Service) that revision's pods stay for the strategy's scaleDownDelaySeconds, counted
from the pass that moved it (status.draining, so a restarted operator still waits). Argo
Rollouts does the same (scaleDownDelaySeconds and abortScaleDownDelaySeconds, both 30 s by
default, for a canary with traffic routing and for blue-green).

Strategies decide where traffic goes; this module only holds back the scale-downs of
revisions still in their window, whatever strategy asked for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from nonstop.api import RolloutSpec
from nonstop.api.status import Drain
from nonstop.plan.model import (
    REVISION_LABEL,
    Action,
    DeleteDeployment,
    DeploymentView,
    ScaleDeployment,
    ServiceView,
)


def scale_down_delay(spec: RolloutSpec) -> int:
    """The strategy's delay in seconds; 0 where one Service selects every revision (the
    EndpointSlices then drop a pod before it stops, as for any Deployment)."""
    strategy = spec.strategy
    shadow = strategy.shadow
    canary = strategy.canary or (shadow.then.canary if shadow else None)
    blue_green = strategy.blue_green or (shadow.then.blue_green if shadow else None)
    if canary is not None and spec.traffic_routing is not None:
        return canary.scale_down_delay_seconds
    if blue_green is not None:
        return blue_green.scale_down_delay_seconds
    return 0


@dataclass(frozen=True)
class Drained:
    actions: list[Action]  # the pass's actions without the scale-downs held back
    draining: list[Drain]  # status.draining after this pass
    held: list[str]  # Deployments whose scale-down waits
    until: datetime | None  # when the first wait ends


def _selected(services: Sequence[ServiceView]) -> dict[str, str | None]:
    return {s.name: s.selector.get(REVISION_LABEL) for s in services if s.owned}


def _serving(services: Sequence[ServiceView]) -> set[str]:
    """Revisions a Service sends traffic to now: it selects them and has ready endpoints
    (a revision whose pods never turned ready got no request, so it has nothing to drain)."""
    return {
        s.selector[REVISION_LABEL]
        for s in services
        if s.owned and REVISION_LABEL in s.selector and (s.ready or 0) > 0
    }


def hold_drained(
    *,
    actions: Sequence[Action],
    services: Sequence[ServiceView],
    selects: Mapping[str, str | None],
    deployments: Sequence[DeploymentView],
    previous: Sequence[Drain],
    delay: int,
    now: datetime,
) -> Drained:
    """Hold back this pass's scale-downs of revisions that lost their traffic less than
    `delay` seconds ago (or lose it in this very pass)."""
    if delay <= 0:
        return Drained(list(actions), [], [], None)
    before = _selected(services)
    after = {**before, **selects}
    if None in after.values():  # a Service over every revision: nothing is switched away
        return Drained(list(actions), [], [], None)
    serving_after = {r for r in after.values() if r}
    lost = _serving(services) - serving_after
    # a record stays until the revision's pods are gone (so that the rollout does not wait
    # for them, even in the pass that scales them down); it holds them only in its window
    with_pods = {d.revision for d in deployments if d.spec_replicas > 0 or d.replicas > 0}
    window = timedelta(seconds=delay)
    kept = [d for d in previous if d.revision in with_pods and d.revision not in serving_after]
    known = {d.revision for d in kept}
    # the status keeps whole seconds: count from the next one, so the wait is never shorter
    started = now if now.microsecond == 0 else now.replace(microsecond=0) + timedelta(seconds=1)
    draining = kept + [
        Drain(revision=r, at=started) for r in sorted(lost - known) if r in with_pods
    ]
    waiting = {d.revision for d in draining if now < d.at + window}
    by_name = {d.name: d.revision for d in deployments}
    out: list[Action] = []
    held: list[str] = []
    for action in actions:
        shrinks = (
            isinstance(action, ScaleDeployment) and action.replicas < action.from_replicas
        ) or isinstance(action, DeleteDeployment)
        if (
            shrinks
            and isinstance(action, ScaleDeployment | DeleteDeployment)
            and by_name.get(action.name, "") in waiting
        ):
            held.append(action.name)
            continue
        out.append(action)
    until = min((d.at + window for d in draining if d.revision in waiting), default=None)
    return Drained(out, draining, held, until)
