"""The canary strategy without a router: replica shares per step, pauses, promotion, abort."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.sim import World, rollout_raw

FIVE_STEPS: list[dict[str, Any]] = [
    {"setWeight": 25},
    {"pause": {"duration": "30s"}},
    {"setWeight": 50},
    {"pause": {}},
    {"setWeight": 75},
]


def canary_world(steps: list[dict[str, Any]] = FIVE_STEPS, deadline: int = 120) -> World:
    world = World(rollout_raw(replicas=4, deadline=deadline, strategy={"canary": {"steps": steps}}))
    world.run_until("Healthy")  # the first revision goes straight to full size
    return world


def shares(world: World, stable: str) -> tuple[int, int]:
    replicas = world.replicas_by_revision()
    return replicas.get(world.revision, 0), replicas.get(stable, 0)


def test_each_step_moves_its_share_of_pods_and_the_minimum_holds() -> None:
    world = canary_world()
    stable = world.revision
    world.set_image("web:2")
    world.min_ready_seen = None
    seen: dict[int, tuple[int, int]] = {}
    for _ in range(40):
        world.step()
        world.now += timedelta(seconds=2)
        index = world.status.current_step_index
        if index is not None:
            seen.setdefault(index, shares(world, stable))
        if world.status.phase == "Paused" and index == 3:
            break
    assert world.status.condition("Paused").reason == "StepPaused"  # type: ignore[union-attr]
    assert shares(world, stable) == (2, 2)  # 50%: waits for a promotion at step 4
    assert seen[1] == (1, 3)  # 25% of 4: one canary pod
    assert world.min_ready_seen is not None and world.min_ready_seen >= 4
    assert world.status.weights is not None and world.status.weights.canary == 50

    name = world.request("promote")
    world.run_until("Healthy")
    assert world.answer(name).phase == "Applied"
    assert world.replicas_by_revision() == {world.revision: 4, stable: 0}
    assert world.status.stable_revision == world.revision
    assert world.min_ready_seen >= 4


def test_indefinite_pause_waits_and_abort_restores_stable_at_once() -> None:
    world = canary_world()
    stable = world.revision
    world.set_image("web:2")
    for _ in range(60):
        world.step()
        world.now += timedelta(seconds=2)
        if world.status.current_step_index == 3:
            break
    world.run(30)  # a minute later: still waiting
    assert world.status.phase == "Paused" and world.status.current_step_index == 3
    world.request("abort")
    world.run(6)
    assert world.replicas_by_revision() == {stable: 4, world.revision: 0}
    assert world.status.abort is not None and world.status.abort.reason == "AbortedByUser"


def test_a_canary_whose_pods_never_become_ready_is_aborted_at_the_deadline() -> None:
    world = canary_world(deadline=30)
    stable = world.revision
    world.set_image("web:bad")
    world.never_ready.add(world.revision)
    world.min_ready_seen = None
    world.run_until("Degraded")
    world.run(5)
    assert world.replicas_by_revision() == {stable: 4, world.revision: 0}
    assert world.min_ready_seen is not None and world.min_ready_seen >= 4
    assert world.status.abort is not None


def test_a_new_revision_mid_canary_starts_again_at_step_zero() -> None:
    world = canary_world()
    stable = world.revision
    world.set_image("web:2")
    world.run(8)
    second = world.revision
    world.set_image("web:3")
    world.step()
    assert world.status.current_step_index in (0, 1)
    world.request("promoteFull")
    world.run_until("Healthy")
    assert world.replicas_by_revision() == {world.revision: 4, second: 0, stable: 0}
