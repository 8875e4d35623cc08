"""Scenario tests of the rolling strategy: many passes against the in-memory world."""

from __future__ import annotations

from datetime import timedelta

from nonstop.plan import CreateDeployment, DeleteDeployment, Plan, ScaleDeployment
from tests.sim import World, rollout_raw


def reasons(world: World) -> list[str]:
    return [e.reason for p in world.history for e in p.events]


def healthy_world(**kwargs: object) -> World:
    world = World(rollout_raw(**kwargs))  # type: ignore[arg-type]
    world.run_until("Healthy")
    return world


def test_first_revision_goes_straight_to_full_size() -> None:
    world = World(rollout_raw(replicas=5))
    first = world.step()
    created = [a for a in first.actions if isinstance(a, CreateDeployment)]
    assert len(created) == 1
    assert created[0].body["spec"]["replicas"] == 5
    world.run_until("Healthy")
    status = world.status
    assert status.stable_revision == world.revision
    assert status.ready_replicas == 5
    ready = status.condition("Ready")
    assert ready is not None and ready.status == "True"
    assert "RolloutCompleted" in reasons(world)


def test_image_update_replaces_pods_within_surge_and_minimum() -> None:
    world = healthy_world(replicas=4, max_surge=1, max_unavailable=0)
    old = world.revision
    world.set_image("web:2")
    world.min_ready_seen, world.max_pods_seen = None, 0
    world.run_until("Healthy")
    assert world.min_ready_seen == 4  # replicas - maxUnavailable
    assert world.max_pods_seen <= 5  # replicas + maxSurge
    assert world.status.stable_revision == world.revision != old
    assert world.replicas_by_revision() == {world.revision: 4, old: 0}


def test_max_unavailable_lets_old_pods_go_before_new_ones_are_ready() -> None:
    world = healthy_world(replicas=4, max_surge=0, max_unavailable=2)
    world.set_image("web:2")
    world.min_ready_seen, world.max_pods_seen = None, 0
    world.run_until("Healthy")
    assert world.min_ready_seen == 2
    assert world.max_pods_seen <= 4


def test_scale_changes_the_size_of_a_healthy_rollout() -> None:
    world = healthy_world(replicas=2)
    world.raw["spec"]["replicas"] = 6
    world.run_until("Healthy")
    assert world.replicas_by_revision() == {world.revision: 6}
    assert world.status.replicas == 6


def test_pods_that_never_become_ready_pause_then_roll_back() -> None:
    world = healthy_world(replicas=3, max_surge=1, deadline=60)
    stable = world.revision
    world.set_image("web:bad")
    world.never_ready.add(world.revision)
    bad = world.revision
    world.min_ready_seen = None

    paused = world.run_until("Paused")
    assert paused.status.condition("Paused").status == "True"  # type: ignore[union-attr]
    assert "ContainersNotReady" in (paused.status.message or "")
    assert f"{bad}" in (paused.status.message or "")

    degraded = world.run_until("Degraded")
    assert degraded.status.abort is not None
    assert degraded.status.abort.reason == "ProgressDeadlineExceeded"
    world.run(5)
    status = world.status
    assert world.replicas_by_revision() == {stable: 3, bad: 0}
    assert status.stable_revision == stable
    assert status.condition("Stalled").status == "True"  # type: ignore[union-attr]
    assert status.condition("Ready").status == "False"  # type: ignore[union-attr]
    assert world.min_ready_seen == 3
    story = reasons(world)
    assert story.index("PodsNotReady") < story.index("RolloutAborted") < story.index("RolledBack")


def test_aborted_revision_stays_aborted_until_the_template_changes() -> None:
    world = healthy_world(replicas=2, deadline=20)
    world.set_image("web:bad")
    world.never_ready.add(world.revision)
    world.run_until("Degraded")
    world.run(20)
    assert world.status.phase == "Degraded"
    world.set_image("web:3")
    world.run_until("Healthy")
    assert world.status.abort is None
    assert world.replicas_by_revision()[world.revision] == 2


def test_progress_resets_the_deadline() -> None:
    world = healthy_world(replicas=2, deadline=30)
    world.set_image("web:2")
    # slow but steady: every batch takes 20 s, less than the 30 s deadline
    for _ in range(20):
        world.step(settle=False)
        world.now += timedelta(seconds=20)
        world.settle()
    assert world.status.abort is None
    assert world.status.phase == "Healthy"


def test_new_template_mid_rollout_supersedes_the_revision_in_progress() -> None:
    world = healthy_world(replicas=4, max_surge=1)
    stable = world.revision
    world.set_image("web:2")
    world.never_ready.add(world.revision)
    second = world.revision
    world.run(3)
    world.set_image("web:3")
    world.min_ready_seen = None
    world.run_until("Healthy")
    assert world.replicas_by_revision() == {world.revision: 4, second: 0, stable: 0}
    assert "Superseded" in reasons(world)
    assert world.min_ready_seen == 4


