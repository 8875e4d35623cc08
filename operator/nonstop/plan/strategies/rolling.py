"""The rolling strategy: replace pods batch by batch, never below the available minimum.
It is the kernel's rolling replacement with the spec's maxSurge and maxUnavailable."""

from __future__ import annotations

from nonstop.plan.context import PassContext
from nonstop.plan.kernel.fleet import fleet
from nonstop.plan.kernel.settle import settle
from nonstop.plan.outcome import Outcome


def plan_rolling(ctx: PassContext) -> Outcome:
    rolling = ctx.spec.strategy.rolling
    assert rolling is not None
    return settle(fleet(ctx, rolling.max_surge, rolling.max_unavailable, one_service=True))
