"""Invariants of the rolling planner, over arbitrary states (hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from nonstop.plan import CreateDeployment, ScaleDeployment
from nonstop.plan.replicas import Pods, bounds, rolling_targets
from tests.sim import World, rollout_raw
from tests.strategies import images, int_or_percent, rolling_state


def after(pods: Pods, replicas: int) -> Pods:
    """The revision once its Deployment has the new size and no pod has come or gone yet."""
    return replace(
        pods, spec=replicas, pods=max(pods.pods, replicas), available=min(pods.available, replicas)
    )


@given(rolling_state())
def test_never_more_pods_than_replicas_plus_surge(state: tuple) -> None:  # type: ignore[type-arg]
    desired, surge, unavailable, target, others, endpoints = state
    result = rolling_targets(desired, surge, unavailable, target, others, endpoints)
    if result[target.name] > target.spec:  # the planner grew the new revision
        total_after = result[target.name] + sum(o.pods for o in others)
        assert total_after <= desired + surge
    for other in others:
        assert result[other.name] <= other.spec  # old revisions only ever shrink


@given(rolling_state())
def test_available_never_planned_below_the_minimum(state: tuple) -> None:  # type: ignore[type-arg]
    desired, surge, unavailable, target, others, endpoints = state
    result = rolling_targets(desired, surge, unavailable, target, others, endpoints)
    before = target.available + sum(o.available for o in others)
    if endpoints is not None:
        before = min(before, endpoints)
    planned = min(target.available, result[target.name]) + sum(
        min(o.available, result[o.name]) for o in others
    )
    assert planned >= min(before, desired - unavailable)


@given(rolling_state())
def test_planning_again_after_applying_yields_nothing(state: tuple) -> None:  # type: ignore[type-arg]
    desired, surge, unavailable, target, others, endpoints = state
    first = rolling_targets(desired, surge, unavailable, target, others, endpoints)
    target2 = after(target, first[target.name])
    others2 = [after(o, first[o.name]) for o in others]
    removed = (target.available - target2.available) + sum(
        o.available - o2.available for o, o2 in zip(others, others2, strict=True)
    )
    endpoints2 = None if endpoints is None else max(0, endpoints - removed)
    second = rolling_targets(desired, surge, unavailable, target2, others2, endpoints2)
    assert second == first


@given(st.integers(0, 50), int_or_percent, int_or_percent)
def test_bounds_always_let_the_rollout_move(
    replicas: int, surge: int | str, unavailable: int | str
) -> None:
    s, u = bounds(replicas, surge, unavailable)
    assert s >= 0 and 0 <= u <= replicas
    assert s + u >= 1


@settings(max_examples=40, deadline=None)
@given(
    replicas=st.integers(1, 8),
    surge=st.integers(0, 3),
    unavailable=st.integers(0, 3),
    updates=st.lists(images, min_size=1, max_size=3),
)
def test_whole_rollouts_keep_the_minimum_and_finish(
    replicas: int, surge: int, unavailable: int, updates: list[str]
) -> None:
    unavailable = min(unavailable, replicas)
    if surge == 0 and unavailable == 0:
        surge = 1
    world = World(rollout_raw(replicas=replicas, max_surge=surge, max_unavailable=unavailable))
    world.run_until("Healthy")
    for image in updates:
        world.set_image(image)
        world.min_ready_seen, world.max_pods_seen = None, 0
        world.run_until("Healthy")
        assert world.min_ready_seen is None or world.min_ready_seen >= replicas - unavailable
        assert world.max_pods_seen <= replicas + surge
        assert world.replicas_by_revision()[world.revision] == replicas
        # converged: one more pass changes nothing
        assert not [
            a for a in world.step().actions if isinstance(a, ScaleDeployment | CreateDeployment)
        ]


@settings(max_examples=25, deadline=None)
@given(replicas=st.integers(1, 6), passes_before_restart=st.integers(0, 12))
def test_restart_anywhere_resumes_from_status(replicas: int, passes_before_restart: int) -> None:
    """A killed operator keeps nothing in memory: a fresh world built from the same status and
    cluster finishes the rollout within the same bounds."""
    world = World(rollout_raw(replicas=replicas, max_surge=1))
    world.run_until("Healthy")
    world.set_image("web:2")
    world.min_ready_seen, world.max_pods_seen = None, 0
    for _ in range(passes_before_restart):
        world.step(settle=False)
        world.now += timedelta(seconds=1)
    world.history.clear()  # nothing but the status and the cluster survive
    world.run_until("Healthy")
    assert world.min_ready_seen is None or world.min_ready_seen >= replicas
    assert world.max_pods_seen <= replicas + 1
