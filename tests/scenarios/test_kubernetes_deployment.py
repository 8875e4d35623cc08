"""Scenarios ported from the Kubernetes Deployment e2e and integration tests
(kubernetes/kubernetes, test/e2e/apps/deployment.go and
test/integration/deployment/deployment_test.go), run in the simulated world with the rolling
strategy, nonstop's counterpart of a Deployment's RollingUpdate.

Each docstring names the Kubernetes test and what nonstop does where it deliberately differs."""

from __future__ import annotations

import random
from datetime import timedelta

from nonstop.plan import CreateDeployment
from tests.scenarios.conftest import (
    MinReadyWorld,
    condition_reason,
    new_image,
    phase,
    pods,
    reasons,
    rolling_world,
    scale,
    spec_change,
    until,
)
from tests.sim import World, rollout_raw


def test_min_ready_seconds_is_copied_into_the_revisions_deployment() -> None:
    """Kubernetes test/integration/deployment/deployment_test.go TestNewDeployment: the
    Deployment's settings reach the ReplicaSet it creates (minReadySeconds 4 there). Here
    spec.minReadySeconds reaches the Deployment nonstop creates for each revision, and the
    first revision comes up at full size."""
    raw = rollout_raw(replicas=20)
    raw["spec"]["minReadySeconds"] = 4
    world = World(raw)
    decision = world.step()
    created = [a for a in decision.actions if isinstance(a, CreateDeployment)]
    assert [c.body["spec"]["minReadySeconds"] for c in created] == [4]
    assert [c.body["spec"]["replicas"] for c in created] == [20]
    world.run_until("Healthy")
    new_image(world, "web:2")
    decision = world.step()
    created = [a for a in decision.actions if isinstance(a, CreateDeployment)]
    assert [c.body["spec"]["minReadySeconds"] for c in created] == [4]


def test_a_rollout_paused_at_creation_creates_nothing_until_resumed() -> None:
    """Kubernetes test/integration/deployment/deployment_test.go TestPausedDeployment (first
    half): a Deployment created paused gets no ReplicaSet until it is resumed; then it rolls
    out revision 1."""
    world = World(rollout_raw(replicas=1, paused=True))
    world.run(5)
    assert world.deps == {}
    assert world.status.phase == "Paused"
    assert condition_reason(world, "Paused") == "PausedByUser"
    spec_change(world, paused=False)
    world.run_until("Healthy")
    assert world.replicas_by_revision() == {world.revision: 1}


def test_a_template_change_while_paused_waits_for_resume() -> None:
    """Kubernetes test/integration/deployment/deployment_test.go TestPausedDeployment (second
    half): pausing a complete Deployment and changing its template creates no new
    ReplicaSet; the old one keeps its template. nonstop: the phase is Paused
    (PausedByUser), no Deployment is created, and the rollout happens after the resume."""
    world = rolling_world(replicas=1)
    old = world.revision
    spec_change(world, paused=True)
    world.run(2)
    assert world.status.phase == "Healthy"
    new = new_image(world, "web:2")
    world.run(10)
    assert world.replicas_by_revision() == {old: 1}
    assert phase(world) == "Paused"
    assert condition_reason(world, "Paused") == "PausedByUser"
    spec_change(world, paused=False)
    world.run_until("Healthy")
    assert world.replicas_by_revision() == {old: 0, new: 1}


def test_scaling_a_paused_rollout_waits_for_resume() -> None:
    """Kubernetes test/integration/deployment/deployment_test.go TestScalePausedDeployment: a
    paused Deployment can be scaled (1 -> 10 at once). nonstop deliberately differs
    (docs/reference.md, spec.paused: a scale made while paused waits until you resume; until
    then the phase is Paused): nothing is scaled while paused, the status has caught up with
    the generation, and the resume scales to 10."""
    world = rolling_world(replicas=1)
    spec_change(world, paused=True)
    world.run(2)
    scale(world, 10)
    world.run(5)
    assert world.replicas_by_revision() == {world.revision: 1}
    assert world.status.phase == "Paused"
    assert world.status.observed_generation == world.raw["metadata"]["generation"]
    spec_change(world, paused=False)
    world.run_until("Healthy")
    assert world.replicas_by_revision() == {world.revision: 10}


def test_a_first_revision_past_its_deadline_recovers_when_its_pods_get_ready() -> None:
    """Kubernetes test/integration/deployment/deployment_test.go TestFailedDeployment: pods
    that are not ready give the Deployment a timed-out Progressing condition after
    progressDeadlineSeconds (3 s); once they are ready it completes. nonstop: a first revision
    has nothing to roll back to, so it is Degraded with Stalled=ProgressDeadlineExceeded and
    its Deployment stays; when its pods get ready it becomes Healthy (RolloutCompleted)."""
    world = World(rollout_raw(replicas=1, deadline=3))
    world.never_ready.add(world.revision)
    world.run_until("Degraded")
    assert condition_reason(world, "Stalled") == "ProgressDeadlineExceeded"
    assert "ProgressDeadlineExceeded" in reasons(world)
    assert world.replicas_by_revision() == {world.revision: 1}
    world.never_ready.clear()
    world.run_until("Healthy")
    assert condition_reason(world, "Ready") == "RolloutCompleted"
    assert world.status.abort is None and world.status.stable_revision == world.revision


