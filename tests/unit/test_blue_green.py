"""The blue-green strategy: preview at full size, one switch once the EndpointSlices show
green ready, the old revision kept for the delay, undo in the window, abort, auto-promotion."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nonstop.plan import EnsureService, Plan
from nonstop.plan.model import REVISION_LABEL, SetTemplate
from tests.sim import World, rollout_raw


def blue_green_world(deadline: int = 120, delay: int = 30, **extra: Any) -> World:
    strategy = {
        "blueGreen": {"previewService": "web-preview", "scaleDownDelaySeconds": delay, **extra}
    }
    world = World(rollout_raw(replicas=4, deadline=deadline, strategy=strategy))
    world.run_until("Healthy")
    return world


def active(world: World) -> str:
    return world.services["web"].selector[REVISION_LABEL]


def switches(decision: Plan, service: str = "web") -> list[EnsureService]:
    return [
        a
        for a in decision.actions
        if isinstance(a, EnsureService) and a.body["metadata"]["name"] == service
    ]


def run_checked(world: World, passes: int, stop: str | None = None) -> list[int]:
    """Passes; returns the pass numbers at which the active Service was switched, checking
    that a switch only ever happens to a revision that is whole and ready behind it."""
    switched = []
    for number in range(passes):
        decision = world.step(settle=False)
        for action in switches(decision):
            revision = action.body["spec"]["selector"][REVISION_LABEL]
            pods = [d for d in world.deps.values() if d.revision == revision]
            assert pods and pods[0].ready >= 4, "switched to a revision not all ready"
            switched.append(number)
        world.settle()
        world.record()
        assert world.endpoints(world.services["web"]) >= 4
        world.now += timedelta(seconds=2)
        if stop and world.status.phase == stop:
            break
    return switched


def test_green_waits_behind_the_preview_until_promoted_then_one_switch() -> None:
    world = blue_green_world()
    blue = world.revision
    world.set_image("web:2")
    green = world.revision
    assert run_checked(world, 10) == []
    assert world.status.phase == "Paused"
    assert world.status.condition("Paused").reason == "StepPaused"  # type: ignore[union-attr]
    assert "waiting for a promote" in (world.status.message or "")
    assert world.replicas_by_revision() == {blue: 4, green: 4}
    assert active(world) == blue
    assert world.services["web-preview"].selector[REVISION_LABEL] == green
    assert world.status.step == "1/2"

    world.request("promote")
    switched = run_checked(world, 5)
    assert len(switched) == 1
    assert active(world) == green
    assert world.status.stable_revision == green
    assert world.status.phase == "Healthy"
    assert world.replicas_by_revision()[blue] == 4  # kept for the delay
    world.now += timedelta(seconds=31)
    run_checked(world, 3)
    assert world.replicas_by_revision()[blue] == 0


def test_auto_promotion_after_the_given_seconds() -> None:
    world = blue_green_world(autoPromotion={"afterSeconds": 20})
    world.set_image("web:2")
    green = world.revision
    ready_at = None
    for _ in range(40):
        world.step()
        if ready_at is None and world.status.current_step_index == 1:
            ready_at = world.now
        if active(world) == green:
            break
        world.now += timedelta(seconds=2)
    assert ready_at is not None
    assert world.now - ready_at >= timedelta(seconds=20)
    assert active(world) == green


def test_undo_inside_the_window_is_one_switch_back() -> None:
    world = blue_green_world(delay=300)
    blue = world.revision
    world.set_image("web:2")
    green = world.revision
    run_checked(world, 6)
    world.request("promote")
    run_checked(world, 6)
    assert active(world) == green
    assert world.replicas_by_revision()[blue] == 4

    name = world.request("undo", "green is broken")
    decision = world.step()
    assert any(isinstance(a, SetTemplate) for a in decision.actions)
    assert world.answer(name).phase == "Applied"
    assert world.revision == blue
    assert world.undone_to == [blue]
    switched = run_checked(world, 6)
    assert len(switched) == 1
    assert active(world) == blue
    assert world.status.stable_revision == blue
    assert world.replicas_by_revision()[blue] == 4  # never went down


def test_green_that_never_gets_ready_is_never_switched_to_and_is_aborted() -> None:
    world = blue_green_world(deadline=30)
    blue = world.revision
    world.set_image("web:broken")
    world.never_ready.add(world.revision)
    world.request("promote")  # asked early: rejected or moot, never a switch to unready pods
    assert run_checked(world, 40) == []
    paused = [h.status.condition("Paused") for h in world.history]
    assert any(c is not None and c.reason == "PodsNotReady" for c in paused)
    assert active(world) == blue
    assert world.status.abort is not None
    assert world.status.abort.reason == "ProgressDeadlineExceeded"
    assert world.replicas_by_revision()[world.revision] == 0
    assert world.status.phase == "Degraded"


def test_abort_while_waiting_scales_green_down_and_keeps_blue_active() -> None:
    world = blue_green_world()
    blue = world.revision
    world.set_image("web:2")
    run_checked(world, 10)
    world.request("abort")
    run_checked(world, 6)
    assert active(world) == blue
    # green lost its (preview) traffic: its pods stay scaleDownDelaySeconds (30 s), then go
    assert world.replicas_by_revision() == {blue: 4, world.revision: 4}
    run_checked(world, 12)
    assert world.replicas_by_revision() == {blue: 4, world.revision: 0}
    assert world.status.abort is not None and world.status.abort.reason == "AbortedByUser"


def test_preview_service_must_differ_from_the_active_one() -> None:
    strategy = {"blueGreen": {"previewService": "web"}}
    world = World(rollout_raw(replicas=2, strategy=strategy))
    decision = world.step()
    assert decision.actions == ()
    stalled = world.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "InvalidSpec"
