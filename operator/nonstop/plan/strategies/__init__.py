"""The strategies, side by side. Each reads the pass context and returns an Outcome; none
imports another (an import-linter contract). What they share is in plan/kernel/. Shadow
runs in front of another strategy (its `then`), which this table hands it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from nonstop.api import RolloutSpec
from nonstop.plan.context import PassContext
from nonstop.plan.outcome import Outcome
from nonstop.plan.strategies.bluegreen import plan_blue_green
from nonstop.plan.strategies.canary import plan_canary
from nonstop.plan.strategies.rolling import plan_rolling
from nonstop.plan.strategies.routed import plan_routed_canary
from nonstop.plan.strategies.shadow import plan_shadow
from nonstop.plan.strategies.toggle import plan_feature_toggle

StrategyPass = Callable[[PassContext], Outcome]


def _base(canary: bool, blue_green: bool, routed: bool) -> StrategyPass:
    if canary:
        return plan_routed_canary if routed else plan_canary
    if blue_green:
        return plan_blue_green
    return plan_rolling


def strategy_for(spec: RolloutSpec) -> StrategyPass:
    """The strategy that carries out this spec."""
    strategy, routed = spec.strategy, spec.traffic_routing is not None
    if strategy.feature_toggle is not None:
        return plan_feature_toggle
    if strategy.shadow is not None:
        then = strategy.shadow.then
        return partial(
            plan_shadow, then=_base(then.canary is not None, then.blue_green is not None, routed)
        )
    return _base(strategy.canary is not None, strategy.blue_green is not None, routed)


__all__ = ["StrategyPass", "strategy_for"]