def test_scale_and_template_change_together_during_a_stuck_update() -> None:
    """Kubernetes test/integration/deployment/deployment_test.go TestScaledRolloutDeployment:
    10 replicas, maxSurge 3, maxUnavailable 2. An update whose pods never get ready keeps the
    minimum available (8); a scale to 20 together with a new, working image completes with
    every old revision at 0; another stuck update, then a scale to 5 with a working image
    completes too. The minimum holds at every pass (replicas - maxUnavailable, for the
    smaller of the sizes in force)."""
    world = rolling_world(replicas=10, max_surge=3, max_unavailable=2, deadline=600)
    world.min_ready_seen = None
    stuck = new_image(world, "web:fake2", never_ready=True)
    world.run(8)
    assert world.min_ready_seen is not None and world.min_ready_seen >= 8
    assert world.status.abort is None
    scale(world, 20)
    good = new_image(world, "web:fake3")
    world.run_until("Healthy")
    assert world.replicas_by_revision()[good] == 20 and pods(world, stuck) == 0
    assert sum(world.replicas_by_revision().values()) == 20
    assert world.min_ready_seen >= 8
    world.min_ready_seen = None
    stuck = new_image(world, "web:fake4", never_ready=True)
    world.run(8)
    assert world.min_ready_seen is not None and world.min_ready_seen >= 18
    scale(world, 5)
    last = new_image(world, "web:fake5")
    world.run_until("Healthy")
    assert world.replicas_by_revision()[last] == 5
    assert sum(world.replicas_by_revision().values()) == 5
    assert world.min_ready_seen >= 3


def test_scale_to_zero_and_back_and_a_change_that_is_not_the_template() -> None:
    """Kubernetes test/integration/deployment/deployment_test.go TestSpecReplicasChange: scale
    1 -> 2 -> 0 -> 1, each time the revision's size follows and the status is complete; then
    a change that is not the template (revisionHistoryLimit) bumps the generation, which the
    status catches up with, without a new revision or any change to the cluster."""
    world = rolling_world(replicas=1)
    revision = world.revision
    for replicas in (2, 0, 1):
        scale(world, replicas)
        world.run_until("Healthy")
        assert world.replicas_by_revision() == {revision: replicas}
        assert world.status.ready_replicas == replicas
        assert condition_reason(world, "Ready") == "RolloutCompleted"
    spec_change(world, revisionHistoryLimit=4)
    decision = world.step()
    assert decision.actions == () and decision.events == ()
    assert world.status.observed_generation == world.raw["metadata"]["generation"]
    assert world.revision == revision and world.status.phase == "Healthy"


def test_pods_count_as_available_only_after_min_ready_seconds() -> None:
    """Kubernetes test/integration/deployment/deployment_test.go TestDeploymentAvailableCondition:
    with minReadySeconds the Deployment is not available although its pods are ready, until
    they have been ready that long. nonstop's first revision stays Progressing (not Ready)
    until the pods are available, then it is Healthy."""
    raw = rollout_raw(replicas=10)
    raw["spec"]["minReadySeconds"] = 30
    world = MinReadyWorld(raw, min_ready=30)
    for _ in range(10):  # 20 s: every pod ready, none available yet
        world.run(1)
        assert world.status.phase == "Progressing"
        assert condition_reason(world, "Ready") != "RolloutCompleted"
    assert world.status.ready_replicas == 10
    until(world, lambda: world.status.phase == "Healthy")
    assert world.now >= world.deps[next(iter(world.deps))].created + timedelta(seconds=30)
    assert world.status.available_replicas == 10


def test_rollover_of_a_stuck_revision_keeps_old_pods_until_the_new_are_available() -> None:
    """Kubernetes test/e2e/apps/deployment.go testRolloverDeployment: a rollout stuck on an
    image that never gets ready (minReadySeconds 10, maxSurge 1, maxUnavailable 0) is rolled
    over by a new template: both earlier revisions end at 0 and the new one completes. An old
    available pod goes only once a new pod has been ready for minReadySeconds."""
    raw = rollout_raw(replicas=4, max_surge=1, max_unavailable=0, deadline=600)
    raw["spec"]["minReadySeconds"] = 10
    world = MinReadyWorld(raw, min_ready=10)
    world.run_until("Healthy")
    first = world.revision
    stuck = new_image(world, "web:nonexistent", never_ready=True)
    world.run(5)
    assert (pods(world, stuck), pods(world, first)) == (1, 4)
    last = new_image(world, "web:redis")
    lowest = world.available_total()
    for _ in range(200):
        world.step()
        lowest = min(lowest, world.available_total())
        world.now += timedelta(seconds=2)
        if world.status.phase == "Healthy":
            break
    assert world.status.phase == "Healthy"
    assert [pods(world, r) for r in (first, stuck, last)] == [0, 0, 4]
    assert lowest >= 4
    assert "Superseded" in reasons(world)