def test_revision_history_limit_deletes_the_oldest_idle_revisions() -> None:
    raw = rollout_raw(replicas=1)
    raw["spec"]["revisionHistoryLimit"] = 1
    world = World(raw)
    world.run_until("Healthy")
    revisions = [world.revision]
    for image in ("web:2", "web:3", "web:4"):
        world.now += timedelta(seconds=5)
        world.set_image(image)
        world.run_until("Healthy")
        revisions.append(world.revision)
    world.run(2)
    assert set(world.replicas_by_revision()) == {revisions[-1], revisions[-2]}
    assert any(isinstance(a, DeleteDeployment) for p in world.history for a in p.actions)


def test_paused_rollout_makes_no_changes_and_does_not_abort() -> None:
    world = healthy_world(replicas=3, deadline=10)
    world.set_image("web:2")
    world.raw["spec"]["paused"] = True
    before = world.replicas_by_revision()
    world.run(30)
    assert world.status.phase == "Paused"
    assert world.status.abort is None
    scaled = [
        a
        for p in world.history[-30:]
        for a in p.actions
        if isinstance(a, ScaleDeployment | CreateDeployment)
    ]
    assert scaled == []
    assert world.replicas_by_revision() == before
    world.raw["spec"]["paused"] = False
    world.run_until("Healthy")


def test_a_contradictory_spec_is_stalled_and_changes_nothing() -> None:
    raw = rollout_raw(strategy={"blueGreen": {"previewService": "web-preview"}}, route="web")
    world = World(raw)
    decision = world.step()
    assert decision.actions == ()
    assert decision.status.condition("Stalled").status == "True"  # type: ignore[union-attr]
    assert decision.status.condition("Stalled").reason == "InvalidSpec"  # type: ignore[union-attr]
    assert [e.reason for e in decision.events] == ["InvalidSpec"]
    assert world.step().events == ()  # said once, not every pass


def test_service_owned_by_someone_else_is_a_conflict() -> None:
    from nonstop.plan import ServiceView

    world = World(rollout_raw())
    world.service = ServiceView("web", owned=False, selector={"app": "other"}, ports=())
    decision = world.step()
    assert decision.actions == ()
    stalled = decision.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "ServiceConflict"
    assert "Service web already exists" in stalled.message


def test_invalid_spec_becomes_a_condition() -> None:
    raw = rollout_raw()
    raw["spec"]["strategy"] = {"rolling": {"maxSurge": "250%"}}
    decision = World(raw).step()
    assert decision.actions == ()
    stalled = decision.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "InvalidSpec"
    assert "spec.strategy.rolling.maxSurge" in stalled.message


def test_stable_revision_that_loses_a_pod_is_not_aborted() -> None:
    world = healthy_world(replicas=3, deadline=20)
    stable = world.revision
    world.now += timedelta(minutes=10)  # long after the last progress
    dep = next(iter(world.deps.values()))
    dep.ready = 2  # a pod dies
    decision = world.step(settle=False)
    assert decision.status.abort is None
    assert decision.status.phase == "Progressing"
    assert decision.status.stable_revision == stable
    assert decision.status.condition("Stalled").status == "False"  # type: ignore[union-attr]
    world.settle()
    world.run_until("Healthy")
    assert world.replicas_by_revision() == {stable: 3}


def test_requests_that_keep_failing_are_not_progress() -> None:
    """If the API server refuses every change, the deadline still ends the attempt."""
    world = healthy_world(replicas=2, deadline=30)
    world.set_image("web:2")
    for _ in range(30):  # plans are made but nothing is ever applied
        decision = plan_only(world)
        world.now += timedelta(seconds=2)
    assert decision.status.abort is not None
    assert decision.status.abort.reason == "ProgressDeadlineExceeded"


def plan_only(world: World) -> Plan:
    from nonstop.api import RolloutStatus
    from nonstop.plan import plan
    from nonstop.plan.views import rollout_view

    decision = plan(rollout_view(world.raw), world.observed(), world.now)
    status = RolloutStatus.model_validate(decision.status.model_dump(by_alias=True, mode="json"))
    world.raw["status"] = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    return decision


def test_a_first_revision_that_never_becomes_ready_is_degraded_not_deleted() -> None:
    world = World(rollout_raw(replicas=2, deadline=20))
    world.never_ready.add(world.revision)
    degraded = world.run_until("Degraded")
    stalled = degraded.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "ProgressDeadlineExceeded"
    assert "no stable revision to roll back to" in stalled.message
    assert world.replicas_by_revision() == {world.revision: 2}  # nothing to fall back to
    world.set_image("web:fixed")
    world.never_ready.clear()
    world.run_until("Healthy")
    assert world.status.abort is None
