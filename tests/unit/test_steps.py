"""The step machine shared by step-based strategies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from nonstop.api.spec import CanaryStep
from nonstop.plan.steps import StepTarget, advance, canary_replicas, target_at
from tests.sim import T0


def steps(*raw: dict[str, Any]) -> list[CanaryStep]:
    return [CanaryStep.model_validate(s) for s in raw]


FIVE = steps(
    {"setWeight": 5},
    {"pause": {"duration": "1m"}},
    {"setCanaryScale": {"percent": 50}},
    {"setWeight": 50},
    {"pause": {}},
)


def test_target_folds_the_steps_so_far() -> None:
    assert target_at(FIVE, 0).weight == 5
    assert target_at(FIVE, 1).weight == 5
    assert target_at(FIVE, 2).scale is not None
    assert target_at(FIVE, 3).weight == 50
    assert target_at(FIVE, 5) == StepTarget(weight=100.0, scale=None, header_routes=())


def test_a_timed_pause_ends_by_itself() -> None:
    waiting = advance(FIVE, 1, T0, T0 + timedelta(seconds=20), applied=True)
    assert (waiting.index, waiting.seconds_left) == (1, 40)
    done = advance(FIVE, 1, T0, T0 + timedelta(minutes=1), applied=True)
    assert done.index == 2


def test_an_indefinite_pause_waits_for_a_promotion() -> None:
    later = T0 + timedelta(days=3)
    assert advance(FIVE, 4, T0, later, applied=True).waiting_for == "a promotion"
    assert advance(FIVE, 4, T0, later, applied=True, promotion="step").index == 5


def test_a_weight_step_waits_until_applied_and_full_promotion_skips_all() -> None:
    assert advance(FIVE, 0, T0, T0, applied=False).index == 0
    assert advance(FIVE, 0, T0, T0, applied=True).index == 1
    assert advance(FIVE, 0, T0, T0, applied=False, promotion="full").index == 5


@pytest.mark.parametrize(
    ("replicas", "weight", "expected"), [(4, 5, 1), (4, 25, 1), (4, 26, 2), (10, 50, 5), (3, 0, 0)]
)
def test_weight_without_router_rounds_the_canary_up(
    replicas: int, weight: float, expected: int
) -> None:
    assert canary_replicas(replicas, StepTarget(weight, None, ())) == expected