def test_revision_history_limit_zero_keeps_only_the_running_revision() -> None:
    """Kubernetes test/e2e/apps/deployment.go testDeploymentCleanUpPolicy ("deployment should
    delete old replica sets"): with revisionHistoryLimit 0 only the running revision's
    Deployment remains after each rollout."""
    raw = rollout_raw(replicas=2)
    raw["spec"]["revisionHistoryLimit"] = 0
    world = World(raw)
    world.run_until("Healthy")
    for image in ("web:2", "web:3"):
        new_image(world, image)
        world.run_until("Healthy")
        world.run(3)
        assert world.replicas_by_revision() == {world.revision: 2}
    assert "RevisionsDeleted" in reasons(world)


def test_iterative_rollouts_eventually_complete() -> None:
    """Kubernetes test/e2e/apps/deployment.go testIterativeDeployments ("iterative rollouts
    should eventually progress"): 20 random changes to a 6-replica rollout (new templates,
    rollbacks to the previous revision, scale up and down, pause and resume) at random times,
    then resumed: it completes on the last template with exactly spec.replicas pods, and
    revisionHistoryLimit 2 bounds the kept revisions. Rollback is nonstop's undo action."""
    for seed in range(5):
        rng = random.Random(seed)
        raw = rollout_raw(replicas=6, max_surge="25%", max_unavailable="25%", deadline=30)
        raw["spec"]["revisionHistoryLimit"] = 2
        world = World(raw)
        world.run_until("Healthy")
        for i in range(20):
            world.run(rng.randint(0, 3))
            draw = rng.random()
            if draw < 0.2:
                container = world.raw["spec"]["template"]["spec"]["containers"][0]
                container.setdefault("env", []).append({"name": "A", "value": str(i)})
                world.raw["metadata"]["generation"] += 1
            elif draw < 0.4:
                world.request("undo")
            elif draw < 0.6:
                scale(world, max(1, world.raw["spec"]["replicas"] + rng.choice((-1, 1))))
            elif draw < 0.8:
                spec_change(world, paused=not world.raw["spec"]["paused"])
        spec_change(world, paused=False)
        world.run_until("Healthy")
        replicas = world.raw["spec"]["replicas"]
        assert world.replicas_by_revision()[world.revision] == replicas
        assert sum(world.replicas_by_revision().values()) == replicas
        assert world.status.stable_revision == world.revision
        assert len(world.deps) <= 1 + 2


def test_the_scale_subresource_reads_and_writes_replicas() -> None:
    """Kubernetes test/e2e/apps/deployment.go testDeploymentSubresources ("Deployment should
    have a working scale subresource"): spec.replicas is written through the scale
    subresource (kubectl scale, an HPA) and the status it reads back follows: the selector
    (status.selector, from spec.selector.matchLabels) and the pods."""
    world = rolling_world(replicas=1)
    assert world.status.selector == "app=web"
    assert world.status.replicas == 1
    scale(world, 2)
    world.run_until("Healthy")
    assert world.status.replicas == 2 and world.status.ready_replicas == 2
    assert world.status.selector == "app=web"


def test_undo_back_and_forth_and_undo_with_nothing_before() -> None:
    """Kubernetes test/e2e/apps/deployment.go testRollbackDeployment (the releases that had
    the rollback API) and
    test/integration/deployment/deployment_test.go TestRollbackDeploymentRSNoRevision: a
    rollback with no earlier revision leaves the template as it is; after an update, a
    rollback returns to revision 1's template; a rollback again returns to the newest other
    revision (the update's). nonstop's undo answers the first one Rejected."""
    world = rolling_world(replicas=1)
    first = world.revision
    name = world.request("undo")
    world.run(2)
    assert world.answer(name).phase == "Rejected"
    assert world.revision == first
    second = new_image(world, "web:2")
    world.run_until("Healthy")
    name = world.request("undo")
    world.run(1)
    assert world.answer(name).phase == "Applied" and world.revision == first
    world.run_until("Healthy")
    assert world.replicas_by_revision() == {first: 1, second: 0}
    name = world.request("undo")
    world.run(1)
    assert world.answer(name).phase == "Applied" and world.revision == second
    assert world.status.last_action is not None and world.status.last_action.revision == second
    world.run_until("Healthy")
    assert world.replicas_by_revision() == {first: 0, second: 1}
    assert world.undone_to == [first, second]
