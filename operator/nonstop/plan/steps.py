"""The step machine shared by the step-based strategies (canary, feature toggle, and the
canary phase of shadow).

A strategy's steps are read as a sequence of instructions; the state of a rollout is only
the index of the current step and when it started (both in status). Everything else is
derived: target_at() folds the steps up to the current one into what they ask for, and
advance() decides whether the current step is done. The index only ever moves forward
within a revision.

Used by the canary strategy (plan/canary.py); the feature toggle and the canary phase of
shadow will use it too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from nonstop.api.base import duration_seconds
from nonstop.api.spec import CanaryStep, SetCanaryScale, SetHeaderRoute, ToggleStep

Step = CanaryStep | ToggleStep
Promotion = Literal["step", "full"] | None


@dataclass(frozen=True)
class StepTarget:
    """What the steps up to and including the current one ask for."""

    weight: float  # share of traffic for the new revision, 0..100
    scale: SetCanaryScale | None  # an explicit size for the new revision, if a step set one
    header_routes: tuple[SetHeaderRoute, ...]


def target_at(steps: Sequence[Step], index: int) -> StepTarget:
    """Fold steps[0..index] (inclusive). Past the last step everything goes to the new revision."""
    if index >= len(steps):
        return StepTarget(weight=100.0, scale=None, header_routes=())
    weight, scale, routes = 0.0, None, {}
    for step in steps[: index + 1]:
        if step.set_weight is not None:
            weight = float(step.set_weight)
        if isinstance(step, CanaryStep):
            if step.set_canary_scale is not None:
                scale = step.set_canary_scale
            if step.set_header_route is not None:
                routes[step.set_header_route.name] = step.set_header_route
    return StepTarget(weight=weight, scale=scale, header_routes=tuple(routes.values()))


@dataclass(frozen=True)
class StepProgress:
    index: int
    started_at: datetime
    waiting_for: str  # why the current step is not done yet ("" when it just moved)
    seconds_left: float | None  # for a timed pause


def step_kind(step: Step) -> str:
    if step.set_weight is not None:
        return "setWeight"
    if step.pause is not None:
        return "pause"
    if isinstance(step, CanaryStep):
        if step.set_canary_scale is not None:
            return "setCanaryScale"
        if step.set_header_route is not None:
            return "setHeaderRoute"
        if step.analysis is not None:
            return "analysis"
    raise AssertionError(f"a validated step has a kind: {step}")


def advance(
    steps: Sequence[Step],
    index: int,
    started_at: datetime,
    now: datetime,
    *,
    applied: bool,
    promotion: Promotion = None,
) -> StepProgress:
    """Move past the current step if it is done; at most one step per pass, so that every
    weight is applied and verified (`applied`: the cluster shows what the step asked for)
    before the next one starts. A full promotion skips to the end."""
    if index >= len(steps):
        return StepProgress(len(steps), started_at, "", None)
    if promotion == "full":
        return StepProgress(len(steps), now, "", None)
    step = steps[index]
    kind = step_kind(step)
    if kind == "pause":
        return _pause(step, index, started_at, now, promoted=promotion == "step")
    if kind == "analysis":  # `applied`: its analysis run succeeded; a promote skips it
        if applied or promotion == "step":
            return StepProgress(index + 1, now, "", None)
        return StepProgress(index, started_at, f"analysis step-{index} to succeed", None)
    if applied:
        return StepProgress(index + 1, now, "", None)
    return StepProgress(index, started_at, f"{kind} to take effect", None)


def _pause(
    step: Step, index: int, started_at: datetime, now: datetime, *, promoted: bool
) -> StepProgress:
    assert step.pause is not None
    if promoted:
        return StepProgress(index + 1, now, "", None)
    if step.pause.duration is None:
        return StepProgress(index, started_at, "a promotion", None)
    ends = started_at + timedelta(seconds=duration_seconds(step.pause.duration))
    if now >= ends:
        return StepProgress(index + 1, now, "", None)
    left = (ends - now).total_seconds()
    return StepProgress(index, started_at, f"the pause to end ({step.pause.duration})", left)


def canary_replicas(replicas: int, target: StepTarget) -> int:
    """Pods of the new revision for a step, without a traffic router.

    The weight becomes a share of pods behind one Service, rounded up: 5% of 4 replicas is
    one pod, the smallest canary there is; the stable revision keeps the rest, so the real
    share of traffic is canary/replicas (25% in that example). setCanaryScale overrides it.
    """
    scale = target.scale
    if scale is not None and scale.replicas is not None:
        return scale.replicas
    if scale is not None and scale.percent is not None:
        return math.ceil(replicas * scale.percent / 100)
    return math.ceil(replicas * target.weight / 100)
